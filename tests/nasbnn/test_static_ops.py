import random

import pytest
import torch
from mmengine.analysis import FlopAnalyzer

from mmdynbnn.analysis import summarize
from mmdynbnn.models import NASBNN, NASBNNSuperNet, export_static, export_static_state_dict
from mmdynbnn.nas import Subnet, build_space, sample_subnet, subnet_ops

from .helpers import TINY_SPACE, perturb


def _trained_like_supernet(seed=0):
    torch.manual_seed(seed)
    net = NASBNNSuperNet(TINY_SPACE, out_indices=(0, 1, 2))
    net.train()
    net(torch.randn(2, 3, 16, 16))  # LSQ step initialisation
    perturb(net, seed)
    return net.eval()


def _subnets(space, n_random=3):
    rng = random.Random(11)
    return [Subnet.biggest(space), Subnet.smallest(space)] + [sample_subnet(space, rng) for _ in range(n_random)]


@pytest.mark.parametrize('index', range(5))
def test_exported_static_equals_supernet_in_eval(index):
    net = _trained_like_supernet()
    subnet = _subnets(net.space)[index]
    net.set_subnet(subnet)
    static = export_static(net, subnet).eval()
    assert static.subnet == subnet
    n_static = sum(p.numel() for p in static.parameters())
    assert n_static < sum(p.numel() for p in net.parameters())
    for size in (16, 21):
        x = torch.randn(2, 3, size, size)
        with torch.no_grad():
            for a, b in zip(net(x), static(x)):
                assert a.shape == b.shape
                torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_export_bakes_the_kernel_transforms_in():
    net = _trained_like_supernet()
    subnet = Subnet.biggest(net.space)
    state = export_static_state_dict(net, subnet)
    c_in = subnet.stages[0].blocks[-1].channels
    w = net.stages[1][0].conv1.weight.detach()[:c_in, :c_in]
    m = net.stages[1][0].conv1.bi_matrix.detach()
    expected = (w.reshape(c_in, c_in, 25) @ m.t()).reshape(w.shape)
    torch.testing.assert_close(state['stages.1.0.conv1.weight'], expected)
    assert not any('matrix' in k for k in state)


def test_static_backbone_from_config_and_validation():
    from mmengine.registry import MODELS
    subnet = Subnet.smallest(TINY_SPACE).to_config()
    model = MODELS.build(dict(type='NASBNN', space=TINY_SPACE, subnet=subnet, out_indices=(1, 2)))
    assert model.out_channels == (12, 16)
    frozen = NASBNN(subnet, TINY_SPACE, frozen_stages=1, norm_eval=True).train()
    assert not any(p.requires_grad for p in frozen.stem.parameters())
    assert not any(p.requires_grad for p in frozen.stages[0].parameters())
    assert all(p.requires_grad for p in frozen.stages[1].parameters())
    assert not any(m.training for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d))
    subnet['stages'][0]['blocks'][0]['channels'] = 9
    with pytest.raises(ValueError, match=r'stage 0, block 0: channels=9 .* \[8, 12\]'):
        NASBNN(subnet, TINY_SPACE)


@pytest.mark.parametrize('size', [16, 21])
def test_analytic_ops_equal_summarize_on_the_static_model(size):
    space = build_space(TINY_SPACE)
    for subnet in _subnets(space, n_random=4):
        static = NASBNN(subnet, space).eval()
        head = torch.nn.Linear(subnet.stage_out_channels()[-1], 7)

        def forward(x):
            return head(static(x)[-1].mean((2, 3)))

        measured = summarize(torch.nn.ModuleDict(dict(b=static, h=head)), torch.randn(1, 3, size, size),
                             forward=forward).total
        analytic = subnet_ops(subnet, space, input_size=size, num_classes=7)
        assert analytic.ops == pytest.approx(measured.ops, rel=1e-12)
        assert analytic.bops == pytest.approx(measured.bops, rel=1e-12)


def test_analytic_ops_equal_the_jit_counter_on_the_supernet():
    net = NASBNNSuperNet(TINY_SPACE).eval()
    for subnet in _subnets(net.space, n_random=2):
        net.set_subnet(subnet)
        fa = FlopAnalyzer(net, (torch.randn(1, 3, 24, 24),))
        fa.unsupported_ops_warnings(False)
        fa.uncalled_modules_warnings(False)
        by_op = fa.by_operator()
        analytic = subnet_ops(subnet, net.space, input_size=24, num_classes=0)
        measured = by_op['binary_conv (BOPs/64)'] + by_op['int8_conv (MACs*8/64)']
        assert analytic.ops == pytest.approx(measured, rel=1e-12)


def test_default_space_range_at_224():
    space = build_space()
    big = subnet_ops('biggest', space)
    small = subnet_ops('smallest', space)
    # docs/nasbnn.md §4: the space spans roughly 20M to 330M OPs.
    assert 19e6 < small.ops < 23e6 and 320e6 < big.ops < 340e6
    # ... and exactly what summarize measures on the built static models (+ the 1000-class FC).
    for name, analytic in (('smallest', small), ('biggest', big)):
        static = NASBNN(name, space).eval()
        head = torch.nn.Linear(static.out_channels[-1], 1000)
        measured = summarize(torch.nn.ModuleDict(dict(b=static, h=head)), torch.randn(1, 3, 224, 224),
                             forward=lambda x: head(static(x)[-1].mean((2, 3)))).total
        assert analytic.ops == pytest.approx(measured.ops, rel=1e-12), name


def test_backbones_build_from_mmdet_and_mmpretrain_registries():
    from mmdet.registry import MODELS as DET_MODELS
    from mmpretrain.registry import MODELS as CLS_MODELS
    for registry in (DET_MODELS, CLS_MODELS):
        static = registry.build(dict(type='NASBNN', space=TINY_SPACE, subnet='smallest', out_indices=(0, 1, 2)))
        supernet = registry.build(dict(type='NASBNNSuperNet', space=TINY_SPACE, out_indices=(0, 1, 2)))
        assert len(static(torch.randn(1, 3, 32, 32))) == len(supernet(torch.randn(1, 3, 32, 32))) == 3


def test_import_mmdynbnn_does_not_import_mmdet_or_mmpretrain():
    import subprocess
    import sys
    code = ('import sys, mmdynbnn; from mmengine.registry import MODELS; '
            "assert MODELS.get('NASBNN') and MODELS.get('NASBNNSuperNet'); "
            "print(sorted(m for m in ('mmdet', 'mmpretrain') if m in sys.modules))")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == '[]'

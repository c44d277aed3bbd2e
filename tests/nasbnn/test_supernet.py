import random

import pytest
import torch

from mmdynbnn.models import NASBNNSuperNet
from mmdynbnn.nas import CIFAR_SPACE, Subnet, build_space
from mmdynbnn.nas.subnet import BlockChoice, StageChoice

from .helpers import TINY_SPACE


@pytest.mark.parametrize('size', [32, 33, 47])
def test_forward_biggest_smallest_random_at_several_sizes(size):
    net = NASBNNSuperNet(TINY_SPACE, out_indices=(0, 1, 2))
    rng = random.Random(size)
    for subnet in [net.biggest(), net.smallest(), net.sample_subnet(rng), net.sample_subnet(rng)]:
        net.set_subnet(subnet)
        outs = net(torch.randn(2, 3, size, size))
        h = -(-size // 2)  # stem stride 2, padded convs: ceil
        expected = [h, -(-h // 2), -(-h // 4)]
        assert [o.shape[2] for o in outs] == expected
        assert [o.shape[1] for o in outs] == list(subnet.stage_out_channels())
        assert net.out_channels() == subnet.stage_out_channels()
        assert all(torch.isfinite(o).all() for o in outs)


def test_imagenet_space_multiscale_strides():
    net = NASBNNSuperNet(None, subnet='smallest', out_indices=(1, 2, 3, 4))
    outs = net(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]  # strides 4/8/16/32
    assert [o.shape[1] for o in outs] == [96, 192, 384, 768]


def _active_block_regions(net, subnet):
    """(param, index) of the slices a subnet uses, per conv weight of every block."""
    regions = {}
    for i, j, c_in, b in subnet.blocks():
        block = net.stages[i][j]
        full = block.conv1.weight.shape[-1]
        off = (full - b.kernel) // 2
        regions[block.conv1.weight] = (slice(0, c_in), slice(0, c_in // b.groups),
                                       slice(off, off + b.kernel), slice(off, off + b.kernel))
        regions[block.conv2.weight] = (slice(0, b.channels), slice(0, c_in))
        regions[block.bn1.weight] = (slice(0, c_in),)
        regions[block.bn2.weight] = (slice(0, b.channels),)
        regions[block.act2.slope] = (slice(0, b.channels),)
        regions[block.conv1.rsign.bias] = (slice(0, c_in),)
    regions[net.stem.conv.weight] = (slice(0, subnet.stem_channels),)
    return regions


@pytest.mark.parametrize('mode', ['binary', 'fp'])
def test_gradients_reach_only_active_slices(mode):
    torch.manual_seed(0)
    net = NASBNNSuperNet(TINY_SPACE, mode=mode)
    subnet = Subnet(4, (StageChoice(1, (BlockChoice(8, 3, 1),)),
                        StageChoice(2, (BlockChoice(12, 3, 2), BlockChoice(16, 3, 1))),
                        StageChoice(1, (BlockChoice(16, 5, 4),))))
    net.set_subnet(subnet)
    net(torch.randn(4, 3, 16, 16))[-1].square().mean().backward()
    regions = _active_block_regions(net, subnet)
    for p, idx in regions.items():
        g = p.grad
        assert g is not None and g[idx].abs().sum() > 0
        mask = torch.ones_like(g, dtype=torch.bool)
        mask[idx] = False
        assert g[mask].abs().sum() == 0
    # Blocks beyond the active depth get nothing at all.
    for p in net.stages[0][1].parameters():
        assert p.grad is None or p.grad.abs().sum() == 0
    # The 3x3 crop transform of stage 1 was used; its 5x5 Bi-Transformation was not.
    assert net.stages[1][0].conv1.crop_matrices['3'].grad.abs().sum() > 0
    assert net.stages[1][0].conv1.bi_matrix.grad is None
    # Stage 2 used its largest kernel: Bi-Transformation in binary mode only, raw weight in fp mode.
    bi = net.stages[2][0].conv1.bi_matrix.grad
    assert (bi is not None and bi.abs().sum() > 0) if mode == 'binary' else bi is None


def test_modes_and_transforms():
    torch.manual_seed(0)
    net = NASBNNSuperNet(TINY_SPACE).eval()
    x = torch.randn(2, 3, 16, 16)
    binary = net(x)[-1]
    net.mode = 'fp'
    fp = net(x)[-1]
    assert not torch.allclose(binary, fp)
    net.mode = 'binary'
    with torch.no_grad():  # the Bi-Transformation acts in binary mode only
        net.stages[2][0].conv1.bi_matrix.copy_(torch.randn(25, 25))
    assert not torch.allclose(net(x)[-1], binary)
    net.mode = 'fp'
    assert torch.allclose(net(x)[-1], fp)
    with pytest.raises(ValueError, match="mode='int4'.*allowed"):
        net.mode = 'int4'


def test_shortcuts_are_parameter_free_and_no_resolution_is_baked_in():
    net = NASBNNSuperNet(CIFAR_SPACE)
    names = [n for n, _ in net.named_parameters()]
    assert not any('downsample' in n or 'shortcut' in n for n in names)
    assert all(p.dim() != 4 or p.shape[0] in (24, 32, 48, 64, 96) for p in net.parameters())
    net.set_subnet('smallest')
    for size in (8, 40):
        assert net(torch.randn(2, 3, size, size))[-1].shape[-1] == -(-size // 8)


def test_set_subnet_validates():
    net = NASBNNSuperNet(TINY_SPACE)
    cfg = net.biggest().to_config()
    cfg['stages'][1]['blocks'][0]['kernel'] = 7
    with pytest.raises(ValueError, match=r'stage 1, block 0: kernel=7 is not in the allowed choices \[3, 5\]'):
        net.set_subnet(cfg)
    with pytest.raises(ValueError, match='out_indices'):
        NASBNNSuperNet(TINY_SPACE, out_indices=(3,))


def test_frozen_stages_and_norm_eval():
    net = NASBNNSuperNet(TINY_SPACE, frozen_stages=1, norm_eval=True)
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stages[0].parameters())
    assert all(p.requires_grad for p in net.stages[1].parameters())
    assert not net.stem.bn.training and not net.stages[2][0].bn1.training
    before = net.stages[2][0].bn1.running_mean.clone()
    net(torch.randn(2, 3, 16, 16))
    assert torch.equal(before, net.stages[2][0].bn1.running_mean)


def test_sliced_bn_updates_only_the_active_running_stats():
    net = NASBNNSuperNet(TINY_SPACE).train()
    net.set_subnet('smallest')
    bn = net.stages[2][0].bn2  # 24 features, smallest uses 16
    net(torch.randn(4, 3, 16, 16) * 3 + 1)
    assert (bn.running_mean[:16] != 0).all() and (bn.running_mean[16:] == 0).all()
    assert (bn.running_var[16:] == 1).all()


@pytest.mark.parametrize('training', [True, False])
def test_sliced_bn_equals_a_bn_of_the_slice(training):
    from mmdynbnn.models.backbones.nasbnn_blocks import SlicedBatchNorm2d
    torch.manual_seed(0)
    sliced, plain = SlicedBatchNorm2d(8), torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        for t in (sliced.weight, sliced.bias, sliced.running_mean):
            t.normal_()
        sliced.running_var.uniform_(0.5, 2)
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(plain, name).copy_(getattr(sliced, name)[:5])
    sliced.train(training), plain.train(training)
    x = torch.randn(4, 5, 3, 3)
    torch.testing.assert_close(sliced(x), plain(x))
    torch.testing.assert_close(sliced.running_mean[:5], plain.running_mean)
    torch.testing.assert_close(sliced.running_var[:5], plain.running_var)

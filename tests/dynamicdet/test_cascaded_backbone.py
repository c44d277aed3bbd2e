import pytest
import torch

from mmdet.registry import MODELS

from conftest import TINY_RESNET, assert_b2_sees_every_b1_level, zero_connections_and_check_plain_b2

FAMILIES = {
    'resnet': dict(backbone=TINY_RESNET, size=64,
                   stages=[8, 16, 32, 64], strides=[4, 8, 16, 32], outs=[0, 1, 2, 3]),
    'resnet_out123': dict(backbone=dict(TINY_RESNET, out_indices=(1, 2, 3)), size=64,
                          stages=[8, 16, 32, 64], strides=[4, 8, 16, 32], outs=[1, 2, 3]),
    'cspdarknet': dict(backbone=dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.125,
                                     out_indices=(2, 3, 4), init_cfg=None), size=64,
                       stages=[16, 32, 64, 128], strides=[4, 8, 16, 32], outs=[1, 2, 3]),
}


def build(cfg):
    torch.manual_seed(0)
    return MODELS.build(dict(type='CascadedDualBackbone', backbone=cfg)).eval()


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_shapes_and_connection_widths(name):
    spec = FAMILIES[name]
    m = build(spec['backbone'])
    assert m.stage_channels1 == spec['stages'] and m.stage_channels2 == spec['stages']
    for l, conv in enumerate(m.connections):  # B1 level l -> widths of B2 levels 0..l, 1x1 with bias
        assert conv.kernel_size == (1, 1) and conv.bias is not None
        assert conv.in_channels == spec['stages'][l] and conv.out_channels == sum(spec['stages'][:l + 1])
    x = torch.rand(2, 3, spec['size'], spec['size'])
    with torch.no_grad():
        f1, f2 = m(x)
        plain = m.b1(x)
    expected = [(2, spec['stages'][i], spec['size'] // spec['strides'][i], spec['size'] // spec['strides'][i])
                for i in spec['outs']]
    assert [tuple(f.shape) for f in f1] == expected and [tuple(f.shape) for f in f2] == expected
    # B1 is run stage by stage but equals the wrapped backbone's own forward
    assert all(torch.equal(a, b) for a, b in zip(f1, plain))


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_b2_depends_on_b1_features(name):
    spec = FAMILIES[name]
    assert_b2_sees_every_b1_level(build(spec['backbone']), torch.rand(1, 3, spec['size'], spec['size']))


def test_zero_connections_reduce_b2_to_a_plain_backbone():
    zero_connections_and_check_plain_b2(build(TINY_RESNET), torch.rand(1, 3, 64, 64))


def test_higher_levels_are_upsampled_into_lower_b2_stages():
    # only B1's deepest level connects: it must reach B2's first stage (nearest-upsampled, added)
    m = build(TINY_RESNET)
    zero_connections_and_check_plain_b2(m, torch.rand(1, 3, 64, 64))
    last = m.connections[-1]
    with torch.no_grad():
        last.bias[:8] = 1.0  # chunk 0 goes to B2 stage 0
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        stages = m.forward_b1(x)
        out = m.forward_b2(x, stages)
        plain = m.b2(x)
    assert not torch.allclose(out[0], plain[0])


def test_unsupported_type_names_supported_ones():
    with pytest.raises(TypeError) as err:
        MODELS.build(dict(type='CascadedDualBackbone', backbone=dict(type='MobileNetV2', init_cfg=None)))
    msg = str(err.value)
    assert 'MobileNetV2' in msg and 'ResNet' in msg and 'CSPDarknet' in msg


def test_mixed_families_are_rejected():
    with pytest.raises(TypeError, match='one family'):
        MODELS.build(dict(type='CascadedDualBackbone', backbone=TINY_RESNET,
                          backbone2=FAMILIES['cspdarknet']['backbone']))


def test_probe_does_not_touch_bn_statistics():
    m = MODELS.build(dict(type='CascadedDualBackbone', backbone=TINY_RESNET))
    assert float(m.b1.norm1.running_mean.abs().sum()) == 0.0
    assert int(m.b1.norm1.num_batches_tracked) == 0 and m.training

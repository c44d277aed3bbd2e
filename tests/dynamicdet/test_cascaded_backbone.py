import pytest
import torch

from mmdet.registry import MODELS

from conftest import TINY_RESNET, assert_b2_sees_every_b1_level, zero_connections_and_check_plain_b2

TINY_RESNET50 = dict(TINY_RESNET, depth=50)  # stem width 8 != stage-0 width 32: tells the fusion points apart
TINY_CSP = dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.125, out_indices=(2, 3, 4), init_cfg=None)
# levels: the stem output (stride 2) and every stage output; fusion: B2's width at each fusion point (after
# the stem, after each stage's down-sampling layer: ResNet's max-pool for stage 0, its strided first block
# for the others, CSPDarknet's strided conv)
FAMILIES = {
    'resnet': dict(backbone=TINY_RESNET, levels=[8, 8, 16, 32, 64], fusion=[8, 8, 16, 32, 64],
                   strides=[2, 4, 8, 16, 32], outs=[1, 2, 3, 4]),
    'resnet50_out123': dict(backbone=dict(TINY_RESNET50, out_indices=(1, 2, 3)), levels=[8, 32, 64, 128, 256],
                            fusion=[8, 8, 64, 128, 256], strides=[2, 4, 8, 16, 32], outs=[2, 3, 4]),
    'cspdarknet': dict(backbone=TINY_CSP, levels=[8, 16, 32, 64, 128], fusion=[8, 16, 32, 64, 128],
                       strides=[2, 4, 8, 16, 32], outs=[2, 3, 4]),
}
SIZE = 64


def build(cfg, **kwargs):
    torch.manual_seed(0)
    return MODELS.build(dict(type='CascadedDualBackbone', backbone=cfg, **kwargs)).eval()


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_levels_fusion_widths_and_shapes(name):
    spec = FAMILIES[name]
    m = build(spec['backbone'])
    assert m.fusion == 'downsample' and m.num_stem_levels == 1
    assert m.level_channels1 == m.level_channels2 == spec['levels']
    assert m.stage_channels1 == spec['levels'][1:] and m.fusion_channels2 == spec['fusion']
    assert len(m.connections) == len(spec['levels'])
    for l, conv in enumerate(m.connections):  # B1 level l -> B2 widths at fusion points 0..l, 1x1 with bias
        assert conv.kernel_size == (1, 1) and conv.bias is not None
        assert conv.in_channels == spec['levels'][l] and conv.out_channels == sum(spec['fusion'][:l + 1])
    x = torch.rand(2, 3, SIZE, SIZE)
    with torch.no_grad():
        levels = m.forward_b1(x)
        f1, f2 = m(x)
        plain = m.b1(x)
    shape = [(2, c, SIZE // s, SIZE // s) for c, s in zip(spec['levels'], spec['strides'])]
    assert [tuple(f.shape) for f in levels] == shape  # the stem level at stride 2 included
    expected = [shape[i] for i in spec['outs']]
    assert [tuple(f.shape) for f in f1] == expected and [tuple(f.shape) for f in f2] == expected
    # B1 is run level by level but equals the wrapped backbone's own forward
    assert all(torch.equal(a, b) for a, b in zip(f1, plain))
    assert [m.out_channels1, m.out_channels2] == [[spec['levels'][i] for i in spec['outs']]] * 2


@pytest.mark.parametrize('name', sorted(FAMILIES))
def test_b2_depends_on_every_b1_level_including_the_stem(name):
    m = build(FAMILIES[name]['backbone'])
    x = torch.rand(1, 3, SIZE, SIZE)
    assert_b2_sees_every_b1_level(m, x)
    with torch.no_grad():  # the stem level alone (stride 2) reaches B2's first output
        levels = m.forward_b1(x)
        shifted = [levels[0] + 1.0] + levels[1:]
        assert not torch.allclose(m.forward_b2(x, shifted)[0], m.forward_b2(x, levels)[0])


def test_zero_connections_reduce_b2_to_a_plain_backbone():
    zero_connections_and_check_plain_b2(build(TINY_RESNET), torch.rand(1, 3, 64, 64))
    zero_connections_and_check_plain_b2(build(TINY_RESNET, fusion='first_block'), torch.rand(1, 3, 64, 64))


def _fusion_point_input(m, point: int, module_after: torch.nn.Module, x):
    """Only fusion point ``point`` gets B1 features (a constant 1 from B1's deepest level's bias); returns
    the input of ``module_after`` (the first module after that point) in the plain B2 and in the cascade."""
    zero_connections_and_check_plain_b2(m, x)
    start = sum(m.fusion_channels2[:point])
    with torch.no_grad():
        m.connections[-1].bias[start:start + m.fusion_channels2[point]] = 1.0
    seen = []
    hook = module_after.register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
    with torch.no_grad():
        m.b2(x)
        m(x)
    hook.remove()
    assert len(seen) == 2
    return seen


@pytest.mark.parametrize('point,after', [
    (0, lambda b: b.maxpool),       # the stem link: right after conv1 + norm + ReLU (stride 2)
    (1, lambda b: b.layer1[0]),     # stage 0: after its down-sampling max-pool, before its blocks
    (2, lambda b: b.layer2[1]),     # stage 1: after its strided first block
    (4, lambda b: b.layer4[1])])
def test_resnet_fusion_points_follow_the_down_sampling_layers(point, after):
    m = build(TINY_RESNET50)
    x = torch.rand(1, 3, SIZE, SIZE)
    plain, cascaded = _fusion_point_input(m, point, after(m.b2), x)
    assert torch.allclose(cascaded, plain + 1.0)


@pytest.mark.parametrize('point,after', [(0, lambda b: b.stage1[0]), (1, lambda b: b.stage1[1]),
                                         (4, lambda b: b.stage4[1])])
def test_cspdarknet_fusion_points_follow_the_strided_convs(point, after):
    m = build(TINY_CSP)
    x = torch.rand(1, 3, SIZE, SIZE)
    plain, cascaded = _fusion_point_input(m, point, after(m.b2), x)
    assert torch.allclose(cascaded, plain + 1.0)


def test_first_block_fusion_is_the_earlier_layout():
    """fusion='first_block': stage outputs only (no stem level, no stem link), one connection per stage,
    B1 features added after each B2 stage's first block (for stage 0 after max-pool + its first block)."""
    m = build(TINY_RESNET50, fusion='first_block')
    stages = [32, 64, 128, 256]
    assert m.num_stem_levels == 0 and m.level_channels1 == stages and m.fusion_channels2 == stages
    assert [(c.in_channels, c.out_channels) for c in m.connections] == [
        (c, sum(stages[:l + 1])) for l, c in enumerate(stages)]
    x = torch.rand(1, 3, SIZE, SIZE)
    assert len(m.forward_b1(x)) == 4
    assert_b2_sees_every_b1_level(m, x)
    for point, after in ((0, m.b2.layer1[1]), (1, m.b2.layer2[1])):
        plain, cascaded = _fusion_point_input(m, point, after, x)
        assert torch.allclose(cascaded, plain + 1.0)


def test_fusion_must_be_known():
    with pytest.raises(ValueError, match=r"model.backbone.fusion must be 'downsample' .* or 'first_block'.*'after'"):
        build(TINY_RESNET, fusion='after')


def test_b1_levels_must_be_complete():
    m = build(TINY_RESNET)
    x = torch.rand(1, 3, SIZE, SIZE)
    with pytest.raises(ValueError, match='needs all 5 B1 levels'):
        m.forward_b2(x, m.select_outs(m.forward_b1(x)))


def test_unsupported_type_names_supported_ones():
    with pytest.raises(TypeError) as err:
        MODELS.build(dict(type='CascadedDualBackbone', backbone=dict(type='MobileNetV2', init_cfg=None)))
    msg = str(err.value)
    assert 'MobileNetV2' in msg and 'ResNet' in msg and 'CSPDarknet' in msg


def test_mixed_families_are_rejected():
    with pytest.raises(TypeError, match='one family'):
        MODELS.build(dict(type='CascadedDualBackbone', backbone=TINY_RESNET, backbone2=TINY_CSP))


def test_probe_does_not_touch_bn_statistics():
    m = MODELS.build(dict(type='CascadedDualBackbone', backbone=TINY_RESNET))
    assert float(m.b1.norm1.running_mean.abs().sum()) == 0.0
    assert int(m.b1.norm1.num_batches_tracked) == 0 and m.training

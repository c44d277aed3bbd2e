"""DynamicDet with the project's binary NAS-BNN static subnets: the CascadedDualBackbone family record, the
per-route necks for subnets of different widths, and the dynamic binary detector end to end with mmdet's
stock tools (step 1 -> step 2 -> test.py at a threshold; get_flops.py per route)."""
import copy
import os.path as osp
import re

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS

from conftest import assert_b2_sees_every_b1_level, make_samples, tiny_retinanet, zero_connections_and_check_plain_b2
from test_e2e_stock_tools import ROOT, SMALL, TOOLS, _state, run

# A small space (strides 2/4/8/16, like the ImageNet space's first four stages) so the subnets run fast.
TINY_SPACE = dict(
    stem=dict(channels=[8, 16], kernel=3, stride=2, bits=8),
    stages=[dict(channels=[8, 16], depth=[1, 2], kernel=[3], groups=[1], stride=1),
            dict(channels=[16, 24], depth=[2, 3], kernel=[3, 5], groups=[1, 2], stride=2),
            dict(channels=[24, 32], depth=[2, 3], kernel=[3, 5], groups=[2, 4], stride=2),
            dict(channels=[32, 48], depth=[2, 3], kernel=[3, 5], groups=[4, 8], stride=2)],
    input_size=64, num_classes=10)
SMALL_W, BIG_W = [8, 16, 24, 32], [16, 24, 32, 48]  # stage widths of the smallest / biggest subnet
SMALL_STEM, BIG_STEM = 8, 16
STRIDES = [2, 4, 8, 16]
# B2's widths at its fusion points: after the stem, at stage 0's entry (stride 1: no down-sampling layer, so
# still the stem's width), after the strided first block of stages 1-3
BIG_FUSION = [BIG_STEM, BIG_STEM] + BIG_W[1:]


def nasbnn(subnet: str, out_indices=(0, 1, 2, 3)) -> dict:
    return dict(type='NASBNN', space=TINY_SPACE, subnet=subnet, out_indices=out_indices, init_cfg=None)


def build_cascade(b1: str = 'smallest', b2: str = 'biggest', out_indices=(0, 1, 2, 3)):
    torch.manual_seed(0)
    return MODELS.build(dict(type='CascadedDualBackbone', backbone=nasbnn(b1, out_indices),
                             backbone2=nasbnn(b2, out_indices))).eval()


def test_nasbnn_family_shapes_and_float_connections():
    from mmdynbnn.models.backbones.nasbnn_static import NASBNN
    from mmdynbnn.ops import BinaryConv2d
    m = build_cascade()
    assert isinstance(m.b1, NASBNN) and m.family.name.startswith('NASBNN')
    assert m.stage_channels1 == SMALL_W and m.stage_channels2 == BIG_W
    assert m.level_channels1 == [SMALL_STEM] + SMALL_W and m.fusion_channels2 == BIG_FUSION
    for l, conv in enumerate(m.connections):  # B1 level l -> B2 fusion widths 0..l; float 1x1 conv with bias
        assert type(conv) is torch.nn.Conv2d and not isinstance(conv, BinaryConv2d)
        assert conv.kernel_size == (1, 1) and conv.bias is not None
        assert conv.in_channels == ([SMALL_STEM] + SMALL_W)[l] and conv.out_channels == sum(BIG_FUSION[:l + 1])
    x = torch.rand(2, 3, 64, 48)
    with torch.no_grad():
        f1, f2 = m(x)
        plain1 = m.b1(x)
    assert [tuple(f.shape) for f in f1] == [(2, c, 64 // s, 48 // s) for c, s in zip(SMALL_W, STRIDES)]
    assert [tuple(f.shape) for f in f2] == [(2, c, 64 // s, 48 // s) for c, s in zip(BIG_W, STRIDES)]
    assert all(torch.equal(a, b) for a, b in zip(f1, plain1))  # B1 run stage by stage == its own forward


def test_nasbnn_binary_connections_option():
    """connection_cfg=dict(type='BinaryConv2d'): binary 1x1 connections, same shapes, B2 still sees every B1
    level, and the connections' cost drops from float FLOPs to BOPs/64 (the reason for the option)."""
    from mmdynbnn.analysis.summary import summarize
    from mmdynbnn.ops import BinaryConv2d
    float_m = build_cascade()
    torch.manual_seed(0)
    m = MODELS.build(dict(type='CascadedDualBackbone', backbone=nasbnn('smallest', (0, 1, 2, 3)),
                          backbone2=nasbnn('biggest', (0, 1, 2, 3)),
                          connection_cfg=dict(type='BinaryConv2d'))).eval()
    assert all(isinstance(c, BinaryConv2d) and c.bias is not None for c in m.connections)
    assert [(c.in_channels, c.out_channels) for c in m.connections] == [
        (c.in_channels, c.out_channels) for c in float_m.connections]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        shapes = [f.shape for f in m(x)[1]]
        assert shapes == [f.shape for f in float_m(x)[1]]
    assert_b2_sees_every_b1_level(m, x, first_output_too=True)

    def connection_ops(model):
        summary = summarize(model, x)
        rows = [r for r in summary.rows if r.name.startswith('connections.')]
        assert len(rows) == len(model.connections)
        return sum(r.ops for r in rows), sum(r.bops for r in rows)
    float_ops, float_bops = connection_ops(float_m)
    binary_ops, binary_bops = connection_ops(m)
    assert float_bops == 0 and binary_bops > 0
    assert binary_ops == pytest.approx(float_ops / 64, rel=1e-6)  # same MACs, priced as BOPs/64


def test_nasbnn_out_indices_select_stages():
    m = build_cascade(out_indices=(1, 3))
    assert m.out_channels1 == [16, 32] and m.out_channels2 == [24, 48]
    with torch.no_grad():
        f1, f2 = m(torch.rand(1, 3, 64, 64))
    assert [f.shape[1] for f in f1] == [16, 32] and [f.shape[1] for f in f2] == [24, 48]


def test_nasbnn_b2_depends_on_every_b1_level():
    # out_indices start at stage 0, which dense composition feeds from every (upsampled) B1 level
    assert_b2_sees_every_b1_level(build_cascade(), torch.rand(1, 3, 64, 64), first_output_too=True)


def test_nasbnn_injection_after_the_downsampling_block():
    """Composite features enter B2 stage j after its first (strided) block: with only the chunk for B2
    stage 1 non-zero, that stage's first block sees the plain B2's input and gives its output, the next
    block's input differs; with all connections zero B2 is the plain subnet."""
    m = build_cascade()
    x = torch.rand(1, 3, 64, 64)
    zero_connections_and_check_plain_b2(m, x)

    start = sum(BIG_FUSION[:2])  # fusion point 2: B2 stage 1
    with torch.no_grad():
        m.connections[2].bias[start:start + BIG_W[1]] = 1.0  # B1 level 2 (stage 1) -> B2 stage 1 only
    seen = {'first': [], 'second': []}
    first, second = m.b2.stages[1][0], m.b2.stages[1][1]
    assert first.stride == 2 and second.stride == 1
    hooks = [first.register_forward_hook(lambda mod, inp, out: seen['first'].append(out)),
             second.register_forward_pre_hook(lambda mod, inp: seen['second'].append(inp[0]))]
    with torch.no_grad():
        plain = m.b2(x)
        _, f2 = m(x)
    for h in hooks:
        h.remove()
    assert torch.equal(f2[0], plain[0])  # stage 0 untouched
    assert torch.equal(seen['first'][0], seen['first'][1])  # plain run, cascaded run
    assert torch.allclose(seen['second'][1], seen['second'][0] + 1.0)
    assert not torch.allclose(f2[-1], plain[-1])


@pytest.mark.parametrize('point', [0, 1])
def test_nasbnn_stem_link_and_stride1_stage_fuse_before_the_first_block(point):
    """The stem link (point 0) and stage 0, which does not down-sample (point 1), both add B1's features
    to B2's stem output, i.e. to the input of stage 0's first block."""
    m = build_cascade()
    x = torch.rand(1, 3, 64, 64)
    zero_connections_and_check_plain_b2(m, x)
    start = sum(BIG_FUSION[:point])
    with torch.no_grad():
        m.connections[-1].bias[start:start + BIG_FUSION[point]] = 1.0
    seen = []
    hook = m.b2.stages[0][0].register_forward_pre_hook(lambda mod, inp: seen.append(inp[0]))
    with torch.no_grad():
        m.b2(x)
        m(x)
    hook.remove()
    assert torch.allclose(seen[1], seen[0] + 1.0)


def test_unsupported_type_lists_nasbnn_and_families_do_not_mix():
    with pytest.raises(TypeError) as err:
        MODELS.build(dict(type='CascadedDualBackbone', backbone=dict(type='MobileNetV2', init_cfg=None)))
    assert 'MobileNetV2' in str(err.value) and 'NASBNN' in str(err.value)
    with pytest.raises(TypeError, match='one family'):
        MODELS.build(dict(type='CascadedDualBackbone', backbone=nasbnn('smallest'),
                          backbone2=dict(type='ResNet', depth=18, base_channels=8, init_cfg=None)))


def _tiny_nasbnn_detector(**overrides) -> dict:
    fpn = dict(type='FPN', out_channels=16, start_level=0, add_extra_convs='on_input', num_outs=3)
    cfg = tiny_retinanet(
        backbone=dict(type='CascadedDualBackbone', backbone=nasbnn('smallest', (1, 2, 3)),
                      backbone2=nasbnn('biggest', (1, 2, 3))),
        neck=dict(in_channels=SMALL_W[1:], **fpn), neck2=dict(in_channels=BIG_W[1:], **fpn))
    cfg['bbox_head']['anchor_generator']['strides'] = [4, 8, 16]
    cfg.update(copy.deepcopy(overrides))
    return cfg


def test_different_subnets_get_their_own_necks(build):
    model = build(_tiny_nasbnn_detector()).eval()
    assert model.dynamic_head.neck(0).lateral_convs[0].conv.in_channels == SMALL_W[1]
    assert model.dynamic_head.neck(1).lateral_convs[0].conv.in_channels == BIG_W[1]
    assert list(model.router.in_channels) == [SMALL_STEM] + SMALL_W  # the router reads every B1 level
    samples = make_samples(2, size=64)
    for route in (1, 2):
        model.set_dynamic(route=route)
        with torch.no_grad():
            out = model.predict(torch.rand(2, 3, 64, 64), copy.deepcopy(samples))
        assert [s.dynamic_route for s in out] == [route, route]


def test_neck_width_errors_name_the_field():
    cfg = _tiny_nasbnn_detector()
    cfg.pop('neck2')  # route 2 would get a copy of route 1's FPN (B1 widths) for B2's wider features
    with pytest.raises(ValueError, match=r'model.neck \(copied for route 2\).in_channels=\[16, 24, 32\] .*'
                                         r'\[24, 32, 48\].*neck2'):
        MODELS.build(cfg)
    # one shared neck cannot take both widths
    with pytest.raises(ValueError, match=r'model.neck \(shared by route 2\).*model.neck2 and share_heads=False'):
        MODELS.build(_tiny_nasbnn_detector(share_heads=True, neck2=None))
    # a separate route-2 neck contradicts shared heads
    from mmdynbnn.det import DynamicDetHead
    cfg = _tiny_nasbnn_detector()
    with pytest.raises(ValueError, match='neck2 .*needs share_heads=False'):
        DynamicDetHead(neck=cfg['neck'], neck2=cfg['neck2'], bbox_head=cfg['bbox_head'], share=True)


# ---------------------------------------------------------------------------------------------------
# the shipped dynamic binary detector with the stock tools
CFG_DIR = osp.join(ROOT, 'configs/dynamicdet')
CFG1 = osp.join(CFG_DIR, 'dy-retinanet_nasbnn_fpn_coco-mini_step1.py')
CFG2 = osp.join(CFG_DIR, 'dy-retinanet_nasbnn_fpn_coco-mini_step2.py')


def test_shipped_binary_detector_uses_two_nasbnn_subnets_and_fpn_strides():
    from mmdynbnn.models.backbones.nasbnn_static import NASBNN
    from mmdynbnn.ops import BinaryConv2d
    cfg = Config.fromfile(CFG1)
    model = MODELS.build(cfg.model)
    b1, b2 = model.backbone.b1, model.backbone.b2
    assert isinstance(b1, NASBNN) and isinstance(b2, NASBNN) and b1.subnet != b2.subnet
    assert all(isinstance(blk.conv1, BinaryConv2d) for stage in (*b1.stages, *b2.stages) for blk in stage)
    with torch.no_grad():
        f1, f2 = model.eval().extract_feat(torch.rand(1, 3, 128, 96))
    assert [f.shape[2:] for f in f1] == [f.shape[2:] for f in f2] == [(16, 12), (8, 6), (4, 3)]  # 8/16/32
    static = MODELS.build(Config.fromfile(osp.join(CFG_DIR, 'static_retinanet_nasbnn_fpn_coco-mini.py')).model)
    assert static.backbone.subnet == b1.subnet  # the baseline is route 1 alone


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp('dyn_nasbnn')
    run([osp.join(TOOLS, 'train.py'), CFG1, '--work-dir', str(work / 's1'), '--cfg-options'] + SMALL, cwd=work)
    ckpt1 = work / 's1' / 'epoch_1.pth'
    run([osp.join(TOOLS, 'train.py'), CFG2, '--work-dir', str(work / 's2'), '--cfg-options',
         f'load_from={ckpt1}'] + SMALL, cwd=work)
    return work, ckpt1, work / 's2' / 'epoch_1.pth'


def _router_scores(ckpt) -> list:
    """Router scores of the test images, batched exactly as test.py batches them."""
    from mmengine.runner import Runner, load_checkpoint
    cfg = Config.fromfile(CFG2)
    cfg.test_dataloader.dataset.indices = 4
    cfg.test_dataloader.dataset.pipeline[1].scale = (160, 160)
    model = MODELS.build(cfg.model)
    load_checkpoint(model, str(ckpt), map_location='cpu', strict=True)
    model.eval().set_dynamic(threshold=0.5)
    scores = []
    with torch.no_grad():
        for data in Runner.build_dataloader(cfg.test_dataloader):
            scores += [s.router_score for s in model.test_step(data)]
    return scores


def test_binary_dynamic_detector_step1_step2_test(trained):
    work, ckpt1, ckpt2 = trained
    log1 = open(next((work / 's1').glob('*/*.log'))).read()
    assert re.search(r'd1_loss_cls: [\d.]+ +d1_loss_bbox: [\d.]+ +d2_loss_cls', log1)
    s1, s2 = _state(ckpt1), _state(ckpt2)
    assert set(s1) == set(s2) and any(k.startswith('backbone.b2.stages.') for k in s1)
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if not k.startswith(('router.', 'router_loss.')))
    assert any(not torch.equal(s1[k], s2[k]) for k in s1 if k.startswith('router.'))
    assert int(s2['router_loss.median.count']) == 8

    # a threshold between the 2nd and 3rd lowest router scores: test.py must send exactly 2 of the 4 images
    # through route 2
    scores = sorted(_router_scores(ckpt2))
    assert len(scores) == 4 and scores[1] < scores[2]
    tau = (scores[1] + scores[2]) / 2
    proc = run([osp.join(TOOLS, 'test.py'), CFG2, str(ckpt2), '--work-dir', str(work / 'test'), '--cfg-options',
                f'model.test_cfg.dynamic.threshold={tau!r}'] + SMALL, cwd=work)
    text = proc.stdout + proc.stderr
    assert float(re.search(r'dynamic/hard_ratio: ([\d.]+)', text).group(1)) == 0.5
    assert re.search(r'coco/bbox_mAP: [-\d.]+', text)


def test_binary_dynamic_detector_in_stock_benchmark_with_folded_bn(trained):
    """mmdet's benchmark.py --fuse-conv-bn on the binary detector: mmcv's fuse_conv_bn (with this plugin's
    binary-aware folding) over both NAS-BNN subnets, then per-image routing in the stock timing loop."""
    work, _, ckpt2 = trained
    proc = run([osp.join(ROOT, 'tools/analysis_tools/benchmark_on_cpu.py'), CFG2, '--checkpoint', str(ckpt2),
                '--task', 'inference', '--max-iter', '4', '--num-warmup', '1', '--log-interval', '2',
                '--fuse-conv-bn', '--cfg-options', 'model.test_cfg.dynamic.threshold=0.5'] + SMALL, cwd=work)
    text = proc.stdout + proc.stderr
    assert 'Done image [4  /4]' in text and re.search(r'Overall fps: [\d.]+ img/s', text)


def test_binary_dynamic_detector_get_flops_per_route(tmp_path):
    flops = {}
    for route in (1, 2):
        proc = run([osp.join(TOOLS, 'analysis_tools/get_flops.py'), CFG2, '--num-images', '1', '--cfg-options',
                    f'model.test_cfg.dynamic.route={route}'] + SMALL, cwd=tmp_path)
        flops[route] = float(re.search(r'Flops: ([\d.]+)G', proc.stdout).group(1))
    assert 0 < flops[1] < flops[2]

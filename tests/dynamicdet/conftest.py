"""Tiny DynamicDet models shared by the tests (small enough to run many times on 2 CPU cores)."""
import copy
import importlib.util
import os.path as osp

import pytest
import torch

import mmdynbnn  # noqa: F401
import mmdynbnn.det  # noqa: F401
from mmdet.utils import register_all_modules
from mmengine.registry import DefaultScope

register_all_modules(init_default_scope=False)


@pytest.fixture(scope='module', autouse=True)
def mmdet_default_scope():
    """mmdet as default scope for these tests only: a session-wide default scope would break the
    mmpretrain-scoped tests that run after them."""
    with DefaultScope.overwrite_default_scope('mmdet'):
        yield

TINY_RESNET = dict(type='ResNet', depth=18, base_channels=8, out_indices=(0, 1, 2, 3), norm_eval=False,
                   init_cfg=None)
PREPROCESSOR = dict(type='DetDataPreprocessor', mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375],
                    bgr_to_rgb=True, pad_size_divisor=32)


def tiny_retinanet(**overrides) -> dict:
    cfg = dict(
        type='DynamicDetector',
        data_preprocessor=PREPROCESSOR,
        backbone=dict(type='CascadedDualBackbone', backbone=TINY_RESNET),
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, start_level=1,
                  add_extra_convs='on_input', num_outs=3),
        bbox_head=dict(
            type='RetinaHead', num_classes=3, in_channels=16, stacked_convs=1, feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4, scales_per_octave=1,
                                  ratios=[0.5, 1.0, 2.0], strides=[8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0, .0, .0, .0],
                            target_stds=[1.0, 1.0, 1.0, 1.0]),
            loss_cls=dict(type='FocalLoss', use_sigmoid=True, gamma=2.0, alpha=0.25, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        train_cfg=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.4, min_pos_iou=0,
                                     ignore_iof_thr=-1),
                       sampler=dict(type='PseudoSampler'), allowed_border=-1, pos_weight=-1, debug=False),
        test_cfg=dict(nms_pre=100, min_bbox_size=0, score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5),
                      max_per_img=20, dynamic=dict(threshold=0.5, route=None)),
        router=dict(type='AdaptiveRouter', reduction=4),
        router_loss=dict(type='DynamicRouterLoss', median_capacity=64))
    cfg.update(copy.deepcopy(overrides))
    return cfg


def make_samples(n: int, size: int = 64, seed: int = 0):
    """``n`` DetDataSamples with 1-2 random boxes each (images of ``size`` x ``size``)."""
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    g = torch.Generator().manual_seed(seed)
    samples = []
    for i in range(n):
        k = 1 + i % 2
        xy = torch.rand(k, 2, generator=g) * size * 0.5
        wh = 8 + torch.rand(k, 2, generator=g) * size * 0.4
        s = DetDataSample(metainfo=dict(img_shape=(size, size), ori_shape=(size, size), pad_shape=(size, size),
                                        batch_input_shape=(size, size), scale_factor=(1.0, 1.0), img_id=i))
        s.gt_instances = InstanceData(bboxes=torch.cat([xy, (xy + wh).clamp(max=size)], 1),
                                      labels=torch.randint(0, 3, (k, ), generator=g))
        samples.append(s)
    return samples


def assert_b2_sees_every_b1_level(model, x, first_output_too: bool = False) -> None:
    """Shift each B1 level in turn: B2's deepest output must change (and its first output, when the first
    output is B2's stage 0, which dense composition feeds from every B1 level)."""
    with torch.no_grad():
        stages = model.forward_b1(x)
        base = model.forward_b2(x, stages)
        for level in range(len(stages)):
            changed = list(stages)
            changed[level] = stages[level] + 1.0
            out = model.forward_b2(x, changed)
            assert not torch.allclose(out[-1], base[-1]), f'B1 level {level} does not reach B2'
            if first_output_too:
                assert not torch.allclose(out[0], base[0]), f'B1 level {level} does not reach B2 stage 0'



def zero_connections_and_check_plain_b2(model, x) -> None:
    """Zero every composite connection: B2 must then give exactly the plain B2's outputs."""
    with torch.no_grad():
        for conv in model.connections:
            conv.weight.zero_()
            conv.bias.zero_()
        _, f2 = model(x)
        plain = model.b2(x)
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(f2, plain))

@pytest.fixture
def build():
    from mmdet.registry import MODELS

    def _build(cfg: dict, seed: int = 0):
        torch.manual_seed(seed)
        model = MODELS.build(cfg)
        model.init_weights()
        return model
    return _build


ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))


def load_tool(relpath: str):
    """A script under tools/ imported as a module (its functions, without running main)."""
    path = osp.join(ROOT, relpath)
    spec = importlib.util.spec_from_file_location(osp.splitext(osp.basename(path))[0], path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

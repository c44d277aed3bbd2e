"""The two-stage (shared neck + RPN + RoI head) and YOLOX-style dense routes."""
import copy

import pytest
import torch

from conftest import PREPROCESSOR, TINY_RESNET, make_samples


def tiny_faster_rcnn(**overrides):
    cfg = dict(
        type='DynamicDetector', data_preprocessor=PREPROCESSOR, share_heads=True,
        backbone=dict(type='CascadedDualBackbone', backbone=TINY_RESNET),
        neck=dict(type='FPN', in_channels=[8, 16, 32, 64], out_channels=16, num_outs=4),
        rpn_head=dict(
            type='RPNHead', in_channels=16, feat_channels=16,
            anchor_generator=dict(type='AnchorGenerator', scales=[2], ratios=[0.5, 1.0, 2.0],
                                  strides=[4, 8, 16, 32]),
            bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[.0] * 4, target_stds=[1.0] * 4),
            loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=True, loss_weight=1.0),
            loss_bbox=dict(type='L1Loss', loss_weight=1.0)),
        roi_head=dict(
            type='StandardRoIHead',
            bbox_roi_extractor=dict(type='SingleRoIExtractor',
                                    roi_layer=dict(type='RoIAlign', output_size=7, sampling_ratio=0),
                                    out_channels=16, featmap_strides=[4, 8, 16, 32]),
            bbox_head=dict(type='Shared2FCBBoxHead', in_channels=16, fc_out_channels=32, roi_feat_size=7,
                           num_classes=3,
                           bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0.] * 4,
                                           target_stds=[0.1, 0.1, 0.2, 0.2]),
                           reg_class_agnostic=False,
                           loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                           loss_bbox=dict(type='L1Loss', loss_weight=1.0))),
        train_cfg=dict(
            rpn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3, min_pos_iou=0.3,
                                   match_low_quality=True, ignore_iof_thr=-1),
                     sampler=dict(type='RandomSampler', num=64, pos_fraction=0.5, neg_pos_ub=-1,
                                  add_gt_as_proposals=False),
                     allowed_border=-1, pos_weight=-1, debug=False),
            rpn_proposal=dict(nms_pre=200, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                              min_bbox_size=0),
            rcnn=dict(assigner=dict(type='MaxIoUAssigner', pos_iou_thr=0.5, neg_iou_thr=0.5, min_pos_iou=0.5,
                                    match_low_quality=False, ignore_iof_thr=-1),
                      sampler=dict(type='RandomSampler', num=64, pos_fraction=0.25, neg_pos_ub=-1,
                                   add_gt_as_proposals=True),
                      pos_weight=-1, debug=False)),
        test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100, nms=dict(type='nms', iou_threshold=0.7),
                               min_bbox_size=0),
                      rcnn=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.5), max_per_img=20),
                      dynamic=dict(threshold=0.5)))
    cfg.update(overrides)
    return cfg


def tiny_yolox(**overrides):
    cfg = dict(
        type='DynamicDetector',
        data_preprocessor=dict(type='DetDataPreprocessor', pad_size_divisor=32),
        backbone=dict(type='CascadedDualBackbone',
                      backbone=dict(type='CSPDarknet', deepen_factor=0.33, widen_factor=0.125, init_cfg=None)),
        neck=dict(type='YOLOXPAFPN', in_channels=[32, 64, 128], out_channels=16, num_csp_blocks=1),
        bbox_head=dict(type='YOLOXHead', num_classes=3, in_channels=16, feat_channels=16, stacked_convs=1),
        train_cfg=dict(assigner=dict(type='SimOTAAssigner', center_radius=2.5)),
        test_cfg=dict(score_thr=0.0, nms=dict(type='nms', iou_threshold=0.65), dynamic=dict(threshold=0.5)))
    cfg.update(overrides)
    return cfg


@pytest.mark.parametrize('make', [tiny_faster_rcnn, tiny_yolox])
def test_step1_step2_and_routing(build, make):
    model = build(make())
    x, samples = torch.rand(3, 3, 64, 64), make_samples(3)
    model.train()
    losses = model.loss(x, copy.deepcopy(samples))
    assert any(k.startswith('d1_') for k in losses) and any(k.startswith('d2_') for k in losses)
    model.parse_losses(losses)[0].backward()
    model = build(make(training_step=2)).train()
    torch.manual_seed(0)
    losses = model.loss(x, copy.deepcopy(samples))
    model.parse_losses(losses)[0].backward()
    assert {n for n, p in model.named_parameters() if p.grad is not None} == \
        {n for n, _ in model.named_parameters() if n.startswith('router.')}
    model.eval()
    for route in (1, 2):
        model.set_dynamic(route=route)
        with torch.no_grad():
            out = model.predict(x, copy.deepcopy(samples), rescale=False)
            alone = model.predict(x[1:2], copy.deepcopy(samples[1:2]), rescale=False)[0]
        assert [s.dynamic_route for s in out] == [route] * 3
        # same detections as the image alone (ordering of tied scores may differ: compare sorted scores)
        a, b = out[1].pred_instances, alone.pred_instances
        assert len(a) == len(b) and len(a) > 0
        assert torch.allclose(a.scores.sort().values, b.scores.sort().values, atol=1e-5)


def test_faster_rcnn_shares_neck_and_heads(build):
    model = build(tiny_faster_rcnn())
    assert len(model.dynamic_head.necks) == 1 and len(model.dynamic_head.heads) == 1
    assert model.dynamic_head.head(0)['rpn_head'].num_classes == 1


def test_yolox_mode_switch_reaches_both_heads(build):
    model = build(tiny_yolox())
    model.bbox_head.use_l1 = True  # what mmdet's YOLOXModeSwitchHook does
    assert all(h.use_l1 for h in model.dynamic_head.heads) and len(model.dynamic_head.heads) == 2
    assert model.bbox_head.num_classes == 3
    assert build(tiny_faster_rcnn()).bbox_head is None

# Dy-Faster R-CNN-R50, step 1: a cascaded pair of ImageNet-pretrained ResNet-50s; ONE FPN + RPN + RoI head
# shared by both routes (the paper's two-stage, CBNet-style variant); mmdet's Faster R-CNN 1x recipe.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.det'], allow_failed_imports=False)

model = dict(
    type='DynamicDetector',
    backbone=dict(_delete_=True, type='CascadedDualBackbone', backbone={{_base_.model.backbone}},
                  fusion='downsample'),
    router=dict(type='AdaptiveRouter', reduction=4),
    router_input='all_levels',
    router_loss=dict(type='DynamicRouterLoss', median_capacity=8192),
    share_heads=True,
    training_step=1,
    test_cfg=dict(dynamic=dict(threshold=0.5, route=None)))

model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

val_evaluator = [{{_base_.val_evaluator}}, dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

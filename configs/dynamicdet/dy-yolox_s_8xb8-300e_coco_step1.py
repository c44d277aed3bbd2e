# Dy-YOLOX-S, step 1: a cascaded pair of CSPDarknet-S backbones, two separate YOLOX-PAFPN + YOLOXHead routes
# (identical structure, no weight sharing, as in the paper's YOLO variant), mmdet's YOLOX-S 300e recipe
# (Mosaic/MixUp, EMA, mode switch: YOLOXModeSwitchHook reaches both heads through model.bbox_head).
_base_ = 'mmdet::yolox/yolox_s_8xb8-300e_coco.py'

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.det'], allow_failed_imports=False)

model = dict(
    type='DynamicDetector',
    backbone=dict(_delete_=True, type='CascadedDualBackbone', backbone={{_base_.model.backbone}},
                  fusion='downsample'),
    router=dict(type='AdaptiveRouter', reduction=4),
    router_input='all_levels',
    router_loss=dict(type='DynamicRouterLoss', median_capacity=8192),
    share_heads=False,
    training_step=1,
    test_cfg=dict(dynamic=dict(threshold=0.5, route=None)))

model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

val_evaluator = [{{_base_.val_evaluator}}, dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

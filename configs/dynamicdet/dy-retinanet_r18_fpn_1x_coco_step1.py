# Dy-RetinaNet-R18, step 1: a cascaded pair of ResNet-18s (B2 gets B1's features through composite
# connections), two separate FPN + RetinaHead routes, trained jointly (loss = d1_* + d2_*) with mmdet's
# RetinaNet-R18 1x recipe on COCO (data/coco). The router exists (so step 2 loads this checkpoint strictly)
# but is trained only in step 2.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.det'], allow_failed_imports=False)

model = dict(
    type='DynamicDetector',
    # B1 and B2: mmdet's RetinaNet-R18 backbone each (ImageNet-pretrained), cascaded.
    # fusion='downsample': B1's levels (stem included) enter B2 right after each stage's down-sampling
    # layer and after its stem ('first_block': the earlier layout, after each stage's first block)
    backbone=dict(_delete_=True, type='CascadedDualBackbone', backbone={{_base_.model.backbone}},
                  fusion='downsample'),
    router=dict(type='AdaptiveRouter', reduction=4),
    # the router pools every B1 level, the stride-2 stem level included ('out_indices': only the neck's)
    router_input='all_levels',
    router_loss=dict(type='DynamicRouterLoss', median_capacity=8192),
    share_heads=False,
    training_step=1,
    # threshold tau: easy (route 1) iff router score >= tau; route=1/2 forces a route for every image.
    test_cfg=dict(dynamic=dict(threshold=0.5, route=None)))

# The router gets no gradient in step 1.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

val_evaluator = [{{_base_.val_evaluator}}, dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

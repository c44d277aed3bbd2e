# Dynamic BINARY detector, step 1: Dy-RetinaNet whose cascaded backbones are two static NAS-BNN subnets of
# the ImageNet space (docs/nasbnn.md): B1 = the smallest subnet, B2 = a mid-size subnet (middle widths). B2
# gets B1's levels (stem and stage outputs) through float composite connections (1x1 conv + bias); the
# router, FPNs and RetinaHeads stay full precision. Strides 8/16/32 (stages 2, 3, 4) feed each route's FPN. mmdet's
# RetinaNet 1x recipe on COCO (data/coco) with the project's binary optimiser (Adam 1e-4, as
# configs/binary_resnet/). Backbones from scratch by default; to start from ImageNet-trained subnets export
# them (tools/nas/export_subnet.py) and set each backbone's
# init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint='work_dirs/export/<name>.pth').
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.det'], allow_failed_imports=False)

# B2: widths 64/128/256/512/1024 (the middle choice of every stage), minimum depths, 3x3 kernels, the
# fewer-groups choice of every stage (stage widths at strides 8/16/32: 256/512/1024).
nasbnn_medium = dict(
    stem=dict(channels=32),
    stages=[
        dict(depth=2, blocks=[dict(channels=64, kernel=3, groups=1)] * 2),
        dict(depth=2, blocks=[dict(channels=128, kernel=3, groups=1)] * 2),
        dict(depth=2, blocks=[dict(channels=256, kernel=3, groups=2)] * 2),
        dict(depth=8, blocks=[dict(channels=512, kernel=3, groups=4)] * 8),
        dict(depth=2, blocks=[dict(channels=1024, kernel=3, groups=8)] * 2),
    ])

fpn = dict(type='FPN', out_channels=256, start_level=0, add_extra_convs='on_input', num_outs=5)

model = dict(
    type='DynamicDetector',
    backbone=dict(
        _delete_=True,
        type='CascadedDualBackbone',
        # space=None: the ImageNet space; out_indices (2, 3, 4) = strides 8 / 16 / 32
        backbone=dict(type='NASBNN', space=None, subnet='smallest', out_indices=(2, 3, 4), frozen_stages=-1,
                      norm_eval=False, init_cfg=None),
        backbone2=dict(type='NASBNN', space=None, subnet=nasbnn_medium, out_indices=(2, 3, 4),
                       frozen_stages=-1, norm_eval=False, init_cfg=None),
        # float 1x1 composite connections (the paper's); type='BinaryConv2d' makes them binary, which cuts
        # their cost 64x (route 2: 13.31 -> 12.78 GOPs at 320x256) at an accuracy cost not measured here
        connection_cfg=dict(type='Conv2d'),
        # B1's levels (stem included) enter B2 after its stem and each stage's strided first block
        fusion='downsample'),
    # route 1's FPN on B1 (smallest: 192 / 384 / 768), route 2's on B2 (256 / 512 / 1024)
    neck=dict(_delete_=True, in_channels=[192, 384, 768], **fpn),
    neck2=dict(in_channels=[256, 512, 1024], **fpn),
    router=dict(type='AdaptiveRouter', reduction=4),
    router_input='all_levels',  # every B1 level: stem, strides 2, 4, ..., 32
    router_loss=dict(type='DynamicRouterLoss', median_capacity=8192),
    share_heads=False,
    training_step=1,
    # threshold tau: easy (route 1) iff router score >= tau; route=1/2 forces a route for every image.
    test_cfg=dict(dynamic=dict(threshold=0.5, route=None)))

# Binary networks train with Adam (as NAS-BNN / ReActNet do); clipping guards the first iterations.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='Adam', lr=1e-4, weight_decay=0),
    clip_grad=dict(max_norm=35, norm_type=2))

# The router gets no gradient in step 1.
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)

val_evaluator = [{{_base_.val_evaluator}}, dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

# The drop-in path, kept as a baseline: mmdet's RetinaNet-R18 with conv_cfg=BinaryConv2d, so every ResNet conv
# (the stem and the 1x1 down-sampling convs too) is binary. It does not learn: the stem binarises the image and
# every other sign follows a ReLU (constant input); BinaryConv2d warns at build time and at the first training
# step. Use retinanet_binary-resnet18_fpn_1x_coco.py (BinaryResNet backbone) for a binary detector that learns.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        conv_cfg=dict(type='BinaryConv2d'),
        # From scratch: BN must learn its statistics and no stage is frozen.
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None))

# The binary recipe of retinanet_binary-resnet18_fpn_1x_coco.py (Adam, no clipping).
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))

# RetinaNet with a BinaryResNet-18 backbone (binary 3x3 convs in the Bi-Real/ReActNet structure: float stem,
# float down-sampling shortcuts, RPReLU, learnable sign thresholds), trained from scratch on COCO (data/coco).
# Everything else is mmdet's RetinaNet-R18 recipe except the optimizer: binary networks train with Adam.
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(
    backbone=dict(_delete_=True, type='BinaryResNet', depth=18, stem_type='imagenet', out_indices=(0, 1, 2, 3),
                  frozen_stages=-1, norm_eval=False),
    neck=dict(in_channels=[64, 128, 256, 512]))

# Adam at lr 1e-3 for the batch of 16 (8 GPUs x 2), no gradient clipping; see docs/binary_resnet.md for the
# learning-rate measurements on the bundled data.
optim_wrapper = dict(_delete_=True, type='OptimWrapper', optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))

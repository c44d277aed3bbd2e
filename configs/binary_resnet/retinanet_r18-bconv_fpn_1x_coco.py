# RetinaNet whose ResNet-18 uses binary convolutions everywhere (weights and activations 1-bit),
# trained from scratch. Everything else is mmdet's stock RetinaNet-R18 recipe on COCO (data/coco).
_base_ = 'mmdet::retinanet/retinanet_r18_fpn_1x_coco.py'

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        conv_cfg=dict(type='BinaryConv2d'),
        # From scratch: BN must learn its statistics and no stage is frozen.
        frozen_stages=-1,
        norm_eval=False,
        init_cfg=None))

# Binary networks train with Adam (as NAS-BNN / ReActNet do); the float recipe's SGD at lr 0.01 is
# unstable for 1-bit weights trained from scratch. Clipping guards the first iterations.
optim_wrapper = dict(
    optimizer=dict(_delete_=True, type='Adam', lr=1e-4, weight_decay=0),
    clip_grad=dict(max_norm=35, norm_type=2))

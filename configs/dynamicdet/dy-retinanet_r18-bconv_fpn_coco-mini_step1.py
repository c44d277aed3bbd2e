# Interim dynamic BINARY detector on the bundled data: Dy-RetinaNet-R18 whose two ResNet-18s use binary
# convolutions (mmdynbnn's BinaryConv2d, as configs/binary_resnet/), from scratch. The composite connections,
# router, necks and heads stay full precision. The NAS-BNN-subnet version replaces these backbones once the
# NAS-BNN backbone has a CascadedDualBackbone family record.
_base_ = './dy-retinanet_r18_fpn_coco-mini_step1.py'

model = dict(backbone=dict(backbone=dict(conv_cfg=dict(type='BinaryConv2d'))))

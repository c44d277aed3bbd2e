# Dynamic BINARY detector on the bundled data with binary ResNets: Dy-RetinaNet-R18 whose two ResNet-18s use
# binary convolutions (mmdynbnn's BinaryConv2d, as configs/binary_resnet/), from scratch. The composite
# connections, router, necks and heads stay full precision. The NAS-BNN-subnet version (the dynamic
# binary detector) is dy-retinanet_nasbnn_fpn_coco-mini_step1.py.
_base_ = './dy-retinanet_r18_fpn_coco-mini_step1.py'

model = dict(backbone=dict(backbone=dict(conv_cfg=dict(type='BinaryConv2d'))))

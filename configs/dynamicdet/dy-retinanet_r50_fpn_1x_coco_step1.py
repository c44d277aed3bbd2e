# Dy-RetinaNet-R50, step 1: the R18 pair's recipe with two ImageNet-pretrained ResNet-50s (mmdet's
# RetinaNet-R50 backbone and FPN widths).
_base_ = './dy-retinanet_r18_fpn_1x_coco_step1.py'

model = dict(
    backbone=dict(backbone=dict(depth=50, init_cfg=dict(type='Pretrained', checkpoint='torchvision://resnet50'))),
    neck=dict(in_channels=[256, 512, 1024, 2048]))

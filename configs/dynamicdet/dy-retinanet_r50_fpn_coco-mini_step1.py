# Dy-RetinaNet-R50 step 1 on the bundled data (from scratch): the R18 demo with ResNet-50s.
_base_ = './dy-retinanet_r18_fpn_coco-mini_step1.py'

model = dict(backbone=dict(backbone=dict(depth=50, init_cfg=None)), neck=dict(in_channels=[256, 512, 1024, 2048]))

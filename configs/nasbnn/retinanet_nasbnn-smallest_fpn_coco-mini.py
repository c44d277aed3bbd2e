# RetinaNet with a static NAS-BNN backbone (the ImageNet space's smallest subnet, from scratch) on the
# bundled data/coco_mini: shows the multi-scale outputs (strides 4/8/16/32) feeding mmdet's FPN. For a
# searched subnet use its file (subnet='path/to/subnet.json') and its stage widths as in_channels, and
# load the exported backbone weights with init_cfg=dict(type='Pretrained', prefix='backbone.', checkpoint=...).
_base_ = '../binary_resnet/retinanet_r18-bconv_fpn_coco-mini.py'

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

search_space = dict(
    stem=dict(channels=[24, 32, 48], kernel=3, stride=2, bits=8),
    stages=[
        dict(channels=[48, 64, 96], depth=[2, 3], kernel=[3], groups=[1], stride=1),
        dict(channels=[96, 128, 192], depth=[2, 3], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[192, 256, 384], depth=[2, 3], kernel=[3, 5], groups=[2, 4], stride=2),
        dict(channels=[384, 512, 768], depth=[8, 9], kernel=[3, 5], groups=[4, 8], stride=2),
        dict(channels=[768, 1024, 1536], depth=[2, 3], kernel=[3, 5], groups=[8, 16], stride=2),
    ],
    in_channels=3, input_size=224, num_classes=1000)

model = dict(
    backbone=dict(_delete_=True, type='NASBNN', space=search_space, subnet='smallest',
                  out_indices=(1, 2, 3, 4), frozen_stages=-1, norm_eval=False),
    # smallest subnet: stage widths 96 / 192 / 384 / 768 at strides 4 / 8 / 16 / 32
    neck=dict(in_channels=[96, 192, 384, 768], start_level=1))

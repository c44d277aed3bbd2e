# The drop-in baseline (retinanet_r18-bconv_fpn_1x_coco.py: stock ResNet-18 with conv_cfg=BinaryConv2d, which
# does not learn) on the bundled data/coco_mini, with everything else as the BinaryResNet-18 coco-mini config.
_base_ = './retinanet_binary-resnet18_fpn_coco-mini.py'

model = dict(
    backbone=dict(_delete_=True, type='ResNet', depth=18, num_stages=4, out_indices=(0, 1, 2, 3), style='pytorch',
                  norm_cfg=dict(type='BN', requires_grad=True), conv_cfg=dict(type='BinaryConv2d'),
                  frozen_stages=-1, norm_eval=False, init_cfg=None))

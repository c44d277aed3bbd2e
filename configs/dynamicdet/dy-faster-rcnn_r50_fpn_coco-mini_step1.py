# Dy-Faster R-CNN-R50 step 1 on the bundled data/coco_mini (24 train / 16 val images, long side <= 320 px),
# from scratch (no network): the demo and test config. One epoch = 6 iterations of batch 4.
_base_ = ['./dy-faster-rcnn_r50_fpn_1x_coco_step1.py', '../_base_/datasets/coco_mini_detection.py']

model = dict(backbone=dict(backbone=dict(init_cfg=None, frozen_stages=-1, norm_eval=False)))

train_dataloader = _base_.coco_mini.train_dataloader
val_dataloader = dict(_base_.coco_mini.val_dataloader, batch_size=4)
test_dataloader = val_dataloader
val_evaluator = [_base_.coco_mini.coco_metric, dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

train_cfg = _base_.coco_mini.train_cfg
param_scheduler = _base_.coco_mini.param_scheduler
default_hooks = _base_.coco_mini.default_hooks

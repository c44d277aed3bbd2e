# The bundled data/coco_mini (24 train / 16 val COCO images, long side <= 320 px) for mmdet configs: one
# epoch of batch 4 is 6 iterations. A config that inherits a COCO config picks the pieces it needs:
#
#   _base_ = ['./my_detector_coco.py', '../_base_/datasets/coco_mini_detection.py']
#   train_dataloader = _base_.coco_mini.train_dataloader
#   val_dataloader = test_dataloader = _base_.coco_mini.val_dataloader
#   val_evaluator = test_evaluator = _base_.coco_mini.coco_metric
#
# Everything lives under one name because mmengine refuses a key that two bases both define.
coco_mini_root = '{{ fileDirname }}/../../../data/coco_mini/'
coco_mini_scale = (320, 320)
coco_mini_train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=coco_mini_scale, keep_ratio=True),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
coco_mini_test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=coco_mini_scale, keep_ratio=True),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs', meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
coco_mini = dict(
    train_dataloader=dict(
        batch_size=4,
        num_workers=0,
        persistent_workers=False,
        dataset=dict(data_root=coco_mini_root, ann_file='annotations/instances_train.json',
                     data_prefix=dict(img='train/'), pipeline=coco_mini_train_pipeline)),
    val_dataloader=dict(
        num_workers=0,
        persistent_workers=False,
        dataset=dict(data_root=coco_mini_root, ann_file='annotations/instances_val.json',
                     data_prefix=dict(img='val/'), pipeline=coco_mini_test_pipeline)),
    coco_metric=dict(type='CocoMetric', ann_file=coco_mini_root + 'annotations/instances_val.json',
                     metric='bbox', format_only=False),
    # one short epoch with a linear warm-up over its 6 iterations, logging and saving every step
    train_cfg=dict(max_epochs=1, val_interval=1),
    param_scheduler=[dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)],
    default_hooks=dict(logger=dict(interval=1), checkpoint=dict(interval=1)))

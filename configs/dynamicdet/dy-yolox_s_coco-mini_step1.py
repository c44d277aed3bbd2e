# Dy-YOLOX-S step 1 on the bundled data (from scratch, 320 px, plain resize + flip + pad; no Mosaic/MixUp,
# EMA or mode switch in a 6-iteration demo).
_base_ = './dy-yolox_s_8xb8-300e_coco_step1.py'

data_root = '{{ fileDirname }}/../../data/coco_mini/'
img_scale = (320, 320)

model = dict(data_preprocessor=dict(batch_augments=None))

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='RandomFlip', prob=0.5),
    dict(type='PackDetInputs')
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=img_scale, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='PackDetInputs',
         meta_keys=('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor'))
]
train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_delete_=True, type='CocoDataset', data_root=data_root,
                 ann_file='annotations/instances_train.json', data_prefix=dict(img='train/'),
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(
        data_root=data_root,
        ann_file='annotations/instances_val.json',
        data_prefix=dict(img='val/'),
        pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = [dict(type='CocoMetric', ann_file=data_root + 'annotations/instances_val.json',
                      metric='bbox', format_only=False),
                 dict(type='RouteRatioMetric')]
test_evaluator = val_evaluator

train_cfg = dict(max_epochs=1, val_interval=1)
param_scheduler = [dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0, end=6)]
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1, max_keep_ckpts=-1))
custom_hooks = []

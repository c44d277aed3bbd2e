# Dy-YOLOX-S, step 2 (router only) from the step-1 checkpoint (whose state_dict holds the EMA weights).
# Light augmentation (resize + flip, no Mosaic/MixUp, no multi-scale), no EMA / mode switch.
_base_ = './dy-yolox_s_8xb8-300e_coco_step1.py'

model = dict(training_step=2, data_preprocessor=dict(batch_augments=None))
load_from = 'work_dirs/dy-yolox_s_8xb8-300e_coco_step1/epoch_300.pth'

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    dict(type='Resize', scale={{_base_.img_scale}}, keep_ratio=True),
    dict(type='Pad', pad_to_square=True, pad_val=dict(img=(114.0, 114.0, 114.0))),
    dict(type='RandomFlip', prob=0.5),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1, 1), keep_empty=False),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    dataset=dict(_delete_=True, type={{_base_.dataset_type}}, data_root={{_base_.data_root}},
                 ann_file='annotations/instances_train2017.json', data_prefix=dict(img='train2017/'),
                 filter_cfg=dict(filter_empty_gt=False, min_size=32), pipeline=train_pipeline,
                 backend_args={{_base_.backend_args}}))

# One AdamW step per 64 images (8 GPUs x 8 images; elsewhere set
# accumulative_counts = 64 / (GPUs x images per GPU)) and no weight decay on biases.
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-5, weight_decay=5e-3),
                     paramwise_cfg=dict(bias_decay_mult=0.0), accumulative_counts=1)
param_scheduler = []
train_cfg = dict(max_epochs=2, val_interval=1)
default_hooks = dict(checkpoint=dict(interval=1))
custom_hooks = [dict(type='DynamicDetStep2Hook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)

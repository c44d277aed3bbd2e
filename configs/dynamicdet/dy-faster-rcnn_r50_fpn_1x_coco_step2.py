# Dy-Faster R-CNN-R50, step 2 (router only), from the step-1 checkpoint. The per-image losses include the
# RPN/RoI samplers' randomness, as in training.
_base_ = './dy-faster-rcnn_r50_fpn_1x_coco_step1.py'

model = dict(training_step=2)
load_from = 'work_dirs/dy-faster-rcnn_r50_fpn_1x_coco_step1/epoch_12.pth'

# One AdamW step per 64 images (8 GPUs x 2 images x 4 iterations; elsewhere set
# accumulative_counts = 64 / (GPUs x images per GPU)) and no weight decay on biases.
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-5, weight_decay=5e-3),
                     paramwise_cfg=dict(bias_decay_mult=0.0), accumulative_counts=4)
param_scheduler = []
train_cfg = dict(max_epochs=2, val_interval=1)
custom_hooks = [dict(type='DynamicDetStep2Hook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)

# Dy-RetinaNet-R18, step 2: only the router trains (everything else frozen, every BN in eval mode), on
# per-image losses of both routes; reference recipe: AdamW lr 1e-5 constant, weight decay 5e-3, 2 epochs.
_base_ = './dy-retinanet_r18_fpn_1x_coco_step1.py'

model = dict(training_step=2)
load_from = 'work_dirs/dy-retinanet_r18_fpn_1x_coco_step1/epoch_12.pth'  # the step-1 checkpoint

# One AdamW step per 64 images (8 GPUs x 2 images x 4 iterations; elsewhere set
# accumulative_counts = 64 / (GPUs x images per GPU)) and no weight decay on biases.
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-5, weight_decay=5e-3),
                     paramwise_cfg=dict(bias_decay_mult=0.0), accumulative_counts=4)
param_scheduler = []  # constant lr
train_cfg = dict(max_epochs=2, val_interval=1)
custom_hooks = [dict(type='DynamicDetStep2Hook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)

# Dynamic binary Dy-RetinaNet (NAS-BNN subnets) step 2 (router only) on the bundled data, from the mini
# step-1 checkpoint.
_base_ = './dy-retinanet_nasbnn_fpn_coco-mini_step1.py'

model = dict(training_step=2)
load_from = 'work_dirs/dy-retinanet_nasbnn_fpn_coco-mini_step1/epoch_1.pth'

# One AdamW step per 64 images (1 GPU x 4 images x 16 iterations; elsewhere set
# accumulative_counts = 64 / (GPUs x images per GPU)) and no weight decay on biases.
optim_wrapper = dict(_delete_=True, type='OptimWrapper',
                     optimizer=dict(type='AdamW', lr=1e-5, weight_decay=5e-3),
                     paramwise_cfg=dict(bias_decay_mult=0.0), accumulative_counts=16)
param_scheduler = []
train_cfg = dict(max_epochs=1, val_interval=1)
custom_hooks = [dict(type='DynamicDetStep2Hook')]
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=False)

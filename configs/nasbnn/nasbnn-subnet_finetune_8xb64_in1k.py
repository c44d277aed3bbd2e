# Optional fine-tuning of one static NAS-BNN subnet on ImageNet (docs/nasbnn.md §3): Adam lr 1e-5, no
# weight decay, 25 epochs cosine, plain CE. `tools/nas/export_subnet.py` writes a config that inherits
# this one with the searched subnet, the head width and `load_from` filled in; as is, it trains the
# biggest subnet from scratch.
_base_ = ['./nasbnn-supernet_bi-teacher_8xb64_in1k.py']

model = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone=dict(type='NASBNN', space={{ _base_.search_space }}, subnet='biggest', out_indices=(4,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=1536,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))

optim_wrapper = dict(_delete_=True, optimizer=dict(type='Adam', lr=1e-5, weight_decay=0.0))
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=25, eta_min=0.0, by_epoch=True,
                       begin=0, end=25)
train_cfg = dict(by_epoch=True, max_epochs=25, val_interval=1)
model_wrapper_cfg = dict(_delete_=True, type='MMDistributedDataParallel', find_unused_parameters=False)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=3))

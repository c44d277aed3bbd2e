# Fine-tuning of one static subnet of the CIFAR supernet (Adam lr 1e-5, no weight decay, cosine, plain
# CE). `tools/nas/export_subnet.py` writes a config inheriting this one with the subnet, the head width
# and `load_from` filled in; as is, it trains the biggest subnet from scratch.
_base_ = ['./nasbnn-supernet_bi-teacher_cifar10-mini.py']

model = dict(
    _delete_=True,
    type='ImageClassifier',
    backbone=dict(type='NASBNN', space={{ _base_.search_space }}, subnet='biggest', out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=96,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)))

optim_wrapper = dict(_delete_=True, optimizer=dict(type='Adam', lr=1e-5, weight_decay=0.0))
max_epochs = 25
param_scheduler = dict(_delete_=True, type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, by_epoch=True,
                       begin=0, end=max_epochs)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
model_wrapper_cfg = dict(_delete_=True, type='MMDistributedDataParallel', find_unused_parameters=False)

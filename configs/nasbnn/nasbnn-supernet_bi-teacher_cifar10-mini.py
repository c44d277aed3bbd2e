# NAS-BNN supernet with Bi-Teacher training on 32x32 CIFAR-10-size images, small search space.
# data_root defaults to the bundled sample (data/cifar10_mini: folder per class, train/ and test/);
# any folder-per-class copy of CIFAR-10 works, e.g.
#   --cfg-options train_dataloader.dataset.data_root=/data/cifar10 val_dataloader.dataset.data_root=/data/cifar10
_base_ = ['mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.cls'], allow_failed_imports=False)

# = mmdynbnn.nas.CIFAR_SPACE: stem at stride 1, output strides 1/2/4/8.
search_space = dict(
    stem=dict(channels=[16, 24], kernel=3, stride=1, bits=8),
    stages=[
        dict(channels=[24, 32], depth=[1, 2], kernel=[3], groups=[1], stride=1),
        dict(channels=[32, 48], depth=[1, 2], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[48, 64], depth=[1, 2], kernel=[3, 5], groups=[2, 4], stride=2),
        dict(channels=[64, 96], depth=[1, 2], kernel=[3, 5], groups=[4, 8], stride=2),
    ],
    in_channels=3, input_size=32, num_classes=10)

data_root = '{{ fileDirname }}/../../data/cifar10_mini/'
# mean = std = 0.5 in [0, 1] units; the JPEGs load as BGR.
data_preprocessor = dict(num_classes=10, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

model = dict(
    type='BiTeacherClassifier',
    backbone=dict(type='NASBNNSuperNet', space=search_space, subnet='biggest', out_indices=(3,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='SlicedLinearClsHead', num_classes=10, in_channels=96,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)),
    num_random=2,
    label_smoothing=0.1,
    sampler_seed=None,
    eval_subnet='biggest')

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=32, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='train', pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50, num_workers=0, persistent_workers=False,
    sampler=dict(type='DefaultSampler', shuffle=False),
    dataset=dict(type='CustomDataset', data_root=data_root, data_prefix='test', pipeline=test_pipeline))
test_dataloader = val_dataloader
val_evaluator = dict(type='Accuracy', topk=(1, 5))
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2.5e-3, betas=(0.9, 0.999), weight_decay=5e-6),
    paramwise_cfg=dict(flat_decay_mult=0.0, norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'bi_matrix': dict(decay_mult=0.0),
                                    'crop_matrices': dict(decay_mult=0.0)}))
max_epochs = 200
param_scheduler = dict(type='CosineAnnealingLR', T_max=max_epochs, eta_min=0.0, by_epoch=True, begin=0,
                       end=max_epochs)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=10)
val_cfg = dict()
test_cfg = dict()

model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
default_hooks = dict(logger=dict(interval=5), checkpoint=dict(type='CheckpointHook', interval=10,
                                                              max_keep_ckpts=2))

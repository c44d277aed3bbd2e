# CIFAR-10 stored folder per class (train/<class>/*.jpg, test/<class>/*.jpg), loaded with mmpretrain's
# CustomDataset. Point data_root at your copy (e.g. --cfg-options with the three data_root keys, or
# `cifar10_root` in a config that inherits this one); the test folder is `test/` below it.
cifar10_root = 'data/cifar10/'
# JPEGs load as BGR (the stock CIFAR10 dataset yields RGB arrays).
data_preprocessor = dict(
    num_classes=10,
    mean=[125.307, 122.961, 113.8575],
    std=[51.5865, 50.847, 51.255],
    to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=128,
    num_workers=2,
    dataset=dict(type='CustomDataset', data_root=cifar10_root, data_prefix='train', pipeline=train_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=True))
val_dataloader = dict(
    batch_size=100,
    num_workers=2,
    dataset=dict(type='CustomDataset', data_root=cifar10_root, data_prefix='test', pipeline=test_pipeline),
    sampler=dict(type='DefaultSampler', shuffle=False))
val_evaluator = dict(type='Accuracy', topk=(1, ))
test_dataloader = val_dataloader
test_evaluator = val_evaluator

# The binary CIFAR ResNet-18 on the bundled data/cifar10_mini (300 train / 100 test JPEGs, folder per
# class, loaded with mmpretrain's CustomDataset): the demo and test config.
_base_ = './resnet18-bconv_8xb16_cifar10.py'

data_root = '{{ fileDirname }}/../../data/cifar10_mini/'
# JPEGs load as BGR (the stock CIFAR10 dataset yields RGB arrays).
data_preprocessor = dict(to_rgb=True)

train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='RandomCrop', crop_size=32, padding=4),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(type='PackInputs'),
]
test_pipeline = [dict(type='LoadImageFromFile'), dict(type='PackInputs')]

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='train',
                 pipeline=train_pipeline))
val_dataloader = dict(
    batch_size=50,
    num_workers=0,
    persistent_workers=False,
    dataset=dict(_delete_=True, type='CustomDataset', data_root=data_root, data_prefix='test',
                 pipeline=test_pipeline))
test_dataloader = val_dataloader

train_cfg = dict(max_epochs=1, val_interval=1)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))

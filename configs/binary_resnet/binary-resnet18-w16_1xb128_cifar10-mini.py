# binary-resnet18-w16 on the bundled data/cifar10_mini (300 train / 100 test JPEGs): the test and demo config.
_base_ = './binary-resnet18-w16_1xb128_cifar10.py'

cifar10_mini_root = '{{ fileDirname }}/../../data/cifar10_mini/'
train_dataloader = dict(batch_size=32, num_workers=0, persistent_workers=False,
                        dataset=dict(data_root=cifar10_mini_root))
val_dataloader = dict(batch_size=50, num_workers=0, persistent_workers=False,
                      dataset=dict(data_root=cifar10_mini_root))
test_dataloader = val_dataloader
max_epochs = 1
param_scheduler = dict(T_max=max_epochs)
train_cfg = dict(max_epochs=max_epochs)
default_hooks = dict(logger=dict(interval=1), checkpoint=dict(interval=1))

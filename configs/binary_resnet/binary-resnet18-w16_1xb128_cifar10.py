# The small CIFAR BinaryResNet-18 (width 16-32-64-128, CIFAR stem): Bi-Real/ReActNet structure with binary
# 3x3 convs, float stem, float down-sampling shortcuts and float classifier. The standard BNN recipe: Adam,
# lr 1e-3, cosine to 0, no weight decay, no gradient clipping. Folder-per-class CIFAR-10 in data/cifar10.
# About 150 s per epoch of the 50,000 images on 2 CPU cores (20 epochs in under an hour).
_base_ = ['mmpretrain::_base_/default_runtime.py', '../_base_/datasets/cifar10_folder.py']

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='BinaryResNet', depth=18, stem_type='cifar', stem_channels=16, base_channels=16,
                  downsample='conv', binary=True, out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=10, in_channels=128,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0)))

max_epochs = 20
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = dict(type='CosineAnnealingLR', T_max=max_epochs, by_epoch=True, eta_min=0)
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=1)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=128)

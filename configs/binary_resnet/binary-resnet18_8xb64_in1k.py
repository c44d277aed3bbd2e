# BinaryResNet-18 on ImageNet-1k, ReActNet's recipe: float stem (7x7/2 + max pooling), binary 3x3 convs with a
# real-valued shortcut each, average-pooling + float 1x1 down-sampling shortcuts, RPReLU, learnable sign
# thresholds, float classifier; Adam, cosine to 0, no weight decay on the binary network, no clipping.
# (ReActNet: batch 256, lr 5e-4, 256 epochs; here 8 GPUs x 64 = 512 images per step at lr 1e-3.)
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64.py', 'mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(
    type='ImageClassifier',
    backbone=dict(type='BinaryResNet', depth=18, stem_type='imagenet', stem_channels=64, base_channels=64,
                  downsample='conv', out_indices=(3, )),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='LinearClsHead', num_classes=1000, in_channels=512,
              loss=dict(type='LabelSmoothLoss', label_smooth_val=0.1, loss_weight=1.0), topk=(1, 5)))

max_epochs = 256
optim_wrapper = dict(optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=True, begin=0, end=5, convert_to_iter_based=True),
    dict(type='CosineAnnealingLR', T_max=max_epochs - 5, by_epoch=True, begin=5, end=max_epochs, eta_min=0,
         convert_to_iter_based=True),
]
train_cfg = dict(by_epoch=True, max_epochs=max_epochs, val_interval=5)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)

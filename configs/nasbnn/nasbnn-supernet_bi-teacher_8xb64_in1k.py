# NAS-BNN supernet, Bi-Teacher training on ImageNet-1k with the paper's recipe (docs/nasbnn.md §2-§3):
# Adam lr 2.5e-3, cosine per epoch, 512 epochs, batch 512 (8 GPUs x 64), weight decay 5e-6 on conv/FC
# weights only; RandomResizedCrop 224 + flip; mean = std = 0.5 (x255); eval Resize 256 + CenterCrop 224.
# Data: mmpretrain's ImageNet layout under data_root: train/ and val/ with one folder per class (1000),
# or the images plus meta/{train,val}.txt annotation lists. Point at it with
#   --cfg-options train_dataloader.dataset.data_root=/path/imagenet val_dataloader.dataset.data_root=/path/imagenet
_base_ = ['mmpretrain::_base_/datasets/imagenet_bs64.py', 'mmpretrain::_base_/default_runtime.py']

custom_imports = dict(imports=['mmdynbnn', 'mmdynbnn.cls'], allow_failed_imports=False)

# The paper's space (= mmdynbnn.nas.IMAGENET_SPACE). Stage i here is the paper's stage i + 1.
search_space = dict(
    stem=dict(channels=[24, 32, 48], kernel=3, stride=2, bits=8),
    stages=[
        dict(channels=[48, 64, 96], depth=[2, 3], kernel=[3], groups=[1], stride=1),
        dict(channels=[96, 128, 192], depth=[2, 3], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[192, 256, 384], depth=[2, 3], kernel=[3, 5], groups=[2, 4], stride=2),
        dict(channels=[384, 512, 768], depth=[8, 9], kernel=[3, 5], groups=[4, 8], stride=2),
        dict(channels=[768, 1024, 1536], depth=[2, 3], kernel=[3, 5], groups=[8, 16], stride=2),
    ],
    in_channels=3, input_size=224, num_classes=1000)

data_preprocessor = dict(num_classes=1000, mean=[127.5, 127.5, 127.5], std=[127.5, 127.5, 127.5], to_rgb=True)

model = dict(
    type='BiTeacherClassifier',
    backbone=dict(type='NASBNNSuperNet', space=search_space, subnet='biggest', out_indices=(4,)),
    neck=dict(type='GlobalAveragePooling'),
    head=dict(type='SlicedLinearClsHead', num_classes=1000, in_channels=1536,
              loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=(1, 5)),
    num_random=2,
    label_smoothing=0.1,
    sampler_seed=None,  # drawn on rank 0 and broadcast; set an int for a reproducible subnet sequence
    eval_subnet='biggest')

train_dataloader = dict(batch_size=64, num_workers=8)
val_dataloader = dict(batch_size=64, num_workers=8)
test_dataloader = val_dataloader

# Weight decay only on conv / FC weights: every 1-D tensor (BN, biases, RSign/RPReLU, LSQ steps) and
# the kernel-transform matrices get none.
optim_wrapper = dict(
    optimizer=dict(type='Adam', lr=2.5e-3, betas=(0.9, 0.999), weight_decay=5e-6),
    paramwise_cfg=dict(flat_decay_mult=0.0, norm_decay_mult=0.0, bias_decay_mult=0.0,
                       custom_keys={'bi_matrix': dict(decay_mult=0.0),
                                    'crop_matrices': dict(decay_mult=0.0)}))
param_scheduler = dict(type='CosineAnnealingLR', T_max=512, eta_min=0.0, by_epoch=True, begin=0, end=512)
train_cfg = dict(by_epoch=True, max_epochs=512, val_interval=8)
val_cfg = dict()
test_cfg = dict()
auto_scale_lr = dict(base_batch_size=512)

# Some kernel transforms get no gradient in an iteration (no pass used that kernel size).
model_wrapper_cfg = dict(type='MMDistributedDataParallel', find_unused_parameters=True)
default_hooks = dict(checkpoint=dict(type='CheckpointHook', interval=8, max_keep_ckpts=3))

# NAS-BNN supernet with Bi-Teacher training on full folder-per-class CIFAR-10 (train/ and test/ below
# `cifar10_root`), the small 32x32 space of the mini config. One process, batch 128: Adam lr 1e-3 (the
# ImageNet recipe's 2.5e-3 at batch 512, scaled by the square root of the batch ratio), weight decay 5e-6
# on conv/FC weights only, cosine per epoch. `benchmarks/bench_nasbnn_cifar10.py` trains it (with the
# search's fitness images held out of the training set) and drives search, ranking and fine-tuning.
#   python $MMPT/train.py configs/nasbnn/nasbnn-supernet_bi-teacher_1xb128_cifar10.py \
#       --cfg-options train_dataloader.dataset.data_root=/data/cifar10 val_dataloader.dataset.data_root=/data/cifar10
_base_ = ['./nasbnn-supernet_bi-teacher_cifar10-mini.py']

cifar10_root = 'data/cifar10/'
train_dataloader = dict(batch_size=128, num_workers=2, persistent_workers=True,
                        dataset=dict(data_root=cifar10_root))
val_dataloader = dict(batch_size=100, num_workers=2, persistent_workers=True,
                      dataset=dict(data_root=cifar10_root))
test_dataloader = val_dataloader

optim_wrapper = dict(optimizer=dict(lr=1e-3))
max_epochs = 8
param_scheduler = dict(T_max=max_epochs, end=max_epochs)
train_cfg = dict(max_epochs=max_epochs, val_interval=1)
default_hooks = dict(logger=dict(interval=50), checkpoint=dict(type='CheckpointHook', interval=1,
                                                               max_keep_ckpts=2))
auto_scale_lr = dict(base_batch_size=128)

# The drop-in path, kept as a baseline: mmpretrain's CIFAR ResNet-18 with binary convolutions everywhere
# (conv_cfg=BinaryConv2d), on CIFAR-10 (data/cifar10). It barely learns (stem binarises the image, every sign
# follows a ReLU; BinaryConv2d warns). Use binary-resnet18-w16_1xb128_cifar10.py / BinaryResNet instead.
_base_ = 'mmpretrain::resnet/resnet18_8xb16_cifar10.py'

custom_imports = dict(imports=['mmdynbnn'], allow_failed_imports=False)

model = dict(backbone=dict(conv_cfg=dict(type='BinaryConv2d')))
# Binary networks train with Adam (as NAS-BNN / ReActNet do); SGD at lr 0.1 does not converge for them.
optim_wrapper = dict(_delete_=True, optimizer=dict(type='Adam', lr=1e-3, weight_decay=0))

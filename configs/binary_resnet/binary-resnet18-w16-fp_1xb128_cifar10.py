# The float twin of binary-resnet18-w16_1xb128_cifar10.py: the same network and recipe with real-valued
# 3x3 convs and no signs (the reference a binary network is measured against).
_base_ = './binary-resnet18-w16_1xb128_cifar10.py'

model = dict(backbone=dict(binary=False))

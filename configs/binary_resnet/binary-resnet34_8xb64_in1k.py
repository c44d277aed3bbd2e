# BinaryResNet-34 on ImageNet-1k with the recipe of binary-resnet18_8xb64_in1k.py.
_base_ = './binary-resnet18_8xb64_in1k.py'

model = dict(backbone=dict(depth=34))

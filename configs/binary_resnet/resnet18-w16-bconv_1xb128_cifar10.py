# The drop-in path, kept as a baseline: mmpretrain's stock CIFAR ResNet-18 at the same widths as
# binary-resnet18-w16 with conv_cfg=BinaryConv2d. It binarises the image in the stem and puts every sign after
# a ReLU, so it barely learns (BinaryConv2d warns at build time and at the first training step); see
# docs/binary_resnet.md for the measured numbers. Use binary-resnet18-w16_1xb128_cifar10.py instead.
_base_ = './binary-resnet18-w16_1xb128_cifar10.py'

model = dict(
    backbone=dict(_delete_=True, type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                  out_indices=(3, ), conv_cfg=dict(type='BinaryConv2d')))

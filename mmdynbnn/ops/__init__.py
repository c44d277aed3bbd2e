"""Binary and low-bit building blocks, registered in mmengine's root ``MODELS`` registry."""
from .binary_conv import BinaryConv2d
from .foldable_conv import FoldableConv2d
from .kernel_transform import KernelTransform
from .learnable_bias import LearnableBias
from .quant_conv import QuantConv2d
from .rprelu import RPReLU
from .rsign import RSign

__all__ = ['BinaryConv2d', 'FoldableConv2d', 'KernelTransform', 'LearnableBias', 'QuantConv2d', 'RPReLU',
           'RSign']

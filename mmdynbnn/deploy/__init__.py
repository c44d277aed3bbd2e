"""Bit-packed CPU inference for the project's binary convolutions (issue 6).

``convert_to_deploy(model)`` turns any module tree with :class:`mmdynbnn.ops.BinaryConv2d` layers into a
deploy model whose binary convs run as XOR + popcount on 64-bit packed operands (C++ kernels, AVX-512
VPOPCNTDQ / AVX2 / popcnt / portable, chosen at run time) or, without the extension, on the pure-torch
reference path. ``describe_backend()`` says which path is active. See ``docs/deploy.md``.
"""
from .backend import backend_info, describe_backend, get_extension
from .converter import (UnsupportedLayerError, convert_to_deploy, deploy_summary, find_unsupported,
                        fold_batchnorms)
from .functional import binary_conv_packed, kernel_options, pack_activations
from .modules import FusedRPReLU, PackedActivation, PackedBinaryConv2d, float_conv_from_quant
from .packing import pack_bits, pack_weights, unpack_activations, unpack_bits, unpack_weights

__all__ = ['FusedRPReLU', 'PackedActivation', 'PackedBinaryConv2d', 'UnsupportedLayerError', 'backend_info',
           'binary_conv_packed', 'convert_to_deploy', 'deploy_summary', 'describe_backend', 'find_unsupported',
           'float_conv_from_quant', 'fold_batchnorms', 'get_extension', 'kernel_options', 'pack_activations',
           'pack_bits', 'pack_weights', 'unpack_activations', 'unpack_bits', 'unpack_weights']

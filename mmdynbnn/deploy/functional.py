"""Bit-packed ops with one signature for both paths: the C++ extension and the pure-torch reference.

``isa``: ``None`` = best the CPU supports, or one of ``'scalar' | 'popcnt' | 'avx2' | 'avx512-vpopcntdq'``
(to test or time a lower instruction set). ``reference=True`` forces the pure-torch path.

Both paths produce bit-identical results: the dot products are exact integers, and the epilogue is
``float(dot) * scale + bias`` with two float roundings in both (the C++ build uses -ffp-contract=off).
"""
import contextlib
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor

from . import packing
from .backend import get_extension, isa_level

_forced = {'isa': None, 'reference': False}


@contextlib.contextmanager
def kernel_options(isa: Optional[str] = None, reference: bool = False):
    """Within the block, run the deploy modules with a given instruction set or the reference path."""
    old = dict(_forced)
    _forced.update(isa=isa, reference=reference)
    try:
        yield
    finally:
        _forced.update(old)


def _ext(reference: Optional[bool]):
    if reference is None:
        reference = _forced['reference']
    return None if reference else get_extension()


def _isa(isa: Optional[str]) -> int:
    return isa_level(isa if isa is not None else _forced['isa'])


def pack_activations(x: Tensor, threshold: Optional[Tensor], groups: int, pad_h: int, pad_w: int,
                     isa: Optional[str] = None, reference: Optional[bool] = None) -> Tensor:
    """sign(x + threshold) of float (N, C, H, W) as packed (N, H + 2 pad_h, W + 2 pad_w, G, Wg) words."""
    ext = _ext(reference)
    if ext is None:
        return packing.pack_activations(x, threshold, groups, pad_h, pad_w)
    x = x if x.dtype == torch.float32 else x.float()
    return ext.pack_activations(x, threshold, groups, pad_h, pad_w, _isa(isa))


def binary_conv_packed(act: Tensor, size, padding, in_channels: int, wpk: Tensor, pcw: Tensor,
                       out_channels: int, kernel_size, stride, dilation, scale: Tensor, bias: Optional[Tensor],
                       out_packed: bool = False, next_threshold: Optional[Tensor] = None, out_padding=(0, 0),
                       isa: Optional[str] = None, reference: Optional[bool] = None) -> Tensor:
    """XOR/popcount convolution of packed activations with packed weights, fused ``* scale + bias``.

    ``size`` is the unpadded (H, W) of the input, ``padding`` the padding ring ``act`` was packed with.
    Returns float (N, Cout, Ho, Wo) (channels_last memory on the C++ path) or, with ``out_packed``, the
    packed ``sign(y + next_threshold)`` (groups 1, padding ``out_padding``) for the next binary conv.
    """
    groups = act.shape[3]
    cg = in_channels // groups
    ext = _ext(reference)
    if ext is not None:
        return ext.binary_conv(act, size[0], size[1], padding[0], padding[1], cg, wpk, pcw, out_channels,
                               kernel_size[0], kernel_size[1], stride[0], stride[1], dilation[0], dilation[1],
                               scale, bias, out_packed, next_threshold, out_padding[0], out_padding[1],
                               _isa(isa))
    x = packing.unpack_activations(act, in_channels, padding[0], padding[1])
    weight = packing.unpack_weights(wpk, out_channels, cg)
    dot = F.conv2d(x, weight, None, stride, padding, dilation, groups)  # exact integers
    y = dot * scale.view(1, -1, 1, 1)
    if bias is not None:
        y = y + bias.view(1, -1, 1, 1)
    if out_packed:
        return packing.pack_activations(y, next_threshold, 1, out_padding[0], out_padding[1])
    return y

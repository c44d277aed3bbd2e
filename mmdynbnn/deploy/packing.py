"""Bit packing in pure torch: the layouts of ``csrc/bitpack/bitpack_kernels.h`` and the reference path.

A +-1 value is one bit, 0 for +1 and 1 for -1 (``sign(0) = +1``; NaN gives -1 like training's
``torch.where(x >= 0, 1, -1)``). Bits are packed along channels into little-endian 64-bit words stored
as ``torch.int64``; unused bits of a group's last word are 0.

Example:
    >>> import torch
    >>> bits = torch.rand(3, 70) < 0.5
    >>> words = pack_bits(bits)
    >>> words.shape, torch.equal(unpack_bits(words, 70), bits)
    (torch.Size([3, 2]), True)
"""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

WORD_BITS = 64
BLOCK = 16  # output channels per packed weight block (kBlock in the C++ kernels)
_BYTE_WEIGHTS = (2 ** torch.arange(8, dtype=torch.int32)).to(torch.uint8)


def num_words(channels: int) -> int:
    return (channels + WORD_BITS - 1) // WORD_BITS


def pack_bits(bits: Tensor) -> Tensor:
    """Pack a bool tensor ``(..., C)`` (True = -1) into int64 words ``(..., ceil(C / 64))``."""
    if bits.dtype != torch.bool:
        raise TypeError(f'pack_bits expects a bool tensor, got {bits.dtype}')
    channels = bits.shape[-1]
    words = num_words(channels)
    padded = F.pad(bits.to(torch.uint8), (0, words * WORD_BITS - channels))
    byte_bits = padded.reshape(*bits.shape[:-1], words * 8, 8)
    weights = _BYTE_WEIGHTS.to(bits.device)
    packed_bytes = (byte_bits * weights).sum(dim=-1, dtype=torch.int32).to(torch.uint8)
    return packed_bytes.contiguous().view(torch.int64).reshape(*bits.shape[:-1], words)


def unpack_bits(words: Tensor, channels: int) -> Tensor:
    """Inverse of :func:`pack_bits`: int64 words ``(..., W)`` to bool ``(..., channels)``."""
    if words.dtype != torch.int64:
        raise TypeError(f'unpack_bits expects int64 words, got {words.dtype}')
    if channels > words.shape[-1] * WORD_BITS:
        raise ValueError(f'{words.shape[-1]} words hold at most {words.shape[-1] * WORD_BITS} bits, '
                         f'asked for {channels}')
    as_bytes = words.contiguous().view(torch.uint8).reshape(*words.shape[:-1], words.shape[-1] * 8, 1)
    weights = _BYTE_WEIGHTS.to(words.device)
    bits = (as_bytes & weights) != 0
    return bits.reshape(*words.shape[:-1], words.shape[-1] * WORD_BITS)[..., :channels]


def sign_bits(x: Tensor, threshold: Optional[Tensor] = None) -> Tensor:
    """``sign(x + threshold) == -1`` per element of an (N, C, H, W) tensor (threshold per channel)."""
    if threshold is not None:
        x = x + threshold.view(1, -1, 1, 1)
    return ~(x >= 0)


def pack_activations(x: Tensor, threshold: Optional[Tensor], groups: int, pad_h: int, pad_w: int) -> Tensor:
    """sign(x + threshold) of a float (N, C, H, W) tensor packed as (N, H + 2 pad_h, W + 2 pad_w, G, Wg)
    with an all-zero padding ring (the C++ ``pack_activations`` layout)."""
    n, c, h, w = x.shape
    cg = c // groups
    bits = sign_bits(x, threshold).permute(0, 2, 3, 1).reshape(n, h, w, groups, cg)
    words = pack_bits(bits)
    out = torch.zeros(n, h + 2 * pad_h, w + 2 * pad_w, groups, num_words(cg), dtype=torch.int64)
    out[:, pad_h:pad_h + h, pad_w:pad_w + w] = words
    return out


def unpack_activations(packed: Tensor, channels: int, pad_h: int, pad_w: int) -> Tensor:
    """Packed activations back to a +-1 float (N, C, H, W) tensor (the padding ring dropped)."""
    n, hp, wp, groups, _ = packed.shape
    inner = packed[:, pad_h:hp - pad_h, pad_w:wp - pad_w]
    bits = unpack_bits(inner, channels // groups)  # (N, H, W, G, Cg)
    values = 1.0 - 2.0 * bits.to(torch.float32)
    return values.reshape(n, hp - 2 * pad_h, wp - 2 * pad_w, channels).permute(0, 3, 1, 2).contiguous()


def pack_weights(negative: Tensor, groups: int) -> Tuple[Tensor, Tensor]:
    """Pack the signs of a binary weight (Cout, Cg, KH, KW) (``negative``: bool, True = -1).

    Returns ``(wpk, pcw)``: int64 (G, nCB, KH, KW, Wg, 16) words, output channels in zero-padded blocks of
    16, and int32 (G, KH*KW, nCB*16) popcounts per tap (used for the padding edge correction).
    """
    cout, cg, kh, kw = negative.shape
    coutg = cout // groups
    ncb = (coutg + BLOCK - 1) // BLOCK
    words = pack_bits(negative.permute(0, 2, 3, 1).contiguous())  # (Cout, KH, KW, Wg)
    wg = words.shape[-1]
    words = words.reshape(groups, coutg, kh, kw, wg)
    words = F.pad(words, (0, 0, 0, 0, 0, 0, 0, ncb * BLOCK - coutg))  # zero channels up to the block
    wpk = words.reshape(groups, ncb, BLOCK, kh, kw, wg).permute(0, 1, 3, 4, 5, 2).contiguous()
    counts = negative.sum(dim=1, dtype=torch.int32).reshape(groups, coutg, kh * kw)
    counts = F.pad(counts, (0, 0, 0, ncb * BLOCK - coutg))
    pcw = counts.permute(0, 2, 1).contiguous()  # (G, KH*KW, nCB*16)
    return wpk, pcw


def unpack_weights(wpk: Tensor, out_channels: int, in_channels_per_group: int) -> Tensor:
    """Packed weights back to +-1 float (Cout, Cg, KH, KW)."""
    groups, ncb, kh, kw, wg, block = wpk.shape
    coutg = out_channels // groups
    words = wpk.permute(0, 1, 5, 2, 3, 4).reshape(groups, ncb * block, kh, kw, wg)[:, :coutg]
    bits = unpack_bits(words.reshape(out_channels, kh, kw, wg), in_channels_per_group)  # (Cout, KH, KW, Cg)
    return (1.0 - 2.0 * bits.to(torch.float32)).permute(0, 3, 1, 2).contiguous()

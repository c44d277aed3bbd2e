"""Deploy-time modules: the bit-packed binary conv and the float stem conv."""
from typing import NamedTuple, Tuple

import torch
from torch import Tensor, nn
from torch.nn.modules.utils import _pair

from . import functional as BF
from . import packing


class PackedActivation(NamedTuple):
    """Packed +-1 activations passed directly from one :class:`PackedBinaryConv2d` to the next.

    ``data``: int64 (N, H + 2 pad_h, W + 2 pad_w, G, Wg); ``size``: (H, W); ``padding``: (pad_h, pad_w).
    """
    data: Tensor
    size: Tuple[int, int]
    padding: Tuple[int, int]


class PackedBinaryConv2d(nn.Module):
    """Inference-only binary conv on bit-packed operands (XOR + popcount), built by
    :meth:`from_binary_conv` / :func:`mmdynbnn.deploy.convert_to_deploy`.

    ``y = scale_c * dot(sign(x + threshold), sign(w)) + bias_c`` where ``scale`` folds the weight scale
    alpha, the training ``out_scale`` and a folded BN. Zero padding of the +-1 activations is reproduced
    exactly (edge correction). Input: float (N, C, H, W) (binarised and packed here) or a
    :class:`PackedActivation` from a previous layer whose next sign was fused (``emit_packed``).
    Output: float (channels_last memory on the C++ path) or :class:`PackedActivation`.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, threshold: bool = False, name: str = '') -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size, self.stride = _pair(kernel_size), _pair(stride)
        self.padding, self.dilation = _pair(padding), _pair(dilation)
        self.name = name
        cg, coutg = in_channels // groups, out_channels // groups
        ncb = (coutg + packing.BLOCK - 1) // packing.BLOCK
        kh, kw = self.kernel_size
        self.register_buffer('weight_packed', torch.zeros(groups, ncb, kh, kw, packing.num_words(cg),
                                                          packing.BLOCK, dtype=torch.int64))
        self.register_buffer('weight_popcount', torch.zeros(groups, kh * kw, ncb * packing.BLOCK,
                                                            dtype=torch.int32))
        self.register_buffer('scale', torch.ones(out_channels))
        self.register_buffer('bias', torch.zeros(out_channels) if bias else None)
        self.register_buffer('threshold', torch.zeros(in_channels) if threshold else None)
        # Fused next sign (set by the converter): emit PackedActivation for the next binary conv.
        self.emit_packed = False
        self.register_buffer('next_threshold', None)
        self.next_padding = (0, 0)
        self.next_groups = 1

    @classmethod
    @torch.no_grad()
    def from_binary_conv(cls, conv: nn.Module, name: str = '') -> 'PackedBinaryConv2d':
        """Pack a trained :class:`mmdynbnn.ops.BinaryConv2d` (binary mode, BN possibly folded)."""
        weight = conv.effective_weight().detach().float().cpu()  # alpha_c * sign(w_hat)
        alpha = weight.abs().flatten(1).amax(dim=1)
        scale = alpha if conv.out_scale is None else alpha * conv.out_scale.detach().float().cpu()
        if conv.rsign is not None:
            threshold = conv.rsign.bias.detach().float().cpu()
        else:
            threshold = None  # 'sign' and 'none' (already +-1): threshold 0
        mod = cls(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                  conv.dilation, conv.groups, bias=conv.bias is not None, threshold=threshold is not None,
                  name=name)
        mod.weight_packed, mod.weight_popcount = packing.pack_weights(weight < 0, conv.groups)
        mod.scale = scale.contiguous()
        if conv.bias is not None:
            mod.bias = conv.bias.detach().float().cpu().contiguous()
        if threshold is not None:
            mod.threshold = threshold.contiguous()
        return mod

    def output_size(self, h: int, w: int) -> Tuple[int, int]:
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = self.kernel_size, self.stride, self.padding, self.dilation
        return (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1, (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1

    def forward(self, x):
        if isinstance(x, PackedActivation):
            if tuple(x.padding) != self.padding or x.data.shape[3] != self.groups:
                raise ValueError(f'{self.label()}: packed input has padding {x.padding} / {x.data.shape[3]} '
                                 f'groups, expected {self.padding} / {self.groups}')
            act, size = x.data, x.size
        else:
            if x.dim() != 4 or x.shape[1] != self.in_channels:
                raise ValueError(f'{self.label()}: expected input (N, {self.in_channels}, H, W), got '
                                 f'{tuple(x.shape)}')
            act = BF.pack_activations(x, self.threshold, self.groups, *self.padding)
            size = (x.shape[2], x.shape[3])
        out = BF.binary_conv_packed(act, size, self.padding, self.in_channels, self.weight_packed,
                                    self.weight_popcount, self.out_channels, self.kernel_size, self.stride,
                                    self.dilation, self.scale, self.bias, out_packed=self.emit_packed,
                                    next_threshold=self.next_threshold, out_padding=self.next_padding)
        if self.emit_packed:
            n, hp, wp = out.shape[:3]
            out = out.view(n, hp, wp, self.next_groups, -1)
            return PackedActivation(out, self.output_size(*size), self.next_padding)
        return out

    def label(self) -> str:
        return f'{self.name or "PackedBinaryConv2d"}'

    def extra_repr(self) -> str:
        s = (f'{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, '
             f'padding={self.padding}, groups={self.groups}')
        if self.dilation != (1, 1):
            s += f', dilation={self.dilation}'
        if self.threshold is not None:
            s += ', threshold=True'
        if self.emit_packed:
            s += ', emit_packed=True'
        return s


def float_conv_from_quant(conv: nn.Module) -> nn.Conv2d:
    """A :class:`mmdynbnn.ops.QuantConv2d` (stem) as a plain float ``nn.Conv2d``: the quantised weight is
    computed once, its ``out_scale`` (folded BN) folded into the weight, ``bias`` kept."""
    with torch.no_grad():
        weight = conv.quantized_weight().detach().float()
        if conv.out_scale is not None:
            weight = weight * conv.out_scale.detach().view(-1, 1, 1, 1)
        has_bias = conv.bias is not None
        out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                        conv.dilation, conv.groups, bias=has_bias)
        out.weight.copy_(weight)
        if has_bias:
            out.bias.copy_(conv.bias.detach())
    return out.eval()


class FusedRPReLU(nn.Module):
    """:class:`mmdynbnn.ops.RPReLU` in one memory pass (C++), bit-identical to the three torch ops
    (``x - shift_in``, ``prelu``, ``+ shift_out``); falls back to those ops without the extension or for
    layouts other than NCHW / channels_last contiguous."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.register_buffer('shift_in', torch.zeros(num_channels))
        self.register_buffer('slope', torch.full((num_channels,), 0.25))
        self.register_buffer('shift_out', torch.zeros(num_channels))

    @classmethod
    @torch.no_grad()
    def from_rprelu(cls, act: nn.Module) -> 'FusedRPReLU':
        mod = cls(act.num_channels)
        mod.shift_in = act.shift_in.detach().float().cpu().contiguous()
        mod.slope = act.slope.detach().float().cpu().contiguous()
        mod.shift_out = act.shift_out.detach().float().cpu().contiguous()
        return mod

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != self.num_channels:
            raise ValueError(f'FusedRPReLU({self.num_channels}): expected (N, {self.num_channels}, H, W), '
                             f'got {tuple(x.shape)}')
        ext = BF._ext(None)
        if (ext is not None and x.dtype == torch.float32 and x.device.type == 'cpu'
                and (x.is_contiguous() or x.is_contiguous(memory_format=torch.channels_last))):
            return ext.rprelu(x, self.shift_in, self.slope, self.shift_out, BF._isa(None))
        y = torch.nn.functional.prelu(x - self.shift_in.view(1, -1, 1, 1), self.slope)
        return y + self.shift_out.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f'num_channels={self.num_channels}'

"""Pieces shared by the NAS-BNN supernet and its static subnets (``docs/nasbnn.md`` §1-§2).

The supernet modules hold tensors sized for the biggest choice and use the leading slices for a smaller
one. Parameter names mirror the foundation modules the static backbone uses (``RSign.bias``,
``RPReLU.shift_in/slope/shift_out``, ``BatchNorm2d``, ``QuantConv2d.weight/weight_scale``), so exporting a
subnet is slicing plus the kernel preparation of :func:`active_kernel`.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...ops.functional import (approx_sign, binarize_weight, binary_conv2d, int_conv2d, lsq_init_scale,
                               lsq_quantize, preprocess_weight, standardize_weight)
from ...ops.kernel_transform import kernel_transform


def group_slices(in_channels: int, groups: int, stored_in: int) -> List[int]:
    """Start of the input-channel slice of the shared weight that each of ``groups`` groups reads.

    The weight stores ``stored_in`` input channels (the widest input over the fewest groups). Group ``i``
    reads ``[start_i, start_i + in_channels / groups)`` with ``start_i = (i % r) * in_channels / groups``,
    ``r = min(in_channels, stored_in) // (in_channels / groups)``: when the input fits the stored kernel
    (always when the fewest groups is 1), group ``i`` reads exactly its own input channels, so the grouped
    kernel is the dense ``in_channels x in_channels`` kernel with the off-diagonal blocks masked and every
    group count shares the weights of one dense kernel (as in the NAS-BNN reference); a wider input wraps
    around the stored width.
    """
    per_group = in_channels // groups
    ratio = min(in_channels, stored_in) // per_group
    return [(i % ratio) * per_group for i in range(groups)]


def active_kernel(weight: Tensor, out_channels: int, in_channels: int, groups: int, kernel: int,
                  matrix: Optional[Tensor] = None) -> Tensor:
    """The latent k x k weight of a subnet's conv, before WN / sign: ``(out_channels, in_channels /
    groups, k, k)``.

    Output channels are the leading ``out_channels``; the output channels of group ``i`` read the input
    slice of :func:`group_slices` (one slice, the leading one, without groups); a smaller kernel is the
    centre crop times its own transform (``matrix``, both modes, as in Once-for-All); the largest kernel
    gets the Bi-Transformation ``matrix`` in binary mode only. The caller passes the matrix that applies
    (or None).
    """
    full = weight.shape[-1]
    per_group = in_channels // groups
    starts = group_slices(in_channels, groups, weight.shape[1])
    if all(s == 0 for s in starts):
        w = weight[:out_channels, :per_group]
    else:
        rows = out_channels // groups
        w = torch.cat([weight[i * rows:(i + 1) * rows, s:s + per_group] for i, s in enumerate(starts)])
    if kernel < full:
        off = (full - kernel) // 2
        w = w[..., off:off + kernel, off:off + kernel]
    if matrix is not None:
        w = kernel_transform(w, matrix)
    return w


def shortcut(x: Tensor, out_channels: int, stride: int) -> Tensor:
    """Parameter-free shortcut: average pooling for stride > 1, channel repeat+crop or crop.

    ``ceil_mode`` makes the pooled size ceil(H/s), the size of the padded k x k strided conv beside it,
    so odd input sizes work.
    """
    if stride > 1:
        x = F.avg_pool2d(x, stride, stride, ceil_mode=True, count_include_pad=False)
    c = x.shape[1]
    if out_channels > c:
        x = x.repeat(1, math.ceil(out_channels / c), 1, 1)
    return x[:, :out_channels] if x.shape[1] != out_channels else x


class SlicedRSign(nn.Module):
    """RSign whose threshold vector serves any input width up to ``num_channels`` (leading slice)."""

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        return approx_sign(x + self.bias[:x.shape[1]].view(1, -1, 1, 1))


class SlicedRPReLU(nn.Module):
    """RPReLU (shift, PReLU with slope init 0.25, shift) with leading-slice parameters."""

    def __init__(self, num_channels: int, init_slope: float = 0.25) -> None:
        super().__init__()
        self.num_channels = num_channels
        self.shift_in = nn.Parameter(torch.zeros(num_channels))
        self.slope = nn.Parameter(torch.full((num_channels,), float(init_slope)))
        self.shift_out = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        x = F.prelu(x - self.shift_in[:c].view(1, -1, 1, 1), self.slope[:c])
        return x + self.shift_out[:c].view(1, -1, 1, 1)


class SlicedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d applied to the leading channels of its parameters and running statistics.

    In training mode the running statistics of the active slice are updated in place.
    """

    def forward(self, x: Tensor) -> Tensor:
        c = x.shape[1]
        if c == self.num_features:
            return super().forward(x)
        momentum = self.momentum if self.momentum is not None else 0.0
        if self.training and self.track_running_stats:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:  # cumulative average, as nn.BatchNorm2d
                momentum = 1.0 / float(self.num_batches_tracked)
        # As nn.BatchNorm2d: batch statistics in training or without running statistics; the running
        # statistics (a view of the leading slice, updated in place) otherwise / in addition.
        use_batch_stats = self.training or self.running_mean is None
        use_running = self.running_mean is not None and (not self.training or self.track_running_stats)
        return F.batch_norm(x, self.running_mean[:c] if use_running else None,
                            self.running_var[:c] if use_running else None,
                            self.weight[:c] if self.weight is not None else None,
                            self.bias[:c] if self.bias is not None else None,
                            use_batch_stats, momentum, self.eps)


class SuperBinaryConv(nn.Module):
    """The k x k (or 1 x 1) binary conv of a supernet block, with its RSign.

    Weight ``(max_out, max_in // min_groups, K, K)``; ``crop_matrices[str(k)]`` (k^2 x k^2, identity
    init) make the smaller kernels from the K x K centre; ``bi_matrix`` (K^2 x K^2, identity init) is the
    Bi-Transformation of the largest kernel, used in binary mode only.
    """

    def __init__(self, max_in: int, max_out: int, kernels: Sequence[int], min_groups: int = 1) -> None:
        super().__init__()
        kernels = tuple(sorted(kernels))
        big = kernels[-1]
        self.max_in, self.max_out, self.kernels, self.min_groups = max_in, max_out, kernels, min_groups
        self.rsign = SlicedRSign(max_in)
        self.weight = nn.Parameter(torch.empty(max_out, max_in // min_groups, big, big))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))  # nn.Conv2d's default
        self.crop_matrices = nn.ParameterDict({str(k): nn.Parameter(torch.eye(k * k)) for k in kernels[:-1]})
        self.bi_matrix = nn.Parameter(torch.eye(big * big)) if big > 1 else None

    def transform_matrix(self, kernel: int, binary: bool) -> Optional[Tensor]:
        if kernel < self.kernels[-1]:
            return self.crop_matrices[str(kernel)]
        return self.bi_matrix if binary else None

    def export_weight(self, out_channels: int, in_channels: int, kernel: int, groups: int) -> Tensor:
        """The static (binary-mode) latent weight: transforms baked in."""
        with torch.no_grad():
            return active_kernel(self.weight, out_channels, in_channels, groups, kernel,
                                 self.transform_matrix(kernel, True)).clone()

    def forward(self, x: Tensor, in_channels: int, out_channels: int, kernel: int, stride: int, groups: int,
                binary: bool) -> Tensor:
        x = self.rsign(x)
        matrix = self.transform_matrix(kernel, binary)
        # Values are bound now: WeightPreprocess re-runs the function in backward, after the supernet
        # may have switched subnet/mode for the next pass.
        post = binarize_weight if binary else standardize_weight

        def prepare(weight: Tensor, *m: Tensor) -> Tensor:
            return post(active_kernel(weight, out_channels, in_channels, groups, kernel, *m))

        tensors = (self.weight,) if matrix is None else (self.weight, matrix)
        weight = preprocess_weight(prepare, *tensors)
        pad = (kernel // 2, kernel // 2)
        if binary:
            return binary_conv2d(x, weight, (stride, stride), pad, (1, 1), groups)
        return F.conv2d(x, weight, None, stride, pad, 1, groups)


class SuperQuantConv(nn.Module):
    """The b-bit LSQ stem conv with a sliceable output width (step size initialised at first forward)."""

    def __init__(self, in_channels: int, max_out: int, kernel: int, stride: int, bits: int) -> None:
        super().__init__()
        self.kernel, self.stride, self.bits = kernel, stride, bits
        self.weight = nn.Parameter(torch.empty(max_out, in_channels, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        self.weight_scale = nn.Parameter(torch.ones(max_out))
        self.register_buffer('scale_initialized', torch.tensor(False))

    def forward(self, x: Tensor, out_channels: int) -> Tensor:
        if not bool(self.scale_initialized):
            with torch.no_grad():
                bits = self.bits  # one opaque op: a jit trace must not see the statistics as float ops
                self.weight_scale.copy_(preprocess_weight(lambda w: lsq_init_scale(w, bits), self.weight))
                self.scale_initialized.fill_(1)
        bits, c = self.bits, out_channels
        weight = preprocess_weight(lambda w, s: lsq_quantize(w[:c], s[:c], bits), self.weight,
                                   self.weight_scale)
        pad = self.kernel // 2
        return int_conv2d(x, weight, bits, (self.stride, self.stride), (pad, pad))


def freeze(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad = False


def bn_modules(module: nn.Module) -> Dict[str, nn.Module]:
    return {n: m for n, m in module.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)}


class StageFreezeMixin:
    """``frozen_stages`` and ``norm_eval`` as in mmdet/mmpretrain backbones, for a module with ``stem`` and
    ``stages`` (stem frozen from ``frozen_stages >= 0``, then the first ``frozen_stages`` stages)."""

    frozen_stages: int
    norm_eval: bool

    def _freeze_stages(self) -> None:
        if self.frozen_stages >= 0:
            freeze(self.stem)
        for i in range(self.frozen_stages):
            freeze(self.stages[i])

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        if mode and self.norm_eval:
            for m in bn_modules(self).values():
                m.eval()
        return self

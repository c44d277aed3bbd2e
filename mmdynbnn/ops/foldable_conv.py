"""Base of the project's quantised convs: argument checks and BN folding that keeps the quantised weight."""
from typing import Optional

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from .checks import check_positive_int


class FoldableConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose output may carry a per-channel affine ``y * out_scale + bias``.

    Folding BN into the latent weight of a quantised conv is wrong (WN and sign/rounding undo or distort
    the scale), so :meth:`fuse_bn_` folds BN into ``out_scale``/``bias`` instead. Subclasses implement
    :meth:`conv` (the quantised convolution without bias).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = 'zeros', device=None,
                 dtype=None) -> None:
        name = f'{type(self).__name__}(in_channels={in_channels}, out_channels={out_channels})'
        for field, value in (('in_channels', in_channels), ('out_channels', out_channels), ('groups', groups)):
            check_positive_int(name, field, value)
        for field, value in (('in_channels', in_channels), ('out_channels', out_channels)):
            if value % groups:
                raise ValueError(f'{name}: {field}={value} is not divisible by groups={groups}; '
                                 f'allowed groups divide both channel counts')
        if isinstance(padding, str):
            raise ValueError(f"{name}: padding={padding!r} is not supported; give explicit int padding")
        if padding_mode != 'zeros':
            raise ValueError(f"{name}: padding_mode={padding_mode!r} is not supported; allowed: ('zeros',)")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        self.register_buffer('out_scale', None)

    @property
    def layer_name(self) -> str:
        """One-line identity of this layer, used in error messages."""
        return (f'{type(self).__name__}({self.in_channels}, {self.out_channels}, '
                f'kernel_size={self.kernel_size}, stride={self.stride}, groups={self.groups})')

    def conv(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv(x)
        if self.out_scale is not None:
            out = out * self.out_scale.view(1, -1, 1, 1)
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1)
        return out

    def _conv_forward(self, input: Tensor, weight: Tensor, bias: Optional[Tensor]) -> Tensor:
        # mmcv's efficient_conv_bn_eval calls this with a BN-scaled latent weight; quantising that weight
        # would silently give wrong outputs.
        raise RuntimeError(f'{self.layer_name}: a float weight cannot be substituted into a quantised conv '
                           f'(e.g. ConvModule(efficient_conv_bn_eval=True)); fold BN with '
                           f'mmcv.cnn.fuse_conv_bn or {type(self).__name__}.fuse_bn_ instead')

    @torch.no_grad()
    def fuse_bn_(self, bn: _BatchNorm) -> 'FoldableConv2d':
        """Fold an eval-mode BN that follows this conv into the output affine; returns ``self``."""
        if not isinstance(bn, _BatchNorm) or bn.num_features != self.out_channels:
            raise ValueError(f'{self.layer_name}: cannot fold {bn!r}; need a BatchNorm with '
                             f'{self.out_channels} features')
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError(f'{self.layer_name}: cannot fold {bn!r} without running statistics '
                             f'(track_running_stats=False)')
        gamma = bn.weight if bn.weight is not None else torch.ones_like(bn.running_mean)
        beta = bn.bias if bn.bias is not None else torch.zeros_like(bn.running_mean)
        factor = gamma / torch.sqrt(bn.running_var + bn.eps)
        old_scale = self.out_scale if self.out_scale is not None else torch.ones_like(factor)
        old_bias = self.bias if self.bias is not None else torch.zeros_like(factor)
        self.out_scale = old_scale * factor
        self.bias = nn.Parameter((old_bias - bn.running_mean) * factor + beta)
        return self

"""BinaryConv2d: 1-bit weights (WN + sign + per-channel scale) and 1-bit activations."""
from typing import Optional

from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_choice, check_nchw
from .foldable_conv import FoldableConv2d
from .functional import approx_sign, binarize_weight, binary_conv2d, preprocess_weight, standardize_weight
from .kernel_transform import KernelTransform
from .rsign import RSign


@MODELS.register_module()
class BinaryConv2d(FoldableConv2d):
    """Binary convolution, a drop-in ``nn.Conv2d`` (``conv_cfg=dict(type='BinaryConv2d')`` in mmcv's
    ``ConvModule`` and in mmdet/mmpretrain backbones).

    Forward: binarise the input (see ``act_binarizer``), binarise the latent weight
    (optional kernel transform, then Weight Normalisation, then ``alpha_c * sign``), convolve.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias: as ``nn.Conv2d``
            (``padding_mode`` must be ``'zeros'``: padded positions of the +-1 input are 0).
        mode: ``'binary'`` (1-bit weights) or ``'fp'`` (full-precision WN weights, still binary
            activations: the Bi-Teacher teacher pass). Can be changed at any time.
        act_binarizer: ``'rsign'`` (learnable per-channel threshold, own parameters), ``'sign'``
            (ApproxSign, no parameters) or ``'none'`` (the input is already +-1, e.g. after an explicit
            :class:`RSign`).
        bi_transform: attach a learnable :class:`KernelTransform` (Bi-Transformation, identity init),
            applied in binary mode only. Other transforms can be attached with
            :meth:`set_kernel_transform`.

    Example:
        >>> import torch
        >>> conv = BinaryConv2d(8, 16, 3, padding=1, bias=False)
        >>> conv(torch.randn(2, 8, 10, 10)).shape
        torch.Size([2, 16, 10, 10])
    """

    MODES = ('binary', 'fp')
    ACT_BINARIZERS = ('rsign', 'sign', 'none')

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = 'zeros', device=None, dtype=None,
                 mode: str = 'binary', act_binarizer: Optional[str] = 'rsign',
                 bi_transform: bool = False) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        fan_in = self.weight[0].numel()
        if fan_in < 2:
            raise ValueError(f'{self.layer_name}: weight normalisation needs at least 2 weights per output '
                             f'channel (in_channels/groups * kH * kW), got {fan_in}')
        act_binarizer = 'none' if act_binarizer is None else act_binarizer
        check_choice(self.layer_name, 'act_binarizer', act_binarizer, self.ACT_BINARIZERS)
        self.act_binarizer = act_binarizer
        self.rsign = RSign(in_channels) if act_binarizer == 'rsign' else None
        self.mode = mode
        self.kernel_transform: Optional[nn.Module] = None
        if bi_transform:
            kh, kw = self.kernel_size
            if kh != kw or kh < 2:
                raise ValueError(f'{self.layer_name}: bi_transform needs a square kernel >= 2, got '
                                 f'{self.kernel_size}')
            self.kernel_transform = KernelTransform(kh)

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        check_choice(self.layer_name, 'mode', value, self.MODES)
        self._mode = value

    def set_kernel_transform(self, transform: Optional[nn.Module]) -> None:
        """Attach (or remove with ``None``) a transform of the latent weight applied before binarisation.

        It must be an ``nn.Module`` with ``apply_to(weight, *params)``: a pure function of the weight and
        of its own ``parameters()`` (in that order) returning a weight of the same shape.
        """
        if transform is not None and not (isinstance(transform, nn.Module) and hasattr(transform, 'apply_to')):
            raise TypeError(f'{self.layer_name}: kernel transform must be None or an nn.Module with '
                            f'apply_to(weight, *params), got {type(transform).__name__}')
        self.kernel_transform = transform

    def binarize_input(self, x: Tensor) -> Tensor:
        if self.rsign is not None:
            return self.rsign(x)
        return approx_sign(x) if self.act_binarizer == 'sign' else x

    def effective_weight(self) -> Tensor:
        """The weight the convolution uses in the current mode (binary: ``alpha * sign``)."""
        if self.mode == 'fp':
            return preprocess_weight(standardize_weight, self.weight)
        transform = self.kernel_transform
        if transform is None:
            return preprocess_weight(binarize_weight, self.weight)
        def transformed(weight: Tensor, *params: Tensor) -> Tensor:
            return binarize_weight(transform.apply_to(weight, *params))

        return preprocess_weight(transformed, self.weight, *transform.parameters())

    def conv(self, x: Tensor) -> Tensor:
        check_nchw(self, x, self.in_channels)
        x = self.binarize_input(x)
        weight = self.effective_weight()
        if self.mode == 'fp':
            return nn.functional.conv2d(x, weight, None, self.stride, self.padding, self.dilation, self.groups)
        return binary_conv2d(x, weight, self.stride, self.padding, self.dilation, self.groups)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, mode={self.mode!r}, act_binarizer={self.act_binarizer!r}'

"""BinaryConv2d: 1-bit weights (WN + sign + per-channel scale) and 1-bit activations."""
import warnings
from typing import Optional

import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_choice, check_nchw
from .foldable_conv import FoldableConv2d
from .functional import approx_sign, binarize_weight, binary_conv2d, preprocess_weight, standardize_weight
from .kernel_transform import KernelTransform
from .rsign import RSign


class DegenerateBinaryInputWarning(UserWarning):
    """A binary conv is placed where its sign cannot carry information (an image input, or a ReLU before it)."""


# Widths of an image: a binary conv with this many input channels is almost surely the stem.
IMAGE_CHANNELS = (1, 3)
# Warn when more than this fraction of the sign's channels are constant over the first training batch.
CONSTANT_SIGN_FRACTION = 0.5
# ... judged only once the batch holds at least this many values per channel.
MIN_VALUES_PER_CHANNEL = 64


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

    Placed as a drop-in in a stock ResNet (``conv_cfg=dict(type='BinaryConv2d')``) the layer cannot learn:
    the stem binarises the image, and every other binary conv follows a ReLU, so ``sign(x + b)`` with
    ``x >= 0`` is constant. The layer says so with a :class:`DegenerateBinaryInputWarning`: at build time
    when it has an image's width of input channels (1 or 3), and at its first training forward when the
    sign is constant over the batch in most channels. Use :class:`mmdynbnn.models.BinaryResNet` (or
    NAS-BNN backbones) instead: real-valued stem and shortcuts, no ReLU in front of a sign.

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
        # The first training forward checks that the sign sees both signs (see the class docstring).
        self._sign_input_checked = False
        if in_channels in IMAGE_CHANNELS and act_binarizer != 'none':
            warnings.warn(f'{self.layer_name}: binarising a {in_channels}-channel input, probably the image '
                          f'(the stem built from conv_cfg): one bit per pixel and channel is left. Keep the '
                          f'stem real-valued, e.g. with the BinaryResNet backbone', DegenerateBinaryInputWarning,
                          stacklevel=2)

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

    def _check_sign_input(self, x: Tensor) -> None:
        """Warn once if the sign's input is one-signed in most channels (e.g. the output of a ReLU)."""
        if x.numel() // max(x.shape[1], 1) < MIN_VALUES_PER_CHANNEL:
            return  # too few values per channel to tell (e.g. 1x1 maps of one image): check a later batch
        self._sign_input_checked = True
        with torch.no_grad():
            v = x.detach()
            if self.rsign is not None:
                v = v + self.rsign.bias.detach().view(1, -1, 1, 1)
            v = v.transpose(0, 1).flatten(1)
            constant = ((v >= 0).all(dim=1) | (v < 0).all(dim=1)).float().mean().item()
        if constant > CONSTANT_SIGN_FRACTION:
            warnings.warn(f'{self.layer_name}: the sign of the input is constant over the whole batch in '
                          f'{constant:.0%} of the channels (all inputs on one side of the threshold, e.g. '
                          f'after a ReLU), so the binary activation carries no information and the layer '
                          f'cannot learn. Do not put a ReLU before a binary conv: use the BinaryResNet '
                          f'backbone or RPReLU/real-valued shortcuts', DegenerateBinaryInputWarning,
                          stacklevel=2)

    def binarize_input(self, x: Tensor) -> Tensor:
        if self.training and self.act_binarizer != 'none' and not self._sign_input_checked:
            self._check_sign_input(x)
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

"""BinaryResNet: a ResNet whose 3x3 convolutions are binary, built the way binary networks learn.

The structure follows Bi-Real Net and ReActNet rather than a stock ResNet with binary convs:

* every binary conv has its own real-valued shortcut (two per basic block), so real information flows
  around each sign;
* no ReLU stands in front of a sign: each unit is ``RPReLU(BN(BinaryConv(RSign(x))) + shortcut(x))``, and
  RPReLU keeps negative values (slope 0.25) for the next RSign;
* the stem, the down-sampling shortcuts (average pooling, then a real-valued 1x1 conv + BN or a channel
  repeat) and the classifier (the head) stay real-valued; the stem can be 8-bit (LSQ);
* ``binary=False`` builds the float twin: the same network with real-valued 3x3 convs and no signs.
"""
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...ops import BinaryConv2d, QuantConv2d, RPReLU
from ...ops.checks import check_choice, check_positive_int
from .nasbnn_blocks import StageFreezeMixin, shortcut
from .nasbnn_supernet import check_out_indices


class DownsampleShortcut(nn.Module):
    """Real-valued shortcut that changes resolution and/or width.

    ``'conv'`` (Bi-Real Net): average pooling (stride > 1), then a float 1x1 conv and BN.
    ``'repeat'`` (parameter-free): average pooling, then the channels repeated (and cropped) to the width.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int, mode: str) -> None:
        super().__init__()
        self.out_channels, self.stride, self.mode = out_channels, stride, mode
        if mode == 'conv':  # 'repeat' pools inside the shared parameter-free ``shortcut``
            self.pool = (nn.AvgPool2d(stride, stride, ceil_mode=True, count_include_pad=False)
                         if stride > 1 else nn.Identity())
            self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.bn = nn.BatchNorm2d(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        if self.mode == 'repeat':
            return shortcut(x, self.out_channels, self.stride)
        return self.bn(self.conv(self.pool(x)))


class BinaryConvUnit(nn.Module):
    """``RPReLU(BN(conv(x)) + shortcut(x))`` with a binary (RSign inside) or float 3x3 conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, downsample: str, binary: bool) -> None:
        super().__init__()
        if binary:
            self.conv = BinaryConv2d(in_channels, out_channels, 3, stride, 1, bias=False, act_binarizer='rsign')
        else:
            self.conv = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.shortcut = (nn.Identity() if stride == 1 and in_channels == out_channels
                         else DownsampleShortcut(in_channels, out_channels, stride, downsample))
        self.act = RPReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)) + self.shortcut(x))


class BinaryBasicBlock(nn.Sequential):
    """Two :class:`BinaryConvUnit` s: the ResNet basic block with a shortcut around each conv."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, downsample: str, binary: bool) -> None:
        super().__init__(BinaryConvUnit(in_channels, out_channels, stride, downsample, binary),
                         BinaryConvUnit(out_channels, out_channels, 1, downsample, binary))


class BinaryResNetStem(nn.Module):
    """Real-valued (or ``bits``-bit) conv, BN, RPReLU; the ImageNet stem adds a 3x3/2 max pooling."""

    def __init__(self, in_channels: int, channels: int, stem_type: str, bits: Optional[int]) -> None:
        super().__init__()
        kernel, stride = (7, 2) if stem_type == 'imagenet' else (3, 1)
        if bits is None:
            self.conv = nn.Conv2d(in_channels, channels, kernel, stride, kernel // 2, bias=False)
        else:
            self.conv = QuantConv2d(in_channels, channels, kernel, stride, kernel // 2, bias=False, bits=bits)
        self.bn = nn.BatchNorm2d(channels)
        self.act = RPReLU(channels)
        self.pool = nn.MaxPool2d(3, 2, 1) if stem_type == 'imagenet' else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.pool(self.act(self.bn(self.conv(x))))


@MODELS.register_module()
class BinaryResNet(StageFreezeMixin, BaseModule):
    """ResNet-18/34 with binary 3x3 convs in the Bi-Real Net / ReActNet structure (module docstring).

    Works as an mmpretrain backbone (``GlobalAveragePooling`` neck + ``LinearClsHead``) and as an mmdet
    backbone (``out_indices`` gives the multi-scale outputs, ``out_channels`` says their widths).

    Args:
        depth (int): 18 or 34 (basic blocks per stage: 2-2-2-2 or 3-4-6-3). Defaults to 18.
        in_channels (int): image channels. Defaults to 3.
        stem_type (str): ``'imagenet'`` (7x7/2 conv + 3x3/2 max pooling, output stride 4) or ``'cifar'``
            (3x3/1 conv, for 32x32 inputs). Defaults to ``'imagenet'``.
        stem_channels (int): stem width. Defaults to 64.
        base_channels (int): width of the first stage; stage i has ``base_channels * 2**i``. Defaults to 64.
        stem_bits (int, optional): None for a float stem conv, or the bit width of an LSQ-quantised stem
            conv (e.g. 8, as NAS-BNN). Defaults to None.
        downsample (str): the shortcut where resolution or width changes: ``'conv'`` (average pooling +
            float 1x1 conv + BN, Bi-Real Net) or ``'repeat'`` (average pooling + channel repeat, no
            parameters). Defaults to ``'conv'``.
        binary (bool): False builds the float twin (real 3x3 convs, no signs). Defaults to True.
        out_indices (Sequence[int]): stages whose outputs are returned. Defaults to ``(3,)``.
        frozen_stages (int): -1 trains all; 0 freezes the stem; k freezes the stem and k stages.
            Defaults to -1.
        norm_eval (bool): keep every BN in eval mode while training. Defaults to False.
        init_cfg (dict or list[dict], optional): mmengine initialisation config. Defaults to None
            (PyTorch's default initialisation of each layer).

    Example:
        >>> import torch
        >>> net = BinaryResNet(18, stem_type='cifar', base_channels=16, stem_channels=16,
        ...                    out_indices=(0, 1, 2, 3))
        >>> [tuple(o.shape[1:]) for o in net(torch.randn(2, 3, 32, 32))]
        [(16, 32, 32), (32, 16, 16), (64, 8, 8), (128, 4, 4)]
        >>> net.out_channels
        (16, 32, 64, 128)
    """

    ARCH_SETTINGS = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
    STEM_TYPES = ('imagenet', 'cifar')
    DOWNSAMPLES = ('conv', 'repeat')

    def __init__(self, depth: int = 18, in_channels: int = 3, stem_type: str = 'imagenet', stem_channels: int = 64,
                 base_channels: int = 64, stem_bits: Optional[int] = None, downsample: str = 'conv',
                 binary: bool = True, out_indices: Sequence[int] = (3,), frozen_stages: int = -1,
                 norm_eval: bool = False, init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        name = 'BinaryResNet'
        check_choice(name, 'depth', depth, self.ARCH_SETTINGS)
        check_choice(name, 'stem_type', stem_type, self.STEM_TYPES)
        check_choice(name, 'downsample', downsample, self.DOWNSAMPLES)
        for field, value in (('in_channels', in_channels), ('stem_channels', stem_channels),
                             ('base_channels', base_channels)):
            check_positive_int(name, field, value)
        if stem_bits is not None and (not isinstance(stem_bits, int) or not 2 <= stem_bits <= 16):
            raise ValueError(f'{name}: stem_bits={stem_bits!r} must be None (float stem) or an int in [2, 16]')
        widths = [base_channels * 2 ** i for i in range(4)]
        self.depth, self.binary = depth, binary
        self.out_indices = check_out_indices(out_indices, 4)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= 4:
            raise ValueError(f'{name}: frozen_stages={frozen_stages!r} must be an int in [-1, 4]')
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        self.stem = BinaryResNetStem(in_channels, stem_channels, stem_type, stem_bits)
        self.stages = nn.ModuleList()
        c_in = stem_channels
        for i, (blocks, width) in enumerate(zip(self.ARCH_SETTINGS[depth], widths)):
            stage = nn.Sequential()
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                stage.append(BinaryBasicBlock(c_in, width, stride, downsample, binary))
                c_in = width
            self.stages.append(stage)
        self.out_channels: Tuple[int, ...] = tuple(widths[i] for i in self.out_indices)
        self._freeze_stages()

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        x = self.stem(x)
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

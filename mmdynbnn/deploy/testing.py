"""A NAS-BNN-structured classifier built from the foundation ops, for the deploy tests and benchmark.

The project's searchable NAS-BNN supernet/backbone is developed separately; this module only reproduces
the block structure of ``docs/nasbnn.md`` §1 at chosen widths so the deploy path can be verified and
timed on the real layer shapes (the biggest subnet of the default search space, §2, by default).
"""
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..ops import BinaryConv2d, QuantConv2d, RPReLU, RSign

# Biggest subnet of the default space (docs/nasbnn.md §2): per stage (out channels, depth, kernel, groups,
# stride); the stem is 48 channels, stride 2.
BIGGEST_SUBNET = dict(stem=48, stages=((96, 3, 3, 1, 1), (192, 3, 5, 1, 2), (384, 3, 5, 2, 2),
                                       (768, 9, 5, 4, 2), (1536, 3, 5, 8, 2)))


def channel_shortcut(x: Tensor, out_channels: int) -> Tensor:
    """Parameter-free channel matching: repeat the input channels and crop, or crop."""
    c = x.shape[1]
    if out_channels == c:
        return x
    if out_channels < c:
        return x[:, :out_channels]
    reps = -(-out_channels // c)
    return x.repeat(1, reps, 1, 1)[:, :out_channels]


class NasBnnBlock(nn.Module):
    """RSign -> kxk binary conv (C_in -> C_in, stride, groups) -> BN -> + shortcut -> RPReLU -> RSign ->
    1x1 binary conv (C_in -> C_out) -> BN -> + shortcut -> RPReLU (docs/nasbnn.md §1).

    ``explicit_rsign``: separate :class:`RSign` modules before convs with ``act_binarizer='none'`` (in an
    ``nn.Sequential``), instead of the conv's own ``act_binarizer='rsign'``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 groups: int = 1, explicit_rsign: bool = False) -> None:
        super().__init__()
        self.in_channels, self.out_channels, self.stride = in_channels, out_channels, stride

        def binary(cin, cout, k, s, g):
            if explicit_rsign:
                return nn.Sequential(RSign(cin), BinaryConv2d(cin, cout, k, s, k // 2, groups=g, bias=False,
                                                              act_binarizer='none'))
            return BinaryConv2d(cin, cout, k, s, k // 2, groups=g, bias=False, act_binarizer='rsign')

        self.conv1 = binary(in_channels, in_channels, kernel_size, stride, groups)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.act1 = RPReLU(in_channels)
        self.conv2 = binary(in_channels, out_channels, 1, 1, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = RPReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = F.avg_pool2d(x, 2, 2, ceil_mode=True, count_include_pad=False) if self.stride == 2 else x
        h = self.act1(self.bn1(self.conv1(x)) + shortcut)
        return self.act2(self.bn2(self.conv2(h)) + channel_shortcut(h, self.out_channels))


class NasBnnLikeNet(nn.Module):
    """8-bit stem -> BN -> RPReLU -> NAS-BNN blocks -> global average pool -> float FC.

    ``stages``: per stage ``(out_channels, depth, kernel, groups, stride)``; default: the biggest subnet.
    """

    def __init__(self, stem: int = BIGGEST_SUBNET['stem'], stages: Optional[Sequence] = None,
                 num_classes: int = 1000, in_channels: int = 3, explicit_rsign: bool = False) -> None:
        super().__init__()
        stages = BIGGEST_SUBNET['stages'] if stages is None else stages
        self.stem = nn.Sequential(QuantConv2d(in_channels, stem, 3, 2, 1, bias=False), nn.BatchNorm2d(stem),
                                  RPReLU(stem))
        blocks, cin = [], stem
        for cout, depth, kernel, groups, stride in stages:
            for i in range(depth):
                blocks.append(NasBnnBlock(cin, cout, kernel, stride if i == 0 else 1, groups, explicit_rsign))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        x = self.blocks(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial values for every BN statistic/affine, RSign/RPReLU parameter and out_scale, so that
    a conversion test exercises them (fresh modules are identity-like)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(t, lo, hi):
        return torch.rand(t.shape, generator=gen) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(rand(m.running_mean, -0.5, 0.5))
            m.running_var.copy_(rand(m.running_var, 0.5, 2.0))
            if m.weight is not None:
                m.weight.copy_(rand(m.weight, 0.5, 1.5))
                m.bias.copy_(rand(m.bias, -0.3, 0.3))
        elif isinstance(m, RSign):
            m.bias.copy_(rand(m.bias, -0.2, 0.2))
        elif isinstance(m, RPReLU):
            m.shift_in.copy_(rand(m.shift_in, -0.2, 0.2))
            m.slope.copy_(rand(m.slope, 0.05, 0.5))
            m.shift_out.copy_(rand(m.shift_out, -0.2, 0.2))
    return model

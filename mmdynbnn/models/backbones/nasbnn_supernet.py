"""NASBNNSuperNet: the weight-sharing binary supernet of NAS-BNN (``docs/nasbnn.md`` §1-§3)."""
import random
from typing import Optional, Sequence, Tuple, Union

from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...nas import SearchSpace, Subnet, build_space, build_subnet, sample_subnet
from ...nas.sampling import check_sampling_method
from ...nas.space import SpaceLike
from ...nas.subnet import BlockChoice, SubnetLike
from .nasbnn_blocks import (SlicedBatchNorm2d, SlicedRPReLU, StageFreezeMixin, SuperBinaryConv, SuperQuantConv,
                            shortcut)


def check_out_indices(out_indices: Sequence[int], num_stages: int) -> Tuple[int, ...]:
    out = []
    for i in out_indices:
        j = i + num_stages if i < 0 else i
        if not 0 <= j < num_stages:
            raise ValueError(f'out_indices: {i} is out of range for {num_stages} stages; allowed: '
                             f'{list(range(num_stages))} (or negative)')
        out.append(j)
    return tuple(out)


class SuperStem(nn.Module):
    """b-bit conv -> BN -> RPReLU, all sliced to the subnet's stem width."""

    def __init__(self, space: SearchSpace) -> None:
        super().__init__()
        s = space.stem
        self.conv = SuperQuantConv(space.in_channels, s.max_channels, s.kernel, s.stride, s.bits)
        self.bn = SlicedBatchNorm2d(s.max_channels)
        self.act = SlicedRPReLU(s.max_channels)

    def forward(self, x: Tensor, channels: int) -> Tensor:
        return self.act(self.bn(self.conv(x, channels)))


class SuperBlock(nn.Module):
    """RSign -> k x k binary conv (C_in -> C_in, groups g) -> BN -> +shortcut -> RPReLU -> RSign ->
    1 x 1 binary conv (C_in -> C_out) -> BN -> +shortcut -> RPReLU, every tensor sliced to the choice."""

    def __init__(self, max_in: int, max_out: int, kernels: Sequence[int], min_groups: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv1 = SuperBinaryConv(max_in, max_in, kernels, min_groups)
        self.bn1 = SlicedBatchNorm2d(max_in)
        self.act1 = SlicedRPReLU(max_in)
        self.conv2 = SuperBinaryConv(max_in, max_out, (1,))
        self.bn2 = SlicedBatchNorm2d(max_out)
        self.act2 = SlicedRPReLU(max_out)

    def forward(self, x: Tensor, in_channels: int, choice: BlockChoice, binary: bool) -> Tensor:
        # Widths come from the subnet, not from x.shape: a size read while jit-tracing (get_flops) is a
        # traced value, which must not leak into the untraced weight preparation.
        c_in = in_channels
        y = self.bn1(self.conv1(x, c_in, c_in, choice.kernel, self.stride, choice.groups, binary))
        x = self.act1(y + shortcut(x, c_in, self.stride))
        y = self.bn2(self.conv2(x, c_in, choice.channels, 1, 1, 1, binary))
        return self.act2(y + shortcut(x, choice.channels, 1))


@MODELS.register_module()
class NASBNNSuperNet(StageFreezeMixin, BaseModule):
    """Weight-sharing NAS-BNN supernet; runs whichever subnet is active.

    Args:
        space: the search space (dict as in ``mmdynbnn.nas.IMAGENET_SPACE``; ``None`` = that space).
        subnet: the initially active subnet (``'biggest'``, ``'smallest'``, a dict or a file path).
        mode: ``'binary'`` (1-bit weights) or ``'fp'`` (full-precision WN weights, binary activations).
        out_indices: stages (0-based indices into ``space['stages']``) whose outputs are returned;
            ImageNet space: ``(1, 2, 3, 4)`` gives strides 4/8/16/32.
        frozen_stages: ``-1`` none, ``0`` the stem, ``i`` the stem and stages ``0..i-1``.
        norm_eval: keep every BN in eval mode during training.
        sampler: how :meth:`sample_subnet` (the random students of Bi-Teacher) draws widths:
            ``'sequential'`` (the reference's: each width uniform among the choices >= the previous one)
            or ``'uniform_nd'`` (uniform over the ND-valid width sequences; favours narrower subnets).

    Example:
        >>> import torch
        >>> from mmdynbnn.nas import CIFAR_SPACE
        >>> net = NASBNNSuperNet(CIFAR_SPACE, out_indices=(1, 3))
        >>> [o.shape[1:] for o in net(torch.randn(2, 3, 32, 32))]
        [torch.Size([48, 16, 16]), torch.Size([96, 4, 4])]
        >>> _ = net.set_subnet('smallest')
        >>> net(torch.randn(1, 3, 33, 33))[-1].shape
        torch.Size([1, 64, 5, 5])
    """

    MODES = ('binary', 'fp')

    def __init__(self, space: Optional[SpaceLike] = None, subnet: Optional[SubnetLike] = 'biggest',
                 mode: str = 'binary', out_indices: Sequence[int] = (-1,), frozen_stages: int = -1,
                 norm_eval: bool = False, sampler: str = 'sequential',
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.space = build_space(space)
        self.sampler = check_sampling_method(sampler, 'NASBNNSuperNet: sampler')
        n = len(self.space.stages)
        self.out_indices = check_out_indices(out_indices, n)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= n:
            raise ValueError(f'frozen_stages={frozen_stages!r} must be an int in [-1, {n}]')
        self.frozen_stages = frozen_stages
        self.norm_eval = norm_eval
        self.stem = SuperStem(self.space)
        self.stages = nn.ModuleList()
        for i, s in enumerate(self.space.stages):
            blocks = nn.ModuleList()
            for j in range(s.max_depth):
                blocks.append(SuperBlock(self.space.max_input_channels(i, j), s.max_channels, s.kernel,
                                         s.min_groups, s.stride if j == 0 else 1))
            self.stages.append(blocks)
        self.set_subnet(subnet)
        self.mode = mode
        self._freeze_stages()

    # ---------------------------------------------------------------- subnet API
    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in self.MODES:
            raise ValueError(f'NASBNNSuperNet: mode={value!r} is not supported; allowed: {self.MODES}')
        self._mode = value

    @property
    def subnet(self) -> Subnet:
        """The active subnet."""
        return self._subnet

    def set_subnet(self, subnet: SubnetLike) -> Subnet:
        """Activate a subnet (``'biggest'``, ``'smallest'``, dict, file or :class:`Subnet`); validated."""
        self._subnet = build_subnet(subnet, self.space)
        return self._subnet

    def biggest(self) -> Subnet:
        return Subnet.biggest(self.space)

    def smallest(self) -> Subnet:
        return Subnet.smallest(self.space)

    def sample_subnet(self, rng: Optional[random.Random] = None) -> Subnet:
        """A random ND-valid subnet drawn by ``self.sampler`` (not activated). Pass a seeded ``rng`` for
        reproducibility."""
        return sample_subnet(self.space, rng, self.sampler)

    def out_channels(self, subnet: Optional[SubnetLike] = None) -> Tuple[int, ...]:
        net = self._subnet if subnet is None else build_subnet(subnet, self.space)
        chans = net.stage_out_channels()
        return tuple(chans[i] for i in self.out_indices)

    # ---------------------------------------------------------------- forward / train
    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        net, binary = self._subnet, self._mode == 'binary'
        x = self.stem(x, net.stem_channels)
        outs = []
        c_in = net.stem_channels
        for i, (blocks, stage) in enumerate(zip(self.stages, net.stages)):
            for block, choice in zip(blocks, stage.blocks):
                x = block(x, c_in, choice, binary)
                c_in = choice.channels
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

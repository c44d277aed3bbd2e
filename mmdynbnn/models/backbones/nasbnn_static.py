"""NASBNN: one static subnet of the NAS-BNN space, built from foundation ops, plus supernet export."""
from typing import Dict, Optional, Sequence, Union

import torch
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor, nn

from ...nas import Subnet, build_space, build_subnet
from ...nas.space import SpaceLike
from ...nas.subnet import SubnetLike
from ...ops import BinaryConv2d, QuantConv2d, RPReLU
from .nasbnn_blocks import StageFreezeMixin, shortcut
from .nasbnn_supernet import NASBNNSuperNet, check_out_indices


class StaticBlock(nn.Module):
    """The NAS-BNN block at fixed widths; the RSigns live inside the ``BinaryConv2d`` s."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, groups: int, stride: int) -> None:
        super().__init__()
        self.stride, self.out_channels = stride, out_channels
        self.conv1 = BinaryConv2d(in_channels, in_channels, kernel, stride, kernel // 2, groups=groups,
                                  bias=False, act_binarizer='rsign')
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.act1 = RPReLU(in_channels)
        self.conv2 = BinaryConv2d(in_channels, out_channels, 1, bias=False, act_binarizer='rsign')
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.act2 = RPReLU(out_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act1(self.bn1(self.conv1(x)) + shortcut(x, x.shape[1], self.stride))
        return self.act2(self.bn2(self.conv2(x)) + shortcut(x, self.out_channels, 1))


class StaticStem(nn.Module):
    def __init__(self, in_channels: int, channels: int, kernel: int, stride: int, bits: int) -> None:
        super().__init__()
        self.conv = QuantConv2d(in_channels, channels, kernel, stride, kernel // 2, bias=False, bits=bits)
        self.bn = nn.BatchNorm2d(channels)
        self.act = RPReLU(channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


@MODELS.register_module()
class NASBNN(StageFreezeMixin, BaseModule):
    """A static NAS-BNN subnet (only its own weights; kernel transforms baked into the latent weights).

    Args:
        subnet: the architecture (dict as ``Subnet.to_config()``, a ``.json``/``.yaml``/``.py`` file,
            ``'biggest'`` or ``'smallest'``), validated against ``space``.
        space: the search space it comes from (strides, stem); ``None`` = the paper's ImageNet space.
        out_indices, frozen_stages, norm_eval: as :class:`NASBNNSuperNet`.

    Example:
        >>> import torch
        >>> from mmdynbnn.nas import CIFAR_SPACE
        >>> net = NASBNN('smallest', CIFAR_SPACE, out_indices=(0, 1, 2, 3))
        >>> [o.shape[1] for o in net(torch.randn(1, 3, 32, 32))] == list(net.out_channels)
        True
    """

    def __init__(self, subnet: SubnetLike, space: Optional[SpaceLike] = None, out_indices: Sequence[int] = (-1,),
                 frozen_stages: int = -1, norm_eval: bool = False,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg)
        self.space = build_space(space)
        self.subnet = build_subnet(subnet, self.space)
        n = len(self.space.stages)
        self.out_indices = check_out_indices(out_indices, n)
        if not isinstance(frozen_stages, int) or not -1 <= frozen_stages <= n:
            raise ValueError(f'frozen_stages={frozen_stages!r} must be an int in [-1, {n}]')
        self.frozen_stages, self.norm_eval = frozen_stages, norm_eval
        sp = self.space.stem
        self.stem = StaticStem(self.space.in_channels, self.subnet.stem_channels, sp.kernel, sp.stride, sp.bits)
        self.stages = nn.ModuleList([nn.ModuleList() for _ in self.space.stages])
        for i, j, c_in, b in self.subnet.blocks():
            stride = self.space.stages[i].stride if j == 0 else 1
            self.stages[i].append(StaticBlock(c_in, b.channels, b.kernel, b.groups, stride))
        chans = self.subnet.stage_out_channels()
        self.out_channels = tuple(chans[i] for i in self.out_indices)
        self._freeze_stages()

    def forward(self, x: Tensor):
        x = self.stem(x)
        outs = []
        for i, blocks in enumerate(self.stages):
            for block in blocks:
                x = block(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


def export_static_state_dict(supernet: NASBNNSuperNet, subnet: SubnetLike,
                             static: Optional[NASBNN] = None) -> Dict[str, Tensor]:
    """The state dict of :class:`NASBNN` for ``subnet`` taken from ``supernet``'s shared weights.

    Every tensor is the leading slice of the supernet tensor with the same name, except the k x k conv
    weights, which get the centre crop and the binary-mode kernel transform baked in.
    """
    subnet = build_subnet(subnet, supernet.space)
    static = static if static is not None else NASBNN(subnet, supernet.space)
    if static.subnet != subnet:
        raise ValueError(f'static model is subnet {static.subnet}, asked to export {subnet}')
    src = supernet.state_dict()
    out = {}
    for name, target in static.state_dict().items():
        if name not in src:
            raise KeyError(f'supernet has no tensor {name!r} for the static subnet')
        t = src[name]
        if t.dim() != target.dim():
            raise ValueError(f'{name}: supernet tensor {tuple(t.shape)} vs static {tuple(target.shape)}')
        out[name] = t[tuple(slice(0, s) for s in target.shape)].clone() if t.dim() else t.clone()
    for i, j, c_in, b in subnet.blocks():
        conv = supernet.stages[i][j].conv1
        out[f'stages.{i}.{j}.conv1.weight'] = conv.export_weight(c_in, c_in, b.kernel, b.groups)
    return out


def export_static(supernet: NASBNNSuperNet, subnet: SubnetLike,
                  out_indices: Optional[Sequence[int]] = None) -> NASBNN:
    """Build a :class:`NASBNN` for ``subnet`` and load the exported supernet weights into it.

    Example:
        >>> import torch
        >>> from mmdynbnn.nas import CIFAR_SPACE
        >>> supernet = NASBNNSuperNet(CIFAR_SPACE).eval()
        >>> subnet = supernet.set_subnet('smallest')
        >>> static = export_static(supernet, subnet).eval()
        >>> x = torch.randn(1, 3, 32, 32)
        >>> torch.equal(static(x)[-1], supernet(x)[-1])
        True
    """
    subnet = build_subnet(subnet, supernet.space)
    static = NASBNN(subnet, supernet.space,
                    out_indices=supernet.out_indices if out_indices is None else out_indices)
    static.load_state_dict(export_static_state_dict(supernet, subnet, static))
    return static

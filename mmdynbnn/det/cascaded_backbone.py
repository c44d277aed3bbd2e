"""Cascaded dual backbone with CBNetV2-style dense higher-level composite connections (DynamicDet)."""
import copy
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.cnn import build_conv_layer
from mmdet.registry import MODELS
from mmengine.model import BaseModule
from torch import Tensor


@dataclass
class BackboneFamily:
    """How to run one backbone family stage by stage: the only family-specific code.

    Attributes:
        name: Readable family name (used in error messages).
        matches: ``backbone -> bool``.
        stem: ``(backbone, x) -> x`` everything before the first stage.
        stages: ``backbone -> [(entry, rest), ...]``: per stage, the part that down-samples (composite
            features are added after it) and the remaining blocks.
        out_stages: ``backbone -> [stage index, ...]``: the stage outputs the backbone returns.
        stage_channels: ``backbone -> [width, ...]``: every stage's output width, when the backbone knows
            it; ``None``: probed with one forward pass of a 64x64 zero image in eval mode.
    """
    name: str
    matches: Callable[[nn.Module], bool]
    stem: Callable[[nn.Module, Tensor], Tensor]
    stages: Callable[[nn.Module], List[Tuple[nn.Module, nn.Module]]]
    out_stages: Callable[[nn.Module], List[int]]
    stage_channels: Optional[Callable[[nn.Module], List[int]]] = None


_FAMILIES: List[BackboneFamily] = []


def register_backbone_family(family: BackboneFamily) -> None:
    """Teach :class:`CascadedDualBackbone` a new backbone family (e.g. a binary NAS backbone)."""
    _FAMILIES.insert(0, family)


def supported_families() -> List[str]:
    return [f.name for f in _FAMILIES]


def find_family(backbone: nn.Module) -> BackboneFamily:
    for family in _FAMILIES:
        if family.matches(backbone):
            return family
    raise TypeError(f'CascadedDualBackbone does not support backbone type {type(backbone).__name__}; '
                    f'supported types: {", ".join(supported_families())}')


def _split(layer: Union[nn.Sequential, nn.ModuleList]) -> Tuple[nn.Module, nn.Module]:
    """``(first block, the other blocks as one Sequential)`` of a stage."""
    return layer[0], nn.Sequential(*list(layer)[1:])


def _resnet_family() -> BackboneFamily:
    from mmdet.models.backbones import ResNet

    def stem(b: nn.Module, x: Tensor) -> Tensor:
        x = b.stem(x) if b.deep_stem else b.relu(b.norm1(b.conv1(x)))
        maxpool = getattr(b, 'maxpool', None)  # RegNet (a ResNet subclass) has none
        return maxpool(x) if maxpool is not None else x

    return BackboneFamily(
        name='ResNet (mmdet, incl. ResNetV1d/ResNeXt/RegNet)', matches=lambda b: isinstance(b, ResNet), stem=stem,
        stages=lambda b: [_split(getattr(b, n)) for n in b.res_layers],
        out_stages=lambda b: list(b.out_indices))


def _cspdarknet_family() -> BackboneFamily:
    from mmdet.models.backbones import CSPDarknet

    def out_stages(b: nn.Module) -> List[int]:
        if 0 in b.out_indices:
            raise ValueError('CascadedDualBackbone: CSPDarknet out_indices must not contain 0 (the stem), '
                             f'got {tuple(b.out_indices)}')
        return [i - 1 for i in b.out_indices]

    return BackboneFamily(
        name='CSPDarknet (mmdet)', matches=lambda b: isinstance(b, CSPDarknet),
        stem=lambda b, x: b.stem(x),
        stages=lambda b: [_split(getattr(b, n)) for n in b.layers[1:]],
        out_stages=out_stages)


def _nasbnn_family() -> BackboneFamily:
    """The project's static NAS-BNN subnet (binary blocks): ``stem`` is the 8-bit stem conv + BN + RPReLU;
    stage ``i`` is ``stages[i]`` (a list of blocks), whose first block holds the stage's stride, so composite
    features are added right after it (as after ResNet's first block); widths come from the subnet."""
    from mmdynbnn.models.backbones.nasbnn_static import NASBNN

    return BackboneFamily(
        name='NASBNN (mmdynbnn static NAS-BNN subnet)', matches=lambda b: isinstance(b, NASBNN),
        stem=lambda b, x: b.stem(x),
        stages=lambda b: [_split(stage) for stage in b.stages],
        out_stages=lambda b: list(b.out_indices),
        stage_channels=lambda b: list(b.subnet.stage_out_channels()))


register_backbone_family(_cspdarknet_family())
register_backbone_family(_resnet_family())
register_backbone_family(_nasbnn_family())


@MODELS.register_module()
class CascadedDualBackbone(BaseModule):
    """Two backbones of one family; B2 also receives all of B1's stage outputs (composite connections).

    For every B1 stage ``l`` a 1x1 conv (bias, no norm/act) maps its output to the concatenated widths of
    B2's stages ``0..l``; at the start of B2's stage ``j`` (after its down-sampling) every chunk ``j`` from
    B1 stages ``l >= j`` is nearest-upsampled to B2's resolution and added.

    ``forward(x)`` returns ``(feats1, feats2)`` (the out-index features of each backbone). For routing use
    :meth:`forward_b1` (all B1 stage outputs), :meth:`select_outs` and :meth:`forward_b2`.

    Args:
        backbone: Config of B1 (and of B2 unless ``backbone2`` is given).
        backbone2: Config of B2 (same family), optional.
        connection_cfg: Conv layer config of the 1x1 connections, as mmcv's ``conv_cfg`` (built by
            ``build_conv_layer``); None is a float ``nn.Conv2d``. ``dict(type='BinaryConv2d')`` makes them
            binary, which matters when both backbones are binary: float connections can cost more than B2.
        init_cfg: mmengine init config.

    Example:
        >>> import torch, mmdynbnn.det  # noqa
        >>> m = CascadedDualBackbone(dict(type='ResNet', depth=18, out_indices=(1, 2, 3)))
        >>> f1, f2 = m(torch.rand(1, 3, 64, 64))
        >>> [tuple(f.shape[1:]) for f in f2]
        [(128, 8, 8), (256, 4, 4), (512, 2, 2)]
    """

    def __init__(self, backbone: dict, backbone2: Optional[dict] = None, connection_cfg: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.b1 = MODELS.build(copy.deepcopy(backbone))
        self.b2 = MODELS.build(copy.deepcopy(backbone2 if backbone2 is not None else backbone))
        self.family = find_family(self.b1)
        family2 = find_family(self.b2)
        if family2.name != self.family.name:
            raise TypeError(f'CascadedDualBackbone: both backbones must be of one family, got '
                            f'{self.family.name} and {family2.name}')
        self.stage_channels1 = self._probe_channels(self.b1)
        self.stage_channels2 = self._probe_channels(self.b2)
        if len(self.stage_channels1) != len(self.stage_channels2):
            raise ValueError(f'CascadedDualBackbone: B1 has {len(self.stage_channels1)} stages, B2 has '
                             f'{len(self.stage_channels2)}; they must match')
        self.out_stages1 = self.family.out_stages(self.b1)
        self.out_stages2 = self.family.out_stages(self.b2)
        # connection l: B1 stage l -> concat of B2 widths 0..l
        self.connections = nn.ModuleList([
            build_conv_layer(copy.deepcopy(connection_cfg), c1, sum(self.stage_channels2[:l + 1]), kernel_size=1,
                             bias=True)
            for l, c1 in enumerate(self.stage_channels1)])

    @property
    def out_channels1(self) -> List[int]:
        return [self.stage_channels1[i] for i in self.out_stages1]

    @property
    def out_channels2(self) -> List[int]:
        return [self.stage_channels2[i] for i in self.out_stages2]

    def _probe_channels(self, backbone: nn.Module) -> List[int]:
        if self.family.stage_channels is not None:
            return [int(c) for c in self.family.stage_channels(backbone)]
        was_training = backbone.training
        backbone.eval()
        x = torch.zeros(1, 3, 64, 64)
        chans = []
        with torch.no_grad():
            x = self.family.stem(backbone, x)
            for entry, rest in self.family.stages(backbone):
                x = rest(entry(x))
                chans.append(int(x.shape[1]))
        backbone.train(was_training)
        return chans

    def forward_b1(self, x: Tensor) -> List[Tensor]:
        """All B1 stage outputs (the composite connections need every stage)."""
        x = self.family.stem(self.b1, x)
        outs = []
        for entry, rest in self.family.stages(self.b1):
            x = rest(entry(x))
            outs.append(x)
        return outs

    def select_outs(self, stage_feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """B1's out-index features from :meth:`forward_b1`'s output."""
        return tuple(stage_feats[i] for i in self.out_stages1)

    def forward_b2(self, x: Tensor, b1_stage_feats: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """B2's out-index features given the image and all of B1's stage outputs (same images)."""
        chunks: Dict[int, List[Tensor]] = {}
        for l, (conv, feat) in enumerate(zip(self.connections, b1_stage_feats)):
            for j, chunk in enumerate(torch.split(conv(feat), self.stage_channels2[:l + 1], dim=1)):
                chunks.setdefault(j, []).append(chunk)
        x = self.family.stem(self.b2, x)
        outs = []
        for j, (entry, rest) in enumerate(self.family.stages(self.b2)):
            x = entry(x)
            for chunk in chunks.get(j, []):
                if chunk.shape[2:] != x.shape[2:]:
                    chunk = F.interpolate(chunk, size=x.shape[2:], mode='nearest')
                x = x + chunk
            x = rest(x)
            if j in self.out_stages2:
                outs.append(x)
        return tuple(outs)

    def forward(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        stage_feats = self.forward_b1(x)
        return self.select_outs(stage_feats), self.forward_b2(x, stage_feats)

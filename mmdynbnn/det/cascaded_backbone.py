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
    """How to run one backbone family level by level: the only family-specific code.

    A backbone's *levels* are its stem output (for the families here at stride 2, or 1 for a stride-1 stem)
    and every stage output. The composite connections are added right after each stage's down-sampling
    layer (and after the stem), or, with ``fusion='first_block'``, after each stage's first block.

    Attributes:
        name: Readable family name (used in error messages).
        matches: ``backbone -> bool``.
        stem: ``(backbone, x) -> x``: everything before the first stage's down-sampling layer; its output is
            the stem level.
        stages: ``backbone -> [(down, blocks), ...]``: per stage, its down-sampling layer (``nn.Identity``
            for a stage that does not down-sample) and its remaining blocks.
        out_stages: ``backbone -> [stage index, ...]``: the stage outputs the backbone returns.
        first_blocks: ``backbone -> [(first, rest), ...]``: per stage, everything up to and including its
            first block, and the other blocks (the ``fusion='first_block'`` placement); ``None``: the same
            split as ``stages``.
    """
    name: str
    matches: Callable[[nn.Module], bool]
    stem: Callable[[nn.Module, Tensor], Tensor]
    stages: Callable[[nn.Module], List[Tuple[nn.Module, nn.Module]]]
    out_stages: Callable[[nn.Module], List[int]]
    first_blocks: Optional[Callable[[nn.Module], List[Tuple[nn.Module, nn.Module]]]] = None


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


def _split_at_stride(layer: Union[nn.Sequential, nn.ModuleList]) -> Tuple[nn.Module, nn.Module]:
    """``(down-sampling layer, blocks)`` of a stage of residual blocks whose first block holds the stride:
    that block is the down-sampling layer (a residual block cannot be cut in two); a stage whose first block
    keeps the resolution has none (``nn.Identity``)."""
    stride = getattr(layer[0], 'stride', 2)
    if stride in (1, (1, 1)):
        return nn.Identity(), nn.Sequential(*list(layer))
    return _split(layer)


def _resnet_family() -> BackboneFamily:
    from mmdet.models.backbones import ResNet

    def stem(b: nn.Module, x: Tensor) -> Tensor:
        # conv1 (stride 2) + norm + ReLU: the stem level; the max-pool is stage 0's down-sampling layer
        return b.stem(x) if b.deep_stem else b.relu(b.norm1(b.conv1(x)))

    def maxpool(b: nn.Module) -> Optional[nn.Module]:
        return getattr(b, 'maxpool', None)  # RegNet (a ResNet subclass) has none

    def stages(b: nn.Module) -> List[Tuple[nn.Module, nn.Module]]:
        layers = [getattr(b, n) for n in b.res_layers]
        first = [(maxpool(b), nn.Sequential(*list(layers[0])))] if maxpool(b) is not None else []
        return first + [_split_at_stride(layer) for layer in layers[len(first):]]

    def first_blocks(b: nn.Module) -> List[Tuple[nn.Module, nn.Module]]:
        splits = [_split(getattr(b, n)) for n in b.res_layers]
        if maxpool(b) is not None:
            splits[0] = (nn.Sequential(maxpool(b), splits[0][0]), splits[0][1])
        return splits

    return BackboneFamily(
        name='ResNet (mmdet, incl. ResNetV1d/ResNeXt/RegNet)', matches=lambda b: isinstance(b, ResNet), stem=stem,
        stages=stages, out_stages=lambda b: list(b.out_indices), first_blocks=first_blocks)


def _cspdarknet_family() -> BackboneFamily:
    from mmdet.models.backbones import CSPDarknet

    def out_stages(b: nn.Module) -> List[int]:
        if 0 in b.out_indices:
            raise ValueError('CascadedDualBackbone: CSPDarknet out_indices must not contain 0 (the stem), '
                             f'got {tuple(b.out_indices)}')
        return [i - 1 for i in b.out_indices]

    # every stage starts with its stride-2 conv (the down-sampling layer), then (SPPF and) the CSP layer
    return BackboneFamily(
        name='CSPDarknet (mmdet)', matches=lambda b: isinstance(b, CSPDarknet),
        stem=lambda b, x: b.stem(x),
        stages=lambda b: [_split(getattr(b, n)) for n in b.layers[1:]],
        out_stages=out_stages)


def _nasbnn_family() -> BackboneFamily:
    """The project's static NAS-BNN subnet (binary blocks): ``stem`` is the 8-bit stem conv + BN + RPReLU;
    stage ``i`` is ``stages[i]`` (a list of blocks), whose first block holds the stage's stride and so is
    its down-sampling layer (a stride-1 stage has none)."""
    from mmdynbnn.models.backbones.nasbnn_static import NASBNN

    return BackboneFamily(
        name='NASBNN (mmdynbnn static NAS-BNN subnet)', matches=lambda b: isinstance(b, NASBNN),
        stem=lambda b, x: b.stem(x),
        stages=lambda b: [_split_at_stride(stage) for stage in b.stages],
        out_stages=lambda b: list(b.out_indices),
        first_blocks=lambda b: [_split(stage) for stage in b.stages])


register_backbone_family(_cspdarknet_family())
register_backbone_family(_resnet_family())
register_backbone_family(_nasbnn_family())


FUSIONS = ('downsample', 'first_block')


@MODELS.register_module()
class CascadedDualBackbone(BaseModule):
    """Two backbones of one family; B2 also receives all of B1's levels (composite connections).

    With ``fusion='downsample'`` (the default) the levels are the stem output and every stage output, and
    B2 has a fusion point right after its stem and right after each stage's down-sampling layer (before the
    stage's blocks). For every B1 level ``l`` a 1x1 conv (bias, no norm/act) maps it to the concatenated
    widths of B2's fusion points ``0..l``; at fusion point ``j`` every chunk ``j`` from B1 levels ``l >= j``
    is nearest-upsampled to B2's resolution and added (dense higher-level composition). With
    ``fusion='first_block'`` the levels are the stage outputs only (no stem link) and the fusion points lie
    after each stage's first block.

    ``forward(x)`` returns ``(feats1, feats2)`` (the out-index features of each backbone). For routing use
    :meth:`forward_b1` (all B1 levels), :meth:`select_outs` and :meth:`forward_b2`.

    Args:
        backbone: Config of B1 (and of B2 unless ``backbone2`` is given).
        backbone2: Config of B2 (same family), optional.
        connection_cfg: Conv layer config of the 1x1 connections, as mmcv's ``conv_cfg`` (built by
            ``build_conv_layer``); None is a float ``nn.Conv2d``. ``dict(type='BinaryConv2d')`` makes them
            binary, which matters when both backbones are binary: float connections can cost more than B2.
        fusion: ``'downsample'``: the stem is a level and B1's features are added right after each B2
            stage's down-sampling layer; ``'first_block'``: stage outputs only, added after each B2 stage's
            first block (the layout of checkpoints made before ``fusion`` existed).
        init_cfg: mmengine init config.

    Example:
        >>> import torch, mmdynbnn.det  # noqa
        >>> m = CascadedDualBackbone(dict(type='ResNet', depth=18, out_indices=(1, 2, 3)))
        >>> f1, f2 = m(torch.rand(1, 3, 64, 64))
        >>> [tuple(f.shape[1:]) for f in f2]
        [(128, 8, 8), (256, 4, 4), (512, 2, 2)]
        >>> m.level_channels1  # stem (stride 2) + 4 stages: what the composite connections and router read
        [64, 64, 128, 256, 512]
    """

    def __init__(self, backbone: dict, backbone2: Optional[dict] = None, connection_cfg: Optional[dict] = None,
                 fusion: str = 'downsample', init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if fusion not in FUSIONS:
            raise ValueError(f"model.backbone.fusion must be 'downsample' (after each stage's down-sampling "
                             f"layer, with a stem link) or 'first_block' (after each stage's first block, no "
                             f"stem link), got {fusion!r}")
        self.fusion = fusion
        self.b1 = MODELS.build(copy.deepcopy(backbone))
        self.b2 = MODELS.build(copy.deepcopy(backbone2 if backbone2 is not None else backbone))
        self.family = find_family(self.b1)
        family2 = find_family(self.b2)
        if family2.name != self.family.name:
            raise TypeError(f'CascadedDualBackbone: both backbones must be of one family, got '
                            f'{self.family.name} and {family2.name}')
        self.level_channels1, _ = self._probe_channels(self.b1)
        self.level_channels2, self.fusion_channels2 = self._probe_channels(self.b2)
        if len(self.level_channels1) != len(self.level_channels2):
            raise ValueError(f'CascadedDualBackbone: B1 has {len(self.stage_channels1)} stages, B2 has '
                             f'{len(self.stage_channels2)}; they must match')
        offset = self.num_stem_levels
        self.out_levels1 = [i + offset for i in self.family.out_stages(self.b1)]
        self.out_levels2 = [i + offset for i in self.family.out_stages(self.b2)]
        # connection l: B1 level l -> concat of B2's widths at fusion points 0..l
        self.connections = nn.ModuleList([
            build_conv_layer(copy.deepcopy(connection_cfg), c1, sum(self.fusion_channels2[:l + 1]), kernel_size=1,
                             bias=True)
            for l, c1 in enumerate(self.level_channels1)])

    @property
    def num_stem_levels(self) -> int:
        """1 when the stem output is a level (``fusion='downsample'``), else 0."""
        return 1 if self.fusion == 'downsample' else 0

    @property
    def stage_channels1(self) -> List[int]:
        return self.level_channels1[self.num_stem_levels:]

    @property
    def stage_channels2(self) -> List[int]:
        return self.level_channels2[self.num_stem_levels:]

    @property
    def out_channels1(self) -> List[int]:
        return [self.level_channels1[i] for i in self.out_levels1]

    @property
    def out_channels2(self) -> List[int]:
        return [self.level_channels2[i] for i in self.out_levels2]

    def _splits(self, backbone: nn.Module) -> List[Tuple[nn.Module, nn.Module]]:
        """Per stage ``(part before the fusion point, part after it)`` for this ``fusion``."""
        if self.fusion == 'first_block' and self.family.first_blocks is not None:
            return self.family.first_blocks(backbone)
        return self.family.stages(backbone)

    def _run(self, backbone: nn.Module, x: Tensor, fuse: Optional[Callable[[int, Tensor], Tensor]] = None,
             keep: Optional[Sequence[int]] = None) -> Dict[int, Tensor]:
        """Run ``backbone`` level by level, applying ``fuse(j, x)`` at fusion point ``j``; returns
        ``{level: output}`` for the levels in ``keep`` (all when None)."""
        fuse = fuse if fuse is not None else (lambda j, t: t)
        levels: Dict[int, Tensor] = {}
        x = self.family.stem(backbone, x)
        stem = self.num_stem_levels
        if stem:
            x = fuse(0, x)
            if keep is None or 0 in keep:
                levels[0] = x
        # fusion point j is where level j's input is complete: after the stem, after each stage's entry
        for i, (entry, rest) in enumerate(self._splits(backbone)):
            x = rest(fuse(i + stem, entry(x)))
            if keep is None or i + stem in keep:
                levels[i + stem] = x
        return levels

    def _probe_channels(self, backbone: nn.Module) -> Tuple[List[int], List[int]]:
        """``(width of every level, width at every fusion point)``, from one forward pass of a 64x64 zero
        image in eval mode (BN statistics untouched)."""
        was_training = backbone.training
        backbone.eval()
        at_points: List[int] = []

        def record(j: int, x: Tensor) -> Tensor:
            at_points.append(int(x.shape[1]))
            return x

        with torch.no_grad():
            levels = self._run(backbone, torch.zeros(1, 3, 64, 64), fuse=record)
        backbone.train(was_training)
        return [int(levels[i].shape[1]) for i in sorted(levels)], at_points

    def forward_b1(self, x: Tensor) -> List[Tensor]:
        """All B1 levels (the composite connections and the router read every level)."""
        levels = self._run(self.b1, x)
        return [levels[i] for i in sorted(levels)]

    def select_outs(self, b1_levels: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """B1's out-index features from :meth:`forward_b1`'s output."""
        return tuple(b1_levels[i] for i in self.out_levels1)

    def forward_b2(self, x: Tensor, b1_levels: Sequence[Tensor]) -> Tuple[Tensor, ...]:
        """B2's out-index features given the image and all of B1's levels (same images)."""
        if len(b1_levels) != len(self.connections):
            raise ValueError(f'CascadedDualBackbone.forward_b2 needs all {len(self.connections)} B1 levels '
                             f'(forward_b1), got {len(b1_levels)}')
        chunks: Dict[int, List[Tensor]] = {}
        for l, (conv, feat) in enumerate(zip(self.connections, b1_levels)):
            for j, chunk in enumerate(torch.split(conv(feat), self.fusion_channels2[:l + 1], dim=1)):
                chunks.setdefault(j, []).append(chunk)

        def fuse(j: int, x: Tensor) -> Tensor:
            for chunk in chunks.get(j, []):
                if chunk.shape[2:] != x.shape[2:]:
                    chunk = F.interpolate(chunk, size=x.shape[2:], mode='nearest')
                x = x + chunk
            return x

        levels = self._run(self.b2, x, fuse=fuse, keep=self.out_levels2)
        return tuple(levels[i] for i in self.out_levels2)

    def forward(self, x: Tensor) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        b1_levels = self.forward_b1(x)
        return self.select_outs(b1_levels), self.forward_b2(x, b1_levels)

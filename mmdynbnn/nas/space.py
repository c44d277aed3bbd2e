"""The NAS-BNN search space as plain configuration (``docs/nasbnn.md`` §2).

A space is a dict (or :class:`SearchSpace`) with a stem, a list of block stages and the input it is meant
for. Stages are indexed from 0 in ``stages`` (the spec's stage 1 is ``stages[0]``); the stem is ``'stem'``.

Example:
    >>> space = SearchSpace.from_config(dict(
    ...     stem=dict(channels=(8, 16), stride=1),
    ...     stages=[dict(channels=(16, 24), depth=(1, 2), kernel=(3, 5), groups=(1, 2), stride=2)],
    ...     input_size=32, num_classes=10))
    >>> space.stages[0].max_depth, space.stages[0].max_kernel
    (2, 5)
"""
import copy
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

SpaceLike = Union['SearchSpace', Mapping[str, Any]]


def _choices(where: str, field: str, value: Any) -> Tuple[int, ...]:
    """Normalise a choice list (an int is a single choice) to a sorted tuple of positive ints."""
    values = (value,) if isinstance(value, int) else tuple(value)
    if not values or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in values):
        raise ValueError(f'search space {where}: {field}={value!r} must be a non-empty list of positive ints')
    if len(set(values)) != len(values):
        raise ValueError(f'search space {where}: {field}={value!r} has duplicate choices')
    return tuple(sorted(values))


def _positive(where: str, field: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'search space {where}: {field}={value!r} must be a positive int')
    return value


@dataclass(frozen=True)
class StemSpace:
    """The 8-bit stem conv: output channel choices, fixed kernel/stride/bits."""
    channels: Tuple[int, ...]
    kernel: int = 3
    stride: int = 2
    bits: int = 8

    @property
    def max_channels(self) -> int:
        return self.channels[-1]


@dataclass(frozen=True)
class StageSpace:
    """One stage of binary blocks. ``stride`` applies to its first block; the rest have stride 1."""
    channels: Tuple[int, ...]
    depth: Tuple[int, ...]
    kernel: Tuple[int, ...]
    groups: Tuple[int, ...]
    stride: int = 1

    @property
    def max_channels(self) -> int:
        return self.channels[-1]

    @property
    def max_depth(self) -> int:
        return self.depth[-1]

    @property
    def max_kernel(self) -> int:
        return self.kernel[-1]

    @property
    def min_groups(self) -> int:
        return self.groups[0]


@dataclass(frozen=True)
class SearchSpace:
    """Stem + stages + the input it is priced for (``input_size``, ``num_classes``, ``in_channels``).

    ``input_size`` and ``num_classes`` only matter for OPs and defaults: the networks accept any
    resolution. Construction checks that every group choice divides every channel count its conv can see.
    """
    stem: StemSpace
    stages: Tuple[StageSpace, ...]
    in_channels: int = 3
    input_size: int = 224
    num_classes: int = 1000

    @classmethod
    def from_config(cls, cfg: SpaceLike) -> 'SearchSpace':
        if isinstance(cfg, SearchSpace):
            return cfg
        if not isinstance(cfg, Mapping):
            raise ValueError(f'search space must be a dict or SearchSpace, got {type(cfg).__name__}')
        known = {'stem', 'stages', 'in_channels', 'input_size', 'num_classes'}
        unknown = set(cfg) - known
        if unknown:
            raise ValueError(f'search space: unknown keys {sorted(unknown)}; allowed: {sorted(known)}')
        if 'stem' not in cfg or 'stages' not in cfg:
            raise ValueError("search space: needs 'stem' and 'stages'")
        stem_cfg = dict(cfg['stem'])
        stem_known = {'channels', 'kernel', 'stride', 'bits'}
        if set(stem_cfg) - stem_known:
            raise ValueError(f'search space stem: unknown keys {sorted(set(stem_cfg) - stem_known)}; '
                             f'allowed: {sorted(stem_known)}')
        stem = StemSpace(channels=_choices('stem', 'channels', stem_cfg.get('channels')),
                         kernel=_positive('stem', 'kernel', stem_cfg.get('kernel', 3)),
                         stride=_positive('stem', 'stride', stem_cfg.get('stride', 2)),
                         bits=_positive('stem', 'bits', stem_cfg.get('bits', 8)))
        if stem.kernel % 2 == 0:
            raise ValueError(f'search space stem: kernel={stem.kernel} must be odd')
        stages = []
        stage_known = {'channels', 'depth', 'kernel', 'groups', 'stride'}
        if not cfg['stages']:
            raise ValueError('search space: stages must not be empty')
        for i, s in enumerate(cfg['stages']):
            where = f'stage {i}'
            s = dict(s)
            if set(s) - stage_known or not {'channels', 'depth', 'kernel'} <= set(s):
                raise ValueError(f'search space {where}: keys {sorted(s)}; required channels, depth, kernel; '
                                 f'allowed: {sorted(stage_known)}')
            stage = StageSpace(channels=_choices(where, 'channels', s['channels']),
                               depth=_choices(where, 'depth', s['depth']),
                               kernel=_choices(where, 'kernel', s['kernel']),
                               groups=_choices(where, 'groups', s.get('groups', 1)),
                               stride=_positive(where, 'stride', s.get('stride', 1)))
            if any(k % 2 == 0 for k in stage.kernel):
                raise ValueError(f'search space {where}: kernel={stage.kernel} must all be odd')
            stages.append(stage)
        space = cls(stem, tuple(stages), _positive('space', 'in_channels', cfg.get('in_channels', 3)),
                    _positive('space', 'input_size', cfg.get('input_size', 224)),
                    _positive('space', 'num_classes', cfg.get('num_classes', 1000)))
        space._check_groups()
        return space

    def _check_groups(self) -> None:
        prev = self.stem.channels
        for i, stage in enumerate(self.stages):
            for c in sorted(set(prev) | set(stage.channels)):
                bad = [g for g in stage.groups if c % g]
                if bad:
                    raise ValueError(f'search space stage {i}: groups={bad} do not divide input channels {c} '
                                     f'that a block of this stage can see; every group choice must divide '
                                     f'{sorted(set(prev) | set(stage.channels))}')
                if c // stage.groups[-1] * stage.kernel[0] ** 2 < 2:
                    raise ValueError(f'search space stage {i}: channels {c} / groups {stage.groups[-1]} leaves '
                                     f'too few weights per output channel for weight normalisation')
            prev = stage.channels

    def to_config(self) -> dict:
        """A plain dict that :meth:`from_config` accepts (round-trips)."""
        return dict(stem=dict(channels=list(self.stem.channels), kernel=self.stem.kernel,
                              stride=self.stem.stride, bits=self.stem.bits),
                    stages=[dict(channels=list(s.channels), depth=list(s.depth), kernel=list(s.kernel),
                                 groups=list(s.groups), stride=s.stride) for s in self.stages],
                    in_channels=self.in_channels, input_size=self.input_size, num_classes=self.num_classes)

    def input_channels(self, stage: int, block: int) -> Tuple[int, ...]:
        """Channel choices the input of (stage, block) can have (over all subnets)."""
        if block > 0:
            return self.stages[stage].channels
        return self.stem.channels if stage == 0 else self.stages[stage - 1].channels

    def max_input_channels(self, stage: int, block: int) -> int:
        return self.input_channels(stage, block)[-1]

    def strides(self) -> Tuple[int, ...]:
        """Cumulative output stride of each stage."""
        out, total = [], self.stem.stride
        for s in self.stages:
            total *= s.stride
            out.append(total)
        return tuple(out)


# The paper's ImageNet space (docs/nasbnn.md §2). Configs copy this dict; nothing in the modules depends on it.
IMAGENET_SPACE = dict(
    stem=dict(channels=[24, 32, 48], kernel=3, stride=2, bits=8),
    stages=[
        dict(channels=[48, 64, 96], depth=[2, 3], kernel=[3], groups=[1], stride=1),
        dict(channels=[96, 128, 192], depth=[2, 3], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[192, 256, 384], depth=[2, 3], kernel=[3, 5], groups=[2, 4], stride=2),
        dict(channels=[384, 512, 768], depth=[8, 9], kernel=[3, 5], groups=[4, 8], stride=2),
        dict(channels=[768, 1024, 1536], depth=[2, 3], kernel=[3, 5], groups=[8, 16], stride=2),
    ],
    in_channels=3, input_size=224, num_classes=1000)

# A small space for 32x32 CIFAR-size inputs: stem at stride 1, three downsamplings (strides 1/2/4/8).
CIFAR_SPACE = dict(
    stem=dict(channels=[16, 24], kernel=3, stride=1, bits=8),
    stages=[
        dict(channels=[24, 32], depth=[1, 2], kernel=[3], groups=[1], stride=1),
        dict(channels=[32, 48], depth=[1, 2], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[48, 64], depth=[1, 2], kernel=[3, 5], groups=[2, 4], stride=2),
        dict(channels=[64, 96], depth=[1, 2], kernel=[3, 5], groups=[4, 8], stride=2),
    ],
    in_channels=3, input_size=32, num_classes=10)


def build_space(cfg: Optional[SpaceLike] = None) -> SearchSpace:
    """``None`` gives the paper's ImageNet space; a dict is validated; a :class:`SearchSpace` passes."""
    return SearchSpace.from_config(copy.deepcopy(IMAGENET_SPACE) if cfg is None else cfg)

"""A subnet of a :class:`~mmdynbnn.nas.space.SearchSpace`: explicit, validated, serialisable.

The human-readable form (what config files hold)::

    dict(stem=dict(channels=24),
         stages=[dict(depth=2, blocks=[dict(channels=48, kernel=3, groups=1), ...]),   # stage 0
                 ...])

``blocks`` lists the active blocks only (``len(blocks) == depth``: a stage uses its first ``depth``
blocks). ``channels`` is the block's output width; ``kernel``/``groups`` belong to its k x k conv.

Example:
    >>> from mmdynbnn.nas import build_space
    >>> space = build_space()
    >>> net = Subnet.biggest(space)
    >>> Subnet.from_config(net.to_config(), space) == net
    True
    >>> net.stages[3].depth
    9
"""
import json
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Tuple, Union

from .space import SearchSpace, SpaceLike, build_space

SubnetLike = Union['Subnet', Mapping[str, Any], str]


@dataclass(frozen=True)
class BlockChoice:
    channels: int
    kernel: int
    groups: int


@dataclass(frozen=True)
class StageChoice:
    depth: int
    blocks: Tuple[BlockChoice, ...]


@dataclass(frozen=True)
class Subnet:
    """One architecture: stem width and, per stage, the active blocks (hashable, comparable)."""
    stem_channels: int
    stages: Tuple[StageChoice, ...]

    # ---------------------------------------------------------------- construction
    @classmethod
    def from_config(cls, cfg: SubnetLike, space: Optional[SpaceLike] = None) -> 'Subnet':
        """Parse the dict form (or a ``.json``/``.yaml``/``.py`` file holding it under ``subnet``);
        validate against ``space`` when given."""
        if isinstance(cfg, Subnet):
            net = cfg
        else:
            if isinstance(cfg, str):
                cfg = load_subnet_file(cfg)
            net = cls._parse(cfg)
        if space is not None:
            net.validate(space)
        return net

    @classmethod
    def _parse(cls, cfg: Mapping[str, Any]) -> 'Subnet':
        if not isinstance(cfg, Mapping) or set(cfg) != {'stem', 'stages'}:
            raise ValueError(f"subnet: expected a dict with keys 'stem' and 'stages', got "
                             f"{sorted(cfg) if isinstance(cfg, Mapping) else type(cfg).__name__}")
        stem = cfg['stem']
        if not isinstance(stem, Mapping) or set(stem) != {'channels'}:
            raise ValueError(f"subnet stem: expected dict(channels=...), got {stem!r}")
        stages = []
        for i, s in enumerate(cfg['stages']):
            if not isinstance(s, Mapping) or set(s) != {'depth', 'blocks'}:
                raise ValueError(f"subnet stage {i}: expected dict(depth=..., blocks=[...]), got {s!r}")
            blocks = []
            for j, b in enumerate(s['blocks']):
                if not isinstance(b, Mapping) or set(b) != {'channels', 'kernel', 'groups'}:
                    raise ValueError(f'subnet stage {i}, block {j}: expected dict(channels=..., kernel=..., '
                                     f'groups=...), got {b!r}')
                blocks.append(BlockChoice(b['channels'], b['kernel'], b['groups']))
            stages.append(StageChoice(s['depth'], tuple(blocks)))
        return cls(stem['channels'], tuple(stages))

    @classmethod
    def biggest(cls, space: SpaceLike) -> 'Subnet':
        space = SearchSpace.from_config(space)
        return cls(space.stem.channels[-1], tuple(
            StageChoice(s.max_depth, tuple(BlockChoice(s.channels[-1], s.kernel[-1], s.groups[0])
                                           for _ in range(s.max_depth))) for s in space.stages))

    @classmethod
    def smallest(cls, space: SpaceLike) -> 'Subnet':
        """Fewest channels, blocks and kernel taps; most groups (cheapest k x k convs)."""
        space = SearchSpace.from_config(space)
        return cls(space.stem.channels[0], tuple(
            StageChoice(s.depth[0], tuple(BlockChoice(s.channels[0], s.kernel[0], s.groups[-1])
                                          for _ in range(s.depth[0]))) for s in space.stages))

    # ---------------------------------------------------------------- validation
    def validate(self, space: SpaceLike) -> 'Subnet':
        """Raise ``ValueError`` naming stage, block, field, value and the allowed choices; else ``self``."""
        space = SearchSpace.from_config(space)

        def check(where: str, field: str, value: Any, allowed) -> None:
            if type(value) is not int or value not in allowed:  # 24.0 == 24 but is no layer width
                raise ValueError(f'subnet {where}: {field}={value!r} is not in the allowed choices '
                                 f'{list(allowed)}')

        check('stem', 'channels', self.stem_channels, space.stem.channels)
        if len(self.stages) != len(space.stages):
            raise ValueError(f'subnet: has {len(self.stages)} stages, the space has {len(space.stages)}')
        prev, prev_where = self.stem_channels, 'stem'
        for i, (stage, ss) in enumerate(zip(self.stages, space.stages)):
            check(f'stage {i}', 'depth', stage.depth, ss.depth)
            if len(stage.blocks) != stage.depth:
                raise ValueError(f'subnet stage {i}: depth={stage.depth} but {len(stage.blocks)} blocks are '
                                 f'listed; list exactly the {stage.depth} active blocks')
            for j, b in enumerate(stage.blocks):
                where = f'stage {i}, block {j}'
                check(where, 'channels', b.channels, ss.channels)
                check(where, 'kernel', b.kernel, ss.kernel)
                check(where, 'groups', b.groups, ss.groups)
                if b.channels < prev:
                    raise ValueError(f'subnet {where}: channels={b.channels} violates the non-decreasing (ND) '
                                     f'constraint: the previous layer ({prev_where}) has {prev} channels; '
                                     f'allowed choices here: {[c for c in ss.channels if c >= prev]}')
                if prev % b.groups:  # the k x k conv maps the block input (prev channels) to itself
                    raise ValueError(f'subnet {where}: groups={b.groups} does not divide the block input '
                                     f'channels {prev}; allowed: {[g for g in ss.groups if prev % g == 0]}')
                prev, prev_where = b.channels, where
        return self

    # ---------------------------------------------------------------- serialisation
    def to_config(self) -> dict:
        return dict(stem=dict(channels=self.stem_channels),
                    stages=[dict(depth=s.depth, blocks=[dict(channels=b.channels, kernel=b.kernel,
                                                             groups=b.groups) for b in s.blocks])
                            for s in self.stages])

    def to_json(self, indent: Optional[int] = 1) -> str:
        return json.dumps(self.to_config(), indent=indent)

    def dump(self, path: str) -> None:
        """Write ``.json``, ``.yaml``/``.yml`` or ``.py`` (``subnet = dict(...)``, usable as a ``_base_``),
        atomically."""
        from ..utils.io import atomic_open
        if path.endswith('.py'):
            with atomic_open(path, 'w') as f:
                f.write(f'subnet = {self.to_config()!r}\n')
            return
        import mmengine
        file_format = path.rsplit('.', 1)[-1]
        with atomic_open(path, 'w') as f:
            mmengine.dump(self.to_config(), f, file_format='yaml' if file_format == 'yml' else file_format)

    def blocks(self) -> Iterator[Tuple[int, int, int, BlockChoice]]:
        """Yield ``(stage, block, in_channels, choice)`` for every active block in order."""
        prev = self.stem_channels
        for i, stage in enumerate(self.stages):
            for j, b in enumerate(stage.blocks):
                yield i, j, prev, b
                prev = b.channels

    def stage_out_channels(self) -> Tuple[int, ...]:
        return tuple(s.blocks[-1].channels for s in self.stages)

    def __str__(self) -> str:
        stages = ' | '.join(' '.join(f'{b.channels}k{b.kernel}g{b.groups}' for b in s.blocks)
                            for s in self.stages)
        return f'stem {self.stem_channels} | {stages}'


def load_subnet_file(path: str) -> dict:
    """Read a subnet from ``.json``/``.yaml``/``.yml`` (the dict itself or under ``subnet``) or ``.py``."""
    if path.endswith('.py'):
        from mmengine import Config
        cfg = Config.fromfile(path)
        if 'subnet' not in cfg:
            raise ValueError(f'{path}: defines no `subnet`')
        return cfg['subnet'].to_dict() if hasattr(cfg['subnet'], 'to_dict') else cfg['subnet']
    import mmengine
    try:
        data = mmengine.load(path)
    except Exception as e:  # truncated / malformed JSON or YAML: say which file
        raise ValueError(f'subnet file {path}: cannot be parsed ({type(e).__name__}: {e})') from None
    return data['subnet'] if isinstance(data, Mapping) and 'subnet' in data else data


def build_subnet(cfg: Union[SubnetLike, None], space: SpaceLike) -> Subnet:
    """``'biggest'``/``'smallest'``/``None`` (biggest), a dict, a file path or a :class:`Subnet`, validated."""
    space = build_space(space) if not isinstance(space, SearchSpace) else space
    if cfg is None or cfg == 'biggest':
        return Subnet.biggest(space)
    if cfg == 'smallest':
        return Subnet.smallest(space)
    return Subnet.from_config(cfg, space)

"""Uniform random subnets under the non-decreasing-channel (ND) constraint.

Each stage's depth is drawn uniformly; given the depths, the channel sequence of the active blocks is drawn
uniformly among all ND-valid sequences (= independent uniform choices conditioned on ND, but without
rejection, which would accept ~1e-6 of the draws in the ImageNet space); kernel and groups are independent
uniform choices among those that divide the block's input channels.

Example:
    >>> import random
    >>> from mmdynbnn.nas import build_space
    >>> space = build_space()
    >>> net = sample_subnet(space, random.Random(0))
    >>> net.validate(space) is net
    True
"""
import random
from functools import lru_cache
from itertools import product
from typing import List, Optional, Sequence, Tuple

from .space import SearchSpace, SpaceLike
from .subnet import BlockChoice, StageChoice, Subnet


def _count_table(choices: Sequence[Tuple[int, ...]]) -> List[List[int]]:
    """``table[p][c]`` = number of ND-valid completions of positions p.. when position p takes choice c."""
    n = len(choices)
    table: List[List[int]] = [[0] * len(c) for c in choices]
    for p in range(n - 1, -1, -1):
        for ci, c in enumerate(choices[p]):
            if p == n - 1:
                table[p][ci] = 1
            else:
                table[p][ci] = sum(t for nc, t in zip(choices[p + 1], table[p + 1]) if nc >= c)
    return table


@lru_cache(maxsize=256)
def _cached_table(choices: Tuple[Tuple[int, ...], ...]) -> Tuple[Tuple[int, ...], ...]:
    return tuple(tuple(r) for r in _count_table(choices))


def _uniform_nd_sequence(choices: Tuple[Tuple[int, ...], ...], rng: random.Random) -> List[int]:
    """A uniformly random non-decreasing sequence with position p taken from ``choices[p]``."""
    table = _cached_table(choices)
    out: List[int] = []
    prev = 0
    for p, opts in enumerate(choices):
        weights = [t if c >= prev else 0 for c, t in zip(opts, table[p])]
        total = sum(weights)
        if total == 0:
            raise ValueError(f'search space admits no ND-valid channel sequence: {choices}')
        r = rng.randrange(total)
        for c, w in zip(opts, weights):
            if r < w:
                out.append(c)
                break
            r -= w
        prev = out[-1]
    return out


def _positions(space: SearchSpace, depths: Sequence[int]) -> Tuple[Tuple[int, ...], ...]:
    """Width choices of every channel position (stem, then each block) for these stage depths."""
    return tuple([space.stem.channels] + [s.channels for s, d in zip(space.stages, depths) for _ in range(d)])


def sample_subnet(space: SpaceLike, rng: Optional[random.Random] = None) -> Subnet:
    """One random subnet (see module docstring for the distribution). ``rng`` defaults to ``random``."""
    space = SearchSpace.from_config(space)
    rng = rng or random.Random()
    depths = [rng.choice(s.depth) for s in space.stages]
    widths = _uniform_nd_sequence(_positions(space, depths), rng)
    stem, widths = widths[0], iter(widths[1:])
    prev = stem
    stages = []
    for s, d in zip(space.stages, depths):
        blocks = []
        for _ in range(d):
            c = next(widths)
            groups = [g for g in s.groups if prev % g == 0]
            blocks.append(BlockChoice(c, rng.choice(s.kernel), rng.choice(groups)))
            prev = c
        stages.append(StageChoice(d, tuple(blocks)))
    return Subnet(stem, tuple(stages))


def count_subnets(space: SpaceLike, nd: bool = True) -> int:
    """Number of distinct subnets in the space (with or without the ND constraint)."""
    space = SearchSpace.from_config(space)
    # Per depth combination: channel sequences (ND or free) x kernel/group choices per block.
    total = 0
    for depths in product(*[s.depth for s in space.stages]):
        positions = _positions(space, depths)
        if nd:
            widths = sum(_cached_table(positions)[0])
        else:
            widths = 1
            for p in positions:
                widths *= len(p)
        other = 1
        for s, d in zip(space.stages, depths):
            other *= (len(s.kernel) * len(s.groups)) ** d
        total += widths * other
    return total

"""Evolution operators of the NAS-BNN search (``docs/nasbnn.md`` §5): OPs window, mutation, crossover,
initial population and per-generation proposals, all keeping the non-decreasing-channel (ND) constraint
over the **whole** channel sequence (stem, every block, across stage boundaries).

ND is kept constructively, left to right: a channel value is only ever chosen among the choices that are
>= the previous width *and* admit an ND completion of the remaining positions (the completion counts of
:mod:`~mmdynbnn.nas.sampling`). A kept (not resampled) value that became infeasible because an earlier
gene changed is repaired to the nearest feasible choice. Group counts that no longer divide the block
input are repaired likewise. Every child is finally checked with :meth:`Subnet.validate`.

Plain Python (no torch). Example:
    >>> import random
    >>> from mmdynbnn.nas import CIFAR_SPACE, Subnet, build_space
    >>> space = build_space(CIFAR_SPACE)
    >>> rng = random.Random(0)
    >>> child = mutate(Subnet.biggest(space), space, rng, prob=0.5)
    >>> child.validate(space) is child
    True
"""
import math
import random
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

from .ops_count import subnet_ops
from .pareto import pareto_layers
from .sampling import _cached_table, _positions, sample_subnet
from .space import SearchSpace, SpaceLike
from .subnet import BlockChoice, StageChoice, Subnet


def subnet_key(subnet: Subnet) -> str:
    """A canonical string of a subnet (dedup key; equal subnets, equal keys)."""
    return subnet.to_json(indent=None)


def ops_m(subnet: Subnet, space: SearchSpace) -> float:
    """Analytic OPs in millions at the space's input size and class count."""
    return subnet_ops(subnet, space).ops / 1e6


@dataclass(frozen=True)
class OpsWindow:
    """Inclusive OPs window in millions; ``None`` bounds are open."""
    low: Optional[float] = None
    high: Optional[float] = None

    @classmethod
    def build(cls, value) -> 'OpsWindow':
        if value is None:
            return cls()
        if isinstance(value, OpsWindow):
            return value
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise ValueError(f'search.ops_window={value!r} must be (low, high) in M OPs (None = open)')
        low, high = value
        for v in (low, high):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
                raise ValueError(f'search.ops_window={value!r}: bounds must be numbers >= 0 (M OPs) or None')
        if low is not None and high is not None and low > high:
            raise ValueError(f'search.ops_window={value!r}: low {low} > high {high}')
        return cls(None if low is None else float(low), None if high is None else float(high))

    def __contains__(self, ops: float) -> bool:
        return (self.low is None or ops >= self.low) and (self.high is None or ops <= self.high)

    def check_reachable(self, space: SearchSpace) -> Tuple[float, float]:
        """Raise ``ValueError`` if no subnet of ``space`` can lie in the window; return (min, max) M OPs."""
        lo, hi = ops_m(Subnet.smallest(space), space), ops_m(Subnet.biggest(space), space)
        if (self.high is not None and self.high < lo) or (self.low is not None and self.low > hi):
            raise ValueError(
                f'search.ops_window=[{self.low}, {self.high}] M OPs is unreachable: the subnets of this space '
                f'cost between {lo:.4f}M (smallest) and {hi:.4f}M (biggest) OPs at '
                f'{space.input_size}px with {space.num_classes} classes; choose a window that overlaps it')
        return lo, hi

    def __str__(self) -> str:
        return f'[{self.low}, {self.high}] M OPs'


# ---------------------------------------------------------------------------- ND-aware construction
def _nearest(value: int, options: Sequence[int]) -> int:
    return min(options, key=lambda c: (abs(c - value), c))


def _build(space: SearchSpace, depths: Sequence[int], pick_channel: Callable[[int, List[int]], int],
           pick_kernel: Callable[[int, int, int], int], pick_groups: Callable[[int, int, int, List[int]], int]
           ) -> Subnet:
    """Assemble a subnet left to right. ``pick_channel(pos, feasible)`` must return one of ``feasible``
    (channel choices >= the previous width that admit an ND completion); ``pick_kernel(stage, block,
    ...)`` / ``pick_groups(stage, block, in_channels, valid)`` choose the k x k conv's kernel and groups
    (``valid`` = group choices dividing the block input)."""
    positions = _positions(space, depths)
    table = _cached_table(positions)
    prev, pos = 0, 0

    def channel() -> int:
        nonlocal prev, pos
        feasible = [c for c, t in zip(positions[pos], table[pos]) if c >= prev and t > 0]
        if not feasible:  # cannot happen for a space where some ND subnet exists
            raise ValueError(f'search space admits no ND-valid channel sequence for depths {list(depths)}')
        c = pick_channel(pos, feasible)
        assert c in feasible
        prev, pos = c, pos + 1
        return c

    stem = channel()
    stages = []
    for i, (ss, d) in enumerate(zip(space.stages, depths)):
        blocks = []
        for j in range(d):
            c_in = prev
            c = channel()
            k = pick_kernel(i, j, c_in)
            valid = [g for g in ss.groups if c_in % g == 0]
            g = pick_groups(i, j, c_in, valid)
            blocks.append(BlockChoice(c, k, g))
        stages.append(StageChoice(d, tuple(blocks)))
    return Subnet(stem, tuple(stages)).validate(space)


def _padded_blocks(stage: StageChoice, depth: int) -> List[BlockChoice]:
    """The parent's first ``depth`` blocks; missing ones repeat its last block."""
    blocks = list(stage.blocks[:depth])
    while len(blocks) < depth:
        blocks.append(stage.blocks[-1])
    return blocks


def mutate(parent: Subnet, space: SpaceLike, rng: random.Random, prob: float = 0.2) -> Subnet:
    """Resample, each with probability ``prob``: every stage's depth, the stem width, and every block as a
    whole (its width, kernel and groups together, as the reference does). A resampled width is uniform
    over the ND-feasible choices, resampled kernel and groups uniform over theirs; kept genes that became
    infeasible are repaired to the nearest feasible choice. Extra blocks (a deeper stage) start as copies
    of the parent's last block of that stage. The child may equal the parent (the caller deduplicates)."""
    space = SearchSpace.from_config(space)
    if not 0 <= prob <= 1:
        raise ValueError(f'mutation prob={prob!r} must be in [0, 1]')
    depths = [rng.choice(ss.depth) if rng.random() < prob else st.depth
              for ss, st in zip(space.stages, parent.stages)]
    blocks = [_padded_blocks(st, d) for st, d in zip(parent.stages, depths)]
    old_channels = [parent.stem_channels] + [b.channels for bs in blocks for b in bs]
    resample = False  # of the block being built (_build picks its width, then kernel, then groups)

    def pick_channel(pos: int, feasible: List[int]) -> int:
        nonlocal resample
        resample = rng.random() < prob
        return rng.choice(feasible) if resample else _nearest(old_channels[pos], feasible)

    def pick_kernel(i: int, j: int, c_in: int) -> int:
        return rng.choice(space.stages[i].kernel) if resample else blocks[i][j].kernel

    def pick_groups(i: int, j: int, c_in: int, valid: List[int]) -> int:
        return rng.choice(valid) if resample else _nearest(blocks[i][j].groups, valid)

    return _build(space, depths, pick_channel, pick_kernel, pick_groups)


def crossover(a: Subnet, b: Subnet, space: SpaceLike, rng: random.Random) -> Subnet:
    """Element-wise 50/50 mix of two parents: each stage's depth, then each block's width, kernel and
    groups independently from either parent (a block only one parent has comes from that parent). A width
    drawn from one parent that breaks ND takes the other parent's value if that one is feasible, else the
    nearest feasible choice; groups are repaired the same way."""
    space = SearchSpace.from_config(space)
    depths = [(sa if rng.random() < 0.5 else sb).depth for sa, sb in zip(a.stages, b.stages)]
    blocks_a = [list(st.blocks) for st in a.stages]
    blocks_b = [list(st.blocks) for st in b.stages]
    owners = []  # per position: (value from a or None, value from b or None)
    owners.append((a.stem_channels, b.stem_channels))
    for i, d in enumerate(depths):
        for j in range(d):
            owners.append((blocks_a[i][j].channels if j < len(blocks_a[i]) else None,
                           blocks_b[i][j].channels if j < len(blocks_b[i]) else None))

    def two(i: int, j: int, field: str) -> List[int]:
        vals = [getattr(bs[i][j], field) for bs in (blocks_a, blocks_b) if j < len(bs[i])]
        if len(vals) == 2 and rng.random() >= 0.5:
            vals.reverse()
        return vals

    def pick_channel(pos: int, feasible: List[int]) -> int:
        vals = [v for v in owners[pos] if v is not None]
        if len(vals) == 2 and rng.random() >= 0.5:
            vals.reverse()
        for v in vals:
            if v in feasible:
                return v
        return _nearest(vals[0], feasible)

    def pick_kernel(i: int, j: int, c_in: int) -> int:
        return two(i, j, 'kernel')[0]

    def pick_groups(i: int, j: int, c_in: int, valid: List[int]) -> int:
        vals = two(i, j, 'groups')
        for v in vals:
            if v in valid:
                return v
        return _nearest(vals[0], valid)

    return _build(space, depths, pick_channel, pick_kernel, pick_groups)


# ---------------------------------------------------------------------------- parents
PARENT_SELECTIONS = ('bucket', 'front')
# Default number of parent buckets over the searched OPs range: the reference's 2M-OPs buckets over its
# [20M, 180M] ImageNet window.
PARENT_BUCKETS = 80


def default_parent_bucket(space: SearchSpace, window: OpsWindow) -> float:
    """Bucket width (M OPs) when none is configured: 1/80 of the searched range (the window clipped to
    the space's smallest..biggest OPs), i.e. 1.99M for the ImageNet space and the [20, 180] window (the
    reference's 2M), 0.0086M for the whole CIFAR space (0.118M-0.803M)."""
    lo, hi = window.check_reachable(space)
    low = lo if window.low is None else max(lo, window.low)
    high = hi if window.high is None else min(hi, window.high)
    return max(high - low, 1e-9) / PARENT_BUCKETS


def ops_bucket_index(ops: float, width: float) -> int:
    """The bucket of an OPs value: the nearest multiple of ``width`` (buckets centred on multiples of the
    width, as the reference rounds), half-way values going up."""
    return math.floor(ops / width + 0.5)


def bucket_best(points: Sequence[Tuple[float, float]], width: float) -> List[int]:
    """Indices of the most accurate ``(ops, accuracy)`` point of every OPs bucket of ``width`` M OPs (see
    :func:`ops_bucket_index`), by increasing bucket; on equal accuracy the earliest point wins."""
    if not width > 0:
        raise ValueError(f'OPs bucket width={width!r} must be > 0 (M OPs)')
    best: Dict[int, int] = {}
    for i, (ops, acc) in enumerate(points):
        b = ops_bucket_index(ops, width)
        if b not in best or acc > points[best[b]][1]:
            best[b] = i
    return [best[b] for b in sorted(best)]


def select_parents(points: Sequence[Tuple[float, float]], how: str = 'bucket',
                   bucket_width: Optional[float] = None) -> List[int]:
    """Indices of the parents of the next generation among the evaluated ``(ops, accuracy)`` points.

    ``'bucket'`` (default, the reference's rule): the most accurate candidate of every OPs bucket of
    ``bucket_width`` M OPs, which keeps the whole window explored (the reference reports one model per
    bucket); when that gives fewer than 2 (crossover needs two), the most accurate remaining candidates
    are added up to 2. ``'front'``: the non-dominated (OPs, accuracy) front, plus the next Pareto layers
    while it has fewer than 2 members.
    """
    if how not in PARENT_SELECTIONS:
        raise ValueError(f'search.parents={how!r} is not a parent selection; allowed: {list(PARENT_SELECTIONS)}')
    if how == 'bucket':
        if bucket_width is None:
            raise ValueError("select_parents: how='bucket' needs bucket_width (M OPs)")
        idx = bucket_best(points, bucket_width)
        taken = set(idx)
        rest = sorted((i for i in range(len(points)) if i not in taken), key=lambda i: (-points[i][1], i))
        return idx + rest[:max(0, 2 - len(idx))]
    idx = []
    for layer in pareto_layers(points):
        idx += layer
        if len(idx) >= 2:
            break
    return idx


# ---------------------------------------------------------------------------- populations
def initial_population(space: SearchSpace, size: int, window: OpsWindow, rng: random.Random,
                       max_trials: Optional[int] = None, method: str = 'sequential') -> List[Subnet]:
    """Biggest and smallest (those inside the window), then random ND subnets drawn by rejection into the
    window: :func:`~mmdynbnn.nas.sample_subnet` (``method``, default the reference's sequential sampler)
    is drawn until ``size`` distinct subnets inside the window are found, at most ``max_trials`` draws
    (default ``100 * size``). Raises if not a single subnet is found in the window."""
    out: List[Subnet] = []
    seen: Set[str] = set()

    def add(net: Subnet) -> None:
        key = subnet_key(net)
        if key not in seen and ops_m(net, space) in window:
            seen.add(key)
            out.append(net)

    for net in (Subnet.biggest(space), Subnet.smallest(space)):
        if len(out) < size:
            add(net)
    trials = max_trials if max_trials is not None else 100 * size
    for _ in range(trials):
        if len(out) >= size:
            break
        add(sample_subnet(space, rng, method))
    if not out:
        raise ValueError(f'search.ops_window={window}: no subnet found inside the window after '
                         f'{trials} random draws; widen the window')
    return out


def propose(parents: Sequence[Subnet], space: SearchSpace, rng: random.Random, window: OpsWindow,
            seen: Set[str], num_mutation: int, num_crossover: int, prob: float,
            trials_per_child: int = 10) -> Tuple[List[Subnet], Dict[str, int]]:
    """One generation's children: ``num_mutation`` mutations of random parents, then ``num_crossover``
    crossovers of two distinct random parents; children already in ``seen`` (updated in place), repeated,
    or outside the window are rejected and redrawn (at most ``trials_per_child`` draws per child).
    Returns the children and counters (``mutation``, ``crossover``, ``duplicate``, ``out_of_window``)."""
    children: List[Subnet] = []
    stats = dict(mutation=0, crossover=0, duplicate=0, out_of_window=0)

    def accept(child: Subnet, kind: str) -> None:
        key = subnet_key(child)
        if key in seen:
            stats['duplicate'] += 1
        elif ops_m(child, space) not in window:
            stats['out_of_window'] += 1
        else:
            seen.add(key)
            children.append(child)
            stats[kind] += 1

    parents = list(parents)
    trials = trials_per_child * num_mutation
    while stats['mutation'] < num_mutation and trials > 0 and parents:
        trials -= 1
        accept(mutate(rng.choice(parents), space, rng, prob), 'mutation')
    trials = trials_per_child * num_crossover
    while stats['crossover'] < num_crossover and trials > 0 and len(parents) >= 2:
        trials -= 1
        a, b = rng.sample(parents, 2)
        accept(crossover(a, b, space, rng), 'crossover')
    return children, stats

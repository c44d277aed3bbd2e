"""Non-dominated (OPs, accuracy) fronts: lower OPs and higher accuracy are better.

Example:
    >>> pareto_front([(10, 50.0), (20, 40.0), (30, 70.0), (30, 60.0)])
    [0, 2]
"""
from typing import List, Sequence, Tuple

Point = Tuple[float, float]  # (ops, accuracy)


def dominates(a: Point, b: Point) -> bool:
    """``a`` is at least as good as ``b`` in both objectives and strictly better in one."""
    return a[0] <= b[0] and a[1] >= b[1] and (a[0] < b[0] or a[1] > b[1])


def pareto_front(points: Sequence[Point]) -> List[int]:
    """Indices of the non-dominated points, by increasing OPs.

    Exact duplicates (same OPs and accuracy) do not dominate each other; only the first of them (lowest
    index) is kept so the front holds one entry per distinct point. O(n log n): sort by (OPs, -accuracy,
    index) and keep each point that beats the best accuracy seen at lower-or-equal OPs.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front: List[int] = []
    best = float('-inf')
    for i in order:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def pareto_layers(points: Sequence[Point]) -> List[List[int]]:
    """Successive fronts: layer 0 is :func:`pareto_front`, layer 1 the front of the rest, and so on.

    Every index appears in exactly one layer (a duplicate of a front point goes to a later layer).
    """
    remaining = list(range(len(points)))
    layers = []
    while remaining:
        sub = pareto_front([points[i] for i in remaining])
        layer = [remaining[j] for j in sub]
        layers.append(layer)
        taken = set(layer)
        remaining = [i for i in remaining if i not in taken]
    return layers

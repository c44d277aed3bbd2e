"""Helpers to calibrate DynamicDet's threshold: router scores, per-route latency / FLOPs, tau for a ratio."""
import copy
import statistics
import time
from functools import partial
from typing import Iterable, List, Sequence

import torch

from .dynamic_detector import DynamicDetector


def threshold_for_hard_ratio(scores: Sequence[float], ratio: float) -> float:
    """The tau that sends a ``ratio`` share of these images to route 2 (hard iff score < tau).

    0 -> 0.0 (all easy), 1 -> 1.0 (all hard); otherwise the midpoint between the ``m``-th and ``m+1``-th
    smallest score, ``m = round(ratio * n)`` (ties can make the realised share smaller).

    Example:
        >>> threshold_for_hard_ratio([0.1, 0.4, 0.6, 0.9], 0.5)
        0.5
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f'hard ratio must be in [0, 1], got {ratio}')
    ordered = sorted(float(s) for s in scores)
    n = len(ordered)
    m = int(round(ratio * n))
    if n == 0 or m <= 0:
        return 0.0
    if m >= n:
        return 1.0
    return (ordered[m - 1] + ordered[m]) / 2


def is_hard(score: float, tau: float) -> bool:
    """Whether an image with this router score takes route 2 at ``tau`` (``DynamicDetector.route_mask``'s
    rule: tau = 0 sends every image to route 1, tau = 1 every image to route 2, else ``score < tau``)."""
    return tau >= 1.0 or (tau > 0.0 and float(score) < tau)


def hard_ratio_at(scores: Sequence[float], tau: float) -> float:
    """Share of images routed to route 2 at ``tau``."""
    return sum(is_hard(s, tau) for s in scores) / max(1, len(scores))


@torch.no_grad()
def router_scores(model: DynamicDetector, data_batches: Iterable[dict]) -> List[float]:
    """Run only B1 + router over the batches (already collated dataloader batches)."""
    scores: List[float] = []
    for batch in data_batches:
        data = model.data_preprocessor(batch, False)
        feats1 = model.backbone.select_outs(model.backbone.forward_b1(data['inputs']))
        scores += model.easy_scores(feats1).tolist()
    return scores


@torch.no_grad()
def route_latency_ms(model: DynamicDetector, data_batches: Sequence[dict], route: int,
                     warmup: int = 1, repeats: int = 1) -> float:
    """Median wall time in ms of ``model.test_step`` per batch with every image forced through ``route``
    (preprocessing included, as a user would run it)."""
    on_cuda = any(p.is_cuda for p in model.parameters())
    # CUDA runs asynchronously: wait for the device before reading the clock, as mmdet's benchmark.py does
    sync = torch.cuda.synchronize if on_cuda else (lambda: None)
    with model.routing(route=route):
        for batch in list(data_batches)[:warmup]:
            model.test_step(copy.deepcopy(batch))
        times = []
        for _ in range(repeats):
            for batch in data_batches:
                batch = copy.deepcopy(batch)
                sync()
                start = time.perf_counter()
                model.test_step(batch)
                sync()
                times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


@torch.no_grad()
def route_flops(model: DynamicDetector, data_batches: Sequence[dict], route: int) -> float:
    """Mean FLOPs per batch (mmengine's counter, like mmdet's get_flops.py) with every image on ``route``."""
    from mmengine.analysis import get_model_complexity_info
    forward = model.forward
    flops = []
    with model.routing(route=route):
        try:
            for batch in data_batches:
                data = model.data_preprocessor(copy.deepcopy(batch), False)
                model.forward = partial(forward, data_samples=data['data_samples'])
                info = get_model_complexity_info(model, None, inputs=data['inputs'], show_table=False,
                                                 show_arch=False)
                flops.append(float(info['flops']))
        finally:
            model.forward = forward
    return sum(flops) / max(1, len(flops))


def mix(value1: float, value2: float, hard_ratio: float) -> float:
    """Linear mix of the two routes' costs at a hard ratio."""
    return (1 - hard_ratio) * value1 + hard_ratio * value2


def ratio_for_latency(target: float, lat1: float, lat2: float) -> float:
    """Hard ratio ``k = (target - lat1) / (lat2 - lat1)`` clipped to [0, 1]."""
    if lat2 <= lat1:
        return 0.0 if target <= lat1 else 1.0
    return min(1.0, max(0.0, (target - lat1) / (lat2 - lat1)))

"""Helpers to calibrate DynamicDet's threshold: router scores, per-route latency / FLOPs, tau for a ratio."""
import copy
import math
import statistics
import time
from functools import partial
from typing import Iterable, List, Sequence

import torch

from mmdynbnn.models.routers import hard_mask

from .dynamic_detector import DynamicDetector


def threshold_for_hard_ratio(scores: Sequence[float], ratio: float) -> float:
    """The tau that sends a ``ratio`` share of these images to route 2 (by :func:`is_hard`).

    0 -> 0.0 (all easy), 1 -> 1.0 (all hard); otherwise the midpoint (in float64) between the ``m``-th and
    ``m+1``-th smallest score, ``m = round(ratio * n)``. Under the routing rule (exact comparison) exactly
    ``m`` images are hard unless those two scores are equal (ties make the realised share smaller), even
    for two neighbouring float32 scores.

    Example:
        >>> threshold_for_hard_ratio([0.1, 0.4, 0.6, 0.9], 0.5)
        0.5
    """
    ratio = float(ratio)
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
    """Whether an image with this router score takes route 2 at ``tau``: the model's own rule
    (:func:`mmdynbnn.models.routers.hard_mask`, also behind ``DynamicDetector.route_mask``)."""
    return bool(hard_mask([score], tau)[0])


def hard_ratio_at(scores: Sequence[float], tau: float) -> float:
    """Share of images routed to route 2 at ``tau`` (0.0 for no scores)."""
    mask = hard_mask(scores, tau)
    return float(mask.double().mean()) if mask.numel() else 0.0


@torch.no_grad()
def router_scores(model: DynamicDetector, data_batches: Iterable[dict]) -> List[float]:
    """Run only B1 + router over the batches (already collated dataloader batches)."""
    scores: List[float] = []
    for batch in data_batches:
        data = model.data_preprocessor(batch, False)
        scores += model.easy_scores(model.backbone.forward_b1(data['inputs'])).tolist()
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
    """Hard ratio ``k = (target - lat1) / (lat2 - lat1)`` clipped to [0, 1] (route 1 takes ``lat1``, route 2
    ``lat2``; any cost that mixes linearly works, e.g. FLOPs). When route 2 is not dearer (``lat2 <= lat1``)
    the answer is 0 for a target up to ``lat1``, else 1.

    Example:
        >>> ratio_for_latency(30.0, 20.0, 40.0)
        0.5
    """
    values = dict(target=target, lat1=lat1, lat2=lat2)
    for name, value in values.items():
        if not math.isfinite(float(value)):
            raise ValueError(f'ratio_for_latency: {name} must be a finite number, got {value!r}')
    if lat2 <= lat1:
        return 0.0 if target <= lat1 else 1.0
    return min(1.0, max(0.0, (target - lat1) / (lat2 - lat1)))

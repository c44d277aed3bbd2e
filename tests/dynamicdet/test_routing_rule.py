"""One routing rule (``hard_mask``) for the model, the calibration helpers and the tools: exact comparison
of the score with tau, a score equal to tau is easy, tau = 0 / 1 send everything to route 1 / 2."""
import math

import numpy as np
import pytest
import torch

from mmdynbnn.det.calibration import hard_ratio_at, is_hard, ratio_for_latency, threshold_for_hard_ratio
from mmdynbnn.models.routers import hard_mask

from conftest import make_samples, tiny_retinanet


def f32_neighbours(start: float, count: int):
    """``count`` consecutive float32 values from ``start`` upwards, as Python floats."""
    values = [np.float32(start)]
    for _ in range(count - 1):
        values.append(np.nextafter(values[-1], np.float32(1)))
    return [float(v) for v in values]


@pytest.fixture
def model(build):
    return build(tiny_retinanet()).eval()


def model_mask(model, scores, tau):
    model.set_dynamic(threshold=tau, route=None)
    return model.route_mask(scores, scores.shape[0], scores.device).tolist()


def test_hard_mask_basics():
    scores = torch.tensor([0.1, 0.5, 0.9])
    assert hard_mask(scores, 0.5).tolist() == [True, False, False]  # 0.5 == tau: easy
    assert hard_mask(scores, 0.0).tolist() == [False] * 3
    assert hard_mask(torch.tensor([0.0, 1.0]), 1.0).tolist() == [True, True]  # a score of exactly 1 too
    assert hard_mask([0.2, 0.7], 0.5).tolist() == [True, False]
    assert hard_mask(torch.tensor([0.2, 0.7], dtype=torch.float16), 0.5).tolist() == [True, False]
    assert hard_mask(torch.zeros(2, 3), 0.5).shape == (2, 3) and hard_mask([], 0.5).numel() == 0


@pytest.mark.parametrize('tau', [-0.1, 1.5, float('nan')])
def test_hard_mask_rejects_tau_outside_unit_interval(tau):
    with pytest.raises(ValueError, match=r'tau must be in \[0, 1\]'):
        hard_mask([0.5], tau)


def test_hard_mask_rejects_integer_scores():
    with pytest.raises(TypeError, match='floating point'):
        hard_mask(torch.tensor([0, 1]), 0.5)


def test_score_equal_to_tau_is_easy_everywhere(model):
    tau = float(np.float32(0.3))  # a float32 score can equal tau exactly
    scores = torch.tensor([tau, 0.1, 0.9], dtype=torch.float32)
    assert model_mask(model, scores, tau) == [False, True, False]
    assert [is_hard(s, tau) for s in scores.tolist()] == [False, True, False]
    assert hard_ratio_at(scores.tolist(), tau) == pytest.approx(1 / 3)


def test_float32_neighbours_split_by_their_midpoint(model):
    """tau at the float64 midpoint of two neighbouring float32 scores: the lower is hard, the upper easy, in
    the model (float32 scores) and in the tools (Python floats). Comparing in float32 rounds tau onto one
    of the two scores, which decides half of these pairs the other way."""
    for lo, hi in zip(f32_neighbours(0.6, 6), f32_neighbours(0.6, 6)[1:]):
        tau = threshold_for_hard_ratio([lo, hi], 0.5)
        assert lo < tau < hi and tau != float(np.float32(tau))
        scores = torch.tensor([lo, hi], dtype=torch.float32)
        assert model_mask(model, scores, tau) == [True, False]
        assert [is_hard(lo, tau), is_hard(hi, tau)] == [True, False]
        assert hard_ratio_at([lo, hi], tau) == 0.5


def test_model_routes_like_is_hard_at_calibrated_thresholds(model):
    """The routes predict() takes equal is_hard on the scores it reports, at thresholds from the
    calibration helper for every ratio (a midpoint between two scores each time)."""
    with torch.no_grad():
        model.router.fc2.weight.mul_(50.0)  # spread the scores
    x, samples = torch.rand(6, 3, 64, 64), make_samples(6)
    with torch.no_grad():
        scores = model.easy_scores(model.backbone.forward_b1(x)).tolist()
    assert len(set(scores)) == 6
    for m in range(7):
        tau = threshold_for_hard_ratio(scores, m / 6)
        model.set_dynamic(threshold=tau)
        with torch.no_grad():
            out = model.predict(x, [s.clone() for s in samples], rescale=False)
        routes = [s.dynamic_route for s in out]
        assert routes == [2 if is_hard(s.router_score, tau) else 1 for s in out]
        assert sum(r == 2 for r in routes) == m and hard_ratio_at(scores, tau) == pytest.approx(m / 6)


def test_threshold_for_hard_ratio():
    scores = [0.9, 0.1, 0.6, 0.4]
    assert threshold_for_hard_ratio(scores, 0.0) == 0.0 and threshold_for_hard_ratio(scores, 1.0) == 1.0
    assert threshold_for_hard_ratio(scores, 0.25) == pytest.approx(0.25)  # between 0.1 and 0.4
    assert threshold_for_hard_ratio(scores, 0.5) == pytest.approx(0.5)
    assert threshold_for_hard_ratio(scores, 0.75) == pytest.approx(0.75)
    assert threshold_for_hard_ratio([], 0.5) == 0.0
    # every share m / n is realised exactly on distinct float32 scores
    values = torch.rand(37, generator=torch.Generator().manual_seed(0)).tolist()
    for m in range(38):
        assert hard_ratio_at(values, threshold_for_hard_ratio(values, m / 37)) == pytest.approx(m / 37)
    # ties can only make the realised share smaller
    tied = [0.5, 0.5, 0.5, 0.9]
    tau = threshold_for_hard_ratio(tied, 0.5)
    assert tau == 0.5 and hard_ratio_at(tied, tau) == 0.0
    for bad in (-0.1, 1.1, float('nan')):
        with pytest.raises(ValueError, match=r'hard ratio must be in \[0, 1\]'):
            threshold_for_hard_ratio(scores, bad)


def test_hard_ratio_at():
    scores = [0.1, 0.4, 0.6, 0.9]
    assert [hard_ratio_at(scores, t) for t in (0.0, 0.1, 0.4000001, 0.95, 1.0)] == [0.0, 0.0, 0.5, 1.0, 1.0]
    assert hard_ratio_at([], 0.5) == 0.0


def test_ratio_for_latency():
    assert ratio_for_latency(30.0, 20.0, 40.0) == 0.5
    assert ratio_for_latency(20.0, 20.0, 40.0) == 0.0 and ratio_for_latency(40.0, 20.0, 40.0) == 1.0
    assert ratio_for_latency(10.0, 20.0, 40.0) == 0.0 and ratio_for_latency(50.0, 20.0, 40.0) == 1.0
    assert ratio_for_latency(25.0, 20.0, 40.0) == pytest.approx(0.25)
    # route 2 not dearer: route 1 up to its latency, else everything through route 2
    assert ratio_for_latency(20.0, 20.0, 20.0) == 0.0 and ratio_for_latency(21.0, 20.0, 20.0) == 1.0
    assert ratio_for_latency(15.0, 20.0, 10.0) == 0.0
    for args in ((math.nan, 20.0, 40.0), (30.0, math.inf, 40.0)):
        with pytest.raises(ValueError, match='must be a finite number'):
            ratio_for_latency(*args)

"""Pareto front on hand-made points and against a brute-force definition."""
import random

from mmdynbnn.nas.pareto import dominates, pareto_front, pareto_layers

from .helpers import brute_force_front


def test_hand_made_front():
    pts = [(1.0, 10.0),   # 0 front: cheapest
           (2.0, 9.0),    # 1 dominated by 0
           (2.0, 30.0),   # 2 front
           (3.0, 30.0),   # 3 dominated by 2 (same acc, more OPs)
           (4.0, 50.0),   # 4 front
           (4.0, 45.0),   # 5 dominated by 4 (same OPs, less acc)
           (5.0, 20.0),   # 6 dominated
           (6.0, 60.0),   # 7 front: most accurate
           (1.0, 10.0)]   # 8 twin of 0: not a second front entry
    assert pareto_front(pts) == [0, 2, 4, 7]
    assert dominates(pts[2], pts[3]) and not dominates(pts[0], pts[8]) and not dominates(pts[0], pts[2])
    layers = pareto_layers(pts)
    assert layers[0] == [0, 2, 4, 7]
    assert sorted(i for layer in layers for i in layer) == list(range(len(pts)))
    assert 8 in layers[1] and 3 in layers[1]


def test_front_matches_brute_force_on_random_points():
    rng = random.Random(0)
    for trial in range(200):
        n = rng.randint(1, 40)
        # coarse values, so ties in OPs and accuracy are frequent
        pts = [(float(rng.randint(0, 10)), float(rng.randint(0, 10))) for _ in range(n)]
        assert pareto_front(pts) == brute_force_front(pts), pts


def test_empty_and_single():
    assert pareto_front([]) == [] and pareto_layers([]) == []
    assert pareto_front([(3.0, 1.0)]) == [0]

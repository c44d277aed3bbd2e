"""Evolution operators: validity and ND over many draws, inheritance, dedup, OPs window."""
import random

import pytest

from mmdynbnn.nas import CIFAR_SPACE, IMAGENET_SPACE, Subnet, build_space, sample_subnet, subnet_ops
from mmdynbnn.nas.evolution import (OpsWindow, bucket_best, crossover, default_parent_bucket, initial_population,
                                    mutate, ops_m, propose, select_parents, subnet_key)

# ND binds across stage boundaries here: a wide stem forces every later width up, and channel choices of
# consecutive stages overlap, so mixing two parents or resampling one width easily breaks ND.
TRICKY_SPACE = dict(
    stem=dict(channels=[8, 16, 32], kernel=3, stride=1),
    stages=[dict(channels=[8, 16, 32], depth=[1, 2, 3], kernel=[3, 5], groups=[1, 2], stride=1),
            dict(channels=[8, 24, 32, 48], depth=[1, 3], kernel=[3], groups=[1, 8], stride=2),
            dict(channels=[16, 48, 64], depth=[2], kernel=[3, 5], groups=[1, 4, 8], stride=2)],
    input_size=16, num_classes=3)
SPACES = {'cifar': CIFAR_SPACE, 'imagenet': IMAGENET_SPACE, 'tricky': TRICKY_SPACE}


def widths(net):
    return [net.stem_channels] + [b.channels for s in net.stages for b in s.blocks]


def assert_valid_nd(net, space):
    net.validate(space)  # choices, depth, groups | input, ND
    w = widths(net)
    assert all(x <= y for x, y in zip(w, w[1:])), w  # ND over the whole sequence (checked independently)
    for _, _, c_in, b in net.blocks():
        assert c_in % b.groups == 0


@pytest.mark.parametrize('name', sorted(SPACES))
@pytest.mark.parametrize('prob', [0.2, 0.5, 1.0])
def test_mutation_always_valid_and_nd(name, prob):
    space = build_space(SPACES[name])
    rng = random.Random(prob)
    changed = 0
    for _ in range(300):
        parent = sample_subnet(space, rng)
        child = mutate(parent, space, rng, prob)
        assert_valid_nd(child, space)
        changed += child != parent
    assert changed > 100  # it does mutate


def test_mutation_prob_zero_keeps_parent_and_rate_follows_prob():
    space = build_space(IMAGENET_SPACE)
    rng = random.Random(0)
    for _ in range(50):
        parent = sample_subnet(space, rng)
        assert mutate(parent, space, rng, 0.0) == parent
    # Kernel genes of stages with choices (3, 5): a resample changes the value with probability 1/2.
    for prob in (0.2, 0.6):
        flips = total = 0
        for _ in range(400):
            parent = sample_subnet(space, rng)
            child = mutate(parent, space, rng, prob)
            for sp, sc in zip(parent.stages[1:], child.stages[1:]):
                for bp, bc in zip(sp.blocks, sc.blocks):
                    flips += bp.kernel != bc.kernel
                    total += 1
        assert abs(flips / total - prob / 2) < 0.03, (prob, flips / total)


def test_mutation_resamples_width_kernel_and_groups_of_a_block_together():
    # ImageNet stages 1-4: kernel (3, 5) and groups (two choices that divide every input) are never
    # repaired, so a change shows a resample. Resampled together, a block whose kernel changed (resampled,
    # p = 1/2 of a change) had its groups resampled too: they changed with probability 1/2. Resampled
    # independently, that would be prob / 2 = 0.1.
    space = build_space(IMAGENET_SPACE)
    rng = random.Random(3)
    kernel_changed = both_changed = 0
    for _ in range(1500):
        parent = sample_subnet(space, rng)
        child = mutate(parent, space, rng, 0.2)
        for sp, sc in zip(parent.stages[1:], child.stages[1:]):
            for bp, bc in zip(sp.blocks, sc.blocks):
                if bp.kernel != bc.kernel:
                    kernel_changed += 1
                    both_changed += bp.groups != bc.groups
    assert kernel_changed > 300
    assert 0.4 < both_changed / kernel_changed < 0.6, both_changed / kernel_changed


def test_bucket_best_keeps_the_most_accurate_per_bucket():
    pts = [(0.9, 50.0),   # bucket 0 (round(0.9 / 2) = 0)
           (1.1, 55.0),   # bucket 1 (1.1 / 2 = 0.55 rounds to 1), best there
           (2.9, 54.0),   # bucket 1, less accurate
           (3.0, 60.0),   # bucket 2 (3.0 / 2 = 1.5: half-way goes up)
           (4.0, 40.0),   # bucket 2, dominated
           (9.0, 10.0),   # bucket 5 (4.5 goes up): alone there, so a parent although dominated
           (3.1, 60.0)]   # bucket 2, ties with 3: the earlier one stays
    assert bucket_best(pts, 2.0) == [0, 1, 3, 5]
    assert bucket_best(pts, 100.0) == [3]
    # Unlike the Pareto front (which drops (9.0, 10.0) and would keep only 0, 1, 3), every OPs range in the
    # window keeps a parent.
    assert select_parents(pts, 'front') == [0, 1, 3]
    assert select_parents(pts, 'bucket', 2.0) == [0, 1, 3, 5]
    # One bucket only: the next most accurate candidates complete the pair crossover needs.
    assert select_parents(pts, 'bucket', 100.0) == [3, 6]
    with pytest.raises(ValueError, match=r"search.parents='best'.*allowed: \['bucket', 'front'\]"):
        select_parents(pts, 'best', 2.0)
    with pytest.raises(ValueError, match='width=0'):
        bucket_best(pts, 0)


def test_default_parent_bucket_is_the_reference_width_in_the_imagenet_window():
    imagenet, cifar = build_space(IMAGENET_SPACE), build_space(CIFAR_SPACE)
    # 1/80 of [20.77, 180]: the reference's 2M buckets over its [20, 180] window
    assert default_parent_bucket(imagenet, OpsWindow.build((20, 180))) == pytest.approx((180 - 20.774) / 80, abs=1e-3)
    lo, hi = ops_m(Subnet.smallest(cifar), cifar), ops_m(Subnet.biggest(cifar), cifar)
    width = default_parent_bucket(cifar, OpsWindow.build(None))
    assert width == pytest.approx((hi - lo) / 80) and 0.008 < width < 0.009


@pytest.mark.parametrize('name', sorted(SPACES))
def test_crossover_always_valid_nd_and_inherits(name):
    space = build_space(SPACES[name])
    rng = random.Random(1)
    from_a = from_b = 0
    for _ in range(300):
        a, b = sample_subnet(space, rng), sample_subnet(space, rng)
        child = crossover(a, b, space, rng)
        assert_valid_nd(child, space)
        assert child.stem_channels in (a.stem_channels, b.stem_channels)
        for i, sc in enumerate(child.stages):
            assert sc.depth in (a.stages[i].depth, b.stages[i].depth)
            for j, blk in enumerate(sc.blocks):
                kernels = [p.stages[i].blocks[j].kernel for p in (a, b) if j < p.stages[i].depth]
                assert blk.kernel in kernels  # kernels never need repair
        from_a += child == a
        from_b += child == b
        assert crossover(a, a, space, rng) == a
    assert from_a < 300 and from_b < 300


def test_crossover_mixes_both_parents_elementwise():
    space = build_space(CIFAR_SPACE)
    a, b = Subnet.biggest(space), Subnet.smallest(space)
    rng = random.Random(2)
    kernels = [[blk.kernel for s in crossover(a, b, space, rng).stages for blk in s.blocks] for _ in range(200)]
    mixed = [k for k in kernels if len(set(k)) > 1 and len(k) > 2]
    assert mixed, 'element-wise crossover never mixed kernels of the two parents'


def test_crossover_repairs_nd_across_stages():
    space = build_space(TRICKY_SPACE)
    wide = Subnet.from_config(dict(stem=dict(channels=32), stages=[
        dict(depth=1, blocks=[dict(channels=32, kernel=3, groups=1)]),
        dict(depth=1, blocks=[dict(channels=32, kernel=3, groups=8)]),
        dict(depth=2, blocks=[dict(channels=48, kernel=3, groups=8), dict(channels=64, kernel=3, groups=8)])]),
        space)
    narrow = Subnet.smallest(space)
    rng = random.Random(3)
    for _ in range(200):
        assert_valid_nd(crossover(wide, narrow, space, rng), space)
        assert_valid_nd(crossover(narrow, wide, space, rng), space)


def test_propose_rejects_duplicates_and_out_of_window():
    space = build_space(CIFAR_SPACE)
    lo, hi = 0.25, 0.5
    window = OpsWindow.build((lo, hi))
    rng = random.Random(4)
    parents = initial_population(space, 6, window, rng)
    seen = {subnet_key(p) for p in parents}
    before = set(seen)
    children, stats = propose(parents, space, rng, window, seen, 10, 10, 0.3)
    keys = [subnet_key(c) for c in children]
    assert len(set(keys)) == len(keys) and not set(keys) & before
    assert set(keys) <= seen
    for c in children:
        assert_valid_nd(c, space)
        assert lo <= subnet_ops(c, space).ops / 1e6 <= hi
    assert stats['mutation'] + stats['crossover'] == len(children) > 0
    assert stats['out_of_window'] > 0  # the window is narrow: some children fell outside and were redrawn


def test_initial_population_biggest_smallest_and_window():
    space = build_space(CIFAR_SPACE)
    rng = random.Random(5)
    pop = initial_population(space, 12, OpsWindow.build(None), rng)
    assert pop[:2] == [Subnet.biggest(space), Subnet.smallest(space)]
    assert len({subnet_key(p) for p in pop}) == len(pop) == 12
    big = ops_m(Subnet.biggest(space), space)
    pop = initial_population(space, 12, OpsWindow.build((None, big - 0.01)), rng)
    assert Subnet.biggest(space) not in pop and pop[0] == Subnet.smallest(space)
    assert all(ops_m(p, space) <= big - 0.01 for p in pop)


def test_initial_population_is_the_sequential_sampler_rejected_into_the_window():
    space = build_space(IMAGENET_SPACE)
    window = OpsWindow.build((20, 180))  # the reference window: biggest (332M) falls outside
    pop = initial_population(space, 200, window, random.Random(11))
    assert pop[0] == Subnet.smallest(space) and Subnet.biggest(space) not in pop
    # Rejection: exactly the in-window, not yet seen draws of the sequential sampler, in draw order.
    rng, expected, seen = random.Random(11), [Subnet.smallest(space)], {Subnet.smallest(space)}
    while len(expected) < 200:
        net = sample_subnet(space, rng, 'sequential')
        if net not in seen and 20 <= ops_m(net, space) <= 180:
            seen.add(net)
            expected.append(net)
    assert pop == expected
    assert pop == initial_population(space, 200, window, random.Random(11))  # seeded: reproducible
    ops = sorted(ops_m(p, space) for p in pop[1:])
    assert 20 <= ops[0] and ops[-1] <= 180
    # The sequential sampler puts the population's median above the uniform-ND one's (~85M in the space).
    assert 110 < ops[len(ops) // 2] < 135, ops[len(ops) // 2]


@pytest.mark.parametrize('window', [(0.0, 0.05), (5.0, None), (100, 200)])
def test_unreachable_window_names_the_range(window):
    space = build_space(CIFAR_SPACE)
    small, big = ops_m(Subnet.smallest(space), space), ops_m(Subnet.biggest(space), space)
    with pytest.raises(ValueError, match='unreachable') as e:
        OpsWindow.build(window).check_reachable(space)
    assert f'{small:.4f}M (smallest)' in str(e.value) and f'{big:.4f}M (biggest)' in str(e.value)

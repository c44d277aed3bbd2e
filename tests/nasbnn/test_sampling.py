import collections
import itertools
import random
from fractions import Fraction

import pytest

from mmdynbnn.nas import CIFAR_SPACE, Subnet, build_space, count_subnets, sample_subnet, subnet_ops
from mmdynbnn.nas.subnet import BlockChoice, StageChoice

from .helpers import TINY_SPACE


def _enumerate(space):
    """Every ND-valid subnet of a tiny space, by brute force over the raw choices."""
    out = []
    stage_opts = []
    for s in space.stages:
        opts = []
        for d in s.depth:
            per_block = list(itertools.product(s.channels, s.kernel, s.groups))
            for blocks in itertools.product(per_block, repeat=d):
                opts.append(StageChoice(d, tuple(BlockChoice(*b) for b in blocks)))
        stage_opts.append(opts)
    for stem in space.stem.channels:
        for stages in itertools.product(*stage_opts):
            net = Subnet(stem, stages)
            try:
                out.append(net.validate(space))
            except ValueError:
                pass
    return out


# The sequential sampler reaches a narrow width deep in the ImageNet space's 9-block stage only with
# probability ~(1/3)^7 (it must be redrawn at every block), so its coverage is checked in the CIFAR space.
@pytest.mark.parametrize('method,space_cfg', [('sequential', CIFAR_SPACE), ('uniform_nd', None)])
def test_many_draws_respect_choices_nd_and_reach_every_choice(method, space_cfg):
    space = build_space(space_cfg)  # None: the paper's ImageNet space
    rng = random.Random(123)
    seen = collections.defaultdict(set)
    for _ in range(3000):
        net = sample_subnet(space, rng, method)
        net.validate(space)  # choices, depth, ND, divisibility
        widths = [net.stem_channels] + [b.channels for *_, b in net.blocks()]
        assert widths == sorted(widths)
        seen['stem'].add(net.stem_channels)
        for i, stage in enumerate(net.stages):
            seen[(i, 'depth')].add(stage.depth)
            for j, b in enumerate(stage.blocks):
                for field in ('channels', 'kernel', 'groups'):
                    seen[(i, j, field)].add(getattr(b, field))
    assert seen['stem'] == set(space.stem.channels)
    for i, s in enumerate(space.stages):
        assert seen[(i, 'depth')] == set(s.depth)
        for j in range(s.max_depth):
            assert seen[(i, j, 'channels')] == set(s.channels), (i, j)
            assert seen[(i, j, 'kernel')] == set(s.kernel), (i, j)
            assert seen[(i, j, 'groups')] == set(s.groups), (i, j)


SMALL_SPACE = dict(stem=dict(channels=[2, 4], stride=1),
                   stages=[dict(channels=[2, 4, 6], depth=[2, 3], kernel=[3, 5], groups=[1, 2])],
                   input_size=8, num_classes=2)


def test_uniform_nd_distribution_is_uniform_over_nd_valid_subnets_given_depths():
    space = build_space(SMALL_SPACE)
    valid = _enumerate(space)
    assert len(valid) == count_subnets(space)
    by_depth = collections.Counter(n.stages[0].depth for n in valid)
    n_draws = 20000
    counts = collections.Counter(sample_subnet(space, random.Random(7 + k), 'uniform_nd')
                                 for k in range(n_draws))
    assert set(counts) <= set(valid)
    for net in valid:  # depth uniform, then uniform among the valid subnets of that depth
        expected = n_draws / len(space.stages[0].depth) / by_depth[net.stages[0].depth]
        assert abs(counts[net] - expected) < 5 * expected ** 0.5 + 2, (net, counts[net], expected)


def _sequential_probability(net, space):
    """Probability of ``net`` under the sequential sampler, from its definition: depth uniform per stage,
    then each width uniform among the choices >= the previous width (every such choice admits an ND
    completion in these spaces), kernel and groups uniform."""
    p = Fraction(1, len(space.stem.channels))
    prev = net.stem_channels
    for ss, st in zip(space.stages, net.stages):
        p /= len(ss.depth)
        for b in st.blocks:
            p /= len([c for c in ss.channels if c >= prev]) * len(ss.kernel) * len(ss.groups)
            prev = b.channels
    return p


def test_sequential_distribution_draws_each_width_uniformly_above_the_previous_one():
    space = build_space(SMALL_SPACE)
    valid = _enumerate(space)
    assert sum(_sequential_probability(n, space) for n in valid) == 1
    n_draws = 20000
    counts = collections.Counter(sample_subnet(space, random.Random(7 + k)) for k in range(n_draws))
    assert set(counts) <= set(valid)
    for net in valid:
        expected = n_draws * float(_sequential_probability(net, space))
        assert abs(counts[net] - expected) < 5 * expected ** 0.5 + 2, (net, counts[net], expected)
    # Not the uniform-ND distribution: (stem 4, 4, 4) is drawn with 1/2 * 1/2 * (1/2)^2 * 1/4 per depth-2
    # kernel/group pattern, twice as often as (stem 2, 2, 2) = 1/2 * 1/2 * (1/3)^2 * 1/4.
    a = Subnet.from_config(dict(stem=dict(channels=4), stages=[dict(depth=2, blocks=[
        dict(channels=4, kernel=3, groups=1)] * 2)]), space)
    b = Subnet.from_config(dict(stem=dict(channels=2), stages=[dict(depth=2, blocks=[
        dict(channels=2, kernel=3, groups=1)] * 2)]), space)
    assert _sequential_probability(a, space) / _sequential_probability(b, space) == Fraction(9, 4)
    assert counts[a] > 1.5 * counts[b]


def _ops_stats(method, n=3000, seed=0):
    space = build_space()
    rng = random.Random(seed)
    ops = sorted(subnet_ops(sample_subnet(space, rng, method), space).ops / 1e6 for _ in range(n))
    return sum(ops) / n, ops[int(0.9 * n)]


def test_sequential_sampler_ops_distribution_in_the_imagenet_space():
    # The reference sampler averages ~125M OPs (p90 ~163M) over 3,000 draws in this space (20.8M-331.8M);
    # uniform-over-ND sequences average ~88M (p90 ~119M): fewer wide students.
    mean, p90 = _ops_stats('sequential')
    assert 118 < mean < 133 and 155 < p90 < 172, (mean, p90)
    mean_u, p90_u = _ops_stats('uniform_nd')
    assert 80 < mean_u < 96 and 110 < p90_u < 128, (mean_u, p90_u)


@pytest.mark.parametrize('method', ['sequential', 'uniform_nd'])
def test_seeded_sampling_is_reproducible(method):
    space = build_space(TINY_SPACE)
    a = [sample_subnet(space, random.Random(5), method) for _ in range(3)]
    b = [sample_subnet(space, random.Random(5), method) for _ in range(3)]
    assert a == b
    rng = random.Random(5)
    assert len({sample_subnet(space, rng, method) for _ in range(50)}) > 10


def test_sequential_sampler_skips_widths_without_an_nd_completion():
    # Stage 0 may end at 8 but stage 1 only offers 4 or 8: after a stem of 4, the block width 16 would leave
    # no ND completion, so it is never drawn (the completion check, not only >= previous).
    space = build_space(dict(stem=dict(channels=[4], stride=1),
                             stages=[dict(channels=[4, 8, 16], depth=[1], kernel=[3]),
                                     dict(channels=[4, 8], depth=[1], kernel=[3])],
                             input_size=8, num_classes=2))
    rng = random.Random(0)
    nets = [sample_subnet(space, rng) for _ in range(300)]
    assert {n.stages[0].blocks[0].channels for n in nets} == {4, 8}
    for n in nets:
        n.validate(space)


def test_unknown_sampler_is_refused():
    with pytest.raises(ValueError, match=r"method='uniform'.*allowed: \['sequential', 'uniform_nd'\]"):
        sample_subnet(build_space(TINY_SPACE), random.Random(0), 'uniform')


def test_space_size_matches_the_paper():
    space = build_space()
    assert 3e21 < count_subnets(space, nd=False) < 5e21  # "about 4e21 subnets without ND"
    assert count_subnets(space) < count_subnets(space, nd=False)
    assert count_subnets(TINY_SPACE) == len(_enumerate(build_space(TINY_SPACE)))

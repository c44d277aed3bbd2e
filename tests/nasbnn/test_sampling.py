import collections
import itertools
import random

from mmdynbnn.nas import Subnet, build_space, count_subnets, sample_subnet
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


def test_many_draws_respect_choices_nd_and_reach_every_choice():
    space = build_space()  # the paper's ImageNet space
    rng = random.Random(123)
    seen = collections.defaultdict(set)
    for _ in range(3000):
        net = sample_subnet(space, rng)
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


def test_distribution_is_uniform_over_nd_valid_subnets_given_depths():
    space = build_space(dict(stem=dict(channels=[2, 4], stride=1),
                             stages=[dict(channels=[2, 4, 6], depth=[2, 3], kernel=[3, 5], groups=[1, 2])],
                             input_size=8, num_classes=2))
    valid = _enumerate(space)
    assert len(valid) == count_subnets(space)
    by_depth = collections.Counter(n.stages[0].depth for n in valid)
    n_draws = 20000
    counts = collections.Counter(sample_subnet(space, random.Random(7 + k)) for k in range(n_draws))
    assert set(counts) <= set(valid)
    for net in valid:  # depth uniform, then uniform among the valid subnets of that depth
        expected = n_draws / len(space.stages[0].depth) / by_depth[net.stages[0].depth]
        assert abs(counts[net] - expected) < 5 * expected ** 0.5 + 2, (net, counts[net], expected)


def test_seeded_sampling_is_reproducible():
    space = build_space(TINY_SPACE)
    a = [sample_subnet(space, random.Random(5)) for _ in range(3)]
    b = [sample_subnet(space, random.Random(5)) for _ in range(3)]
    assert a == b
    rng = random.Random(5)
    assert len({sample_subnet(space, rng) for _ in range(50)}) > 10


def test_space_size_matches_the_paper():
    space = build_space()
    assert 3e21 < count_subnets(space, nd=False) < 5e21  # "about 4e21 subnets without ND"
    assert count_subnets(space) < count_subnets(space, nd=False)
    assert count_subnets(TINY_SPACE) == len(_enumerate(build_space(TINY_SPACE)))

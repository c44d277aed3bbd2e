import copy
import json

import pytest

from mmdynbnn.nas import (CIFAR_SPACE, IMAGENET_SPACE, SearchSpace, Subnet, build_space, build_subnet,
                          load_subnet_file)
from mmdynbnn.nas.subnet import BlockChoice, StageChoice

from .helpers import TINY_SPACE


def test_default_space_is_the_paper_table():
    space = build_space()
    assert space == SearchSpace.from_config(IMAGENET_SPACE)
    assert space.stem.channels == (24, 32, 48) and space.stem.bits == 8 and space.stem.stride == 2
    assert [s.channels for s in space.stages] == [(48, 64, 96), (96, 128, 192), (192, 256, 384),
                                                  (384, 512, 768), (768, 1024, 1536)]
    assert [s.depth for s in space.stages] == [(2, 3), (2, 3), (2, 3), (8, 9), (2, 3)]
    assert [s.groups for s in space.stages] == [(1,), (1, 2), (2, 4), (4, 8), (8, 16)]
    assert space.strides() == (2, 4, 8, 16, 32)
    assert SearchSpace.from_config(space.to_config()) == space


@pytest.mark.parametrize('edit, words', [
    (lambda s: s['stages'][1].update(groups=[3]), ['stage 1', 'groups', '[3]']),
    (lambda s: s['stages'][0].update(kernel=[2, 3]), ['stage 0', 'kernel', 'odd']),
    (lambda s: s['stages'][2].update(depth=[]), ['stage 2', 'depth']),
    (lambda s: s['stem'].update(channels=[0, 4]), ['stem', 'channels']),
    (lambda s: s.update(resolution=3), ['unknown keys', 'resolution']),
])
def test_bad_space_raises(edit, words):
    cfg = copy.deepcopy(TINY_SPACE)
    edit(cfg)
    with pytest.raises(ValueError) as err:
        SearchSpace.from_config(cfg)
    for w in words:
        assert w in str(err.value)


def test_biggest_and_smallest():
    space = build_space(TINY_SPACE)
    big, small = Subnet.biggest(space), Subnet.smallest(space)
    assert big.stem_channels == 8 and small.stem_channels == 4
    assert [s.depth for s in big.stages] == [2, 2, 2] and [s.depth for s in small.stages] == [1, 1, 1]
    assert big.stages[2].blocks[0] == BlockChoice(24, 5, 2)
    assert small.stages[2].blocks[0] == BlockChoice(16, 3, 4)
    big.validate(space), small.validate(space)


@pytest.mark.parametrize('ext', ['json', 'yaml', 'py'])
def test_round_trip_through_files(tmp_path, ext):
    space = build_space(CIFAR_SPACE)
    net = Subnet(16, (StageChoice(2, (BlockChoice(24, 3, 1), BlockChoice(32, 3, 1))),
                      StageChoice(1, (BlockChoice(48, 5, 2),)),
                      StageChoice(2, (BlockChoice(48, 3, 4), BlockChoice(64, 5, 2))),
                      StageChoice(1, (BlockChoice(96, 3, 8),))))
    path = str(tmp_path / f'net.{ext}')
    net.dump(path)
    assert Subnet.from_config(path, space) == net
    assert build_subnet(load_subnet_file(path), space) == net
    assert Subnet.from_config(json.loads(net.to_json()), space) == net
    assert 'stem 16' in str(net)


def _tiny_cfg():
    return Subnet.biggest(TINY_SPACE).to_config()


@pytest.mark.parametrize('edit, words', [
    (lambda c: c['stages'][1]['blocks'][0].update(kernel=7), ['stage 1, block 0', 'kernel=7', '[3, 5]']),
    (lambda c: c['stages'][2]['blocks'][1].update(groups=1), ['stage 2, block 1', 'groups=1', '[2, 4]']),
    (lambda c: c['stages'][0]['blocks'][1].update(channels=10), ['stage 0, block 1', 'channels=10',
                                                                 '[8, 12]']),
    (lambda c: c['stem'].update(channels=6), ['stem', 'channels=6', '[4, 8]']),
    (lambda c: c['stages'][1].update(depth=3, blocks=c['stages'][1]['blocks'] * 2),
     ['stage 1', 'depth=3', '[1, 2]']),
    (lambda c: c['stages'][1].update(depth=1), ['stage 1', 'depth=1', '2 blocks']),
    (lambda c: c['stages'][2]['blocks'][1].update(channels=16),
     ['stage 2, block 1', 'channels=16', 'non-decreasing', 'stage 2, block 0', '[24]']),
    (lambda c: c['stages'].pop(), ['2 stages', '3']),
    (lambda c: c['stages'][0]['blocks'][0].update(width=3), ['stage 0, block 0']),
])
def test_invalid_subnet_names_stage_block_field_value_choices(edit, words):
    cfg = _tiny_cfg()
    edit(cfg)
    with pytest.raises(ValueError) as err:
        Subnet.from_config(cfg, TINY_SPACE)
    for w in words:
        assert w in str(err.value), (w, str(err.value))


def test_nd_across_stages_is_checked():
    # A space where stage 1 may be narrower than stage 0 ends: ND must be checked across the boundary.
    space = dict(copy.deepcopy(TINY_SPACE))
    space['stages'][1]['channels'] = [8, 16]
    cfg = Subnet.biggest(space).to_config()
    cfg['stages'][1]['blocks'][0]['channels'] = 8  # stage 0 ends at 12
    with pytest.raises(ValueError, match=r'stage 1, block 0: channels=8 violates .*stage 0, block 1'):
        Subnet.from_config(cfg, space)

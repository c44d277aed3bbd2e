"""The search configs and the choice of the subnet to export."""
import os.path as osp

import pytest
from mmengine.config import Config

from mmdynbnn.nas import Subnet, build_space
from mmdynbnn.nas.evolution import ops_m
from mmdynbnn.nas.search import SearchSettings, select_from_front

from .helpers import REPO


@pytest.mark.parametrize('name', ['nasbnn-search_cifar10-mini.py', 'nasbnn-search_8xb64_in1k.py'])
def test_search_configs_are_valid(name):
    cfg = Config.fromfile(osp.join(REPO, 'configs/nasbnn', name))
    s = SearchSettings.from_config(cfg.search)
    space = build_space(cfg.model.backbone.space)
    lo, hi = s.window.check_reachable(space)
    for key in ('finetune_config', 'detection_config'):
        assert osp.isfile(cfg.search_export[key]), cfg.search_export[key]
    if 'in1k' in name:  # docs/nasbnn.md §5 reference settings
        assert (s.population, s.generations, s.num_mutation, s.num_crossover, s.mutation_prob, s.holdout) == \
            (512, 20, 128, 128, 0.2, 50)
        assert s.ops_window == (20.0, 180.0) and 20 < lo < 180 < hi  # smallest 20.77M, biggest 331.81M
        assert ops_m(Subnet.smallest(space), space) in s.window  # 20.77M: included in the population
        assert (s.parents, s.parent_bucket, s.calib_images, s.calib_batch_size) == ('bucket', 2, 2560, 256)


def test_select_from_front():
    front = [dict(ops=1.0, accuracy=10.0), dict(ops=2.0, accuracy=20.0), dict(ops=3.0, accuracy=30.0)]
    res = dict(front=front)
    assert select_from_front(res, ops_budget=2.5) is front[1]
    assert select_from_front(res, ops_budget=3.0) is front[2]
    assert select_from_front(res, index=0) is front[0] and select_from_front(res, index=-1) is front[2]
    with pytest.raises(ValueError, match='no front subnet within 0.5M OPs; the cheapest costs 1.0000M'):
        select_from_front(res, ops_budget=0.5)
    with pytest.raises(ValueError, match='front index 3 out of range: the front has 3'):
        select_from_front(res, index=3)
    with pytest.raises(ValueError, match='exactly one'):
        select_from_front(res, ops_budget=1.0, index=0)

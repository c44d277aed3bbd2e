"""Kill at any point (simulated: the evaluator raises after k evaluations) and resume: the same candidates
and front as an uninterrupted run, and no candidate is evaluated twice. A deterministic stand-in fitness
keeps this fast; the real evaluator and the entry point are covered in test_search_tool.py."""
import hashlib
import json
import os.path as osp

import pytest

from mmdynbnn.nas import CIFAR_SPACE, build_space
from mmdynbnn.nas.evolution import subnet_key
from mmdynbnn.nas.search import EvolutionSearch, SearchSettings

SETTINGS_CFG = dict(population=8, generations=2, num_mutation=4, num_crossover=4, mutation_prob=0.3, seed=7)
SETTINGS = SearchSettings.from_config(SETTINGS_CFG)


class Killed(Exception):
    pass


class Fitness:
    """Accuracy from a hash of the subnet (deterministic); raises ``Killed`` at call ``kill_at``."""

    def __init__(self, kill_at=None):
        self.calls, self.kill_at, self.seen = 0, kill_at, []

    def __call__(self, net):
        if self.kill_at is not None and self.calls == self.kill_at:
            raise Killed
        self.calls += 1
        self.seen.append(subnet_key(net))
        return int(hashlib.sha1(subnet_key(net).encode()).hexdigest()[:4], 16) % 1000 / 10


def run(work, fitness, resume=False):
    path = osp.join(work, 'search_state.json')
    search = EvolutionSearch(build_space(CIFAR_SPACE), SETTINGS, fitness, str(work), progress=False,
                             resume_from=path if resume and osp.exists(path) else None, resume=resume)
    return search.run()


def essentials(res):
    return [(json.dumps(c['subnet']), c['ops'], c['accuracy'], c['generation']) for c in res['candidates']], \
        [c['index'] for c in res['front']]


def test_kill_anywhere_then_resume(tmp_path):
    ref_fit = Fitness()
    ref = run(tmp_path / 'ref', ref_fit)
    total = ref_fit.calls
    assert total == len(ref['candidates']) > 8 and {c['generation'] for c in ref['candidates']} == {0, 1, 2}
    for k in sorted({0, 1, 7, 8, 9, total // 2, total - 1}):
        work = tmp_path / f'kill{k}'
        first = Fitness(kill_at=k)
        with pytest.raises(Killed):
            run(work, first)
        second = Fitness()
        res = run(work, second, resume=True)
        assert essentials(res) == essentials(ref), k
        assert first.calls + second.calls == total, k  # nothing evaluated twice
        assert not set(first.seen) & set(second.seen)


def test_unreadable_partial_file_is_only_a_lost_cache(tmp_path):
    ref = run(tmp_path / 'ref', Fitness())
    work = tmp_path / 'w'
    with pytest.raises(Killed):
        run(work, Fitness(kill_at=10))
    (work / 'search_partial' / 'rank0.json').write_text('{"truncated')
    second = Fitness()
    assert essentials(run(work, second, resume=True)) == essentials(ref)
    assert second.calls == len(ref['candidates']) - 8  # generation 1 redone from scratch


def test_generations_are_rounds_after_the_initial_population_and_parents_the_bucket_bests(tmp_path):
    space = build_space(CIFAR_SPACE)
    only_initial = SearchSettings.from_config(dict(SETTINGS_CFG, generations=0))
    res = EvolutionSearch(space, only_initial, Fitness(), str(tmp_path / 'g0'), progress=False).run()
    assert {c['generation'] for c in res['candidates']} == {0} and res['generations_done'] == 1
    search = EvolutionSearch(space, SETTINGS, Fitness(), str(tmp_path / 'g2'), progress=False)
    res = search.run()
    assert {c['generation'] for c in res['candidates']} == {0, 1, 2} and res['generations_done'] == 3
    # Parents: the most accurate candidate of every OPs bucket (nearest multiple of the width), by brute force.
    width = search.parent_bucket
    assert width == pytest.approx((0.8031 - 0.1184) / 80, rel=1e-3)  # the CIFAR space's default
    best = {}
    for i, c in enumerate(res['candidates']):
        b = round(c['ops'] / width)
        if b not in best or c['accuracy'] > res['candidates'][best[b]]['accuracy']:
            best[b] = i
    expected = [res['candidates'][best[b]]['subnet'] for b in sorted(best)]
    assert [p.to_config() for p in search.parents()] == expected
    assert [c['subnet'] for c in res['bucket_best']] == expected and res['parent_bucket'] == width
    # The reported front stays the true non-dominated front.
    pts = [(c['ops'], c['accuracy']) for c in res['candidates']]
    front = [i for i, p in enumerate(pts) if not any(q[0] <= p[0] and q[1] >= p[1] and q != p for q in pts)]
    assert sorted(c['index'] for c in res['front']) == sorted(front)
    assert len(res['bucket_best']) > len(res['front'])
    # The front-based selection is still available and is part of what a resume must match.
    front_settings = SearchSettings.from_config(dict(SETTINGS_CFG, parents='front'))
    with pytest.raises(ValueError, match="parents: saved 'bucket', now 'front'"):
        EvolutionSearch(space, front_settings, Fitness(), str(tmp_path / 'g2'), progress=False,
                        resume_from=str(tmp_path / 'g2' / 'search_state.json'))


def test_settings_defaults_and_errors():
    s = SearchSettings.from_config({})
    assert (s.generations, s.calib_images, s.calib_batch_size, s.parents, s.parent_bucket) == \
        (20, 2560, 256, 'bucket', None)
    with pytest.raises(ValueError, match=r"search.parents='pareto'.*allowed: \['bucket', 'front'\]"):
        SearchSettings.from_config(dict(parents='pareto'))
    with pytest.raises(ValueError, match=r'search.parent_bucket=0 must be > 0'):
        SearchSettings.from_config(dict(parent_bucket=0))
    with pytest.raises(ValueError, match=r'search.generations=-1 must be an int >= 0'):
        SearchSettings.from_config(dict(generations=-1))

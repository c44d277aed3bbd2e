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

SETTINGS = SearchSettings.from_config(dict(population=8, generations=3, num_mutation=4, num_crossover=4,
                                           mutation_prob=0.3, seed=7))


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

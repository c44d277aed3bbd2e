"""Clear errors before any evaluation (the tool's main, in process; evaluation and data loading are
patched to fail loudly, so an error raised later than promised would show as that failure)."""
import importlib.util
import json
import sys

import pytest

import mmdynbnn.nas.search as search_mod
from mmdynbnn.nas.search import SearchSettings

from .helpers import CONFIG, SEARCH_TOOL, TINY


def _tool():
    spec = importlib.util.spec_from_file_location('nasbnn_search_tool', SEARCH_TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture
def main(monkeypatch):
    def too_late(*args, **kwargs):
        raise AssertionError('got as far as loading data / evaluating')

    monkeypatch.setattr(search_mod, 'build_search_data', too_late)
    monkeypatch.setattr(search_mod.CandidateEvaluator, '__call__', too_late)
    tool = _tool()

    def call(*argv):
        monkeypatch.setattr(sys, 'argv', ['search.py', *argv])
        tool.main()
    return call


def test_unreachable_ops_window(main, supernet_ckpt, tmp_path):
    with pytest.raises(ValueError, match=r'ops_window=\[5.0, 6.0\] M OPs is unreachable.*0\.1177M \(smallest\) '
                                         r'and 0\.8030M \(biggest\)'):
        main(CONFIG, supernet_ckpt, '--work-dir', str(tmp_path), '--cfg-options', *TINY, 'search.ops_window=[5,6]')


@pytest.mark.parametrize('pop', [1, 0])
def test_population_below_two(main, supernet_ckpt, tmp_path, pop):
    with pytest.raises(ValueError, match=rf'search.population={pop} must be an int >= 2'):
        main(CONFIG, supernet_ckpt, '--work-dir', str(tmp_path), '--cfg-options', *TINY, f'search.population={pop}')


def test_missing_checkpoint(main, tmp_path):
    with pytest.raises(FileNotFoundError, match=r"supernet checkpoint '.*nope.pth' not found"):
        main(CONFIG, str(tmp_path / 'nope.pth'), '--work-dir', str(tmp_path))


@pytest.mark.parametrize('content, why', [
    ('{"format": "mmdynbnn.nasbnn-search-st', 'JSONDecodeError'),          # truncated write
    ('\x00\x01garbage', 'JSONDecodeError'),
    ('[1, 2, 3]', 'not a search state'),
    ('CANDIDATE', 'candidate 0: subnet stage 1, block 0: channels=40 is not in the allowed choices'),
    ('DUPLICATE', 'candidate 1 is a duplicate'),
])
def test_corrupt_resume_file(main, supernet_ckpt, tmp_path, content, why):
    from mmdynbnn.nas import CIFAR_SPACE, Subnet, build_space
    space = build_space(CIFAR_SPACE)
    settings = SearchSettings.from_config(dict(
        ops_window=(None, None), population=6, generations=4, num_mutation=3, num_crossover=3,
        mutation_prob=0.2, holdout=5, calib_images=64, calib_batch_size=32, seed=3, cache_holdout=True))
    if content in ('CANDIDATE', 'DUPLICATE'):
        net = Subnet.biggest(space).to_config()
        cand = dict(subnet=net, ops=0.8, accuracy=10.0, generation=0, rank=0)
        cands = [cand, cand]
        if content == 'CANDIDATE':
            bad = json.loads(json.dumps(net))
            bad['stages'][1]['blocks'][0]['channels'] = 40
            cands = [dict(cand, subnet=bad)]
        content = json.dumps(dict(format=search_mod.STATE_FORMAT, version=search_mod.STATE_VERSION,
                                  space=space.to_config(), settings=settings.fingerprint(), next_generation=1,
                                  candidates=cands))
    (tmp_path / 'search_state.json').write_text(content)
    with pytest.raises(ValueError, match='resume file .*search_state.json is corrupt') as e:
        main(CONFIG, supernet_ckpt, '--work-dir', str(tmp_path), '--resume', '--cfg-options', *TINY)
    assert why in str(e.value)


def test_resume_with_other_settings_names_them(main, supernet_ckpt, tmp_path, reference_search):
    ref, _ = reference_search
    with pytest.raises(ValueError, match=r'other search settings \(mutation_prob: saved 0.2, now 0.5\)'):
        main(CONFIG, supernet_ckpt, '--work-dir', str(tmp_path), '--resume', str(ref / 'search_state.json'),
             '--cfg-options', *TINY, 'search.mutation_prob=0.5')


def test_settings_validation_messages():
    with pytest.raises(ValueError, match=r"unknown keys \['populaton'\]"):
        SearchSettings.from_config(dict(populaton=5))
    with pytest.raises(ValueError, match=r'mutation_prob=1.5 must be in \[0, 1\]'):
        SearchSettings.from_config(dict(mutation_prob=1.5))
    with pytest.raises(ValueError, match=r'low 3 > high 2'):
        SearchSettings.from_config(dict(ops_window=(3, 2)))
    with pytest.raises(ValueError, match='no `search = dict'):
        SearchSettings.from_config(None)


def test_resume_with_another_checkpoint(main, tmp_path, reference_search):
    ref, _ = reference_search
    other = tmp_path / 'other.pth'
    other.write_bytes(b'not the searched supernet')
    with pytest.raises(ValueError, match=r'belongs to another search: checkpoint_sha256 is .* now \(another '
                                         r'supernet checkpoint\?\)'):
        main(CONFIG, str(other), '--work-dir', str(tmp_path), '--resume', str(ref / 'search_state.json'),
             '--cfg-options', *TINY)

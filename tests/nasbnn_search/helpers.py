"""Shared pieces of the search tests: a supernet checkpoint, the entry point as a subprocess, brute-force
reference implementations (written independently of the code under test)."""
import json
import os
import os.path as osp
import subprocess
import sys

import mmpretrain

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMPT = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
SEARCH_TOOL = osp.join(REPO, 'tools/nas/search.py')
CONFIG = osp.join(REPO, 'configs/nasbnn/nasbnn-search_cifar10-mini.py')
# A tiny search: 6 initial subnets (generation 0), then one generation of 3 mutations + 3 crossovers.
TINY = ['search.population=6', 'search.num_mutation=3', 'search.num_crossover=3', 'search.generations=1',
        'search.seed=3']


def env():
    return dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')


def run(*args, check=True, timeout=300):
    proc = subprocess.run([sys.executable, *args], cwd=REPO, env=env(), capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    if check:
        assert proc.returncode == 0, out[-4000:]
    return proc.returncode, out


def make_checkpoint(path: str) -> str:
    """A freshly built CIFAR supernet classifier (seeded) saved as an mmengine-style checkpoint."""
    import torch
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    import mmdynbnn.cls  # noqa: F401
    from mmdynbnn.nas.search import build_classifier
    cfg = Config.fromfile(CONFIG)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = build_classifier(cfg)
    torch.save(dict(meta=dict(note='test supernet'), state_dict=model.state_dict()), path)
    return path


def load(path):
    with open(path) as f:
        return json.load(f)


def essentials(results):
    """What must agree between equivalent searches (the evaluating rank may differ)."""
    return ([(json.dumps(c['subnet'], sort_keys=True), c['ops'], c['accuracy'], c['generation'])
             for c in results['candidates']], [c['index'] for c in results['front']])


def brute_force_front(points):
    """Indices of non-dominated points (O(n^2)); among exact duplicates the lowest index, sorted by OPs."""
    keep = []
    for i, (o, a) in enumerate(points):
        dominated = any((o2 <= o and a2 >= a and (o2 < o or a2 > a)) for o2, a2 in points)
        earlier_twin = any((o2, a2) == (o, a) for o2, a2 in points[:i])
        if not dominated and not earlier_twin:
            keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])

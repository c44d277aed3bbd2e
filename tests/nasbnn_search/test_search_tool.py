"""The real entry point (subprocesses) on the bundled CIFAR sample: a tiny search (generations 0 and 1), export,
the stock mmpretrain test.py on the exported config, resume after a kill, 2-process gloo."""
import os.path as osp
import re
import signal
import socket
import subprocess
import sys
import time

import torch

from mmdynbnn.nas import Subnet, build_space, subnet_ops
from mmdynbnn.nas.search import select_from_front

from .helpers import (CONFIG, MMPT, REPO, SEARCH_TOOL, TINY, brute_force_front, env, essentials, load, run)


def top1(log):
    return float(re.findall(r'accuracy/top1: ([\d.]+)', log)[-1])


def test_tiny_search_results_front_plot_and_logs(reference_search):
    work, log = reference_search
    res = load(work / 'search_results.json')
    space = build_space(res['space'])
    cands = res['candidates']
    gens = [c['generation'] for c in cands]
    assert gens.count(0) == 6 and 0 < gens.count(1) <= 6 and set(gens) == {0, 1}
    nets = [Subnet.from_config(c['subnet'], space) for c in cands]  # validates (ND included)
    assert len(set(nets)) == len(nets)
    assert nets[:2] == [Subnet.biggest(space), Subnet.smallest(space)]
    for net, c in zip(nets, cands):
        assert abs(c['ops'] - subnet_ops(net, space).ops / 1e6) < 1e-9
        assert 0 <= c['accuracy'] <= 100 and c['accuracy'] * 50 / 100 == round(c['accuracy'] * 50 / 100)
    pts = [(c['ops'], c['accuracy']) for c in cands]
    assert [c['index'] for c in res['front']] == brute_force_front(pts)
    assert len({c['accuracy'] for c in cands}) > 1  # fitness differs between subnets
    with open(work / 'search_results.png', 'rb') as f:
        assert f.read(8) == b'\x89PNG\r\n\x1a\n'
    state = load(work / 'search_state.json')
    assert state['next_generation'] == 2 and len(state['candidates']) == len(cands)
    for g in (0, 1):
        size = str(len(res['front'])) if g == 1 else r'\d+'
        assert re.search(rf'generation {g} done: \d+ candidates in [\d.]+s \([\d.]+s/candidate\).*front size '
                         + size, log), log[-3000:]
        assert re.search(rf'generation {g}: best top-1 per OPs bucket: \[', log)
    assert re.search(r'\] \d+/\d+, [\d.]+ task/s', log)  # mmengine ProgressBar


def test_export_runs_with_stock_test_and_reproduces_the_fitness(reference_search, tmp_path):
    work, _ = reference_search
    res = load(work / 'search_results.json')
    chosen = select_from_front(res, ops_budget=0.5)
    best_under = max((c for c in res['candidates'] if c['ops'] <= 0.5), key=lambda c: c['accuracy'])
    assert chosen['accuracy'] == best_under['accuracy'] and chosen['ops'] <= 0.5
    out = work / 'export'
    for f in ('best.py', 'best.pth', 'best.json', 'best_retinanet.py'):
        assert (out / f).exists(), f
    assert Subnet.from_config(str(out / 'best.json')) == Subnet.from_config(chosen['subnet'])
    # The stock test.py, as is (test split of the bundled sample) ...
    _, log = run(osp.join(MMPT, 'test.py'), str(out / 'best.py'), str(out / 'best.pth'),
                 '--work-dir', str(tmp_path / 'a'))
    assert 0 <= top1(log) <= 100
    # ... and on the held-out training images: the static model with its recalibrated BN gives exactly
    # the accuracy the search measured on the supernet.
    held = res['meta']['holdout_indices']
    _, log = run(osp.join(MMPT, 'test.py'), str(out / 'best.py'), str(out / 'best.pth'),
                 '--work-dir', str(tmp_path / 'b'), '--cfg-options', 'test_dataloader.dataset.data_prefix=train',
                 f'test_dataloader.dataset.indices={held}'.replace(' ', ''))
    assert top1(log) == chosen['accuracy']


def test_exported_detection_config_builds_with_the_exported_backbone(reference_search):
    work, _ = reference_search
    from mmengine.config import Config
    from mmengine.registry import DefaultScope
    import mmdet.models  # noqa: F401
    from mmdet.registry import MODELS
    cfg = Config.fromfile(str(work / 'export' / 'best_retinanet.py'))
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = MODELS.build(cfg.model)
        det.init_weights()
    state = torch.load(work / 'export' / 'best.pth', weights_only=False)['state_dict']
    own = det.backbone.state_dict()
    assert own and all(torch.equal(v, state[f'backbone.{k}']) for k, v in own.items())
    feats = det.extract_feat(torch.randn(1, 3, 64, 64))
    assert len(feats) == 5 and all(f.shape[1] == 256 for f in feats)


def test_exported_detection_config_trains_and_tests_with_stock_mmdet(reference_search, tmp_path):
    """The exported mmdet config runs as is with mmdet's own train.py and test.py (4 images, 1 iteration)."""
    work, _ = reference_search
    import mmdet
    tools = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
    config = str(work / 'export' / 'best_retinanet.py')
    few = ['train_dataloader.dataset.indices=4', 'val_dataloader.dataset.indices=4',
           'test_dataloader.dataset.indices=4']
    _, out = run(osp.join(tools, 'train.py'), config, '--work-dir', str(tmp_path), '--cfg-options', *few)
    assert 'Epoch(train) [1][1/1]' in out and 'coco/bbox_mAP' in out
    _, out = run(osp.join(tools, 'test.py'), config, str(tmp_path / 'epoch_1.pth'), '--work-dir', str(tmp_path),
                 '--cfg-options', *few)
    assert 'Epoch(test) [4/4]' in out and 'coco/bbox_mAP' in out


def _poll(path, done, proc, timeout=240):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            if done(load(path)):
                return True
        except (OSError, ValueError, KeyError):
            pass
        if proc.poll() is not None:
            return False
        time.sleep(0.02)
    return False


def test_killed_search_resumes_to_the_same_front(reference_search, supernet_ckpt, tmp_path):
    ref, _ = reference_search
    work = tmp_path / 'killed'
    cmd = [sys.executable, SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--no-progress',
           '--cfg-options', *TINY]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        # kill during generation 1, after its first candidate was evaluated
        killed = _poll(work / 'search_partial' / 'rank0.json',
                       lambda p: p['generation'] == 1 and len(p['results']) >= 1, proc)
        assert killed, 'the search never reached generation 1'
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (work / 'search_results.json').exists()
    assert load(work / 'search_state.json')['next_generation'] == 1
    _, log = run(SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--resume', '--no-progress',
                 '--cfg-options', *TINY)
    reused = int(re.search(r'(\d+) evaluations of the interrupted generation reused', log).group(1))
    assert reused >= 1 and 'generation 0/' not in log
    assert essentials(load(work / 'search_results.json')) == essentials(load(ref / 'search_results.json'))


def test_stopped_after_one_generation_then_resumed_with_more_generations(reference_search, supernet_ckpt,
                                                                          tmp_path):
    ref, _ = reference_search
    work = tmp_path / 'staged'
    first = [o if o != 'search.generations=1' else 'search.generations=0' for o in TINY]  # generation 0 only
    run(SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--no-progress', '--cfg-options', *first)
    assert load(work / 'search_state.json')['next_generation'] == 1
    run(SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--no-progress', '--resume',
        str(work / 'search_state.json'), '--cfg-options', *TINY)
    assert essentials(load(work / 'search_results.json')) == essentials(load(ref / 'search_results.json'))


def _free_port():
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def test_two_process_gloo_gives_the_same_front(reference_search, supernet_ckpt, tmp_path):
    ref, _ = reference_search
    work = tmp_path / 'dist'
    run('-m', 'torch.distributed.run', '--nnodes', '1', '--nproc_per_node', '2', '--master_addr', '127.0.0.1',
        '--master_port', str(_free_port()), SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work),
        '--launcher', 'pytorch', '--no-progress', '--cfg-options', *TINY)
    res = load(work / 'search_results.json')
    assert essentials(res) == essentials(load(ref / 'search_results.json'))
    ranks = [c['rank'] for c in res['candidates']]
    assert ranks[:4] == [0, 1, 0, 1] and set(ranks) == {0, 1}  # both processes evaluated candidates

"""The CIFAR supernet config with the stock mmpretrain tools (subprocesses, bundled data)."""
import os
import os.path as osp
import re
import subprocess
import sys

import mmengine
import mmpretrain
import pytest
import torch

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
MMPT = osp.join(osp.dirname(mmpretrain.__file__), '.mim', 'tools')
CONFIG = osp.join(REPO, 'configs/nasbnn/nasbnn-supernet_bi-teacher_cifar10-mini.py')


def run(*args, cwd=REPO):
    env = dict(os.environ, PYTHONPATH=REPO, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def top1(log):
    return float(re.findall(r'accuracy/top1: ([\d.]+)', log)[-1])


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp('nasbnn_train')
    log = run(osp.join(MMPT, 'train.py'), CONFIG, '--work-dir', str(work), '--cfg-options',
              'train_cfg.max_epochs=1', 'train_cfg.val_interval=1', 'default_hooks.logger.interval=1',
              'default_hooks.checkpoint.interval=1', 'train_dataloader.batch_size=16',
              'train_dataloader.dataset.indices=64', 'randomness.seed=0')
    return work, log


def test_stock_train_runs_bi_teacher_iterations(trained):
    work, log = trained
    iters = re.findall(r'Epoch\(train\) \[1\]\[\s*(\d+)/4\].*loss_teacher: [\d.]+ +loss_kd_smallest: [\d.]+ +'
                       r'loss_kd_random0: [\d.]+ +loss_kd_random1: [\d.]+', log)
    assert iters == ['1', '2', '3', '4'], log[-2000:]
    assert osp.exists(work / 'epoch_1.pth')
    assert 0 <= top1(log) <= 100


def test_stock_test_and_exported_subnet_agree(trained, tmp_path):
    work, _ = trained
    ckpt = str(work / 'epoch_1.pth')
    log_super = run(osp.join(MMPT, 'test.py'), CONFIG, ckpt, '--work-dir', str(tmp_path / 'a'),
                    '--out', str(tmp_path / 'super.pkl'), '--cfg-options', 'model.eval_subnet=smallest')
    out = run(osp.join(REPO, 'tools/nas/export_subnet.py'), CONFIG, ckpt, '--subnet', 'smallest',
              '--out-dir', str(tmp_path / 'export'), '--name', 'small')
    assert 'OPs:' in out
    log_static = run(osp.join(MMPT, 'test.py'), str(tmp_path / 'export/small.py'),
                     str(tmp_path / 'export/small.pth'), '--work-dir', str(tmp_path / 'b'),
                     '--out', str(tmp_path / 'static.pkl'))
    assert top1(log_super) == top1(log_static)
    a, b = (mmengine.load(str(tmp_path / f'{n}.pkl')) for n in ('super', 'static'))
    assert len(a) == len(b) == 100
    for x, y in zip(a, b):
        torch.testing.assert_close(x['pred_score'], y['pred_score'], rtol=1e-5, atol=1e-6)


def test_stock_get_flops(tmp_path):
    out = run(osp.join(MMPT, 'analysis_tools/get_flops.py'), CONFIG, '--shape', '32')
    assert re.search(r'Flops: [\d.]+M', out), out[-2000:]

"""Step 2 refuses to train without step-1 weights (also with --resume in a fresh work dir), and a step-2-only
setting (the router loss's median capacity) does not clash with the step-1 checkpoint."""
import os
import os.path as osp
import subprocess
import sys

import pytest
import torch

import mmdet

from conftest import tiny_retinanet

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TRAIN = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'train.py')
CFG2 = osp.join(ROOT, 'configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step2.py')
SMALL = ['train_dataloader.dataset.indices=4', 'train_dataloader.dataset.pipeline.2.scale=(128,128)',
         'val_dataloader.dataset.indices=2', 'val_dataloader.dataset.pipeline.1.scale=(128,128)']


def test_step2_resume_in_fresh_work_dir_is_refused(tmp_path):
    env = dict(os.environ, PYTHONPATH=ROOT, OMP_NUM_THREADS='1', PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, TRAIN, CFG2, '--work-dir', str(tmp_path / 'fresh'), '--resume',
                           '--cfg-options'] + SMALL, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=400)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-3000:]
    assert 'no checkpoint was loaded' in out and '--resume found no checkpoint' in out
    assert 'Epoch(train)' not in out


def test_median_capacity_may_change_between_step1_and_step2(build):
    step1 = build(tiny_retinanet(training_step=1))
    state = step1.state_dict()
    assert int(state['router_loss.median.count']) == 0  # step 1 never runs the router loss
    step2 = build(tiny_retinanet(training_step=2, router_loss=dict(type='DynamicRouterLoss', median_capacity=16)))
    step2.load_state_dict(state)
    assert step2.router_loss.median.capacity == 16
    loaded = step2.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if 'router_loss' not in k)


def test_median_capacity_of_a_used_median_is_named(build):
    trained = build(tiny_retinanet(training_step=2))
    trained.router_loss.median.update(torch.arange(5.0))
    state = trained.state_dict()
    other = build(tiny_retinanet(training_step=2, router_loss=dict(type='DynamicRouterLoss', median_capacity=16)))
    with pytest.raises(ValueError, match=r'model\.router_loss\.median_capacity=16 .*capacity 64 .*seen 5 values'):
        other.load_state_dict(state)

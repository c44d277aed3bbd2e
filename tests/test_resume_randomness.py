"""A training run resumed from an epoch checkpoint equals an uninterrupted one, with random augmentation
(RandomCrop, RandomFlip), when EpochRandomnessHook is on; without it, it does not (stock mmpretrain train.py)."""
import random

import numpy as np
import pytest
import torch

from mmdynbnn.utils.randomness import EpochRandomnessHook, epoch_seed

from .helpers import REPO, run_tool, stock_tool

BASE = REPO / 'configs/binary_resnet/resnet18-bconv_cifar10-mini.py'


def write_config(path, hook: bool):
    hooks = "custom_hooks = [dict(type='EpochRandomnessHook')]\n" if hook else ''
    path.write_text(f"_base_ = '{BASE}'\n"
                    "train_dataloader = dict(batch_size=16, dataset=dict(indices=48))\n"
                    "val_dataloader = dict(dataset=dict(indices=8))\n"
                    "train_cfg = dict(max_epochs=2, val_interval=1)\n"
                    "randomness = dict(seed=5)\n" + hooks)
    return path


def train(cfg, work, *extra):
    run_tool([stock_tool('mmpretrain', 'train.py'), cfg, '--work-dir', work, *extra])
    return torch.load(work / 'epoch_2.pth', weights_only=True)['state_dict']


def same(a, b):
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize('hook', [True, False])
def test_resumed_run_equals_uninterrupted(tmp_path, hook):
    cfg = write_config(tmp_path / 'cfg.py', hook)
    full = train(cfg, tmp_path / 'full')
    run_tool([stock_tool('mmpretrain', 'train.py'), cfg, '--work-dir', tmp_path / 'split', '--cfg-options',
              'train_cfg.max_epochs=1'])
    resumed = train(cfg, tmp_path / 'split', '--resume')
    # with the hook the runs are bit-identical; without it the augmentations of epoch 2 differ
    assert same(full, resumed) == hook


def test_hook_seeds_per_epoch_and_validates():
    class Runner:
        seed, epoch = 3, 4
    EpochRandomnessHook().before_train_epoch(Runner())
    a = (float(torch.rand(1)), np.random.rand(), random.random())
    EpochRandomnessHook(seed=3).before_train_epoch(Runner())
    assert a == (float(torch.rand(1)), np.random.rand(), random.random())
    assert epoch_seed(3, 4) != epoch_seed(3, 5)
    with pytest.raises(ValueError, match='seed must be'):
        EpochRandomnessHook(seed=1.5)

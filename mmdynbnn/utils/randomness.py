"""Make a resumed training run draw the same random numbers as an uninterrupted one."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.registry import HOOKS


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` of a run seeded with ``seed`` (a 32-bit value, as numpy requires)."""
    return (int(seed) * 1_000_003 + int(epoch) * 7_919 + 1) % (2 ** 32)


@HOOKS.register_module()
class EpochRandomnessHook(Hook):
    """Reseed Python's ``random``, numpy's global RNG and torch (CPU and CUDA) at the start of every training
    epoch from ``(seed, epoch)``.

    mmengine checkpoints do not hold these generators' states, and the pipelines draw their augmentations
    (crops, flips, ...) from them: a run resumed at epoch ``e`` starts from a freshly seeded state, not from
    where the interrupted run was, so its augmentations (and dropout, sampled subnets, ...) differ from an
    uninterrupted run's. With this hook both runs start every epoch from the same state, so a run resumed
    from an epoch checkpoint is bit-identical to an uninterrupted one (on a deterministic backend).

    Not covered: resuming from a checkpoint saved mid-epoch (iteration-based loops), and dataloader workers
    kept across epochs (``persistent_workers=True``), whose generators live in the worker processes.
    Non-persistent workers are seeded by mmengine from the run's seed at every epoch and need nothing.

    Args:
        seed: Base seed; ``None`` uses the runner's seed (``randomness.seed``; on resume mmengine restores
            the checkpoint's).

    Example:
        >>> custom_hooks = [dict(type='EpochRandomnessHook')]
    """

    priority = 'VERY_HIGH'  # before any other before_train_epoch hook could draw

    def __init__(self, seed: Optional[int] = None) -> None:
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ValueError(f'EpochRandomnessHook: seed must be a non-negative int or None, got {seed!r}')
        self.seed = seed

    def before_train_epoch(self, runner) -> None:
        base = self.seed if self.seed is not None else getattr(runner, 'seed', None)
        if base is None:
            raise ValueError('EpochRandomnessHook: the runner has no seed; set randomness=dict(seed=...) or '
                             'the hook\'s seed')
        s = epoch_seed(base, runner.epoch)
        random.seed(s)
        np.random.seed(s)
        torch.manual_seed(s)  # also seeds every CUDA device

"""Guards of DynamicDet's router step (step 2)."""
from typing import Dict, Optional

import torch
from mmdet.registry import HOOKS
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from torch import Tensor


@HOOKS.register_module()
class DynamicDetStep2Hook(Hook):
    """Checks that step 2 starts from a step-1 checkpoint and leaves everything but the router unchanged.

    * before training: the model is a ``DynamicDetector`` with ``training_step=2`` and a router, and a
      checkpoint was actually loaded (``load_from``, or ``--resume`` that found one); otherwise raises.
    * after every ``check_interval`` iterations and after each epoch: every state entry outside the router
      (weights, BN statistics, ...) still equals its value at the start; otherwise raises.

    Args:
        check_interval: Iterations between drift checks (0: only after each epoch).

    Example:
        >>> custom_hooks = [dict(type='DynamicDetStep2Hook')]  # in a step-2 config
    """

    priority = 'LOW'

    def __init__(self, check_interval: int = 0) -> None:
        self.check_interval = int(check_interval)
        self._reference: Optional[Dict[str, Tensor]] = None

    @staticmethod
    def _model(runner):
        return runner.model.module if is_model_wrapper(runner.model) else runner.model

    def before_train(self, runner) -> None:
        from .dynamic_detector import DynamicDetector
        model = self._model(runner)
        if not isinstance(model, DynamicDetector):
            raise TypeError(f'DynamicDetStep2Hook needs a DynamicDetector, got {type(model).__name__}')
        if model.training_step != 2:
            raise ValueError(f'DynamicDetStep2Hook is for step 2: set model.training_step=2 (got {model.training_step})')
        # what was loaded, not what was asked for: mmdet's --resume clears load_from, and a resume that finds
        # no checkpoint in the work dir loads nothing (mmengine only logs "resumed from ... None")
        if not getattr(runner, '_has_loaded', False):
            asked = ('--resume found no checkpoint in the work dir ' + str(runner.work_dir)) if runner._resume \
                else 'load_from is None'
            raise ValueError(f'step 2 must start from the step-1 checkpoint, but no checkpoint was loaded ({asked}): '
                             f'set load_from=<step-1 .pth> (with --resume only to continue a step-2 run whose work '
                             f'dir holds its checkpoints)')
        self._reference = model.frozen_state()

    def _check(self, runner) -> None:
        if self._reference is None:
            return
        current = self._model(runner).state_dict()
        changed = [k for k, v in self._reference.items() if not torch.equal(current[k], v)]
        if changed:
            raise RuntimeError(f'step 2 changed {len(changed)} frozen state entries, e.g. {changed[:5]}')

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        if self.check_interval > 0 and self.every_n_train_iters(runner, self.check_interval):
            self._check(runner)

    def after_train_epoch(self, runner) -> None:
        self._check(runner)

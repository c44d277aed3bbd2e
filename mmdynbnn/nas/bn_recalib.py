"""BN recalibration of a weight-sharing supernet for its active subnet (``docs/nasbnn.md`` §5).

Every BN's running statistics are reset and re-estimated as a cumulative average (``momentum=None``)
over the given batches, with only the BN layers in train mode (everything else in eval mode: RSign,
RPReLU, LSQ, dropout unchanged) and without gradients. The sliced BNs of the supernet update the
leading slice of their buffers, so the statistics of the channels the subnet uses are exactly the
cumulative average over the batches; the rest stay at their reset values.
"""
from typing import Iterable

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm


def bn_layers(model: nn.Module):
    return [m for m in model.modules() if isinstance(m, _BatchNorm)]


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[dict]) -> int:
    """Recalibrate every BN of ``model`` on ``batches``: dicts as a dataloader yields them (passed through
    ``model.data_preprocessor``) or already preprocessed input tensors. The model is left in eval mode.
    Returns the number of batches used."""
    bns = bn_layers(model)
    if not bns:
        raise ValueError(f'recalibrate_bn: {type(model).__name__} has no BatchNorm layer')
    momenta = [m.momentum for m in bns]
    model.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
        m.train()
    n = 0
    try:
        for batch in batches:
            inputs = batch if isinstance(batch, torch.Tensor) else model.data_preprocessor(batch, False)['inputs']
            model(inputs, mode='tensor')
            n += 1
    finally:
        for m, mom in zip(bns, momenta):
            m.momentum = mom
        model.eval()
    if n == 0:
        raise ValueError('recalibrate_bn: no calibration batch (calib_images must be > 0)')
    return n

"""Helpers for the deploy tests and benchmark."""
from typing import Any

import torch
from torch import nn

from ..ops import RPReLU, RSign


@torch.no_grad()
def randomize_(model: nn.Module, seed: int = 0) -> nn.Module:
    """Non-trivial values for every BN statistic/affine, RSign/RPReLU parameter (including those inside
    ``BinaryConv2d``), so that
    a conversion test exercises them (fresh modules are identity-like)."""
    gen = torch.Generator().manual_seed(seed)

    def rand(t, lo, hi):
        return torch.rand(t.shape, generator=gen) * (hi - lo) + lo

    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.copy_(rand(m.running_mean, -0.5, 0.5))
            m.running_var.copy_(rand(m.running_var, 0.5, 2.0))
            if m.weight is not None:
                m.weight.copy_(rand(m.weight, 0.5, 1.5))
                m.bias.copy_(rand(m.bias, -0.3, 0.3))
        elif isinstance(m, RSign):
            m.bias.copy_(rand(m.bias, -0.2, 0.2))
        elif isinstance(m, RPReLU):
            m.shift_in.copy_(rand(m.shift_in, -0.2, 0.2))
            m.slope.copy_(rand(m.slope, 0.05, 0.5))
            m.shift_out.copy_(rand(m.shift_out, -0.2, 0.2))
    return model


def assert_outputs_close(out: Any, ref: Any) -> None:
    """Deploy output ``out`` equals the float reference ``ref`` up to float rounding (tensors, or nested
    lists/tuples of them, as a model's ``mode='tensor'`` returns): same structure and shapes, relative
    tolerance 1e-4, absolute tolerance 1e-5 of the reference's largest magnitude.

    Example:
        >>> assert_outputs_close([torch.ones(2)], [torch.ones(2) + 1e-7])
    """
    if isinstance(out, (list, tuple)):
        assert isinstance(ref, (list, tuple)) and len(out) == len(ref)
        for o, r in zip(out, ref):
            assert_outputs_close(o, r)
        return
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()) + 1e-6)

"""Binarisation primitives of NAS-BNN (``docs/nasbnn.md`` §1) as autograd functions.

Each primitive is a ``torch.autograd.Function`` so that (a) its gradient is exactly the one the method
defines and (b) mmengine's jit-based complexity analysis sees it as one named op
(``prim::PythonOp.<Name>``), which :mod:`mmdynbnn.analysis.counters` prices.

Example:
    >>> import torch
    >>> from mmdynbnn.ops.functional import approx_sign, binarize_weight
    >>> approx_sign(torch.tensor([-0.3, 0.0, 2.0]))
    tensor([-1.,  1.,  1.])
    >>> binarize_weight(torch.randn(4, 3, 3, 3)).abs().unique().numel() <= 4
    True
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.autograd import Function

# Smallest std used by weight normalisation: guards a constant kernel (all weights equal) from 0/0.
WN_EPS = 1e-12


def _sign(x: Tensor) -> Tensor:
    """sign with sign(0) = +1, so outputs are exactly {-1, +1}.

    Written as ``2 * [x >= 0] - 1`` with in-place ops: one comparison and one cast, about 5x faster on
    CPU than ``torch.where`` with two materialised constant tensors (the sign runs before every binary
    conv, in training it is one of the largest costs).
    """
    return (x >= 0).to(x.dtype).mul_(2).sub_(1)


class _Sign(Function):
    """sign(x) in {-1, +1}; subclasses define the surrogate gradient in ``backward``."""

    @staticmethod
    def forward(ctx, x: Tensor) -> Tensor:
        ctx.save_for_backward(x)
        return _sign(x)


class ApproxSign(_Sign):
    """Bi-Real Net's ApproxSign backward: d/dx = 2 - 2|x| on |x| <= 1, else 0."""

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (2 - 2 * x.abs()).clamp_min(0)


class SignSTE(_Sign):
    """Clipped straight-through backward: identity on |x| <= 1, zero elsewhere."""

    @staticmethod
    def backward(ctx, grad: Tensor) -> Tensor:
        (x,) = ctx.saved_tensors
        return grad * (x.abs() <= 1).to(grad.dtype)


def approx_sign(x: Tensor) -> Tensor:
    return ApproxSign.apply(x)


def sign_ste(x: Tensor) -> Tensor:
    return SignSTE.apply(x)


def standardize_weight(weight: Tensor) -> Tensor:
    """Weight Normalisation: per output channel ``(w - mean) / std`` over (in, kH, kW), unbiased std."""
    flat = weight.flatten(1)
    mean = flat.mean(dim=1, keepdim=True)
    std = flat.std(dim=1, keepdim=True, unbiased=True).clamp_min(WN_EPS)
    return ((flat - mean) / std).view_as(weight)


def binary_weight_from_normalized(w_hat: Tensor) -> Tensor:
    """``alpha_c * sign(w_hat)`` with the detached per-channel scale ``alpha_c = mean|w_hat_c|``.

    The clipped straight-through sign is written with ``detach`` rather than :class:`SignSTE`: the same
    gradient (identity on |w_hat| <= 1, else 0), but no nested op that a jit trace would keep alive
    inside :class:`WeightPreprocess`.
    """
    alpha = w_hat.detach().abs().flatten(1).mean(dim=1).view(-1, *([1] * (w_hat.dim() - 1)))
    clipped = w_hat.clamp(-1, 1)
    return alpha * (clipped + (_sign(w_hat) - clipped).detach())


def binarize_weight(weight: Tensor) -> Tensor:
    """WN, then sign with a detached per-channel scale (straight-through, zero where |w_hat| > 1)."""
    return binary_weight_from_normalized(standardize_weight(weight))


class WeightPreprocess(Function):
    """Runs a pure function of the parameters as one opaque op.

    Weight preparation (kernel transform, WN, sign, quantisation) happens once per deployment, not per
    image, so it must not be priced as FLOPs by the jit tracer. Forward evaluates ``fn`` without
    recording; backward re-evaluates it under autograd (parameters are small, so this is cheap) and
    returns exactly the gradient of ``fn``.
    """

    @staticmethod
    def forward(ctx, fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
        ctx.fn = fn
        ctx.save_for_backward(*tensors)
        with torch.no_grad():
            return fn(*tensors)

    @staticmethod
    def backward(ctx, grad: Tensor):
        tensors = [t.detach().requires_grad_(t.requires_grad) for t in ctx.saved_tensors]
        needs = [t for t in tensors if t.requires_grad]
        grads = iter(())
        if needs:
            with torch.enable_grad():
                out = ctx.fn(*tensors)
            grads = iter(torch.autograd.grad(out, needs, grad, allow_unused=True))
        return (None, *[next(grads) if t.requires_grad else None for t in tensors])


def preprocess_weight(fn: Callable[..., Tensor], *tensors: Tensor) -> Tensor:
    """Apply ``fn`` to parameter tensors as one untraced op (see :class:`WeightPreprocess`).

    ``fn`` must be a pure function of ``tensors``: it may close over plain Python numbers (widths, kernel
    sizes) but not over values read from traced tensors (e.g. ``x.shape[1]`` of an activation), which the
    jit tracer of ``get_flops.py`` cannot resolve inside the op (``RuntimeError: unordered_map::at``).
    """
    return WeightPreprocess.apply(fn, *tensors)


class _ConvOp(Function):
    """``F.conv2d`` as a named op; subclasses only change the name the complexity counters see."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, stride: Tuple[int, int], padding: Tuple[int, int],
                dilation: Tuple[int, int], groups: int) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.conf = (stride, padding, dilation, groups)
        return F.conv2d(x, weight, None, stride, padding, dilation, groups)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, weight = ctx.saved_tensors
        stride, padding, dilation, groups = ctx.conf
        mask = [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False]
        gx, gw, _ = torch.ops.aten.convolution_backward(grad, x, weight, None, list(stride), list(padding),
                                                        list(dilation), False, [0, 0], groups, mask)
        return gx, gw, None, None, None, None


class BinaryConvOp(_ConvOp):
    """Convolution of {-1,+1} activations with scaled sign weights: priced in BOPs."""


_INT_CONV_OPS = {}


def int_conv_op(bits: int) -> type:
    """The named conv op for ``bits``-bit weights (``Int8ConvOp`` ...), priced at MACs * bits / 64."""
    if bits not in _INT_CONV_OPS:
        _INT_CONV_OPS[bits] = type(f'Int{bits}ConvOp', (_ConvOp,), {'__doc__': f'{bits}-bit weight conv.'})
    return _INT_CONV_OPS[bits]


def binary_conv2d(x: Tensor, weight: Tensor, stride: Sequence[int] = (1, 1), padding: Sequence[int] = (0, 0),
                  dilation: Sequence[int] = (1, 1), groups: int = 1, bias: Optional[Tensor] = None) -> Tensor:
    """Convolution of already binarised activations and weights (the op the BOPs counter prices)."""
    out = BinaryConvOp.apply(x, weight, tuple(stride), tuple(padding), tuple(dilation), groups)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _grad_scale(x: Tensor, scale: float) -> Tensor:
    """Identity forward; gradient multiplied by ``scale`` (LSQ's step-size gradient scaling)."""
    return (x - x * scale).detach() + x * scale


def _round_ste(x: Tensor) -> Tensor:
    return (x.round() - x).detach() + x


def lsq_quantize(weight: Tensor, scale: Tensor, bits: int) -> Tensor:
    """LSQ fake quantisation with a per-output-channel learnable step ``scale`` (shape ``(C_out,)``).

    ``q = round(clamp(w / s, -2^(b-1), 2^(b-1) - 1)) * s``; round is straight-through, ``s`` gets LSQ's
    gradient scaled by ``1 / sqrt(N * q_max)`` with ``N = weight.numel()``, the number of weights the step
    sizes quantise (as the NAS-BNN reference; LSQ's paper writes N for the weights one step serves).
    """
    qmax = 2 ** (bits - 1) - 1
    qmin = -(2 ** (bits - 1))
    s = _grad_scale(scale, 1.0 / (weight.numel() * qmax) ** 0.5).view(-1, *([1] * (weight.dim() - 1)))
    return _round_ste((weight / s).clamp(qmin, qmax)) * s


def lsq_init_scale(weight: Tensor, bits: int) -> Tensor:
    """Initial step per output channel, as the NAS-BNN reference: ``max(|mu - 3 sigma|, |mu + 3 sigma|) /
    2^(bits-1)`` with the mean ``mu`` and unbiased std ``sigma`` of the channel's weights, so that
    mean +- 3 sigma lies on the integer grid. (LSQ's ``2 mean|w| / sqrt(q_max)`` is ~6.5x coarser at 8
    bits: Kaiming-uniform weights then span about +-11 of the integer levels, against +-74 here.)"""
    flat = weight.detach().flatten(1)
    mu = flat.mean(dim=1)
    sigma = flat.std(dim=1, unbiased=True) if flat.shape[1] > 1 else torch.zeros_like(mu)
    bound = torch.maximum((mu - 3 * sigma).abs(), (mu + 3 * sigma).abs())
    return (bound / 2 ** (bits - 1)).clamp_min(1e-8)


def int_conv2d(x: Tensor, weight: Tensor, bits: int, stride: Sequence[int] = (1, 1),
               padding: Sequence[int] = (0, 0), dilation: Sequence[int] = (1, 1), groups: int = 1) -> Tensor:
    """Convolution with ``bits``-bit (fake-quantised) weights and float inputs, priced at MACs*bits/64."""
    return int_conv_op(bits).apply(x, weight, tuple(stride), tuple(padding), tuple(dilation), groups)

"""Price the project's ops inside mmengine's jit complexity analysis (used by the stock ``get_flops.py``).

After :func:`register_complexity_handles` (run on ``import mmdynbnn``), every ``FlopAnalyzer`` /
``ActivationAnalyzer`` - including the ones the stock mmdet and mmpretrain tools build - counts:

- a binary conv (``BinaryConvOp``) as BOPs / 64, BOPs = k*k*(C_in/g)*C_out*H_out*W_out per image;
- a b-bit weight conv (``Int<b>ConvOp``) as MACs * b / 64 (8-bit: MACs / 8);
- weight preparation and activation binarisation as 0 (done once at deployment / a sign per element).

So the "Flops" those tools print is NAS-BNN's OPs for the quantised layers; float layers keep mmengine's
own rules (which, unlike NAS-BNN, also count BN and upsampling). ``tools/analysis_tools/model_summary.py``
prints FLOPs, BOPs and OPs separately with NAS-BNN's exact rules.
"""
from collections import Counter
from typing import Any, List

from mmengine.analysis import complexity_analysis
from mmengine.analysis.jit_handles import generic_activation_jit, get_shape

from ..ops import functional as BF

INT_BITS = range(2, 17)
# Priced 0 by NAS-BNN. mmengine's ignore list cannot name a PythonOp (it is matched before the op gets
# its Python name), so these get handles that return 0.
ZERO_COST_OPS = tuple(f'prim::PythonOp.{fn.__name__}'
                      for fn in (BF.ApproxSign, BF.SignSTE, BF.WeightPreprocess))


def zero_cost(inputs: List[Any], outputs: List[Any]) -> int:
    return 0


def conv_macs(inputs: List[Any], outputs: List[Any]) -> int:
    """MACs of a conv node whose inputs are (x, weight): N * H_out * W_out * numel(weight)."""
    w_shape = get_shape(inputs[1])
    out_shape = get_shape(outputs[0])
    macs = out_shape[0] * out_shape[2] * out_shape[3]
    for d in w_shape:
        macs *= d
    return macs


def binary_conv_ops(inputs: List[Any], outputs: List[Any]) -> Counter:
    return Counter({'binary_conv (BOPs/64)': conv_macs(inputs, outputs) / 64})


def int_conv_ops_handle(bits: int):
    def handle(inputs: List[Any], outputs: List[Any]) -> Counter:
        return Counter({f'int{bits}_conv (MACs*{bits}/64)': conv_macs(inputs, outputs) * bits / 64})

    return handle


def register_complexity_handles() -> None:
    """Add the project's op handles to mmengine's default tables (idempotent)."""
    flops = complexity_analysis._DEFAULT_SUPPORTED_FLOP_OPS
    acts = complexity_analysis._DEFAULT_SUPPORTED_ACT_OPS
    flops[f'prim::PythonOp.{BF.BinaryConvOp.__name__}'] = binary_conv_ops
    acts[f'prim::PythonOp.{BF.BinaryConvOp.__name__}'] = generic_activation_jit('conv')
    for bits in INT_BITS:
        name = f'prim::PythonOp.{BF.int_conv_op(bits).__name__}'
        flops[name] = int_conv_ops_handle(bits)
        acts[name] = generic_activation_jit('conv')
    for name in ZERO_COST_OPS:
        flops[name] = zero_cost
        acts[name] = zero_cost

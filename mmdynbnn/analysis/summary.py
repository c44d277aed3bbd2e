"""Per-layer cost table of a model with NAS-BNN's rules (``docs/nasbnn.md`` §4), in the spirit of larq.

OPs = FLOPs + BOPs / 64. A binary conv costs BOPs = k*k*(C_in/g)*C_out*H_out*W_out; a b-bit conv
MACs*b/64 (8-bit: MACs/8, reported under FLOPs); a float conv its MACs; a linear layer
C_out*(C_in + 1) (C_out*C_in without bias). BN, activations, biases of convs, adds and pooling are free.
Counts are per image. Weight memory: binary weights 1 bit, b-bit weights b bits, every other parameter
(scales, biases, thresholds, BN) 32 bits; a Bi-Transformation matrix is folded into the weights at
deployment and costs nothing.

Example:
    >>> import torch
    >>> from mmdynbnn.ops import BinaryConv2d
    >>> s = summarize(BinaryConv2d(16, 32, 3, padding=1, bias=False), torch.randn(1, 16, 8, 8))
    >>> s.total.bops == 3 * 3 * 16 * 32 * 8 * 8
    True
"""
from dataclasses import dataclass, field
from typing import Callable, List, Optional

import torch
from torch import nn

from ..ops import BinaryConv2d, QuantConv2d


@dataclass
class LayerCost:
    name: str
    kind: str  # 'binary' | 'int<b>' | 'float' | 'other'
    params: int = 0
    memory_bits: int = 0
    flops: float = 0.0
    bops: float = 0.0

    @property
    def ops(self) -> float:
        return self.flops + self.bops / 64

    def add(self, other: 'LayerCost') -> None:
        self.params += other.params
        self.memory_bits += other.memory_bits
        self.flops += other.flops
        self.bops += other.bops


@dataclass
class ModelSummary:
    rows: List[LayerCost]
    total: LayerCost = field(init=False)

    def __post_init__(self) -> None:
        self.total = LayerCost('total', '')
        for row in self.rows:
            self.total.add(row)

    def table(self) -> str:
        head = ('layer', 'kind', 'params', 'memory (bits)', 'FLOPs', 'BOPs', 'OPs')
        lines = [(r.name, r.kind, f'{r.params:,}', f'{r.memory_bits:,}', f'{r.flops:,.0f}', f'{r.bops:,.0f}',
                  f'{r.ops:,.0f}') for r in self.rows + [self.total]]
        widths = [max(len(x[i]) for x in [head] + lines) for i in range(len(head))]

        def fmt(cells):
            return '  '.join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

        rule = '-' * len(fmt(head))
        t = self.total
        return '\n'.join([fmt(head), rule] + [fmt(x) for x in lines[:-1]] + [rule, fmt(lines[-1]), '',
                         f'FLOPs {t.flops / 1e6:.3f} M | BOPs {t.bops / 1e6:.3f} M | '
                         f'OPs {t.ops / 1e6:.3f} M | params {t.params / 1e6:.3f} M | '
                         f'weights {t.memory_bits / 8 / 2**20:.3f} MiB'])


def _kind(module: nn.Module) -> Optional[str]:
    if isinstance(module, BinaryConv2d):
        return 'binary' if module.mode == 'binary' else 'float'
    if isinstance(module, QuantConv2d):
        return f'int{module.bits}'
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        return 'float'
    return None


def _layer_cost(name: str, module: nn.Module, out: torch.Tensor) -> LayerCost:
    kind = _kind(module)
    weight = module.weight
    params = sum(p.numel() for p in module.parameters())
    transform = getattr(module, 'kernel_transform', None)
    folded = sum(p.numel() for p in transform.parameters()) if transform is not None else 0
    other = params - weight.numel() - folded
    if isinstance(module, nn.Linear):
        flops = module.out_features * (module.in_features + (module.bias is not None))
        return LayerCost(name, kind, params, 32 * (params - folded), flops=float(flops))
    macs = float(weight.numel() * out.shape[0] * out.shape[-2] * out.shape[-1])  # whole batch
    if kind == 'binary':  # + one 32-bit scale alpha per output channel, derived from the weights
        return LayerCost(name, kind, params, weight.numel() + 32 * (other + module.out_channels), bops=macs)
    if kind.startswith('int'):
        return LayerCost(name, kind, params, weight.numel() * module.bits + 32 * other,
                         flops=macs * module.bits / 64)
    return LayerCost(name, kind, params, 32 * (params - folded), flops=macs)


def summarize(model: nn.Module, *inputs, forward: Optional[Callable] = None) -> ModelSummary:
    """Run ``forward(*inputs)`` (default ``model(*inputs)``) once and cost every conv/linear layer.

    Parameters of other modules (BN, RPReLU, ...) are gathered in one ``other`` row.
    """
    rows: List[LayerCost] = []
    counted = set()
    handles = []
    for name, module in model.named_modules():
        if _kind(module) is None:
            continue

        def hook(mod, args, out, name=name):
            row = _layer_cost(name or type(mod).__name__, mod, out)
            if not isinstance(mod, nn.Linear):  # conv counts cover the batch; report per image
                row.flops /= out.shape[0]
                row.bops /= out.shape[0]
            if mod in counted:  # called again (shared module): only its compute adds up
                row.params = row.memory_bits = 0
            counted.add(mod)
            rows.append(row)

        handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            (forward or model)(*inputs)
    finally:
        for h in handles:
            h.remove()
    seen = {id(p) for m in counted for p in m.parameters()}
    rest = [p for p in model.parameters() if id(p) not in seen]
    other = sum(p.numel() for p in rest)
    if other:
        rows.append(LayerCost('other (BN, activations, thresholds, ...)', 'other', other, 32 * other))
    return ModelSummary(rows)

"""Analytic OPs of a subnet (``docs/nasbnn.md`` §4) without building or running a network.

OPs = FLOPs + BOPs/64: the b-bit stem costs MACs*b/64, a binary conv k*k*(C_in/g)*C_out*H_out*W_out/64,
the classifier num_classes*(C_in + 1); BN, activations, shortcuts, pooling are free. Spatial sizes follow
the convs (padding k//2): H_out = (H + 2*(k//2) - k) // s + 1.

Example:
    >>> from mmdynbnn.nas import build_space, Subnet
    >>> space = build_space()
    >>> big, small = subnet_ops(Subnet.biggest(space), space), subnet_ops(Subnet.smallest(space), space)
    >>> small.ops < big.ops
    True
"""
from dataclasses import dataclass
from typing import Optional, Tuple, Union

from .space import SearchSpace, SpaceLike
from .subnet import Subnet, SubnetLike, build_subnet


@dataclass(frozen=True)
class OpsCount:
    flops: float  # float and low-bit MAC-based cost (stem MACs*b/64 + classifier)
    bops: float   # binary operations (before /64)

    @property
    def ops(self) -> float:
        return self.flops + self.bops / 64


def _out(size: int, kernel: int, stride: int) -> int:
    return (size + 2 * (kernel // 2) - kernel) // stride + 1


def subnet_ops(subnet: SubnetLike, space: SpaceLike, input_size: Union[int, Tuple[int, int], None] = None,
               num_classes: Optional[int] = None, validate: bool = False) -> OpsCount:
    """OPs per image of ``subnet`` at ``input_size`` (default: the space's) with ``num_classes`` outputs
    (default: the space's; 0 prices the backbone alone). Pass ``validate=True`` for untrusted input."""
    space = space if isinstance(space, SearchSpace) else SearchSpace.from_config(space)
    if not isinstance(subnet, Subnet):
        subnet = build_subnet(subnet, space)
    elif validate:
        subnet.validate(space)
    size = space.input_size if input_size is None else input_size
    h, w = (size, size) if isinstance(size, int) else size
    classes = space.num_classes if num_classes is None else num_classes
    stem = space.stem
    h, w = _out(h, stem.kernel, stem.stride), _out(w, stem.kernel, stem.stride)
    flops = stem.kernel * stem.kernel * space.in_channels * subnet.stem_channels * h * w * stem.bits / 64
    bops = 0
    prev = subnet.stem_channels
    for ss, stage in zip(space.stages, subnet.stages):
        for j, b in enumerate(stage.blocks):
            if j == 0 and ss.stride != 1:
                h, w = _out(h, b.kernel, ss.stride), _out(w, b.kernel, ss.stride)
            hw = h * w
            bops += (b.kernel * b.kernel * (prev // b.groups) * prev + prev * b.channels) * hw
            prev = b.channels
    flops += classes * (prev + 1)
    return OpsCount(float(flops), float(bops))

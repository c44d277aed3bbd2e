"""QuantConv2d: the NAS-BNN stem conv with LSQ-quantised low-bit weights and a float input."""
import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_nchw
from .foldable_conv import FoldableConv2d
from .functional import int_conv2d, lsq_init_scale, lsq_quantize, preprocess_weight


@MODELS.register_module()
class QuantConv2d(FoldableConv2d):
    """Conv with ``bits``-bit weights (LSQ, learnable per-output-channel step), input not quantised.

    The step is initialised per output channel from the weights (``max(|mu - 3 sigma|, |mu + 3 sigma|) /
    2^(bits-1)``, see :func:`~mmdynbnn.ops.functional.lsq_init_scale`) at the first forward, after any
    ``init_weights``; the flag is a buffer, so checkpoints restore it. The step's gradient is scaled by
    ``1 / sqrt(weight.numel() * q_max)`` (LSQ).

    Example:
        >>> import torch
        >>> stem = QuantConv2d(3, 16, 3, stride=2, padding=1, bias=False)
        >>> stem(torch.randn(1, 3, 32, 32)).shape
        torch.Size([1, 16, 16, 16])
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias: bool = True, padding_mode: str = 'zeros', device=None, dtype=None,
                 bits: int = 8) -> None:
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias,
                         padding_mode, device, dtype)
        if not isinstance(bits, int) or not 2 <= bits <= 16:
            raise ValueError(f'{self.layer_name}: bits={bits!r} must be an int in [2, 16]')
        self.bits = bits
        self.weight_scale = nn.Parameter(torch.ones(out_channels))
        self.register_buffer('scale_initialized', torch.tensor(False))

    def quantized_weight(self) -> Tensor:
        if not bool(self.scale_initialized):
            with torch.no_grad():
                # one opaque op: a jit trace (get_flops) must not see the statistics as float ops
                bits = self.bits
                self.weight_scale.copy_(preprocess_weight(lambda w: lsq_init_scale(w, bits), self.weight))
                self.scale_initialized.fill_(1)  # an int: the jit tracer rejects fill_(bool)
        bits = self.bits
        return preprocess_weight(lambda w, s: lsq_quantize(w, s, bits), self.weight, self.weight_scale)

    def conv(self, x: Tensor) -> Tensor:
        check_nchw(self, x, self.in_channels)
        return int_conv2d(x, self.quantized_weight(), self.bits, self.stride, self.padding, self.dilation,
                          self.groups)

    def extra_repr(self) -> str:
        return f'{super().extra_repr()}, bits={self.bits}'

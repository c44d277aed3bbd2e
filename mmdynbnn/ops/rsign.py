"""RSign: activation binarisation with a learnable per-channel threshold."""
import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_nchw, check_positive_int
from .functional import approx_sign


@MODELS.register_module()
class RSign(nn.Module):
    """``sign(x + b_c)`` in {-1, +1}; backward is ApproxSign (2 - 2|x + b| on |x + b| <= 1).

    Args:
        num_channels: channels of the input; ``b`` is initialised to zero.

    Example:
        >>> import torch
        >>> RSign(2)(torch.tensor([[[[-0.5]], [[0.5]]]])).flatten().tolist()
        [-1.0, 1.0]
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        check_positive_int('RSign', 'num_channels', num_channels)
        self.num_channels = num_channels
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        check_nchw(self, x, self.num_channels)
        return approx_sign(x + self.bias.view(1, -1, 1, 1))

    def extra_repr(self) -> str:
        return f'num_channels={self.num_channels}'

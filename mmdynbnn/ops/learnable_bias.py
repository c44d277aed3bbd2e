"""Per-channel learnable shift (the bias of ReActNet-style blocks)."""
import torch
from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_nchw, check_positive_int


@MODELS.register_module()
class LearnableBias(nn.Module):
    """``x + b_c`` with ``b`` initialised to zero.

    Example:
        >>> import torch
        >>> LearnableBias(3)(torch.zeros(1, 3, 2, 2)).shape
        torch.Size([1, 3, 2, 2])
    """

    def __init__(self, num_channels: int) -> None:
        super().__init__()
        check_positive_int('LearnableBias', 'num_channels', num_channels)
        self.num_channels = num_channels
        self.bias = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        check_nchw(self, x, self.num_channels)
        return x + self.bias.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f'num_channels={self.num_channels}'

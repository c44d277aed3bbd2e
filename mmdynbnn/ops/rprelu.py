"""RPReLU: shift, PReLU, shift (ReActNet's activation for binary blocks)."""
import torch
import torch.nn.functional as F
from mmengine.registry import MODELS
from torch import Tensor, nn

from .checks import check_nchw, check_positive_int


@MODELS.register_module()
class RPReLU(nn.Module):
    """``PReLU(x - gamma_c) + zeta_c`` with per-channel slope (init 0.25) and shifts (init 0).

    Usable as an ``act_cfg`` of mmcv's ``ConvModule``: ``act_cfg=dict(type='RPReLU', num_channels=64)``.

    Example:
        >>> import torch
        >>> RPReLU(1)(torch.tensor([[[[-4.0, 2.0]]]])).flatten().tolist()
        [-1.0, 2.0]
    """

    def __init__(self, num_channels: int, init_slope: float = 0.25, inplace: bool = False) -> None:
        # ``inplace`` is accepted because mmcv's ConvModule passes it to every activation; the shifts
        # make an in-place version pointless, so it is ignored.
        super().__init__()
        check_positive_int('RPReLU', 'num_channels', num_channels)
        self.num_channels = num_channels
        self.shift_in = nn.Parameter(torch.zeros(num_channels))
        self.slope = nn.Parameter(torch.full((num_channels,), float(init_slope)))
        self.shift_out = nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: Tensor) -> Tensor:
        check_nchw(self, x, self.num_channels)
        x = F.prelu(x - self.shift_in.view(1, -1, 1, 1), self.slope)
        return x + self.shift_out.view(1, -1, 1, 1)

    def extra_repr(self) -> str:
        return f'num_channels={self.num_channels}'

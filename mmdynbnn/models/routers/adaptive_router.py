"""DynamicDet's adaptive router: multi-scale features -> an "easy" score in [0, 1]."""
from typing import Sequence

import torch
import torch.nn as nn
from mmengine.model import BaseModule
from mmengine.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class AdaptiveRouter(BaseModule):
    """Global-average-pool every feature map, concatenate (``d`` channels), FC ``d -> d // reduction``,
    ReLU, FC ``-> 1``, sigmoid. The output ``s`` is the easy score (``1 - difficulty``).

    Args:
        in_channels: Channels of each input feature map, in order.
        reduction: Hidden width is ``max(1, d // reduction)``.
        init_cfg: mmengine init config.

    Example:
        >>> import torch
        >>> router = AdaptiveRouter(in_channels=[8, 16], reduction=4)
        >>> s = router([torch.rand(2, 8, 8, 8), torch.rand(2, 16, 4, 4)])
        >>> tuple(s.shape), bool(((s >= 0) & (s <= 1)).all())
        ((2,), True)
    """

    def __init__(self, in_channels: Sequence[int], reduction: int = 4, init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels = [int(c) for c in in_channels]
        if not in_channels or min(in_channels) < 1:
            raise ValueError(f'AdaptiveRouter: in_channels must be a non-empty list of positive ints, '
                             f'got {in_channels}')
        if int(reduction) < 1:
            raise ValueError(f'AdaptiveRouter: reduction must be >= 1, got {reduction}')
        self.in_channels = in_channels
        self.reduction = int(reduction)
        total = sum(in_channels)
        hidden = max(1, total // self.reduction)
        self.fc1 = nn.Linear(total, hidden)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        """Return the easy scores ``s`` of shape ``(N,)``."""
        if len(feats) != len(self.in_channels):
            raise ValueError(f'AdaptiveRouter expects {len(self.in_channels)} feature maps '
                             f'(in_channels={self.in_channels}), got {len(feats)}')
        pooled = torch.cat([f.mean(dim=(2, 3)) for f in feats], dim=1)
        return torch.sigmoid(self.fc2(self.relu(self.fc1(pooled)))).squeeze(1)

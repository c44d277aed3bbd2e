"""A linear classification head whose FC serves any feature width up to ``in_channels``."""
from typing import Tuple

import torch.nn.functional as F
from mmpretrain.models.heads import LinearClsHead
from mmpretrain.registry import MODELS
from torch import Tensor


@MODELS.register_module()
class SlicedLinearClsHead(LinearClsHead):
    """``LinearClsHead`` for a supernet: features with C <= ``in_channels`` channels use ``fc.weight[:, :C]``.

    Example:
        >>> import torch
        >>> head = SlicedLinearClsHead(num_classes=10, in_channels=96)
        >>> head((torch.randn(2, 64),)).shape
        torch.Size([2, 10])
    """

    def forward(self, feats: Tuple[Tensor]) -> Tensor:
        x = self.pre_logits(feats)
        c = x.shape[1]
        if c > self.in_channels:
            raise ValueError(f'{type(self).__name__}: got {c} feature channels, at most {self.in_channels}')
        return F.linear(x, self.fc.weight[:, :c], self.fc.bias)

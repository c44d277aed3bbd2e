"""DynamicDet's router loss with a running median of the per-image loss gap (bounded memory)."""
import random
from typing import Tuple

import torch
import torch.nn as nn
from mmengine.registry import MODELS
from torch import Tensor


def router_loss(score: Tensor, loss1: Tensor, loss2: Tensor, delta: float) -> Tensor:
    """``mean(s * (L1 - delta / 2) + (1 - s) * (L2 + delta / 2))`` over the images.

    Its gradient in ``s_i`` is ``((L1_i - L2_i) - delta) / N``: an image whose second route gains more than
    ``delta`` is pushed towards "hard" (``s -> 0``), the others towards "easy".

    Example:
        >>> import torch
        >>> s = torch.tensor([0.5, 0.5], requires_grad=True)
        >>> router_loss(s, torch.tensor([3., 1.]), torch.tensor([1., 1.]), delta=1.0).backward()
        >>> s.grad.tolist()
        [0.5, -0.5]
    """
    return (score * (loss1 - delta / 2) + (1 - score) * (loss2 + delta / 2)).mean()


@MODELS.register_module()
class StreamingMedian(nn.Module):
    """Median of every value seen so far, in at most ``capacity`` stored values.

    Exact while at most ``capacity`` values were seen; after that the buffer is a uniform reservoir sample
    of the whole stream (Algorithm R; each draw is seeded from ``seed`` and the value's position in the
    stream, so the state is reproducible, independent of how the stream is batched, and survives a resume). The state (``values``, ``count``) is made of buffers, hence in checkpoints.

    Example:
        >>> import torch
        >>> m = StreamingMedian(capacity=8)
        >>> m.update(torch.tensor([5., 1., 3.]))
        >>> float(m.median())
        3.0
    """

    def __init__(self, capacity: int = 8192, seed: int = 0) -> None:
        super().__init__()
        if int(capacity) < 1:
            raise ValueError(f'StreamingMedian: capacity must be >= 1, got {capacity}')
        self.capacity = int(capacity)
        self.seed = int(seed)
        self.register_buffer('values', torch.zeros(self.capacity, dtype=torch.float64))
        self.register_buffer('count', torch.zeros((), dtype=torch.int64))

    @property
    def num_stored(self) -> int:
        return min(int(self.count), self.capacity)

    @torch.no_grad()
    def update(self, new_values: Tensor) -> None:
        """Add the values of a 1-D tensor to the stream."""
        flat = new_values.detach().reshape(-1).to(device=self.values.device, dtype=self.values.dtype)
        count = int(self.count)
        fits = max(0, min(self.capacity - count, flat.numel()))
        if fits:  # one copy while there is room (one kernel on a GPU, not one per value)
            self.values[count:count + fits] = flat[:fits]
            count += fits
        for v in flat[fits:]:  # reservoir sampling once full
            # the draw depends only on (seed, position in the stream): the state is the same however the
            # stream is batched, and after a resume
            j = random.Random(self.seed * 1_000_003 + count).randrange(count + 1)
            if j < self.capacity:
                self.values[j] = v
            count += 1
        self.count.fill_(count)

    def adapt_loaded_state(self, state_dict: dict, prefix: str, field: str = 'capacity') -> None:
        """Let a checkpoint of another ``capacity`` load when its median is still empty (e.g. a DynamicDet
        step-1 checkpoint: the router loss runs only in step 2), by keeping this module's empty buffer.

        Raises:
            ValueError: the checkpoint's median holds values and has another capacity; names ``field``.
        """
        key = prefix + 'values'
        given = state_dict.get(key)
        if given is None or tuple(given.shape) == tuple(self.values.shape):
            return
        count = state_dict.get(prefix + 'count')
        seen = int(count) if count is not None else -1
        if seen == 0:
            state_dict[key] = self.values.detach().clone()
            return
        raise ValueError(f'{field}={self.capacity} does not match the checkpoint: its running median ({key}) has '
                         f'capacity {given.shape[0]} and has seen {seen} values, so it cannot be resized without '
                         f'changing it. Set {field}={given.shape[0]} to continue it')

    def median(self) -> Tensor:
        """The median of the stored values (mean of the two middle ones for an even count); 0 when empty."""
        n = self.num_stored
        if n == 0:
            return self.values.new_zeros(())
        return torch.quantile(self.values[:n], 0.5)


@MODELS.register_module()
class DynamicRouterLoss(nn.Module):
    """Router loss of DynamicDet step 2 with ``delta`` = running median of ``L1 - L2``.

    Args:
        median_capacity: Memory bound of the running median (exact up to this many images).
        loss_weight: Scale of the loss.

    Example:
        >>> import torch
        >>> crit = DynamicRouterLoss(median_capacity=16)
        >>> loss, delta = crit(torch.tensor([0.9, 0.1]), torch.tensor([2., 4.]), torch.tensor([1., 1.]))
        >>> float(delta)  # median of (1, 3)
        2.0
    """

    def __init__(self, median_capacity: int = 8192, loss_weight: float = 1.0) -> None:
        super().__init__()
        self.median = StreamingMedian(capacity=median_capacity)
        self.loss_weight = float(loss_weight)

    def forward(self, score: Tensor, loss1: Tensor, loss2: Tensor,
                update: bool = True) -> Tuple[Tensor, Tensor]:
        """Update the median with this batch's gaps (gathered over ranks), return ``(loss, delta)``."""
        gaps = (loss1 - loss2).detach()
        if update:
            from mmengine.dist import all_gather_object, get_world_size
            if get_world_size() > 1:  # ranks may hold different batch sizes (last batch): gather as lists
                gathered = all_gather_object(gaps.cpu().tolist())
                gaps_all = torch.tensor([g for part in gathered for g in part], dtype=gaps.dtype)
            else:
                gaps_all = gaps
            self.median.update(gaps_all)
        delta = self.median.median().to(score.dtype)
        loss = router_loss(score, loss1.detach(), loss2.detach(), float(delta))
        return self.loss_weight * loss, delta

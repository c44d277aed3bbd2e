"""The one routing rule of a two-route dynamic network: which images take the second (expensive) route."""
from typing import Sequence, Union

import torch
from torch import Tensor


def hard_mask(scores: Union[Tensor, Sequence[float]], tau: float) -> Tensor:
    """Boolean mask of the images that take route 2 ("hard") at threshold ``tau``.

    ``tau = 0`` sends every image to route 1 and ``tau = 1`` every image to route 2 (a sigmoid score can
    round to exactly 0 or 1); in between an image is hard iff ``score < tau``, compared exactly as real
    numbers: the scores are widened to float64 (exact for float16, bfloat16 and float32) and ``tau`` stays
    a Python float. Comparing in the scores' own dtype would round ``tau`` first, so a threshold placed
    between two neighbouring float32 scores would land on one of them. A score equal to ``tau`` is easy.
    The model, the metrics and every tool route through this function.

    Args:
        scores: Router ("easy") scores, a tensor of any float dtype and device or a sequence of floats.
        tau: The threshold, in [0, 1].

    Returns:
        Tensor: bool, the shape (and device) of ``scores``; True = route 2.

    Example:
        >>> import torch
        >>> hard_mask(torch.tensor([0.2, 0.5, 0.7]), 0.5).tolist()
        [True, False, False]
        >>> hard_mask([0.2, 1.0], 1.0).tolist()
        [True, True]
    """
    tau = float(tau)
    if not 0.0 <= tau <= 1.0:  # also NaN
        raise ValueError(f'routing threshold tau must be in [0, 1], got {tau!r}')
    if not isinstance(scores, Tensor):
        scores = torch.tensor([float(s) for s in scores], dtype=torch.float64)
    if not scores.is_floating_point():
        raise TypeError(f'router scores must be floating point, got dtype {scores.dtype}')
    if tau >= 1.0 or tau <= 0.0:
        return torch.full(scores.shape, tau >= 1.0, dtype=torch.bool, device=scores.device)
    return scores.detach().to(torch.float64) < tau

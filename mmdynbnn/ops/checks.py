"""Input validation shared by the binary layers: errors name the layer, the field, the value, what is allowed."""
from typing import Iterable

from torch import Tensor


def layer_label(layer: object) -> str:
    """A one-line name for a layer in error messages (``layer_name`` if it has one)."""
    if isinstance(layer, str):
        return layer
    return getattr(layer, 'layer_name', None) or f'{type(layer).__name__}({layer.extra_repr()})'


def check_nchw(layer: object, x: Tensor, channels: int) -> None:
    """Raise ``ValueError`` unless ``x`` is (N, ``channels``, H, W); the label is built only on failure."""
    if x.dim() == 4 and x.shape[1] == channels:
        return
    layer = layer_label(layer)
    if x.dim() != 4:
        raise ValueError(f'{layer}: input must be 4-D (N, C, H, W), got {x.dim()}-D shape {tuple(x.shape)}')
    if x.shape[1] != channels:
        raise ValueError(f'{layer}: input has {x.shape[1]} channels (shape {tuple(x.shape)}), '
                         f'expected {channels}')


def check_choice(layer: object, field: str, value: object, allowed: Iterable) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    allowed = tuple(allowed)
    if value not in allowed:
        raise ValueError(f'{layer_label(layer)}: {field}={value!r} is not supported; allowed: {allowed}')


def check_positive_int(layer: object, field: str, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f'{layer}: {field}={value!r} must be a positive int')

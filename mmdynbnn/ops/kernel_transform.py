"""Bi-Transformation: a learnable k^2 x k^2 matrix applied to every kernel's spatial weights."""
import torch
from mmengine.registry import MODELS
from torch import Tensor, nn


@MODELS.register_module()
def kernel_transform(weight: Tensor, matrix: Tensor) -> Tensor:
    """``vec(w[o, i]) <- M vec(w[o, i])`` for every k x k kernel of ``weight`` (``matrix``: k² x k²)."""
    k = weight.shape[-1]
    return (weight.reshape(*weight.shape[:-2], k * k) @ matrix.t()).reshape(weight.shape)


class KernelTransform(nn.Module):
    """``w[o, i] <- M @ vec(w[o, i])`` for k x k kernels, ``M`` initialised to the identity.

    Example:
        >>> import torch
        >>> w = torch.randn(4, 2, 3, 3)
        >>> torch.equal(KernelTransform(3)(w), w)
        True
    """

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        if not isinstance(kernel_size, int) or kernel_size < 2:
            raise ValueError(f'KernelTransform: kernel_size={kernel_size!r} must be an int >= 2 '
                             f'(a 1x1 kernel has nothing to transform)')
        self.kernel_size = kernel_size
        self.matrix = nn.Parameter(torch.eye(kernel_size * kernel_size))

    def apply_to(self, weight: Tensor, matrix: Tensor) -> Tensor:
        """The transform as a pure function of its parameters (in ``parameters()`` order).

        :class:`BinaryConv2d` calls this form so the transform can run inside one untraced weight op.
        """
        k = self.kernel_size
        if weight.shape[-2:] != (k, k):
            raise ValueError(f'{self!r}: expects {k}x{k} kernels, got weight shape {tuple(weight.shape)}')
        return kernel_transform(weight, matrix)

    def forward(self, weight: Tensor) -> Tensor:
        return self.apply_to(weight, self.matrix)

    def extra_repr(self) -> str:
        return f'kernel_size={self.kernel_size}'

"""Tiny spaces and utilities shared by the NAS-BNN tests."""
import torch

# Every feature of the real space (kernel 3/5, group choices, stride 2, depth choices) at toy widths.
TINY_SPACE = dict(
    stem=dict(channels=[4, 8], kernel=3, stride=2, bits=8),
    stages=[
        dict(channels=[8, 12], depth=[1, 2], kernel=[3], groups=[1], stride=1),
        dict(channels=[12, 16], depth=[1, 2], kernel=[3, 5], groups=[1, 2], stride=2),
        dict(channels=[16, 24], depth=[1, 2], kernel=[3, 5], groups=[2, 4], stride=2),
    ],
    in_channels=3, input_size=32, num_classes=5)


@torch.no_grad()
def perturb(model: torch.nn.Module, seed: int = 0) -> None:
    """Move every parameter (identity transforms included) and BN statistic off its initial value, so that
    equivalence tests cannot pass by symmetry of the initialisation."""
    g = torch.Generator().manual_seed(seed)
    for p in model.parameters():
        p.add_(0.05 * torch.randn(p.shape, generator=g))
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=g))
            m.running_var.copy_(0.5 + torch.rand(m.running_var.shape, generator=g))

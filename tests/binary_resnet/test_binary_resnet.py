"""BinaryResNet: the structure binary networks learn in, checked on real bundled CIFAR-10 images.

The checks that would have caught the degenerate drop-in path: every BN after a binary conv sees input
variance, information reaches the logits through every shortcut, and one real batch's gradient norm stays
near the float twin's. Each check is also run on the drop-in stock ResNet to show it catches that case.
"""
import warnings
from pathlib import Path

import mmcv
import pytest
import torch
from torch import nn

from mmdynbnn.models import BinaryResNet
from mmdynbnn.models.backbones.binary_resnet import BinaryConvUnit
from mmdynbnn.ops import BinaryConv2d
from mmdynbnn.ops.binary_conv import DegenerateBinaryInputWarning

REPO = Path(__file__).resolve().parents[2]
SMALL = dict(depth=18, stem_type='cifar', stem_channels=16, base_channels=16)
# The float twin's first-step gradient norm and the binary network's must stay within this factor.
GRAD_NORM_FACTOR = 10.0


def cifar_batch(n=32):
    """n bundled CIFAR-10 test images (several classes), RGB, normalised as the CIFAR configs do."""
    paths = sorted((REPO / 'data' / 'cifar10_mini' / 'test').glob('*/*'))
    paths = paths[::max(1, len(paths) // n)][:n]
    assert len(paths) == n, 'bundled data/cifar10_mini is missing'
    labels = [sorted(p.parent.parent.iterdir()).index(p.parent) for p in paths]
    imgs = torch.stack([torch.from_numpy(mmcv.imread(str(p), channel_order='rgb')).permute(2, 0, 1)
                        for p in paths]).float()
    mean = torch.tensor([125.307, 122.961, 113.8575]).view(1, 3, 1, 1)
    std = torch.tensor([51.5865, 50.847, 51.255]).view(1, 3, 1, 1)
    return (imgs - mean) / std, torch.tensor(labels)


def dropin_resnet():
    from mmpretrain.registry import MODELS
    import mmpretrain.models  # noqa: F401
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DegenerateBinaryInputWarning)
        return MODELS.build(dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16,
                                 conv_cfg=dict(type='BinaryConv2d')))


class Classifier(nn.Module):
    def __init__(self, backbone, channels):
        super().__init__()
        self.backbone, self.fc = backbone, nn.Linear(channels, 10)

    def forward(self, x):
        return self.fc(self.backbone(x)[-1].mean((2, 3)))


def bn_input_variances(model, x):
    """Per-channel variance of the input of every BN that follows a binary conv (train-mode forward)."""
    seen = {}
    hooks = []
    for name, m in model.named_modules():
        conv = None
        if isinstance(m, BinaryConvUnit):
            conv, bn = m.conv, m.bn
        elif type(m).__name__ == 'BasicBlock':  # mmpretrain's ResNet block
            for cname, bname in (('conv1', 'norm1'), ('conv2', 'norm2')):
                if isinstance(getattr(m, cname), BinaryConv2d):
                    bn = getattr(m, bname)
                    hooks.append(bn.register_forward_pre_hook(
                        lambda mod, inp, key=f'{name}.{bname}': seen.__setitem__(key, inp[0].var((0, 2, 3)))))
            if m.downsample is not None and isinstance(m.downsample[0], BinaryConv2d):
                hooks.append(m.downsample[1].register_forward_pre_hook(
                    lambda mod, inp, key=f'{name}.downsample': seen.__setitem__(key, inp[0].var((0, 2, 3)))))
            continue
        if conv is not None and isinstance(conv, BinaryConv2d):
            hooks.append(bn.register_forward_pre_hook(
                lambda mod, inp, key=name: seen.__setitem__(key, inp[0].var((0, 2, 3)))))
    model.train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DegenerateBinaryInputWarning)
        model(x)
    for h in hooks:
        h.remove()
    return seen


def test_every_bn_after_a_binary_conv_sees_variance_on_real_images():
    torch.manual_seed(0)
    x, _ = cifar_batch()
    seen = bn_input_variances(BinaryResNet(**SMALL), x)
    assert len(seen) == 16  # 8 basic blocks x 2 binary convs
    worst = min(v.min().item() for v in seen.values())
    assert worst > 1e-2, f'a BN after a binary conv sees (almost) no variance: {worst}'
    # The same check flags the drop-in stock ResNet: its 1x1 binary down-sampling convs see a constant
    # +1 input (post-ReLU), so their BN sees zero variance in every channel.
    torch.manual_seed(0)
    dropin = bn_input_variances(dropin_resnet(), x)
    assert min(v.max().item() for k, v in dropin.items() if k.endswith('downsample')) < 1e-6


def test_information_flows_through_every_shortcut_to_the_logits():
    torch.manual_seed(0)
    x, _ = cifar_batch(2)
    net = BinaryResNet(**SMALL).eval()
    outs = {}
    hooks = [m.shortcut.register_forward_hook(lambda mod, inp, out, key=name: outs.setdefault(key, []).append(out))
             for name, m in net.named_modules() if isinstance(m, BinaryConvUnit)]
    with torch.no_grad():
        feats = [net(x[i:i + 1])[-1] for i in range(2)]
    for h in hooks:
        h.remove()
    assert len(outs) == 16
    for name, (a, b) in outs.items():
        assert not torch.allclose(a, b), f'{name}: the shortcut carries the same values for two images'
    assert not torch.allclose(feats[0], feats[1])
    # Zeroing every binary branch leaves a real-valued path from the image to the last stage.
    for m in net.modules():
        if isinstance(m, BinaryConvUnit):
            m.bn.weight.data.zero_()
            m.bn.bias.data.zero_()
    with torch.no_grad():
        a, b = (net(x[i:i + 1])[-1] for i in range(2))
    assert not torch.allclose(a, b)


def first_step_grad_norm(backbone, channels, x, y):
    torch.manual_seed(1)
    model = Classifier(backbone, channels).train()
    with warnings.catch_warnings():
        warnings.simplefilter('ignore', DegenerateBinaryInputWarning)
        nn.functional.cross_entropy(model(x), y).backward()
    return torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None]).norm().item()


def test_gradient_norm_of_a_real_batch_stays_near_the_float_twin():
    x, y = cifar_batch()
    torch.manual_seed(0)
    binary = first_step_grad_norm(BinaryResNet(**SMALL), 128, x, y)
    torch.manual_seed(0)
    twin = first_step_grad_norm(BinaryResNet(**SMALL, binary=False), 128, x, y)
    assert 1 / GRAD_NORM_FACTOR < binary / twin < GRAD_NORM_FACTOR, (binary, twin)
    torch.manual_seed(0)
    dropin = first_step_grad_norm(dropin_resnet(), 128, x, y)
    assert dropin / twin > 1e3  # the check catches the degenerate drop-in (zero-variance BNs)


def test_dropin_binary_stock_resnet_warns_at_build_and_first_step():
    from mmpretrain.registry import MODELS
    import mmpretrain.models  # noqa: F401
    cfg = dict(type='ResNet_CIFAR', depth=18, stem_channels=16, base_channels=16, conv_cfg=dict(type='BinaryConv2d'))
    with pytest.warns(DegenerateBinaryInputWarning, match='binarising a 3-channel input'):
        model = MODELS.build(cfg)
    x, _ = cifar_batch(8)
    with pytest.warns(DegenerateBinaryInputWarning, match='constant over the whole batch'):
        model.train()
        model(x)
    with warnings.catch_warnings():  # once per layer, not every step
        warnings.simplefilter('error', DegenerateBinaryInputWarning)
        model(x)


def test_binary_resnet_trains_without_degenerate_warnings():
    x, _ = cifar_batch(8)
    with warnings.catch_warnings():
        warnings.simplefilter('error', DegenerateBinaryInputWarning)
        for stem_bits in (None, 8):
            BinaryResNet(**SMALL, stem_bits=stem_bits).train()(x)


@pytest.mark.parametrize('depth,blocks', [(18, (2, 2, 2, 2)), (34, (3, 4, 6, 3))])
def test_imagenet_stem_multiscale_outputs(depth, blocks):
    net = BinaryResNet(depth, out_indices=(0, 1, 2, 3), base_channels=8, stem_channels=8).eval()
    outs = net(torch.randn(1, 3, 64, 96))
    assert [tuple(o.shape[1:]) for o in outs] == [(8, 16, 24), (16, 8, 12), (32, 4, 6), (64, 2, 3)]
    assert net.out_channels == (8, 16, 32, 64)
    assert tuple(len(s) for s in net.stages) == blocks
    n_binary = sum(isinstance(m, BinaryConv2d) for m in net.modules())
    assert n_binary == 2 * sum(blocks)  # two binary convs per basic block, nothing else binary
    assert not isinstance(net.stem.conv, BinaryConv2d)


def test_downsample_modes_and_float_twin():
    x = torch.randn(2, 3, 32, 32)
    conv = BinaryResNet(**SMALL, downsample='conv')
    rep = BinaryResNet(**SMALL, downsample='repeat')
    assert sum(p.numel() for p in conv.parameters()) > sum(p.numel() for p in rep.parameters())
    assert rep(x)[-1].shape == conv(x)[-1].shape == (2, 128, 4, 4)
    twin = BinaryResNet(**SMALL, binary=False)
    assert not any(isinstance(m, BinaryConv2d) for m in twin.modules())
    assert [n for n, _ in twin.named_parameters() if 'rsign' not in n] == \
        [n for n, _ in conv.named_parameters() if 'rsign' not in n]


def test_frozen_stages_and_norm_eval():
    net = BinaryResNet(**SMALL, frozen_stages=1, norm_eval=True)
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stages[0].parameters())
    assert all(p.requires_grad for p in net.stages[1].parameters())
    assert not any(m.training for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    assert net.stages[1].training


@pytest.mark.parametrize('kwargs,field', [
    (dict(depth=20), 'depth=20'), (dict(stem_type='deep'), "stem_type='deep'"),
    (dict(downsample='stride'), "downsample='stride'"), (dict(out_indices=(4,)), 'out_indices'),
    (dict(stem_bits=1), 'stem_bits=1'), (dict(frozen_stages=5), 'frozen_stages=5'),
    (dict(base_channels=0), 'base_channels=0')])
def test_bad_arguments_name_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field.replace('(', r'\(')):
        BinaryResNet(**kwargs)


def test_constant_sign_check_waits_for_enough_values_per_channel():
    x, _ = cifar_batch(8)
    conv = BinaryConv2d(8, 8, 3, padding=1).train()
    tiny = torch.randn(1, 8, 2, 2)  # 4 values per channel: one-signed by chance, not by construction
    with warnings.catch_warnings():
        warnings.simplefilter('error', DegenerateBinaryInputWarning)
        conv(tiny.abs())
    with pytest.warns(DegenerateBinaryInputWarning, match='constant over the whole batch'):
        conv(torch.relu(x[:, :1].repeat(1, 8, 1, 1)))  # a real post-ReLU batch

import random

import pytest
import torch

import torch.nn.functional as F

from mmdynbnn.models import NASBNNSuperNet
from mmdynbnn.models.backbones.nasbnn_blocks import SuperBinaryConv, active_kernel, group_slices
from mmdynbnn.ops.functional import approx_sign, binarize_weight, standardize_weight
from mmdynbnn.nas import CIFAR_SPACE, Subnet, build_space
from mmdynbnn.nas.subnet import BlockChoice, StageChoice

from .helpers import TINY_SPACE


@pytest.mark.parametrize('size', [32, 33, 47])
def test_forward_biggest_smallest_random_at_several_sizes(size):
    net = NASBNNSuperNet(TINY_SPACE, out_indices=(0, 1, 2))
    rng = random.Random(size)
    for subnet in [net.biggest(), net.smallest(), net.sample_subnet(rng), net.sample_subnet(rng)]:
        net.set_subnet(subnet)
        outs = net(torch.randn(2, 3, size, size))
        h = -(-size // 2)  # stem stride 2, padded convs: ceil
        expected = [h, -(-h // 2), -(-h // 4)]
        assert [o.shape[2] for o in outs] == expected
        assert [o.shape[1] for o in outs] == list(subnet.stage_out_channels())
        assert net.out_channels() == subnet.stage_out_channels()
        assert all(torch.isfinite(o).all() for o in outs)


def test_imagenet_space_multiscale_strides():
    net = NASBNNSuperNet(None, subnet='smallest', out_indices=(1, 2, 3, 4))
    outs = net(torch.randn(1, 3, 64, 64))
    assert [o.shape[-1] for o in outs] == [16, 8, 4, 2]  # strides 4/8/16/32
    assert [o.shape[1] for o in outs] == [96, 192, 384, 768]


def _active_block_regions(net, subnet):
    """(param, index) of the slices a subnet uses, per conv weight of every block."""
    regions = {}
    for i, j, c_in, b in subnet.blocks():
        block = net.stages[i][j]
        full = block.conv1.weight.shape[-1]
        off = (full - b.kernel) // 2
        w = block.conv1.weight
        used = torch.zeros_like(w, dtype=torch.bool)
        per_group = c_in // b.groups
        for g, start in enumerate(group_slices(c_in, b.groups, w.shape[1])):
            used[g * per_group:(g + 1) * per_group, start:start + per_group, off:off + b.kernel,
                 off:off + b.kernel] = True
        regions[w] = used
        regions[block.conv2.weight] = (slice(0, b.channels), slice(0, c_in))
        regions[block.bn1.weight] = (slice(0, c_in),)
        regions[block.bn2.weight] = (slice(0, b.channels),)
        regions[block.act2.slope] = (slice(0, b.channels),)
        regions[block.conv1.rsign.bias] = (slice(0, c_in),)
    regions[net.stem.conv.weight] = (slice(0, subnet.stem_channels),)
    return regions


@pytest.mark.parametrize('mode', ['binary', 'fp'])
def test_gradients_reach_only_active_slices(mode):
    torch.manual_seed(0)
    net = NASBNNSuperNet(TINY_SPACE, mode=mode)
    subnet = Subnet(4, (StageChoice(1, (BlockChoice(8, 3, 1),)),
                        StageChoice(2, (BlockChoice(12, 3, 2), BlockChoice(16, 3, 1))),
                        StageChoice(1, (BlockChoice(16, 5, 4),))))
    net.set_subnet(subnet)
    net(torch.randn(4, 3, 16, 16))[-1].square().mean().backward()
    regions = _active_block_regions(net, subnet)
    for p, idx in regions.items():
        g = p.grad
        assert g is not None and g[idx].abs().sum() > 0
        mask = torch.ones_like(g, dtype=torch.bool)
        mask[idx] = False
        assert g[mask].abs().sum() == 0
    # Blocks beyond the active depth get nothing at all.
    for p in net.stages[0][1].parameters():
        assert p.grad is None or p.grad.abs().sum() == 0
    # The 3x3 crop transform of stage 1 was used; its 5x5 Bi-Transformation was not.
    assert net.stages[1][0].conv1.crop_matrices['3'].grad.abs().sum() > 0
    assert net.stages[1][0].conv1.bi_matrix.grad is None
    # Stage 2 used its largest kernel: Bi-Transformation in binary mode only, raw weight in fp mode.
    bi = net.stages[2][0].conv1.bi_matrix.grad
    assert (bi is not None and bi.abs().sum() > 0) if mode == 'binary' else bi is None


def _block_diagonal_mask(channels, groups, shape):
    mask = torch.zeros(shape)
    n = channels // groups
    for g in range(groups):
        mask[g * n:(g + 1) * n, g * n:(g + 1) * n] = 1
    return mask


@pytest.mark.parametrize('binary', [True, False])
def test_grouped_subnet_is_the_dense_kernel_with_off_diagonal_blocks_masked(binary):
    torch.manual_seed(0)
    conv = SuperBinaryConv(8, 8, (3, 5), min_groups=1)  # stored dense: (8, 8, 5, 5)
    with torch.no_grad():
        conv.crop_matrices['3'].add_(0.1 * torch.randn(9, 9))
        conv.bi_matrix.add_(0.1 * torch.randn(25, 25))
    x = torch.randn(2, 8, 9, 9)
    for kernel in (3, 5):
        matrix = conv.transform_matrix(kernel, binary)
        dense = active_kernel(conv.weight, 8, 8, 1, kernel, matrix)
        grouped = active_kernel(conv.weight, 8, 8, 2, kernel, matrix)
        assert grouped.shape == (8, 4, kernel, kernel)
        # Latent weights: group 1 (outputs 4..7) reads inputs 4..7 of the dense kernel, not 0..3.
        torch.testing.assert_close(grouped[:4], dense[:4, :4])
        torch.testing.assert_close(grouped[4:], dense[4:, 4:])
        # As convolutions: the g=2 conv = the dense conv with the off-diagonal blocks masked.
        masked = dense * _block_diagonal_mask(8, 2, dense.shape)
        pad = kernel // 2
        torch.testing.assert_close(F.conv2d(x, grouped, padding=pad, groups=2), F.conv2d(x, masked, padding=pad),
                                   rtol=1e-5, atol=1e-5)
        # The supernet conv runs exactly that kernel (after WN/sign, per output channel of its group).
        post = binarize_weight if binary else standardize_weight
        with torch.no_grad():
            out = conv(x, 8, 8, kernel, 1, 2, binary)
            expected = F.conv2d(approx_sign(x), post(grouped), padding=pad, groups=2)
        torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_group_slices_with_more_than_one_group_minimum():
    # Stored for min_groups=2: (16, 8, k, k). An input of 8 channels fits: any group count is the dense
    # 8 x 8 kernel masked (g=2 and g=4 read their own channels). An input of 16 channels wraps around the 8
    # stored ones: g=4 reads [0, 4, 0, 4] = the g=2 kernel (each group of 8 reads stored 0..7) masked.
    assert group_slices(8, 2, 8) == [0, 4]
    assert group_slices(8, 4, 8) == [0, 2, 4, 6]
    assert group_slices(16, 2, 8) == [0, 0]
    assert group_slices(16, 4, 8) == [0, 4, 0, 4]
    torch.manual_seed(1)
    conv = SuperBinaryConv(16, 16, (3,), min_groups=2)
    dense8 = conv.weight[:8, :8]
    for g in (2, 4):
        w = active_kernel(conv.weight, 8, 8, g, 3)
        masked = dense8 * _block_diagonal_mask(8, g, dense8.shape)
        x = torch.randn(1, 8, 6, 6)
        torch.testing.assert_close(F.conv2d(x, w, padding=1, groups=g), F.conv2d(x, masked, padding=1),
                                   rtol=1e-5, atol=1e-5)
    g2, g4 = active_kernel(conv.weight, 16, 16, 2, 3), active_kernel(conv.weight, 16, 16, 4, 3)
    torch.testing.assert_close(g4, torch.cat([g2[:4, :4], g2[4:8, 4:], g2[8:12, :4], g2[12:, 4:]]))


def test_modes_and_transforms():
    torch.manual_seed(0)
    net = NASBNNSuperNet(TINY_SPACE).eval()
    x = torch.randn(2, 3, 16, 16)
    binary = net(x)[-1]
    net.mode = 'fp'
    fp = net(x)[-1]
    assert not torch.allclose(binary, fp)
    net.mode = 'binary'
    with torch.no_grad():  # the Bi-Transformation acts in binary mode only
        net.stages[2][0].conv1.bi_matrix.copy_(torch.randn(25, 25))
    assert not torch.allclose(net(x)[-1], binary)
    net.mode = 'fp'
    assert torch.allclose(net(x)[-1], fp)
    with pytest.raises(ValueError, match="mode='int4'.*allowed"):
        net.mode = 'int4'


def test_shortcuts_are_parameter_free_and_no_resolution_is_baked_in():
    net = NASBNNSuperNet(CIFAR_SPACE)
    names = [n for n, _ in net.named_parameters()]
    assert not any('downsample' in n or 'shortcut' in n for n in names)
    assert all(p.dim() != 4 or p.shape[0] in (24, 32, 48, 64, 96) for p in net.parameters())
    net.set_subnet('smallest')
    for size in (8, 40):
        assert net(torch.randn(2, 3, size, size))[-1].shape[-1] == -(-size // 8)


def test_set_subnet_validates():
    net = NASBNNSuperNet(TINY_SPACE)
    cfg = net.biggest().to_config()
    cfg['stages'][1]['blocks'][0]['kernel'] = 7
    with pytest.raises(ValueError, match=r'stage 1, block 0: kernel=7 is not in the allowed choices \[3, 5\]'):
        net.set_subnet(cfg)
    with pytest.raises(ValueError, match='out_indices'):
        NASBNNSuperNet(TINY_SPACE, out_indices=(3,))


def test_frozen_stages_and_norm_eval():
    net = NASBNNSuperNet(TINY_SPACE, frozen_stages=1, norm_eval=True)
    net.train()
    assert not any(p.requires_grad for p in net.stem.parameters())
    assert not any(p.requires_grad for p in net.stages[0].parameters())
    assert all(p.requires_grad for p in net.stages[1].parameters())
    assert not net.stem.bn.training and not net.stages[2][0].bn1.training
    before = net.stages[2][0].bn1.running_mean.clone()
    net(torch.randn(2, 3, 16, 16))
    assert torch.equal(before, net.stages[2][0].bn1.running_mean)


def test_sliced_bn_updates_only_the_active_running_stats():
    net = NASBNNSuperNet(TINY_SPACE).train()
    net.set_subnet('smallest')
    bn = net.stages[2][0].bn2  # 24 features, smallest uses 16
    net(torch.randn(4, 3, 16, 16) * 3 + 1)
    assert (bn.running_mean[:16] != 0).all() and (bn.running_mean[16:] == 0).all()
    assert (bn.running_var[16:] == 1).all()


@pytest.mark.parametrize('training', [True, False])
def test_sliced_bn_equals_a_bn_of_the_slice(training):
    from mmdynbnn.models.backbones.nasbnn_blocks import SlicedBatchNorm2d
    torch.manual_seed(0)
    sliced, plain = SlicedBatchNorm2d(8), torch.nn.BatchNorm2d(5)
    with torch.no_grad():
        for t in (sliced.weight, sliced.bias, sliced.running_mean):
            t.normal_()
        sliced.running_var.uniform_(0.5, 2)
        for name in ('weight', 'bias', 'running_mean', 'running_var'):
            getattr(plain, name).copy_(getattr(sliced, name)[:5])
    sliced.train(training), plain.train(training)
    x = torch.randn(4, 5, 3, 3)
    torch.testing.assert_close(sliced(x), plain(x))
    torch.testing.assert_close(sliced.running_mean[:5], plain.running_mean)
    torch.testing.assert_close(sliced.running_var[:5], plain.running_var)

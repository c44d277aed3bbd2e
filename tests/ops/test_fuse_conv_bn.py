"""mmcv's fuse_conv_bn (stock benchmark.py --fuse-conv-bn) must fold BN correctly into binary convs."""
import copy

import pytest
import torch
from mmcv.cnn import ConvModule, fuse_conv_bn

import mmdynbnn  # noqa: F401  (installs the fold for quantised convs)


def _with_running_stats(module):
    """Give every BN non-trivial statistics and affine parameters (negative gammas included)."""
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.normal_()
                m.bias.normal_()
    module.eval()  # not chained: mmdet's ResNet.train() returns None
    return module


@pytest.mark.parametrize('conv_type', ['BinaryConv2d', 'QuantConv2d'])
def test_fuse_conv_bn_keeps_outputs_and_quantised_weights(conv_type):
    torch.manual_seed(0)
    block = _with_running_stats(torch.nn.Sequential(
        ConvModule(8, 16, 3, padding=1, conv_cfg=dict(type=conv_type), norm_cfg=dict(type='BN')),
        ConvModule(16, 16, 3, padding=1, conv_cfg=dict(type=conv_type), norm_cfg=dict(type='BN'))))
    x = torch.randn(2, 8, 10, 10)
    expected = block(x)
    latent = [m.conv.weight.detach().clone() for m in block]
    fused = fuse_conv_bn(copy.deepcopy(block))
    assert all(isinstance(m.bn, torch.nn.Identity) for m in fused)  # BN really folded
    for m, w in zip(fused, latent):
        assert torch.equal(m.conv.weight, w)  # latent weights untouched: the fold lives in out_scale
        assert m.conv.out_scale is not None
    torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_fuse_conv_bn_on_a_stock_mmdet_resnet():
    from mmdet.models.backbones import ResNet
    torch.manual_seed(0)
    net = _with_running_stats(ResNet(depth=18, conv_cfg=dict(type='BinaryConv2d'), out_indices=(0, 1, 2, 3)))
    x = torch.randn(1, 3, 64, 64)
    expected = net(x)
    fused = fuse_conv_bn(copy.deepcopy(net))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
    for a, b in zip(fused(x), expected):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_the_function_held_by_mmdets_benchmark_module_folds_correctly():
    """mmdet's benchmark utilities import fuse_conv_bn at their top, possibly before this plugin."""
    from mmdet.utils import benchmark  # needs psutil (a runtime requirement)
    torch.manual_seed(0)
    block = _with_running_stats(ConvModule(8, 8, 3, padding=1, conv_cfg=dict(type='BinaryConv2d'),
                                           norm_cfg=dict(type='BN')))
    x = torch.randn(1, 8, 7, 7)
    expected = block(x)
    torch.testing.assert_close(benchmark.fuse_conv_bn(copy.deepcopy(block))(x), expected, rtol=1e-5, atol=1e-5)


def test_float_convs_still_fold_as_before():
    torch.manual_seed(0)
    block = _with_running_stats(ConvModule(4, 4, 3, padding=1, norm_cfg=dict(type='BN')))
    x = torch.randn(1, 4, 6, 6)
    expected = block(x)
    fused = fuse_conv_bn(copy.deepcopy(block))
    assert not torch.equal(fused.conv.weight, block.conv.weight)  # mmcv's own fold rescales the weight
    torch.testing.assert_close(fused(x), expected, rtol=1e-5, atol=1e-5)


def test_efficient_conv_bn_eval_is_refused():
    block = ConvModule(4, 4, 3, padding=1, conv_cfg=dict(type='BinaryConv2d'), norm_cfg=dict(type='BN'),
                       efficient_conv_bn_eval=True).eval()
    with pytest.raises(RuntimeError, match='cannot be substituted into a quantised conv'):
        block(torch.randn(1, 4, 6, 6))

"""Forward/backward of the binary layers against their definitions, and their input errors."""
import pytest
import torch
import torch.nn.functional as F

from mmdynbnn.ops import BinaryConv2d, KernelTransform, LearnableBias, QuantConv2d, RPReLU, RSign
from mmdynbnn.ops.functional import standardize_weight

torch.manual_seed(0)


def _randomise(module):
    with torch.no_grad():
        for p in module.parameters():
            p.normal_()
    return module.double()


def _sign(x):
    return torch.where(x >= 0, 1.0, -1.0).to(x.dtype)


def test_rsign_forward_and_gradients():
    m = _randomise(RSign(3))
    m.bias.data.mul_(0.3)
    x = torch.randn(2, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    y = m(x)
    z = x.detach() + m.bias.detach().view(1, -1, 1, 1)
    torch.testing.assert_close(y.detach(), _sign(z))
    g = torch.randn_like(y)
    y.backward(g)
    dz = g * (2 - 2 * z.abs()).clamp_min(0)
    torch.testing.assert_close(x.grad, dz)
    torch.testing.assert_close(m.bias.grad, dz.sum((0, 2, 3)))


def test_rprelu_and_learnable_bias():
    m = _randomise(RPReLU(4))
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64)
    v = x - m.shift_in.view(1, -1, 1, 1)
    expected = torch.where(v >= 0, v, v * m.slope.view(1, -1, 1, 1)) + m.shift_out.view(1, -1, 1, 1)
    torch.testing.assert_close(m(x), expected)
    assert RPReLU(4).slope.eq(0.25).all()
    b = _randomise(LearnableBias(4))
    torch.testing.assert_close(b(x), x + b.bias.view(1, -1, 1, 1))


def _reference_binary_conv(conv, x, weight):
    xb = _sign(x + conv.rsign.bias.view(1, -1, 1, 1))
    return F.conv2d(xb, weight, conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups)


@pytest.mark.parametrize('k,stride,padding,dilation,groups', [(3, 1, 1, 1, 1), (5, 2, 2, 1, 2), (1, 1, 0, 1, 1),
                                                              (3, 2, 2, 2, 4)])
def test_binary_conv_matches_definition(k, stride, padding, dilation, groups):
    conv = _randomise(BinaryConv2d(8, 12, k, stride, padding, dilation, groups, bias=True))
    x = torch.randn(2, 8, 11, 9, dtype=torch.float64)
    w_hat = standardize_weight(conv.weight.detach())
    alpha = w_hat.abs().flatten(1).mean(1).view(-1, 1, 1, 1)
    out = conv(x)
    torch.testing.assert_close(out, _reference_binary_conv(conv, x, alpha * _sign(w_hat)))
    assert out.shape == F.conv2d(x, conv.weight, None, stride, padding, dilation, groups).shape
    conv.mode = 'fp'  # full-precision normalised weights, binary activations
    torch.testing.assert_close(conv(x), _reference_binary_conv(conv, x, w_hat))


def test_binary_conv_gradients_reach_every_parameter():
    conv = BinaryConv2d(4, 6, 3, padding=1, bi_transform=True)
    x = torch.randn(2, 4, 5, 5, requires_grad=True)
    conv(x).square().sum().backward()
    for name, p in [('weight', conv.weight), ('bias', conv.bias), ('rsign', conv.rsign.bias),
                    ('transform', conv.kernel_transform.matrix), ('input', x)]:
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_kernel_transform_applies_in_binary_mode_only():
    conv = _randomise(BinaryConv2d(4, 6, 3, padding=1, bias=False, bi_transform=True))
    x = torch.randn(1, 4, 6, 6, dtype=torch.float64)
    m = conv.kernel_transform.matrix.detach()
    w = (conv.weight.detach().reshape(6, 4, 9) @ m.t()).reshape(6, 4, 3, 3)
    w_hat = standardize_weight(w)
    alpha = w_hat.abs().flatten(1).mean(1).view(-1, 1, 1, 1)
    torch.testing.assert_close(conv(x), _reference_binary_conv(conv, x, alpha * _sign(w_hat)))
    conv.mode = 'fp'  # the full-precision teacher uses the raw weight
    torch.testing.assert_close(conv(x), _reference_binary_conv(conv, x, standardize_weight(conv.weight.detach())))
    assert torch.equal(KernelTransform(3).double()(conv.weight), conv.weight)  # identity at init


def test_act_binarizer_variants():
    x = torch.randn(1, 4, 5, 5, dtype=torch.float64)
    plain = _randomise(BinaryConv2d(4, 4, 3, padding=1, act_binarizer='sign'))
    passthrough = BinaryConv2d(4, 4, 3, padding=1, act_binarizer=None).double()
    passthrough.load_state_dict(plain.state_dict())
    assert plain.rsign is None and passthrough.rsign is None
    torch.testing.assert_close(plain(x), passthrough(_sign(x)))


def test_quant_conv_weights_on_the_grid_and_state_round_trip():
    conv = QuantConv2d(3, 8, 3, padding=1, bias=False)
    x = torch.randn(2, 3, 8, 8)
    assert not bool(conv.scale_initialized)
    out = conv(x)
    assert bool(conv.scale_initialized)
    q = conv.quantized_weight().detach()
    levels = q / conv.weight_scale.detach().view(-1, 1, 1, 1)
    torch.testing.assert_close(levels, levels.round())
    assert levels.abs().max() <= 128
    torch.testing.assert_close(out, F.conv2d(x, q, None, 1, 1))
    conv.weight_scale.data.mul_(1.7)  # as after training
    clone = QuantConv2d(3, 8, 3, padding=1, bias=False)
    clone.load_state_dict(conv.state_dict())
    torch.testing.assert_close(clone(x), conv(x))  # the learnt step is not re-initialised


@pytest.mark.parametrize('kwargs,words', [
    (dict(in_channels=6, out_channels=8, kernel_size=3, groups=4), ['in_channels=6', 'groups=4']),
    (dict(in_channels=8, out_channels=6, kernel_size=3, groups=4), ['out_channels=6', 'groups=4']),
    (dict(in_channels=4, out_channels=4, kernel_size=3, mode='ternary'), ["mode='ternary'", "'binary'", "'fp'"]),
    (dict(in_channels=4, out_channels=4, kernel_size=3, act_binarizer='relu'), ["act_binarizer='relu'", 'rsign']),
    (dict(in_channels=4, out_channels=4, kernel_size=3, padding_mode='reflect'), ["padding_mode='reflect'"]),
    (dict(in_channels=4, out_channels=4, kernel_size=1, groups=4), ['at least 2 weights']),
    (dict(in_channels=0, out_channels=4, kernel_size=3), ['in_channels=0']),
])
def test_binary_conv_bad_arguments_are_named(kwargs, words):
    with pytest.raises(ValueError) as err:
        BinaryConv2d(**kwargs)
    for word in words:
        assert word in str(err.value)
    assert 'BinaryConv2d' in str(err.value)


def test_bad_inputs_and_modes_are_named():
    conv = BinaryConv2d(4, 8, 3)
    with pytest.raises(ValueError, match=r'BinaryConv2d\(4, 8.*4-D.*\(4, 9, 9\)'):
        conv(torch.randn(4, 9, 9))
    with pytest.raises(ValueError, match=r'BinaryConv2d\(4, 8.*has 3 channels.*expected 4'):
        conv(torch.randn(1, 3, 9, 9))
    with pytest.raises(ValueError, match=r"mode='int4'.*allowed: \('binary', 'fp'\)"):
        conv.mode = 'int4'
    assert conv.mode == 'binary'
    with pytest.raises(ValueError, match=r'RSign\(num_channels=5\).*has 4 channels'):
        RSign(5)(torch.randn(1, 4, 2, 2))
    with pytest.raises(ValueError, match=r'bits=1 must be an int in \[2, 16\]'):
        QuantConv2d(3, 8, 3, bits=1)
    with pytest.raises(TypeError, match='apply_to'):
        conv.set_kernel_transform(torch.nn.Identity())

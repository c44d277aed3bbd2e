"""The binarisation primitives against their definitions (docs/nasbnn.md §1), in float64."""
import pytest
import torch
import torch.nn.functional as F

from mmdynbnn.ops import functional as BF

torch.manual_seed(0)


def test_approx_sign_forward_and_gradient():
    x = torch.tensor([-2.0, -1.0, -0.5, 0.0, 0.25, 1.0, 1.5], dtype=torch.float64, requires_grad=True)
    y = BF.approx_sign(x)
    assert y.tolist() == [-1, -1, -1, 1, 1, 1, 1]  # sign(0) = +1: outputs are exactly +-1
    g = torch.randn_like(x)
    y.backward(g)
    expected = g * torch.where(x.abs() <= 1, 2 - 2 * x.abs(), torch.zeros_like(x))
    torch.testing.assert_close(x.grad, expected.detach())


def test_sign_ste_gradient_is_clipped_identity():
    x = torch.linspace(-3, 3, 61, dtype=torch.float64, requires_grad=True)
    g = torch.randn_like(x)
    BF.sign_ste(x).backward(g)
    torch.testing.assert_close(x.grad, g * (x.detach().abs() <= 1))


def test_weight_normalisation_statistics():
    w = torch.randn(6, 4, 3, 3, dtype=torch.float64) * 3 + 1.5
    w_hat = BF.standardize_weight(w).flatten(1)
    torch.testing.assert_close(w_hat.mean(1), torch.zeros(6, dtype=torch.float64))
    torch.testing.assert_close(w_hat.std(1, unbiased=True), torch.ones(6, dtype=torch.float64))


def test_binary_weight_values_scale_and_ste_gradient():
    w_hat = torch.randn(5, 3, 3, 3, dtype=torch.float64, requires_grad=True)
    wb = BF.binary_weight_from_normalized(w_hat)
    alpha = w_hat.detach().abs().flatten(1).mean(1)
    # every weight is +-alpha_c with the sign of w_hat
    torch.testing.assert_close(wb.detach(), alpha.view(-1, 1, 1, 1) * torch.sign(w_hat.detach()))
    g = torch.randn_like(wb)
    wb.backward(g)
    # straight-through (times the detached scale), zero where |w_hat| > 1
    torch.testing.assert_close(w_hat.grad, g * alpha.view(-1, 1, 1, 1) * (w_hat.detach().abs() <= 1))


def test_binarize_weight_gradient_flows_through_weight_normalisation():
    w = torch.randn(4, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    g = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    BF.preprocess_weight(BF.binarize_weight, w).backward(g)
    w2 = w.detach().clone().requires_grad_()
    # independent formulation of the same gradient: alpha (detached) * clip(w_hat) has d/dw_hat = alpha*1{|w_hat|<=1}
    w_hat = BF.standardize_weight(w2)
    alpha = w_hat.detach().abs().flatten(1).mean(1).view(-1, 1, 1, 1)
    (alpha * w_hat.clamp(-1, 1)).backward(g)
    torch.testing.assert_close(w.grad, w2.grad)
    assert w.grad.abs().sum() > 0


def test_preprocess_weight_is_gradient_transparent():
    a = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, 4, dtype=torch.float64, requires_grad=True)
    c = torch.randn(3, dtype=torch.float64)  # no grad wanted

    def fn(x, m, v):
        return (x @ m).tanh() * v.view(-1, 1)

    out = BF.preprocess_weight(fn, a, b, c)
    g = torch.randn_like(out)
    out.backward(g)
    a2, b2 = a.detach().clone().requires_grad_(), b.detach().clone().requires_grad_()
    fn(a2, b2, c).backward(g)
    torch.testing.assert_close(out.detach(), fn(a, b, c).detach())
    torch.testing.assert_close(a.grad, a2.grad)
    torch.testing.assert_close(b.grad, b2.grad)


@pytest.mark.parametrize('stride,padding,dilation,groups', [(1, 1, 1, 1), (2, 0, 1, 2), (1, 2, 2, 4)])
def test_named_conv_ops_match_conv2d_values_and_gradients(stride, padding, dilation, groups):
    x = torch.randn(2, 8, 9, 7, dtype=torch.float64, requires_grad=True)
    w = torch.randn(12, 8 // groups, 3, 3, dtype=torch.float64, requires_grad=True)
    for op in (BF.binary_conv2d, lambda *a: BF.int_conv2d(a[0], a[1], 8, *a[2:])):
        torch.autograd.gradcheck(
            lambda x, w: op(x, w, (stride, stride), (padding, padding), (dilation, dilation), groups), (x, w))
        ref = F.conv2d(x, w, None, stride, padding, dilation, groups)
        torch.testing.assert_close(op(x, w, (stride,) * 2, (padding,) * 2, (dilation,) * 2, groups), ref)


def test_lsq_init_scale_is_three_sigma_over_half_the_range():
    # Channel 0: mean 1, unbiased std 2 -> max(|1 - 6|, |1 + 6|) = 7; channel 1: mean -2, std 1 -> 5;
    # channel 2: mean 0, std 0.5 -> 1.5 (values placed so that mean and std are exact).
    base = torch.tensor([1.0, -1.0] * 4 + [0.0], dtype=torch.float64)  # mean 0, unbiased std 1
    w = torch.stack([1 + 2 * base, -2 + base, 0.5 * base]).view(3, 1, 3, 3)
    assert torch.allclose(base.std(), torch.tensor(1.0, dtype=torch.float64))
    torch.testing.assert_close(BF.lsq_init_scale(w, 8), torch.tensor([7.0, 5.0, 1.5], dtype=torch.float64) / 128)
    torch.testing.assert_close(BF.lsq_init_scale(w, 4), torch.tensor([7.0, 5.0, 1.5], dtype=torch.float64) / 8)
    # Kaiming-uniform stem weights (nn.Conv2d's default, fan-in 27): mean +- 3 sigma reaches ~74 of the 127
    # positive 8-bit levels (the LSQ-paper init 2 mean|w| / sqrt(127) reached ~11).
    conv = torch.nn.Conv2d(3, 64, 3)
    levels = conv.weight.detach().abs().flatten(1).max(1).values / BF.lsq_init_scale(conv.weight, 8)
    assert 55 < levels.mean() < 80, levels.mean()


def test_lsq_quantize_grid_and_gradients():
    bits = 8
    w = torch.randn(4, 3, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 0.5
    # An outlier A dominates its channel's statistics (mean ~A/27, std ~A/sqrt(27)): the initial step
    # ~0.61 A / 128 puts it at ~208 > 127, so it is clipped whatever the other weights are.
    w[0, 0, 0, 0] = 1000.0
    s = BF.lsq_init_scale(w, bits)
    flat = w.flatten(1)
    mu, sigma = flat.mean(1), flat.std(1)
    torch.testing.assert_close(s, torch.maximum((mu - 3 * sigma).abs(), (mu + 3 * sigma).abs()) / 128)
    w.requires_grad_()
    s = s.clone().requires_grad_()
    q = BF.lsq_quantize(w, s, bits)
    levels = q.detach() / s.detach().view(-1, 1, 1, 1)
    torch.testing.assert_close(levels, levels.round())
    assert levels.min() >= -128 and levels.max() <= 127 and levels[0, 0, 0, 0].round() == 127
    g = torch.randn_like(q)
    q.backward(g)
    v = (w.detach() / s.detach().view(-1, 1, 1, 1))
    inside = (v >= -128) & (v <= 127)
    torch.testing.assert_close(w.grad, g * inside)  # straight-through inside, zero where clipped
    # LSQ step gradient: (round(v) - v) inside, the clip level outside, times 1/sqrt(numel * q_max) with the
    # numel of the whole quantised tensor (4 x 27 = 108 weights), not the fan-in (27)
    dq_ds = torch.where(inside, v.round() - v, v.clamp(-128, 127))
    expected = (g * dq_ds).flatten(1).sum(1) / (108 * 127) ** 0.5
    torch.testing.assert_close(s.grad, expected)

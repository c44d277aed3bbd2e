"""The bit-packed conv against the training code's float simulation (BinaryConv2d in eval mode)."""
import pytest
import torch
from torch import nn

from mmdynbnn.deploy import PackedActivation, PackedBinaryConv2d, kernel_options
from mmdynbnn.deploy import functional as BF
from mmdynbnn.deploy import packing
from mmdynbnn.ops import BinaryConv2d

# (in, out, kernel, stride, padding, groups, dilation, H, W): odd channel counts (not multiples of 64),
# odd spatial sizes, strides, groups, dilation, padding larger than needed, 1x1 and non-square kernels.
CASES = [
    (3, 8, 3, 1, 1, 1, 1, 9, 9),
    (70, 33, 3, 1, 1, 1, 1, 13, 11),
    (130, 48, 5, 2, 2, 2, 1, 15, 9),
    (96, 96, 3, 2, 1, 4, 1, 11, 12),
    (64, 130, 1, 1, 0, 1, 1, 7, 5),
    (65, 65, 1, 2, 0, 5, 1, 9, 9),
    (40, 24, 5, 1, 2, 8, 1, 6, 7),
    (48, 40, 3, 1, 2, 2, 2, 10, 9),
    (200, 17, (1, 3), 1, (0, 1), 1, 1, 5, 8),
    (24, 16, 3, 3, 3, 1, 1, 7, 7),
    (192, 192, 5, 1, 2, 4, 1, 5, 5),
]


def make_conv(case, act_binarizer='rsign', bias=True, out_scale=True, seed=0):
    cin, cout, k, s, p, g, d, h, w = case
    gen = torch.Generator().manual_seed(seed)
    conv = BinaryConv2d(cin, cout, k, s, p, d, g, bias=bias, act_binarizer=act_binarizer).eval()
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen))
        if conv.rsign is not None:
            conv.rsign.bias.copy_(torch.randn(cin, generator=gen) * 0.3)
        if bias:
            conv.bias.copy_(torch.randn(cout, generator=gen))
        if out_scale:
            bn = nn.BatchNorm2d(cout).eval()
            bn.running_mean.copy_(torch.randn(cout, generator=gen))
            bn.running_var.copy_(torch.rand(cout, generator=gen) + 0.5)
            bn.weight.copy_(torch.rand(cout, generator=gen) + 0.5)
            bn.bias.copy_(torch.randn(cout, generator=gen))
            conv.fuse_bn_(bn)
    x = torch.randn(2, cin, h, w, generator=gen)
    return conv, x


def assert_float_close(out, ref):
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-5, atol=1e-5 * float(ref.abs().max()) + 1e-6)


@pytest.mark.parametrize('case', CASES, ids=[f'case{i}' for i in range(len(CASES))])
def test_deploy_conv_matches_training_eval(isas, case):
    conv, x = make_conv(case)
    with torch.no_grad():
        ref = conv(x)
        dep = PackedBinaryConv2d.from_binary_conv(conv)
        with kernel_options(reference=True):
            out_ref_path = dep(x)
        assert_float_close(out_ref_path, ref)
        for isa in isas:
            with kernel_options(isa=isa):
                out = dep(x)
                out_cl = dep(x.contiguous(memory_format=torch.channels_last))
            assert_float_close(out, ref)
            # the C++ kernel and the torch reference are bit-identical (exact integer dots, same epilogue)
            assert torch.equal(out, out_ref_path), isa
            assert torch.equal(out_cl, out_ref_path), isa


@pytest.mark.parametrize('act_binarizer,bias,out_scale', [('sign', False, False), ('none', True, False),
                                                          ('rsign', False, True)])
def test_binarizer_and_affine_variants(act_binarizer, bias, out_scale):
    case = (70, 33, 3, 2, 1, 1, 1, 13, 11)
    conv, x = make_conv(case, act_binarizer=act_binarizer, bias=bias, out_scale=out_scale, seed=3)
    if act_binarizer == 'none':
        x = torch.where(x >= 0, 1.0, -1.0)  # 'none' means the input is already +-1
    with torch.no_grad():
        assert_float_close(PackedBinaryConv2d.from_binary_conv(conv)(x), conv(x))


def test_reference_path_matches_training_eval_without_extension():
    """The pure-torch path (what runs without a compiler) is tested even where C++ is unavailable."""
    for i, case in enumerate(CASES[:6]):
        conv, x = make_conv(case, seed=i)
        with torch.no_grad(), kernel_options(reference=True):
            assert_float_close(PackedBinaryConv2d.from_binary_conv(conv)(x), conv(x))


def test_kernel_transform_and_zero_weight_channel():
    from mmdynbnn.ops import KernelTransform
    conv, x = make_conv((24, 20, 3, 1, 1, 1, 1, 8, 8), seed=5)
    with torch.no_grad():
        transform = KernelTransform(3)
        transform.matrix.add_(torch.randn(9, 9, generator=torch.Generator().manual_seed(1)) * 0.3)
        conv.set_kernel_transform(transform)
        conv.weight[3].fill_(0.7)  # constant kernel: WN gives 0, alpha 0
        ref = conv(x)
        assert_float_close(PackedBinaryConv2d.from_binary_conv(conv)(x), ref)


@pytest.mark.parametrize('case', [CASES[1], CASES[2], CASES[6], (512, 256, 3, 1, 1, 2, 1, 14, 14)])
def test_results_independent_of_thread_count(cpp_ext, threads, case):
    conv, x = make_conv(case, seed=7)
    dep = PackedBinaryConv2d.from_binary_conv(conv)
    outs = []
    with torch.no_grad():
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            outs.append(dep(x))
    assert torch.equal(outs[0], outs[1]) and torch.equal(outs[0], outs[2])


@pytest.mark.parametrize('groups_next', [1, 2])
def test_fused_next_sign_emits_next_layers_packed_input(groups_next):
    conv, x = make_conv((70, 128, 3, 1, 1, 1, 1, 9, 7), seed=11)
    nxt, _ = make_conv((128, 40, 3, 1, 1, groups_next, 1, 9, 7), seed=12)
    with torch.no_grad():
        ref = nxt(conv(x))
        first = PackedBinaryConv2d.from_binary_conv(conv)
        second = PackedBinaryConv2d.from_binary_conv(nxt)
        first.emit_packed = True
        first.next_threshold = second.threshold.clone()
        first.next_padding = second.padding
        first.next_groups = second.groups
        for reference in (False, True):
            with kernel_options(reference=reference):
                packed = first(x)
                assert isinstance(packed, PackedActivation)
                expected = packing.pack_activations(conv(x), second.threshold, groups_next, 1, 1)
                assert torch.equal(packed.data, expected)
                assert_float_close(second(packed), ref)


def test_unsupported_isa_request_is_rejected(cpp_ext):
    if int(cpp_ext.best_isa()) == 3:
        pytest.skip('this CPU supports every instruction set of the kernels')
    x = torch.randn(1, 8, 4, 4)
    with pytest.raises(RuntimeError, match='requested but this CPU only supports'):
        BF.pack_activations(x, None, 1, 0, 0, isa='avx512-vpopcntdq')


@pytest.mark.parametrize('layout', ['nchw', 'channels_last', 'strided'])
def test_fused_rprelu_is_bit_identical_to_rprelu(layout):
    from mmdynbnn.deploy import FusedRPReLU
    from mmdynbnn.ops import RPReLU
    gen = torch.Generator().manual_seed(0)
    act = RPReLU(37)
    with torch.no_grad():
        act.shift_in.copy_(torch.randn(37, generator=gen) * 0.3)
        act.slope.copy_(torch.randn(37, generator=gen) * 0.3)  # negative slopes too
        act.shift_out.copy_(torch.randn(37, generator=gen) * 0.3)
    x = torch.randn(2, 37, 9, 13, generator=gen)
    x[0, :, 0, 0] = act.shift_in.detach()  # exactly at the kink (x - shift_in == 0)
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = x[..., ::2]
    fused = FusedRPReLU.from_rprelu(act)
    with torch.no_grad():
        ref = act(x)
        assert torch.equal(fused(x), ref)
        with kernel_options(reference=True):
            assert torch.equal(fused(x), ref)


@pytest.mark.parametrize('layout', ['nchw', 'channels_last'])
def test_fused_rprelu_follows_the_requested_instruction_set(layout, isas, cpp_ext):
    """kernel_options(isa=...) reaches the RPReLU kernel too: every path this CPU has is bit-exact, and a
    level beyond the CPU's is refused as for the conv kernels (so the level is checked, not ignored)."""
    from mmdynbnn.deploy import FusedRPReLU
    from mmdynbnn.ops import RPReLU
    gen = torch.Generator().manual_seed(1)
    act = RPReLU(19)
    with torch.no_grad():
        act.slope.copy_(torch.randn(19, generator=gen) * 0.3)
        act.shift_in.copy_(torch.randn(19, generator=gen) * 0.3)
    x = torch.randn(2, 19, 5, 11, generator=gen)  # 19 channels: the 8-lane path has a scalar tail
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    fused = FusedRPReLU.from_rprelu(act)
    with torch.no_grad():
        ref = act(x)
        for isa in isas:
            with kernel_options(isa=isa):
                assert torch.equal(fused(x), ref), isa
        with pytest.raises(RuntimeError, match='requested but this CPU only supports'):
            cpp_ext.rprelu(x, fused.shift_in, fused.slope, fused.shift_out, int(cpp_ext.best_isa()) + 1)

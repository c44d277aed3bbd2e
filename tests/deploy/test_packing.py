"""Bit packing: round trips, the sign convention, and the C++ packer against the torch packer."""
import pytest
import torch

from mmdynbnn.deploy import functional as BF
from mmdynbnn.deploy import packing


@pytest.mark.parametrize('channels', [1, 5, 63, 64, 65, 127, 130, 200])
def test_pack_unpack_bits_round_trip(channels):
    gen = torch.Generator().manual_seed(channels)
    bits = torch.rand(4, 3, channels, generator=gen) < 0.5
    words = packing.pack_bits(bits)
    assert words.dtype == torch.int64 and words.shape == (4, 3, -(-channels // 64))
    assert torch.equal(packing.unpack_bits(words, channels), bits)
    # bits beyond the channel count stay zero (they must not count in XOR/popcount)
    assert torch.equal(packing.unpack_bits(words, words.shape[-1] * 64)[..., channels:],
                       torch.zeros(4, 3, words.shape[-1] * 64 - channels, dtype=torch.bool))


def test_bit_order_is_little_endian_channels():
    bits = torch.zeros(1, 70, dtype=torch.bool)
    bits[0, 0] = bits[0, 63] = bits[0, 65] = True
    words = packing.pack_bits(bits)
    assert words[0, 0].item() == (1 | -(1 << 63))  # bit 63 is the int64 sign bit
    assert words[0, 1].item() == 2


def test_sign_convention_zero_is_plus_one_nan_is_minus_one():
    x = torch.tensor([0.0, -0.0, 1e-30, -1e-30, float('nan'), 2.0, -3.0]).view(1, 7, 1, 1)
    unpacked = packing.unpack_activations(packing.pack_activations(x, None, 1, 0, 0), 7, 0, 0).flatten()
    assert unpacked.tolist() == [1.0, 1.0, 1.0, -1.0, -1.0, 1.0, -1.0]


@pytest.mark.parametrize('channels,groups,pad', [(3, 1, 0), (70, 2, 1), (130, 1, 2), (256, 4, 1), (96, 3, 0)])
def test_activation_round_trip_and_padding_ring(channels, groups, pad):
    gen = torch.Generator().manual_seed(channels)
    x = torch.randn(2, channels, 5, 7, generator=gen)
    thr = torch.randn(channels, generator=gen) * 0.3
    packed = packing.pack_activations(x, thr, groups, pad, pad)
    assert packed.shape == (2, 5 + 2 * pad, 7 + 2 * pad, groups, -(-(channels // groups) // 64))
    expected = torch.where(x + thr.view(1, -1, 1, 1) >= 0, 1.0, -1.0)
    assert torch.equal(packing.unpack_activations(packed, channels, pad, pad), expected)
    if pad:
        ring = packed.clone()
        ring[:, pad:-pad, pad:-pad] = 0
        assert not ring.any()


@pytest.mark.parametrize('shape,groups', [((33, 70, 3, 3), 1), ((48, 65, 5, 5), 1), ((40, 24, 3, 3), 4),
                                          ((16, 130, 1, 1), 1), ((7, 5, 1, 3), 1)])
def test_weight_round_trip_and_popcounts(shape, groups):
    gen = torch.Generator().manual_seed(shape[0])
    cout, cg, kh, kw = shape
    negative = torch.rand(cout, cg, kh, kw, generator=gen) < 0.5
    wpk, pcw = packing.pack_weights(negative, groups)
    assert wpk.shape[-1] == packing.BLOCK and wpk.shape[0] == groups
    assert torch.equal(packing.unpack_weights(wpk, cout, cg), 1.0 - 2.0 * negative.float())
    coutg = cout // groups
    counts = negative.sum(dim=1).reshape(groups, coutg, kh * kw).permute(0, 2, 1)
    assert torch.equal(pcw[:, :, :coutg], counts.int())
    assert not pcw[:, :, coutg:].any()


@pytest.mark.parametrize('layout', ['nchw', 'channels_last', 'strided'])
@pytest.mark.parametrize('channels,groups,pad', [(3, 1, 1), (70, 2, 1), (130, 1, 2), (256, 4, 0), (96, 1, 1)])
def test_cpp_packer_matches_torch_packer(isas, layout, channels, groups, pad):
    gen = torch.Generator().manual_seed(channels + pad)
    x = torch.randn(2, channels, 9, 11, generator=gen)
    x[0, 0, 0, :3] = torch.tensor([0.0, -0.0, float('nan')])
    thr = torch.randn(channels, generator=gen) * 0.3
    if layout == 'channels_last':
        x = x.contiguous(memory_format=torch.channels_last)
    elif layout == 'strided':
        x = torch.randn(2, channels, 9, 22, generator=gen)[..., ::2]
    expected = packing.pack_activations(x, thr, groups, pad, pad)
    for isa in isas:
        for t in (thr, None):
            want = expected if t is thr else packing.pack_activations(x, None, groups, pad, pad)
            assert torch.equal(BF.pack_activations(x, t, groups, pad, pad, isa=isa), want), isa

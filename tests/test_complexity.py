"""OPs accounting (docs/nasbnn.md §4) in mmengine's analysis and in the summary, against hand counts."""
import torch
from mmengine.analysis import FlopAnalyzer, get_model_complexity_info
from torch import nn

from mmdynbnn.analysis import summarize
from mmdynbnn.ops import BinaryConv2d, QuantConv2d


class TinyBNN(nn.Module):
    """8-bit stem, two binary convs (one grouped, strided), a float 1x1 conv, GAP and an FC."""

    def __init__(self):
        super().__init__()
        self.stem = QuantConv2d(3, 16, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.b1 = BinaryConv2d(16, 32, 3, stride=2, padding=1, groups=2, bias=False)
        self.b2 = BinaryConv2d(32, 32, 1, bias=True)
        self.pw = nn.Conv2d(32, 24, 1, bias=False)
        self.fc = nn.Linear(24, 10)

    def forward(self, x):
        x = self.b2(self.b1(self.bn(self.stem(x))))
        return self.fc(self.pw(x).mean((2, 3)))


# Hand count for a 32x32 input: stem -> 16x16, b1 -> 8x8.
STEM_MACS = 3 * 3 * 3 * 16 * 16 * 16
B1_BOPS = 3 * 3 * (16 // 2) * 32 * 8 * 8
B2_BOPS = 1 * 1 * 32 * 32 * 8 * 8
PW_MACS = 32 * 24 * 8 * 8
FC_FLOPS = 10 * (24 + 1)
HAND_FLOPS = STEM_MACS / 8 + PW_MACS + FC_FLOPS
HAND_BOPS = B1_BOPS + B2_BOPS
HAND_OPS = HAND_FLOPS + HAND_BOPS / 64


def test_summary_totals_equal_hand_count():
    model = TinyBNN().eval()
    s = summarize(model, torch.randn(3, 3, 32, 32))  # per image, whatever the batch
    assert s.total.bops == HAND_BOPS
    assert s.total.flops == HAND_FLOPS
    assert s.total.ops == HAND_OPS
    assert [r.kind for r in s.rows] == ['int8', 'binary', 'binary', 'float', 'float', 'other']
    assert s.total.params == sum(p.numel() for p in model.parameters())
    # memory: 8-bit stem + its 16 steps; 1-bit weights + 32-bit alphas, RSign thresholds and b2's bias
    stem_bits = 432 * 8 + 32 * 16
    b1_bits = 32 * 8 * 9 + 32 * (32 + 16)
    b2_bits = 32 * 32 + 32 * (32 + 32 + 32)
    float_bits = 32 * (32 * 24 + 24 * 10 + 10 + 2 * 16)  # pw, fc, BN
    assert s.total.memory_bits == stem_bits + b1_bits + b2_bits + float_bits
    assert 'total' in s.table() and f'{HAND_BOPS:,.0f}' in s.table()


def test_mmengine_flop_analyzer_prices_binary_and_int8_convs():
    model = TinyBNN().eval()
    analyzer = FlopAnalyzer(model, (torch.randn(1, 3, 32, 32),))
    by_op = analyzer.by_operator()
    assert by_op['binary_conv (BOPs/64)'] == HAND_BOPS / 64
    assert by_op['int8_conv (MACs*8/64)'] == STEM_MACS / 8
    assert by_op['conv'] == PW_MACS and by_op['linear'] == 24 * 10
    assert by_op['batch_norm'] > 0  # float layers keep mmengine's own rules
    assert by_op['binary_conv (BOPs/64)'] == analyzer.by_module()['b1'] + analyzer.by_module()['b2']
    # weight preparation (WN, sign, LSQ) and activation binarisation are neither priced nor unsupported
    assert not any('PythonOp' in op or op in ('aten::std', 'aten::sign') for op in analyzer.unsupported_ops())


def test_full_precision_mode_is_priced_as_float():
    model = TinyBNN().eval()
    for conv in (model.b1, model.b2):
        conv.mode = 'fp'
    info = get_model_complexity_info(model, (3, 32, 32), show_table=False, show_arch=False)
    s = summarize(model, torch.randn(1, 3, 32, 32))
    assert s.total.bops == 0 and s.total.flops == HAND_FLOPS + B1_BOPS + B2_BOPS
    assert info['flops'] > HAND_FLOPS + B1_BOPS + B2_BOPS - 1  # plus mmengine's BN pricing

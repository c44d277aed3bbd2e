"""tools/analysis_tools/grad_norm.py on real bundled batches: it tells a binary network that can learn from one
that cannot, against the float twin."""
import re

from .helpers import REPO, run_tool

TOOL = REPO / 'tools/analysis_tools/grad_norm.py'


def ratio_and_dead(out):
    m = re.search(r'gradient norm ([\d.e+-]+) \(([\d.e+-]+)x the float twin', out)
    assert m, out[-3000:]
    dead = re.search(r'zero-variance input channel: (\d+) of (\d+)', out)
    return float(m.group(2)), int(dead.group(1)), int(dead.group(2))


def test_binary_resnet_near_its_twin_dropin_far_from_it():
    out = run_tool([TOOL, REPO / 'configs/binary_resnet/binary-resnet18-w16_1xb128_cifar10-mini.py', '--batches', '1',
                    '--twin-cfg-options', 'model.backbone.binary=False'])
    ratio, dead, num_bn = ratio_and_dead(out)
    assert 0.1 < ratio < 10 and dead == 0 and num_bn == 20
    assert 'backbone' in out and 'head' in out  # per-module lines
    out = run_tool([TOOL, REPO / 'configs/binary_resnet/resnet18-bconv_cifar10-mini.py', '--batches', '1',
                    '--twin-cfg-options', 'model.backbone.conv_cfg=None'])
    ratio, dead, _ = ratio_and_dead(out)
    assert ratio > 1e3 and dead > 0


def test_bad_arguments_are_refused_before_building():
    out = run_tool([TOOL, 'no/such/config.py'], check=False)
    assert "config 'no/such/config.py' is not a file" in out
    out = run_tool([TOOL, REPO / 'configs/binary_resnet/binary-resnet18-w16_1xb128_cifar10-mini.py', '--batches', '0'],
                   check=False)
    assert '--batches=0 must be >= 1' in out

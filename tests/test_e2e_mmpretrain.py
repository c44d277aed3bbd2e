"""End to end with mmpretrain's own tools on the bundled CIFAR sample: train -> test -> get_flops."""
import pytest
import torch

from mmdynbnn.analysis import build_model_from_config, summarize

from .helpers import REPO, parse_size, run_tool, stock_tool

CONFIG = REPO / 'configs/binary_resnet/binary-resnet18-w16_1xb128_cifar10-mini.py'


def test_train_then_test(tmp_path):
    out = run_tool([stock_tool('mmpretrain', 'train.py'), CONFIG, '--work-dir', tmp_path])
    assert 'Epoch(train) [1][10/10]' in out and 'accuracy/top1' in out
    ckpt = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    assert sum(k.endswith('rsign.bias') for k in ckpt['state_dict']) == 16  # 2 per basic block
    out = run_tool([stock_tool('mmpretrain', 'test.py'), CONFIG, tmp_path / 'epoch_1.pth',
                    '--work-dir', tmp_path])
    assert 'Epoch(test) [2/2]' in out
    top1 = float(out.split('accuracy/top1: ')[1].split()[0])
    assert 0 <= top1 <= 100
    out = run_tool([stock_tool('mmpretrain', 'train.py'), CONFIG, '--work-dir', tmp_path, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2'])
    assert 'resumed epoch: 1, iter: 10' in out and 'Epoch(train) [2][10/10]' in out


def test_stock_get_flops_prices_binary_convs_as_bops(tmp_path):
    tool = stock_tool('mmpretrain', 'analysis_tools', 'get_flops.py')
    # mmpretrain's get_flops has no --cfg-options: the float twin is a config inheriting the binary one
    twin = tmp_path / 'float_twin.py'
    twin.write_text(f"_base_ = '{CONFIG}'\nmodel = dict(backbone=dict(binary=False))\n")
    binary = run_tool([tool, CONFIG, '--shape', '32'])
    floating = run_tool([tool, twin, '--shape', '32'])
    backbone = build_model_from_config(str(CONFIG)).backbone
    backbone.eval()  # not chained: OpenMMLab ResNets' train() returns None
    bops = summarize(backbone, torch.randn(1, 3, 32, 32)).total.bops
    assert bops > 2e7
    saved = parse_size(floating, 'Flops') - parse_size(binary, 'Flops')
    assert saved == pytest.approx(bops * 63 / 64, abs=1.5e6)  # printed with 3 decimals of G
    assert '|    backbone.stages.3 ' in binary  # the per-module table lists the binary blocks

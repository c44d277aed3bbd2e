"""End to end with mmdet's own tools on the bundled data: train -> test -> resume -> get_flops."""
import pytest
import torch

from mmdynbnn.analysis import build_model_from_config, summarize

from .helpers import REPO, parse_size, run_tool, stock_tool

CONFIG = REPO / 'configs/binary_resnet/retinanet_binary-resnet18_fpn_coco-mini.py'


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work_dir = tmp_path_factory.mktemp('retinanet_bconv')
    out = run_tool([stock_tool('mmdet', 'train.py'), CONFIG, '--work-dir', work_dir])
    return work_dir, out


def test_train_saves_a_checkpoint_of_binary_weights(trained):
    work_dir, out = trained
    assert 'Epoch(train) [1][6/6]' in out and 'coco/bbox_mAP' in out
    ckpt = torch.load(work_dir / 'epoch_1.pth', weights_only=True)  # safe loading, no flag turned off
    rsign = [k for k in ckpt['state_dict'] if k.startswith('backbone.') and k.endswith('rsign.bias')]
    assert len(rsign) == 16  # every 3x3 conv of the basic blocks is binary and has its learnt thresholds
    assert any(v.abs().sum() > 0 for k, v in ckpt['state_dict'].items() if k in rsign)  # and they trained


def test_stock_test_py_evaluates_the_checkpoint(trained):
    work_dir, _ = trained
    out = run_tool([stock_tool('mmdet', 'test.py'), CONFIG, work_dir / 'epoch_1.pth', '--work-dir', work_dir])
    assert 'Load checkpoint from' in out
    assert 'Epoch(test) [16/16]' in out and 'coco/bbox_mAP:' in out


def test_stock_train_py_resumes(trained):
    work_dir, _ = trained
    out = run_tool([stock_tool('mmdet', 'train.py'), CONFIG, '--work-dir', work_dir, '--resume',
                    '--cfg-options', 'train_cfg.max_epochs=2', 'train_cfg.val_interval=2'])
    assert 'resumed epoch: 1, iter: 6' in out
    assert 'Epoch(train) [2][6/6]' in out and 'Epoch(train) [1]' not in out
    assert (work_dir / 'epoch_2.pth').is_file()


def test_stock_get_flops_prices_binary_convs_as_bops():
    tool = stock_tool('mmdet', 'analysis_tools', 'get_flops.py')
    binary = run_tool([tool, CONFIG, '--num-images', '1'])
    floating = run_tool([tool, CONFIG, '--num-images', '1', '--cfg-options', 'model.backbone.binary=False'])
    shape = tuple(int(v) for v in binary.split('Input shape: (')[1].split(')')[0].split(','))
    # the backbone's binary MACs at that padded input, counted by the summary (NAS-BNN rules)
    backbone = build_model_from_config(str(CONFIG)).backbone
    backbone.eval()
    bops = summarize(backbone, torch.randn(1, 3, *shape)).total.bops
    assert bops > 1e9
    saved = parse_size(floating, 'Flops') - parse_size(binary, 'Flops')
    # float conv MACs become BOPs/64; the printed sizes carry 3 decimals of G
    assert saved == pytest.approx(bops * 63 / 64, abs=2e6)

"""The ops resolve from mmdet- and mmpretrain-scoped configs; ``import mmdynbnn`` stays mmdet-free."""
import subprocess
import sys

import pytest
import torch
from mmcv.cnn import ConvModule
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdynbnn.ops import BinaryConv2d, QuantConv2d, RPReLU, RSign

from .helpers import REPO

GENERIC = {'BinaryConv2d': (BinaryConv2d, dict(in_channels=4, out_channels=8, kernel_size=3)),
           'QuantConv2d': (QuantConv2d, dict(in_channels=3, out_channels=8, kernel_size=3)),
           'RSign': (RSign, dict(num_channels=4)),
           'RPReLU': (RPReLU, dict(num_channels=4))}


@pytest.mark.parametrize('scope', ['mmdet', 'mmpretrain'])
def test_ops_resolve_in_each_scope(scope):
    registry = __import__(f'{scope}.registry', fromlist=['MODELS']).MODELS
    with DefaultScope.overwrite_default_scope(scope):
        for name, (cls, kwargs) in GENERIC.items():
            assert isinstance(registry.build(dict(type=name, **kwargs)), cls)
        block = ConvModule(4, 8, 3, conv_cfg=dict(type='BinaryConv2d'), norm_cfg=dict(type='BN'),
                           act_cfg=dict(type='RPReLU', num_channels=8))
        assert isinstance(block.conv, BinaryConv2d) and isinstance(block.activate, RPReLU)
        assert block(torch.randn(1, 4, 8, 8)).shape == (1, 8, 6, 6)


def test_stock_backbones_take_the_binary_conv():
    from mmdet.registry import MODELS as DET
    from mmpretrain.registry import MODELS as CLS
    with DefaultScope.overwrite_default_scope('mmdet'):
        det = DET.build(dict(type='ResNet', depth=18, conv_cfg=dict(type='BinaryConv2d')))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        cls = CLS.build(dict(type='ResNet_CIFAR', depth=18, conv_cfg=dict(type='BinaryConv2d')))
    for net, expected in ((det, 20), (cls, 20)):  # 1 stem + 16 block convs + 3 downsample convs
        convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == expected and all(isinstance(m, BinaryConv2d) for m in convs)


@pytest.mark.parametrize('config', ['configs/binary_resnet/retinanet_r18-bconv_fpn_coco-mini.py',
                                    'configs/binary_resnet/resnet18-bconv_cifar10-mini.py'])
def test_configs_need_only_custom_imports(config):
    code = ('import sys; from mmengine.config import Config; '
            'from mmdynbnn.analysis import build_model_from_config; '
            f'm = build_model_from_config(Config.fromfile({config!r})); '
            'from mmdynbnn.ops import BinaryConv2d; '
            'print(sum(isinstance(x, BinaryConv2d) for x in m.modules()))')
    out = subprocess.run([sys.executable, '-c', code], cwd=REPO, capture_output=True, text=True, check=True)
    assert int(out.stdout.strip().splitlines()[-1]) == 20
    assert Config.fromfile(REPO / config).custom_imports['imports'] == ['mmdynbnn']


def test_import_does_not_pull_mmdet_or_mmpretrain():
    code = ('import sys, mmdynbnn; '
            'print(sorted(m for m in sys.modules if m.split(".")[0] in ("mmdet", "mmpretrain")))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == '[]'

"""Converter: exactness of whole deploy models (mmpretrain/mmdet binary ResNets on the bundled images),
folding, fusions, error messages, and deploy checkpoints. The NAS-BNN backbone and classifiers:
``test_nasbnn.py``."""
from pathlib import Path

import mmcv
import pytest
import torch
from torch import nn

from mmdynbnn.deploy import (PackedBinaryConv2d, UnsupportedLayerError, convert_to_deploy, deploy_summary,
                             kernel_options)
from mmdynbnn.deploy.io import build_model_from_config, load_deploy_model, save_deploy_checkpoint
from mmdynbnn.deploy.testing import assert_outputs_close, randomize_
from mmdynbnn.models.backbones import NASBNN
from mmdynbnn.nas import CIFAR_SPACE
from mmdynbnn.ops import BinaryConv2d, RPReLU, RSign

REPO = Path(__file__).resolve().parents[2]


def small_nasbnn(seed=0):
    """The real static NAS-BNN backbone, smallest subnet of the CIFAR space (4 blocks)."""
    torch.manual_seed(seed)
    return randomize_(NASBNN('smallest', CIFAR_SPACE, out_indices=(0, 1, 2, 3)), seed).eval()


def test_sequential_rsign_merged_into_threshold():
    """Explicit ``RSign`` modules before ``BinaryConv2d(act_binarizer='none')`` inside an ``nn.Sequential``
    become the packed conv's threshold (NAS-BNN block order: sign, conv, BN, RPReLU)."""
    torch.manual_seed(0)
    model = nn.Sequential(RSign(24), BinaryConv2d(24, 40, 3, 1, 1, act_binarizer='none', bias=False),
                          nn.BatchNorm2d(40), RPReLU(40),
                          RSign(40), BinaryConv2d(40, 40, 5, 2, 2, groups=2, act_binarizer='none', bias=False),
                          nn.BatchNorm2d(40), RPReLU(40),
                          RSign(40), BinaryConv2d(40, 72, 1, act_binarizer='none', bias=False), nn.BatchNorm2d(72))
    randomize_(model, 2).eval()
    x = torch.randn(3, 24, 13, 11, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        ref = model(x)
        deploy = convert_to_deploy(model)
        assert_outputs_close(deploy(x), ref)
        with kernel_options(reference=True):
            assert_outputs_close(deploy(x), ref)
    assert not any(isinstance(m, (BinaryConv2d, nn.BatchNorm2d, RSign)) for m in deploy.modules())
    packed = [m for m in deploy.modules() if isinstance(m, PackedBinaryConv2d)]
    assert len(packed) == 3 and all(m.threshold is not None for m in packed)


def test_mmpretrain_binary_resnet18_on_bundled_cifar_images(cifar_batch):
    model = build_model_from_config(REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py')
    randomize_(model, seed=4)
    x = cifar_batch(model)
    with torch.no_grad():
        ref = model(x, mode='tensor')
        deploy = convert_to_deploy(model)
        out = deploy(x, mode='tensor')
    assert_outputs_close(out, ref)
    assert ref.argmax(1).tolist() == out.argmax(1).tolist()
    assert sum(isinstance(m, PackedBinaryConv2d) for m in deploy.modules()) == 20


def test_mmdet_binary_resnet_detector_on_bundled_coco_images():
    model = build_model_from_config(REPO / 'configs' / 'binary_resnet' / 'retinanet_r18-bconv_fpn_coco-mini.py')
    randomize_(model, seed=5)
    paths = sorted((REPO / 'data' / 'coco_mini' / 'val').glob('*.jpg'))[:2]
    imgs = [torch.from_numpy(mmcv.imrescale(mmcv.imread(str(p)), (160, 160))).permute(2, 0, 1).contiguous()
            for p in paths]
    x = model.data_preprocessor({'inputs': imgs, 'data_samples': None})['inputs']
    with torch.no_grad():
        ref = model(x, mode='tensor')
        out = convert_to_deploy(model)(x, mode='tensor')
    assert_outputs_close(out, ref)


def test_sequential_fused_next_sign():
    torch.manual_seed(0)
    model = nn.Sequential(BinaryConv2d(24, 64, 3, 1, 1), nn.BatchNorm2d(64), BinaryConv2d(64, 48, 3, 2, 1),
                          nn.BatchNorm2d(48), nn.ReLU())
    randomize_(model, 3).eval()
    with torch.no_grad():
        model[2].rsign.bias.uniform_(-0.3, 0.3)
        x = torch.randn(2, 24, 11, 9)
        ref = model(x)
        deploy = convert_to_deploy(model)
        assert deploy[0].emit_packed and not deploy[2].emit_packed
        assert_outputs_close(deploy(x), ref)
        assert_outputs_close(convert_to_deploy(model, fuse=False)(x), ref)


def test_fold_skips_bn_not_directly_after_conv():
    torch.manual_seed(0)
    model = randomize_(nn.Sequential(BinaryConv2d(8, 8, 3, 1, 1), nn.ReLU(), nn.BatchNorm2d(8)), 1).eval()
    x = torch.randn(1, 8, 6, 6)
    with torch.no_grad():
        deploy = convert_to_deploy(model)
        assert isinstance(deploy[2], nn.BatchNorm2d)
        assert_outputs_close(deploy(x), model(x))


def test_unsupported_layers_are_named_with_reason():
    model = small_nasbnn()
    model.stages[1][0].conv2.mode = 'fp'
    model.stages[3][0].conv1.mode = 'fp'
    with pytest.raises(UnsupportedLayerError) as err:
        convert_to_deploy(model)
    msg = str(err.value)
    assert 'stages.1.0.conv2' in msg and 'stages.3.0.conv1' in msg and "mode='fp'" in msg
    assert 'stages.0.0.conv1' not in msg


def test_nonfinite_weight_is_rejected_with_layer_name():
    model = small_nasbnn()
    with torch.no_grad():
        model.stages[2][0].conv1.weight[0, 0, 0, 0] = float('nan')
    with pytest.raises(UnsupportedLayerError, match=r'stages\.2\.0\.conv1 .*NaN'):
        convert_to_deploy(model)


def test_deploy_checkpoint_round_trip_and_size(tmp_path, cifar_batch):
    cfg = REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py'
    model = randomize_(build_model_from_config(cfg), seed=6)
    deploy = convert_to_deploy(model)
    summary = deploy_summary(model, deploy)
    ratio = summary['binary_weights_float_bytes'] / summary['binary_weights_packed_bytes']
    assert 30 < ratio <= 32
    path = tmp_path / 'deploy.pth'
    size = save_deploy_checkpoint(deploy, path)
    assert size < summary['binary_weights_float_bytes'] / 20
    loaded = load_deploy_model(cfg, path)
    x = cifar_batch(model, 4)
    with torch.no_grad():
        assert torch.equal(loaded(x, mode='tensor'), deploy(x, mode='tensor'))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'float.pth')
    with pytest.raises(ValueError, match='not a mmdynbnn deploy checkpoint'):
        load_deploy_model(cfg, tmp_path / 'float.pth')

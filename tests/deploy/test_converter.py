"""Converter: exactness of whole deploy models (NAS-BNN blocks, mmpretrain/mmdet binary ResNets on the
bundled images), folding, fusions, error messages, and deploy checkpoints."""
from pathlib import Path

import mmcv
import pytest
import torch
from torch import nn

from mmdynbnn.deploy import (PackedBinaryConv2d, UnsupportedLayerError, convert_to_deploy, deploy_summary,
                             kernel_options)
from mmdynbnn.deploy.io import build_model_from_config, load_deploy_model, save_deploy_checkpoint
from mmdynbnn.deploy.testing import NasBnnLikeNet, randomize_
from mmdynbnn.ops import BinaryConv2d, QuantConv2d, RSign

REPO = Path(__file__).resolve().parents[2]
SMALL_STAGES = ((32, 2, 3, 1, 1), (70, 2, 5, 2, 2), (130, 2, 3, 2, 2))


def assert_outputs_close(out, ref):
    if isinstance(out, (list, tuple)):
        assert len(out) == len(ref)
        for o, r in zip(out, ref):
            assert_outputs_close(o, r)
        return
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5 * float(ref.abs().max()) + 1e-6)


def small_nasbnn(explicit_rsign=False, seed=0):
    torch.manual_seed(seed)
    return randomize_(NasBnnLikeNet(stem=16, stages=SMALL_STAGES, num_classes=10,
                                    explicit_rsign=explicit_rsign), seed).eval()


@pytest.mark.parametrize('explicit_rsign', [False, True])
def test_nasbnn_blocks_random_inputs(explicit_rsign):
    model = small_nasbnn(explicit_rsign)
    x = torch.randn(3, 3, 33, 31, generator=torch.Generator().manual_seed(1))  # odd sizes
    with torch.no_grad():
        ref = model(x)
        deploy = convert_to_deploy(model)
        assert_outputs_close(deploy(x), ref)
        with kernel_options(reference=True):
            assert_outputs_close(deploy(x), ref)
    # structure: every binary conv packed, BN folded, RSign merged into the conv threshold, stem float
    assert not any(isinstance(m, (BinaryConv2d, QuantConv2d, nn.BatchNorm2d, RSign)) for m in deploy.modules())
    packed = [m for m in deploy.modules() if isinstance(m, PackedBinaryConv2d)]
    assert len(packed) == 12 and all(m.threshold is not None for m in packed)
    # the original model is untouched (deep copy)
    assert any(isinstance(m, BinaryConv2d) for m in model.modules())


def _coco_images(size, n=2):
    paths = sorted((REPO / 'data' / 'coco_mini' / 'val').glob('*.jpg'))[:n]
    assert len(paths) == n, 'bundled data/coco_mini is missing'
    imgs = [torch.from_numpy(mmcv.imresize(mmcv.imread(str(p), channel_order='rgb'), (size, size))) for p in paths]
    return (torch.stack(imgs).permute(0, 3, 1, 2).float() / 255 - 0.5) / 0.5  # NAS-BNN normalisation


def test_nasbnn_small_end_to_end_on_real_images():
    model = small_nasbnn(seed=3)
    x = _coco_images(67)
    with torch.no_grad():
        assert_outputs_close(convert_to_deploy(model)(x), model(x))


def test_nasbnn_biggest_subnet_blockwise_on_real_images():
    """The biggest subnet of the default space (21 blocks, all stage shapes) on bundled images at 96x96.

    Every deploy block gets the float model's block input (teacher forcing) and must reproduce its output
    to float rounding. End to end, a deep binary net with random weights is chaotic: a 1e-7 relative
    rounding difference (oneDNN's summation order vs exact integer dots) flips an occasional sign
    that sits on its threshold and the flip propagates, so whole-network equality is checked on the
    shallower models above and in the ResNet tests.
    """
    torch.manual_seed(0)
    model = randomize_(NasBnnLikeNet(num_classes=10), seed=2).eval()
    deploy = convert_to_deploy(model)
    x = _coco_images(96)
    with torch.no_grad():
        h = model.stem(x)
        assert_outputs_close(deploy.stem(x), h)
        for block, deploy_block in zip(model.blocks, deploy.blocks):
            out = block(h)
            assert_outputs_close(deploy_block(h), out)
            h = out
        feat = torch.flatten(torch.nn.functional.adaptive_avg_pool2d(h, 1), 1)
        assert_outputs_close(deploy.fc(feat), model.fc(feat))


def _cifar_batch(model, n=8):
    paths = sorted((REPO / 'data' / 'cifar10_mini' / 'test').glob('*/*'))[:n]
    assert len(paths) == n, 'bundled data/cifar10_mini is missing'
    imgs = [torch.from_numpy(mmcv.imread(str(p))).permute(2, 0, 1).contiguous() for p in paths]
    return model.data_preprocessor({'inputs': imgs, 'data_samples': None})['inputs']


def test_mmpretrain_binary_resnet18_on_bundled_cifar_images():
    model = build_model_from_config(REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py')
    randomize_(model, seed=4)
    x = _cifar_batch(model)
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
    model.blocks[1].conv2.mode = 'fp'
    model.blocks[3].conv1.mode = 'fp'
    with pytest.raises(UnsupportedLayerError) as err:
        convert_to_deploy(model)
    msg = str(err.value)
    assert 'blocks.1.conv2' in msg and 'blocks.3.conv1' in msg and "mode='fp'" in msg
    assert 'blocks.0.conv1' not in msg


def test_nonfinite_weight_is_rejected_with_layer_name():
    model = small_nasbnn()
    with torch.no_grad():
        model.blocks[2].conv1.weight[0, 0, 0, 0] = float('nan')
    with pytest.raises(UnsupportedLayerError, match=r'blocks\.2\.conv1 .*NaN'):
        convert_to_deploy(model)


def test_deploy_checkpoint_round_trip_and_size(tmp_path):
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
    x = _cifar_batch(model, 4)
    with torch.no_grad():
        assert torch.equal(loaded(x, mode='tensor'), deploy(x, mode='tensor'))
    torch.save({'state_dict': model.state_dict()}, tmp_path / 'float.pth')
    with pytest.raises(ValueError, match='not a mmdynbnn deploy checkpoint'):
        load_deploy_model(cfg, tmp_path / 'float.pth')

"""Every shipped DynamicDet config parses, builds, and (bundled-data ones) runs a step on a tiny batch."""
import copy
import glob
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from mmdet.registry import MODELS

from conftest import make_samples

CFG_DIR = osp.join(osp.dirname(__file__), '..', '..', 'configs', 'dynamicdet')
DYNAMIC = sorted(glob.glob(osp.join(CFG_DIR, 'dy-*.py')))
MINI_STEP1 = [c for c in DYNAMIC if 'coco-mini_step1' in c]


def test_every_family_has_coco_and_mini_step1_step2_configs():
    names = {osp.basename(c) for c in DYNAMIC}
    for family in ('retinanet_r18_fpn', 'retinanet_r50_fpn', 'faster-rcnn_r50_fpn', 'yolox_s', 'retinanet_nasbnn_fpn'):
        found = [n for n in names if n.startswith(f'dy-{family}_')]
        assert len(found) == 4, (family, found)  # COCO + mini, step 1 + step 2
        assert len(glob.glob(osp.join(CFG_DIR, f'static_{family}*'))) >= 1


@pytest.mark.parametrize('path', DYNAMIC, ids=osp.basename)
def test_config_fields(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'DynamicDetector' and cfg.model.backbone.type == 'CascadedDualBackbone'
    assert cfg.model.test_cfg.dynamic.threshold == 0.5
    assert 'mmdynbnn.det' in cfg.custom_imports.imports
    assert any(m.type == 'RouteRatioMetric' for m in cfg.test_evaluator)
    if path.endswith('step2.py'):
        assert cfg.model.training_step == 2 and cfg.load_from.endswith('.pth')
        assert [h.type for h in cfg.custom_hooks] == ['DynamicDetStep2Hook']
        assert cfg.optim_wrapper.optimizer.type == 'AdamW' and cfg.optim_wrapper.optimizer.lr == 1e-5
    else:
        assert cfg.model.training_step == 1
    if 'faster-rcnn' in path:
        assert cfg.model.share_heads is True
    if 'coco-mini' in path:
        init = cfg.model.backbone.backbone.get('init_cfg')  # no network needed for the demo
        assert init is None or init.get('type') != 'Pretrained'


@pytest.mark.parametrize('path', MINI_STEP1, ids=osp.basename)
def test_mini_models_train_and_route(path):
    cfg = Config.fromfile(path)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    samples = make_samples(2, size=96)
    data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 96, 96), dtype=torch.uint8)] * 2,
                                        data_samples=copy.deepcopy(samples)), True)
    losses = model(**data, mode='loss')
    assert any(k.startswith('d1_') for k in losses) and any(k.startswith('d2_') for k in losses)
    model.parse_losses(losses)[0].backward()
    model.eval()
    with torch.no_grad():
        out = model(**data, mode='predict')
    assert [s.dynamic_route in (1, 2) for s in out] == [True, True]


def test_binary_variant_uses_binary_convs_in_both_backbones():
    from mmdynbnn.ops import BinaryConv2d
    cfg = Config.fromfile(osp.join(CFG_DIR, 'dy-retinanet_r18-bconv_fpn_coco-mini_step1.py'))
    model = MODELS.build(cfg.model)
    for b in (model.backbone.b1, model.backbone.b2):
        assert isinstance(b.layer1[0].conv1, BinaryConv2d) and isinstance(b.layer4[1].conv2, BinaryConv2d)
    assert not isinstance(model.backbone.connections[0], BinaryConv2d)

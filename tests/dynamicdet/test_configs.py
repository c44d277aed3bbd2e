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
    # the method's layout: B1's levels (stem included) enter B2 after each down-sampling layer; the router
    # pools every B1 level
    assert cfg.model.backbone.fusion == 'downsample' and cfg.model.router_input == 'all_levels'
    if path.endswith('step2.py'):
        assert cfg.model.training_step == 2 and cfg.load_from.endswith('.pth')
        assert [h.type for h in cfg.custom_hooks] == ['DynamicDetStep2Hook']
        optim = cfg.optim_wrapper
        assert optim.optimizer.type == 'AdamW' and optim.optimizer.lr == 1e-5
        assert optim.optimizer.weight_decay == 5e-3 and optim.paramwise_cfg.bias_decay_mult == 0.0
        # one AdamW step per 64 images: the COCO configs are for 8 GPUs, the bundled-data ones for 1
        gpus = 1 if 'coco-mini' in path else 8
        assert gpus * cfg.train_dataloader.batch_size * optim.get('accumulative_counts', 1) == 64
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


def test_step2_optimizer_steps_every_64_images_without_bias_decay():
    """The step-2 optim wrapper as mmengine builds it: only the router's parameters, weight decay on its
    weights but not on its biases, and gradients accumulated over 16 iterations of 4 images."""
    from mmengine.optim import build_optim_wrapper
    cfg = Config.fromfile(osp.join(CFG_DIR, 'dy-retinanet_r18_fpn_coco-mini_step2.py'))
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    names = {id(p): n for n, p in model.named_parameters()}
    decay = {names[id(p)]: group['weight_decay'] for group in wrapper.optimizer.param_groups for p in group['params']}
    assert set(decay) == {n for n, _ in model.named_parameters() if n.startswith('router.')}
    assert decay == {'router.fc1.weight': 5e-3, 'router.fc1.bias': 0.0, 'router.fc2.weight': 5e-3,
                     'router.fc2.bias': 0.0}
    assert wrapper._accumulative_counts == 16 and cfg.train_dataloader.batch_size == 4
    # accumulation: the router moves only on every 16th iteration
    wrapper.initialize_count_status(model, 0, 32)
    router = model.router.fc2.weight
    start = router.detach().clone()
    model.train()
    samples = make_samples(2, size=64)
    for it in range(16):
        data = model.data_preprocessor(dict(inputs=[torch.randint(0, 255, (3, 64, 64), dtype=torch.uint8)] * 2,
                                            data_samples=copy.deepcopy(samples)), True)
        wrapper.update_params(model.parse_losses(model(**data, mode='loss'))[0])
        assert torch.equal(router, start) == (it < 15), it

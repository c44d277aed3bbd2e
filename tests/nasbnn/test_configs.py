"""The shipped configs: the paper recipe and weight decay on conv/FC weights only."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper
from mmengine.registry import DefaultScope

import mmdynbnn.cls  # noqa: F401
from mmdynbnn.nas import CIFAR_SPACE, IMAGENET_SPACE, build_space

from .helpers import TINY_SPACE

CFG_DIR = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))), 'configs/nasbnn')


def load(name):
    return Config.fromfile(osp.join(CFG_DIR, name))


def test_imagenet_supernet_config_is_the_paper_recipe():
    cfg = load('nasbnn-supernet_bi-teacher_8xb64_in1k.py')
    assert build_space(cfg.search_space) == build_space(IMAGENET_SPACE)
    assert cfg.model.type == 'BiTeacherClassifier' and cfg.model.label_smoothing == 0.1
    assert cfg.model.num_random == 2
    opt = cfg.optim_wrapper.optimizer
    assert (opt.type, opt.lr, opt.weight_decay) == ('Adam', 2.5e-3, 5e-6)
    assert cfg.train_cfg.max_epochs == 512 and cfg.param_scheduler.T_max == 512
    assert cfg.param_scheduler.type == 'CosineAnnealingLR' and cfg.param_scheduler.by_epoch
    assert cfg.train_dataloader.batch_size * 8 == 512 == cfg.auto_scale_lr.base_batch_size
    assert list(cfg.data_preprocessor.mean) == list(cfg.data_preprocessor.std) == [127.5] * 3
    train = [t.type for t in cfg.train_dataloader.dataset.pipeline]
    assert train == ['LoadImageFromFile', 'RandomResizedCrop', 'RandomFlip', 'PackInputs']
    test = {t.type: t for t in cfg.val_dataloader.dataset.pipeline}
    assert test['ResizeEdge'].scale == 256 and test['CenterCrop'].crop_size == 224


def test_detector_config_spells_out_the_imagenet_space():
    """The NAS-BNN RetinaNet writes the space out (users override it there): it must stay the ImageNet one."""
    cfg = load('retinanet_nasbnn-smallest_fpn_coco-mini.py')
    assert build_space(cfg.search_space) == build_space(cfg.model.backbone.space) == build_space(IMAGENET_SPACE)


def test_cifar_config_uses_the_small_space_and_bundled_data():
    cfg = load('nasbnn-supernet_bi-teacher_cifar10-mini.py')
    assert build_space(cfg.search_space) == build_space(CIFAR_SPACE)
    assert osp.isdir(osp.join(cfg.train_dataloader.dataset.data_root, 'train'))


@pytest.mark.parametrize('name', ['nasbnn-supernet_bi-teacher_8xb64_in1k.py',
                                  'nasbnn-supernet_bi-teacher_cifar10-mini.py'])
def test_weight_decay_only_on_conv_and_fc_weights(name):
    cfg = load(name)
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.to_dict()
    model_cfg['backbone']['space'] = TINY_SPACE  # same module types, fast to build
    model_cfg['backbone']['out_indices'] = (-1,)
    model_cfg['head']['in_channels'] = 24
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(model_cfg)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    decay = {id(p): g['weight_decay'] for g in wrapper.optimizer.param_groups for p in g['params']}
    for n, p in model.named_parameters():
        is_weight = (p.dim() == 4 and n.endswith('.weight')) or n == 'head.fc.weight'
        assert decay[id(p)] == (5e-6 if is_weight else 0.0), n
    assert any(decay[id(p)] == 0 for n, p in model.named_parameters() if 'matrix' in n or 'matrices' in n)


@pytest.mark.parametrize('name', ['nasbnn-subnet_finetune_8xb64_in1k.py', 'nasbnn-subnet_finetune_cifar10-mini.py'])
def test_finetune_configs(name):
    cfg = load(name)
    assert cfg.model.backbone.type == 'NASBNN' and cfg.model.head.type == 'LinearClsHead'
    assert cfg.optim_wrapper.optimizer.lr == 1e-5 and cfg.optim_wrapper.optimizer.weight_decay == 0
    assert cfg.train_cfg.max_epochs == 25
    from mmpretrain.registry import MODELS
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        model = MODELS.build(cfg.model)
    size = cfg.search_space.input_size
    assert model(torch.randn(1, 3, size, size), mode='tensor').shape == (1, cfg.model.head.num_classes)

"""BN recalibration and the candidate evaluator (in process, real data of the bundled CIFAR sample)."""
import random

import pytest
import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope
from torch.nn.modules.batchnorm import _BatchNorm

from mmdynbnn.nas import Subnet, sample_subnet
from mmdynbnn.nas.bn_recalib import recalibrate_bn
from mmdynbnn.nas.search import (CandidateEvaluator, SearchSettings, build_classifier, build_search_data,
                                 split_training_set)

from .helpers import CONFIG


@pytest.fixture(scope='module')
def setup():
    import mmdynbnn.cls  # noqa: F401
    cfg = Config.fromfile(CONFIG)
    settings = SearchSettings.from_config(dict(cfg.search, calib_images=40, calib_batch_size=16))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = build_classifier(cfg).eval()
        assert model.data_preprocessor.mean is not None  # the config's normalisation
        loader, calib, info = build_search_data(cfg, settings)
    return model, loader, calib, info, settings


def test_split_is_per_class_disjoint_and_seeded():
    labels = [i % 4 for i in range(40)]
    held, calib = split_training_set(labels, 3, 12, seed=0)
    assert sorted(held) == held and len(held) == 12 and not set(held) & set(calib) and len(calib) == 12
    assert all(sum(labels[i] == c for i in held) == 3 for c in range(4))
    assert split_training_set(labels, 3, 12, seed=0) == (held, calib)
    assert split_training_set(labels, 3, 12, seed=1) != (held, calib)
    with pytest.raises(ValueError, match='holdout=10: class 0 has only 10'):
        split_training_set(labels, 10, 5, seed=0)


def test_data_comes_from_the_training_set(setup):
    _, loader, calib, info, settings = setup
    assert len(info['holdout_indices']) == 10 * settings.holdout and info['num_train'] == 300
    assert [len(b['inputs']) for b in calib] == [16, 16, 8]
    assert sum(len(b['data_samples']) for b in loader) == 50
    assert 'train' in loader.dataset.data_prefix['img_path']


def test_recalibration_is_the_cumulative_average_with_only_bn_in_train_mode(setup):
    model, _, calib, _, _ = setup
    net = sample_subnet(model.backbone.space, random.Random(0))
    model.backbone.set_subnet(net)
    inputs = [model.data_preprocessor(b, False)['inputs'] for b in calib]
    bn = model.backbone.stages[1][0].bn1  # a sliced BN (the subnet may use fewer channels)
    seen, modes = [], []
    h1 = bn.register_forward_pre_hook(lambda m, x: seen.append(x[0].detach().clone()))
    h2 = model.backbone.stem.act.register_forward_pre_hook(lambda m, x: modes.append(m.training))
    with torch.no_grad():  # poison the statistics: recalibration must reset them
        for m in model.modules():
            if isinstance(m, _BatchNorm):
                m.running_mean.fill_(5.0)
                m.running_var.fill_(7.0)
    bn.momentum = 0.3
    try:
        n = recalibrate_bn(model, inputs)
    finally:
        h1.remove()
        h2.remove()
    assert n == 3 and len(seen) == 3 and modes == [False] * 3 and not model.training
    assert bn.momentum == 0.3  # restored
    c = seen[0].shape[1]
    means = torch.stack([x.mean(dim=(0, 2, 3)) for x in seen])
    variances = torch.stack([x.transpose(0, 1).reshape(c, -1).var(dim=1, unbiased=True) for x in seen])
    torch.testing.assert_close(bn.running_mean[:c], means.mean(0), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(bn.running_var[:c], variances.mean(0), rtol=1e-4, atol=1e-5)
    if c < bn.num_features:
        assert torch.all(bn.running_mean[c:] == 0) and torch.all(bn.running_var[c:] == 1)
    assert all(p.grad is None for p in model.parameters())  # no backward ran


def test_fitness_does_not_depend_on_history(setup):
    model, loader, calib, _, _ = setup
    ev = CandidateEvaluator(model, calib, loader, cache_holdout=False)
    space = model.backbone.space
    a, b = Subnet.smallest(space), sample_subnet(space, random.Random(1))
    first = ev(a)
    ev(b)
    ev(Subnet.biggest(space))
    assert ev(a) == first and 0 <= first <= 100
    cached = CandidateEvaluator(model, calib, loader, cache_holdout=True)
    assert cached(a) == first
    # The evaluator really measures the subnet: its predictions, rescored by hand, give the same top-1.
    correct = total = 0
    with torch.no_grad():
        for batch in loader:
            for s in model.test_step(batch):
                correct += int(s.pred_score.argmax()) == int(s.gt_label)
                total += 1
    assert total == 50 and 100.0 * correct / total == pytest.approx(first)

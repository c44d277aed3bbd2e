import pytest
import torch
import torch.nn.functional as F
from mmengine.optim import OptimWrapper
from mmpretrain.structures import DataSample

import mmdynbnn.cls  # noqa: F401  (registers the classifier and head)
from mmdynbnn.cls import BiTeacherClassifier
from mmdynbnn.nas import Subnet

from .helpers import TINY_SPACE


def make_model(seed=0, **kwargs):
    torch.manual_seed(seed)
    return BiTeacherClassifier(
        backbone=dict(type='NASBNNSuperNet', space=TINY_SPACE),
        neck=dict(type='GlobalAveragePooling'),
        head=dict(type='SlicedLinearClsHead', num_classes=5, in_channels=24),
        data_preprocessor=dict(num_classes=5, mean=[127.5] * 3, std=[127.5] * 3),
        **{'sampler_seed': 3, **kwargs})


def make_batch(n=8, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = [torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8) for _ in range(n)]
    samples = [DataSample().set_gt_label(int(i) % 5) for i in range(n)]
    return dict(inputs=inputs, data_samples=samples)


class Recorder:
    """Spy on the backbone: the (subnet, mode) of every forward and the logits of every pass."""

    def __init__(self, model):
        self.calls, self.logits = [], []
        backbone_forward, logits_fn = model.backbone.forward, model._logits

        def forward(x):
            self.calls.append((model.backbone.subnet, model.backbone.mode))
            return backbone_forward(x)

        def logits(x):
            out = logits_fn(x)
            self.logits.append(out)
            return out

        model.backbone.forward = forward
        model._logits = logits


def test_train_step_four_passes_one_optimizer_step():
    model = make_model()
    rec = Recorder(model)
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    steps = []
    optim.optimizer.step = (lambda step: lambda *a, **k: (steps.append(1), step(*a, **k))[1])(optim.optimizer.step)
    expected = model.iteration_subnets()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    log = model.train_step(make_batch(), optim)
    assert set(log) == {'loss', 'loss_teacher', 'loss_kd_smallest', 'loss_kd_random0', 'loss_kd_random1'}
    torch.testing.assert_close(log['loss'], sum(v for k, v in log.items() if k != 'loss'))
    assert len(steps) == 1
    space = model.backbone.space
    assert rec.calls == [(Subnet.biggest(space), 'fp'), (Subnet.smallest(space), 'binary'),
                         (expected['random0'], 'binary'), (expected['random1'], 'binary')]
    # Gradients were zeroed after the single step; parameters of every pass moved.
    assert all(p.grad is None or p.grad.abs().sum() == 0 for p in model.parameters())
    changed = [n for n, p in model.named_parameters() if not torch.equal(before[n], p)]
    assert 'backbone.stages.2.1.conv1.weight' in changed and 'head.fc.weight' in changed
    # The next step samples the next subnets; the active subnet/mode are restored.
    assert int(model.sampler_state[1]) == 1
    assert model.backbone.subnet == Subnet.biggest(space) and model.backbone.mode == 'binary'


def test_losses_are_the_bi_teacher_objective():
    model = make_model()
    rec = Recorder(model)
    batch = model.data_preprocessor(make_batch(), True)
    losses = model.loss(batch['inputs'], batch['data_samples'])
    teacher, *students = rec.logits
    labels = torch.cat([s.gt_label for s in batch['data_samples']])
    torch.testing.assert_close(losses['loss_teacher'], F.cross_entropy(teacher, labels, label_smoothing=0.1))
    soft = teacher.detach().softmax(1)
    for name, logits in zip(['smallest', 'random0', 'random1'], students):
        kd = -(soft * F.log_softmax(logits, 1)).sum(1).mean()
        torch.testing.assert_close(losses[f'loss_kd_{name}'], kd)
        # The KD losses do not reach the teacher logits.
        assert torch.autograd.grad(losses[f'loss_kd_{name}'], teacher, allow_unused=True)[0] is None
    assert torch.autograd.grad(losses['loss_teacher'], teacher)[0].abs().sum() > 0


def test_subnet_sequence_is_a_function_of_seed_and_step():
    a, b = make_model(seed=0), make_model(seed=1)  # different weights, same sampler seed
    seq_a = []
    for step in range(4):
        a.sampler_state[1] = step
        b.sampler_state[1] = step
        assert a.iteration_subnets() == b.iteration_subnets()
        seq_a.append(a.iteration_subnets()['random0'])
    assert len(set(seq_a)) > 1
    c = make_model(sampler_seed=4)
    assert c.iteration_subnets() != a.iteration_subnets()
    assert 'sampler_state' in a.state_dict()
    d = make_model(sampler_seed=None)
    assert int(d.sampler_state[0]) == -1
    d.iteration_subnets()
    assert int(d.sampler_state[0]) >= 0


def test_loss_decreases_on_a_fixed_batch():
    model = make_model()
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=5e-3))
    batch = make_batch(n=10)
    totals = [float(model.train_step(batch, optim)['loss'].detach()) for _ in range(8)]
    assert sum(totals[-2:]) < sum(totals[:2]) - 0.2, totals


def test_predict_uses_the_eval_subnet_in_binary_mode():
    model = make_model(eval_subnet='smallest')
    model.eval()
    batch = model.data_preprocessor(make_batch(n=2), False)
    out = model.predict(batch['inputs'], batch['data_samples'])
    assert len(out) == 2 and out[0].pred_score.shape == (5,)
    assert model.backbone.subnet == Subnet.smallest(model.backbone.space) and model.backbone.mode == 'binary'


def test_rejects_a_static_backbone():
    with pytest.raises(ValueError, match='not a supernet'):
        BiTeacherClassifier(backbone=dict(type='NASBNN', space=TINY_SPACE, subnet='smallest'),
                            neck=dict(type='GlobalAveragePooling'),
                            head=dict(type='SlicedLinearClsHead', num_classes=5, in_channels=16))

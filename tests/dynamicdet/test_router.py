import numpy as np
import pytest
import torch

from mmdynbnn.models.routers import AdaptiveRouter, DynamicRouterLoss, StreamingMedian, router_loss
from mmengine.registry import MODELS


def test_router_is_registered_in_root_and_scores_in_unit_interval():
    router = MODELS.build(dict(type='AdaptiveRouter', in_channels=[4, 8, 12], reduction=4))
    assert router.fc1.in_features == 24 and router.fc1.out_features == 6
    s = router([torch.randn(3, 4, 8, 8), torch.randn(3, 8, 4, 4), torch.randn(3, 12, 2, 2)])
    assert s.shape == (3, ) and bool(((s > 0) & (s < 1)).all())


def test_router_uses_only_pooled_features():
    router = AdaptiveRouter(in_channels=[2], reduction=1)
    with torch.no_grad():  # fixed weights: no dead ReLU units by chance
        router.fc1.weight.copy_(torch.eye(2))
        router.fc1.bias.zero_()
        router.fc2.weight.fill_(1.0)
    a = torch.randn(1, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    shuffled = a.flatten(2)[..., torch.randperm(16)].reshape(1, 2, 4, 4)  # same means per channel
    assert torch.allclose(router([a]), router([shuffled]), atol=1e-6)
    assert not torch.allclose(router([a]), router([a + 5.0]))


def test_router_rejects_wrong_number_of_inputs():
    with pytest.raises(ValueError, match='expects 2 feature maps'):
        AdaptiveRouter(in_channels=[2, 2])([torch.randn(1, 2, 2, 2)])
    with pytest.raises(ValueError, match='reduction'):
        AdaptiveRouter(in_channels=[2], reduction=0)


def test_router_loss_gradient_sign_follows_gap_minus_delta():
    s = torch.full((4, ), 0.5, requires_grad=True)
    l1 = torch.tensor([5.0, 2.0, 3.0, 1.0])
    l2 = torch.tensor([1.0, 1.0, 3.0, 1.5])
    delta = 1.0  # gaps: 4, 1, 0, -0.5
    router_loss(s, l1, l2, delta).backward()
    expected = ((l1 - l2) - delta) / 4
    assert torch.allclose(s.grad, expected)
    # gap above delta -> gradient > 0 -> descent lowers s -> "hard"; below -> "easy"; equal -> no push
    assert s.grad[0] > 0 and s.grad[2] < 0 and s.grad[3] < 0 and s.grad[1] == 0


def test_router_loss_value_matches_formula():
    s = torch.tensor([0.2, 0.7])
    l1, l2 = torch.tensor([2.0, 1.0]), torch.tensor([1.0, 3.0])
    d = 0.4
    manual = np.mean([0.2 * (2 - 0.2) + 0.8 * (1 + 0.2), 0.7 * (1 - 0.2) + 0.3 * (3 + 0.2)])
    assert float(router_loss(s, l1, l2, d)) == pytest.approx(manual)


@pytest.mark.parametrize('length', [1, 2, 5, 10, 33, 64])
def test_streaming_median_is_exact_up_to_capacity(length):
    values = torch.randn(length, generator=torch.Generator().manual_seed(length)).double()
    m = StreamingMedian(capacity=64)
    for chunk in values.split(3):
        m.update(chunk)
    assert int(m.count) == length
    assert float(m.median()) == pytest.approx(float(np.median(values.numpy())), abs=1e-12)


def test_streaming_median_memory_is_bounded_and_estimate_close():
    m = StreamingMedian(capacity=256)
    values = torch.rand(5000, generator=torch.Generator().manual_seed(1)) * 10 + 3  # median ~ 8
    for chunk in values.split(100):
        m.update(chunk)
    assert m.values.numel() == 256 and int(m.count) == 5000
    assert abs(float(m.median()) - float(values.median())) < 0.8
    # deterministic: same stream -> same state
    m2 = StreamingMedian(capacity=256)
    for chunk in values.split(100):
        m2.update(chunk)
    assert torch.equal(m.values, m2.values)


def test_streaming_median_state_does_not_depend_on_how_the_stream_is_batched():
    """Batches that straddle the capacity (bulk copy, then reservoir) give the state of one value at a time."""
    values = torch.randn(300, generator=torch.Generator().manual_seed(2)).double()
    one_by_one, batched = StreamingMedian(capacity=50), StreamingMedian(capacity=50)
    for v in values:
        one_by_one.update(v.reshape(1))
    for chunk in values.split(7):  # 50 is not a multiple of 7: one chunk crosses the capacity
        batched.update(chunk)
    assert int(batched.count) == int(one_by_one.count) == 300
    assert torch.equal(batched.values, one_by_one.values)


def test_streaming_median_state_round_trips_through_state_dict():
    m = StreamingMedian(capacity=8)
    m.update(torch.tensor([3.0, -1.0, 7.0]))
    m2 = StreamingMedian(capacity=8)
    m2.load_state_dict(m.state_dict())
    assert int(m2.count) == 3 and float(m2.median()) == 3.0


def test_dynamic_router_loss_delta_is_running_median_including_current_batch():
    crit = MODELS.build(dict(type='DynamicRouterLoss', median_capacity=16))
    s = torch.tensor([0.5, 0.5], requires_grad=True)
    _, d1 = crit(s, torch.tensor([4.0, 1.0]), torch.tensor([1.0, 1.0]))  # gaps 3, 0 -> 1.5
    assert float(d1) == pytest.approx(1.5)
    loss, d2 = crit(s, torch.tensor([2.0, 11.0]), torch.tensor([1.0, 1.0]))  # gaps 3,0,1,10 -> 2
    assert float(d2) == pytest.approx(2.0)
    loss.backward()
    assert torch.allclose(s.grad, torch.tensor([(1 - 2) / 2, (10 - 2) / 2]))


def test_importing_the_package_registers_the_router_without_mmdet():
    import subprocess
    import sys
    code = ('import sys, mmdynbnn; from mmengine.registry import MODELS; '
            "assert MODELS.get('AdaptiveRouter') is not None and MODELS.get('DynamicRouterLoss') is not None; "
            "print('mmdet' in sys.modules, 'mmdynbnn.det' in sys.modules)")
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ['False', 'False']

import copy

import pytest
import torch
from mmengine.runner.checkpoint import load_state_dict

from conftest import make_samples, tiny_retinanet


def _predict(model, x, samples):
    with torch.no_grad():
        return model.predict(x, copy.deepcopy(samples), rescale=False)


def _same_instances(a, b, atol=1e-4):
    pa, pb = a.pred_instances, b.pred_instances
    return (pa.bboxes.shape == pb.bboxes.shape and torch.equal(pa.labels, pb.labels)
            and torch.allclose(pa.bboxes, pb.bboxes, atol=atol) and torch.allclose(pa.scores, pb.scores, atol=1e-5))


@pytest.fixture
def model(build):
    m = build(tiny_retinanet())
    # spread the router scores so that a threshold can split the batch clearly
    with torch.no_grad():
        m.router.fc2.weight.mul_(50.0)
    return m.eval()


def test_batched_routing_equals_each_image_alone(model):
    x = torch.rand(6, 3, 64, 64)
    samples = make_samples(6)
    with torch.no_grad():
        scores = model.easy_scores(model.backbone.forward_b1(x))
    ordered = scores.sort().values
    gaps = ordered[1:] - ordered[:-1]
    k = int(gaps[1:-1].argmax()) + 1  # a split with both routes used, at the widest gap
    model.set_dynamic(threshold=float((ordered[k] + ordered[k + 1]) / 2))
    batched = _predict(model, x, samples)
    routes = [s.dynamic_route for s in batched]
    assert 1 in routes and 2 in routes
    for i in range(6):
        alone = _predict(model, x[i:i + 1], samples[i:i + 1])[0]
        assert alone.dynamic_route == routes[i]
        assert batched[i].img_id == i and _same_instances(batched[i], alone)
        # and it really is that route's detector
        model.set_dynamic(route=routes[i])
        forced = _predict(model, x[i:i + 1], samples[i:i + 1])[0]
        model.set_dynamic(route=None)
        assert _same_instances(alone, forced)


@pytest.mark.parametrize('tau,route', [(0.0, 1), (1.0, 2)])
def test_extreme_thresholds_reproduce_a_route(model, tau, route):
    x = torch.rand(3, 3, 64, 64)
    samples = make_samples(3)
    model.set_dynamic(threshold=tau)
    by_tau = _predict(model, x, samples)
    model.set_dynamic(threshold=0.5, route=route)
    forced = _predict(model, x, samples)
    assert [s.dynamic_route for s in by_tau] == [route] * 3
    assert all(_same_instances(a, b, atol=0) for a, b in zip(by_tau, forced))
    # and the two routes differ (separate heads, B2 != B1)
    model.set_dynamic(route=3 - route)
    other = _predict(model, x, samples)
    assert not all(_same_instances(a, b) for a, b in zip(forced, other))


def test_routing_context_sets_validates_and_restores(model):
    model.set_dynamic(threshold=0.3, route=None)
    x, samples = torch.rand(2, 3, 64, 64), make_samples(2)
    with model.routing(route=2):
        assert (model.threshold, model.force_route) == (0.3, 2)
        assert [s.dynamic_route for s in _predict(model, x, samples)] == [2, 2]
    assert (model.threshold, model.force_route) == (0.3, None)
    with pytest.raises(RuntimeError, match='inside'):
        with model.routing(threshold=0.9, route=1):
            raise RuntimeError('inside')
    assert (model.threshold, model.force_route) == (0.3, None)  # restored on an error too
    with pytest.raises(ValueError, match=r'threshold must be in \[0, 1\]'):
        with model.routing(threshold=2.0):
            pass
    assert (model.threshold, model.force_route) == (0.3, None)


@pytest.mark.parametrize('bad', [-0.1, 1.5, 'x'])
def test_threshold_out_of_range_is_rejected(build, bad):
    with pytest.raises(ValueError, match=r'model\.test_cfg\.dynamic\.threshold.*\[0, 1\]'):
        build(tiny_retinanet(test_cfg=dict(score_thr=0.0, dynamic=dict(threshold=bad))))


def test_bad_route_and_step2_without_router_are_rejected(build):
    with pytest.raises(ValueError, match=r'model\.test_cfg\.dynamic\.route.*None.*1.*2'):
        build(tiny_retinanet(test_cfg=dict(dynamic=dict(route=3))))
    with pytest.raises(ValueError, match=r'model\.router is None'):
        build(tiny_retinanet(router=None, training_step=2))
    with pytest.raises(ValueError, match=r'model\.training_step'):
        build(tiny_retinanet(training_step=3))


def test_step1_loss_has_both_routes_and_trains_both(build):
    model = build(tiny_retinanet()).train()
    losses = model.loss(torch.rand(2, 3, 64, 64), make_samples(2))
    assert {'d1_loss_cls', 'd1_loss_bbox', 'd2_loss_cls', 'd2_loss_bbox'} <= set(losses)
    total, _ = model.parse_losses(losses)
    total.backward()
    for part in ('backbone.b1.', 'backbone.b2.', 'backbone.connections.', 'dynamic_head.heads.0.',
                 'dynamic_head.heads.1.'):
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(part)]
        assert grads and any(g is not None and float(g.abs().sum()) > 0 for g in grads), part
    assert all(p.grad is None for p in model.router.parameters())


def test_per_image_losses_equal_single_image_losses(build):
    model = build(tiny_retinanet()).eval()
    x = torch.rand(3, 3, 64, 64)
    samples = make_samples(3)
    with torch.no_grad():
        f1, f2 = model.backbone(x)
        for route, feats in ((0, f1), (1, f2)):
            per_image = model.dynamic_head.per_image_losses(route, feats, samples)
            for i in range(3):
                single = model.parse_losses(
                    model.dynamic_head.loss(route, tuple(f[i:i + 1] for f in feats), [samples[i]]))[0]
                assert float(per_image[i]) == pytest.approx(float(single), rel=1e-5)
            batch = model.parse_losses(model.dynamic_head.loss(route, feats, samples))[0]
            assert not torch.allclose(per_image.mean(), batch)  # the batch loss is not per-image


def test_step2_freezes_all_but_router_and_keeps_bn_eval(build):
    model = build(tiny_retinanet(training_step=2))
    model.train()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith('router.') for n in trainable)
    assert trainable == {f'router.{n}' for n, _ in model.router.named_parameters()}
    bns = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    assert bns and not any(m.training for m in bns) and model.router.training
    before = copy.deepcopy(model.frozen_state())
    losses = model.loss(torch.rand(4, 3, 64, 64), make_samples(4))
    assert set(losses) >= {'loss_router', 'delta', 'hard_ratio'} and 0 <= float(losses['hard_ratio']) <= 1
    assert int(model.router_loss.median.count) == 4
    model.parse_losses(losses)[0].backward()
    grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
    assert set(grads) == trainable
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    opt.step()
    after = model.frozen_state()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights + BN statistics unchanged


def test_step2_router_gradient_pushes_high_gain_images_to_hard(build):
    model = build(tiny_retinanet(training_step=2))
    model.train()
    x, samples = torch.rand(4, 3, 64, 64), make_samples(4)
    with torch.no_grad():
        stage = model.backbone.forward_b1(x)
        f1 = model.backbone.select_outs(stage)
        l1 = model.dynamic_head.per_image_losses(0, f1, samples)
        l2 = model.dynamic_head.per_image_losses(1, model.backbone.forward_b2(x, stage), samples)
    s = model.easy_scores(stage)
    s.retain_grad()
    losses = model.loss(x, samples)
    # rerun to get dL/ds for this batch's scores: same inputs, same router, delta now includes them
    delta = float(losses['delta'])
    assert delta == pytest.approx(float(torch.quantile((l1 - l2).double(), 0.5)), rel=1e-4, abs=1e-6)
    from mmdynbnn.models.routers import router_loss
    router_loss(s, l1, l2, delta).backward()
    expected_sign = torch.sign((l1 - l2) - delta)
    assert torch.equal(torch.sign(s.grad), expected_sign)


def test_mismatching_checkpoint_raises_instead_of_partial_load(build):
    model = build(tiny_retinanet())
    state = model.state_dict()
    load_state_dict(build(tiny_retinanet()), copy.deepcopy(state), strict=False)  # matching: fine
    broken = copy.deepcopy(state)
    broken.pop('dynamic_head.heads.1.retina_cls.bias')
    with pytest.raises(RuntimeError, match='missing 1.*retina_cls'):
        load_state_dict(build(tiny_retinanet()), broken, strict=False)
    wider = build(tiny_retinanet(router=dict(type='AdaptiveRouter', reduction=2)))
    with pytest.raises(RuntimeError, match='shape mismatch'):
        load_state_dict(wider, copy.deepcopy(state), strict=False)


def test_shared_heads_are_one_module(build):
    model = build(tiny_retinanet(share_heads=True))
    assert len(model.dynamic_head.heads) == 1 and model.dynamic_head.head(0) is model.dynamic_head.head(1)
    assert not any('heads.1.' in k for k in model.state_dict())


def test_tensor_mode_runs_only_the_taken_routes(model):
    x = torch.rand(2, 3, 64, 64)
    model.set_dynamic(route=1)
    outs1, outs2 = model(x, make_samples(2), mode='tensor')
    assert outs2 == () and outs1[0][0].shape[0] == 2
    model.set_dynamic(route=2)
    outs1, outs2 = model(x, make_samples(2), mode='tensor')
    assert outs1 == () and outs2[0][0].shape[0] == 2


def test_router_pools_every_b1_level_including_the_stem(build):
    model = build(tiny_retinanet()).eval()
    assert model.router_input == 'all_levels'
    assert model.router.in_channels == model.backbone.level_channels1 == [8, 8, 16, 32, 64]  # stem + 4 stages
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        levels = model.backbone.forward_b1(x)
        assert levels[0].shape[2:] == (32, 32)  # the stride-2 stem level
        base = model.easy_scores(levels)
        assert not torch.allclose(base, model.easy_scores([levels[0] + 1.0] + levels[1:]))


def test_router_on_out_indices_is_an_option(build):
    from conftest import TINY_RESNET
    model = build(tiny_retinanet(
        router_input='out_indices',
        backbone=dict(type='CascadedDualBackbone', backbone=dict(TINY_RESNET, out_indices=(1, 2, 3))),
        neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=16, add_extra_convs='on_input',
                  num_outs=3))).eval()
    assert model.router.in_channels == model.backbone.out_channels1 == [16, 32, 64]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        levels = model.backbone.forward_b1(x)
        base = model.easy_scores(levels)
        assert torch.equal(base, model.easy_scores([levels[0] + 1.0, levels[1] + 1.0] + levels[2:]))
        assert not torch.allclose(base, model.easy_scores(levels[:2] + [levels[2] + 1.0] + levels[3:]))


def test_router_input_and_widths_are_checked(build):
    with pytest.raises(ValueError, match=r"model.router_input must be 'all_levels' .*'out_indices'.*'stem'"):
        build(tiny_retinanet(router_input='stem'))
    with pytest.raises(ValueError, match=r'model.router.in_channels=\[8, 16, 32, 64\] must equal the widths '
                                         r"\[8, 8, 16, 32, 64\] .*router_input='all_levels'"):
        build(tiny_retinanet(router=dict(type='AdaptiveRouter', in_channels=[8, 16, 32, 64])))


def test_earlier_layout_checkpoint_needs_the_earlier_options(build):
    """A checkpoint of the earlier layout (no stem level, fusion after the first block, router on the out
    features) is refused by the default model with the options that load it, and loads with them."""
    legacy = dict(backbone=dict(type='CascadedDualBackbone', backbone=tiny_retinanet()['backbone']['backbone'],
                                fusion='first_block'), router_input='out_indices')
    state = build(tiny_retinanet(**legacy)).state_dict()
    assert 'backbone.connections.3.weight' in state and 'backbone.connections.4.weight' not in state
    with pytest.raises(RuntimeError, match=r"fusion='first_block' and model.router_input='out_indices'"):
        load_state_dict(build(tiny_retinanet()), copy.deepcopy(state), strict=False)
    load_state_dict(build(tiny_retinanet(**legacy)), copy.deepcopy(state), strict=True)

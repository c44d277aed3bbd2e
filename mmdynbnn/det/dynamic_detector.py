"""DynamicDet detector: cascaded dual backbone + router + two routes, trained in two steps."""
import contextlib
import copy
from typing import Dict, Iterator, List, Optional, Sequence, Tuple

import torch
import torch.nn as nn
from mmdet.models.detectors.base import BaseDetector
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.config import ConfigDict
from mmengine.registry import MODELS as ROOT_MODELS
from torch import Tensor

from mmdynbnn.models.routers import hard_mask

from .cascaded_backbone import CascadedDualBackbone
from .dynamic_head import DynamicDetHead

ROUTE_CHOICES = (None, 1, 2)
ROUTER_INPUTS = ('all_levels', 'out_indices')


def check_threshold(threshold: float, field: str = 'model.test_cfg.dynamic.threshold') -> float:
    """Return ``threshold`` as float or raise naming the field, the value and the allowed range."""
    try:
        value = float(threshold)
    except (TypeError, ValueError):
        raise ValueError(f'{field} must be a number in [0, 1], got {threshold!r}') from None
    if not 0.0 <= value <= 1.0:
        raise ValueError(f'{field} must be in [0, 1] (0: all images take route 1, 1: all take route 2), '
                         f'got {threshold!r}')
    return value


def check_route(route, field: str = 'model.test_cfg.dynamic.route') -> Optional[int]:
    if route in ('auto', 'None', ''):
        route = None
    if route not in ROUTE_CHOICES:
        raise ValueError(f'{field} must be one of None (route by the threshold), 1 (force route 1) or '
                         f'2 (force route 2), got {route!r}')
    return route


class _AllRouteHeads:
    """``detector.bbox_head`` for code written for single-head detectors (e.g. mmdet's
    ``YOLOXModeSwitchHook`` sets ``model.bbox_head.use_l1 = True``): attribute writes go to every route's
    head, reads come from route 1's head."""

    def __init__(self, heads: Sequence[nn.Module]) -> None:
        object.__setattr__(self, '_heads', list(heads))

    def __getattr__(self, name: str):
        return getattr(self._heads[0], name)

    def __setattr__(self, name: str, value) -> None:
        for head in self._heads:
            setattr(head, name, value)


@MODELS.register_module()
class DynamicDetector(BaseDetector):
    """DynamicDet: B1 + router on every image, then route 1 (D1 on B1) for easy images (score >= tau) or
    route 2 (B2 + D2) for hard ones, per image inside a batch; results keep the input order.

    Step 1 (``training_step=1``) trains both routes on every image (``loss = d1_* + d2_*``). Step 2
    (``training_step=2``) freezes all but the router (every BN in eval mode) and trains the router with
    :class:`mmdynbnn.models.DynamicRouterLoss` on per-image losses of both routes computed without grad.

    Args:
        backbone: A :class:`CascadedDualBackbone` config.
        neck, bbox_head, rpn_head, roi_head: As in mmdet's detectors (dense head, or RPN + RoI head).
        neck2: Route 2's neck if B2's out widths differ from B1's (e.g. two different NAS-BNN subnets);
            needs ``share_heads=False``. None: route 2 gets a copy of ``neck``.
        router: Router config (``AdaptiveRouter``); ``in_channels`` defaults to the widths of the B1
            features it reads (see ``router_input``). May be None only for step 1 / forced routes.
        router_input: Which B1 features the router pools: ``'all_levels'`` (every B1 level, the stem's
            included, as the method specifies) or ``'out_indices'`` (only those the route-1 neck gets;
            the layout of checkpoints made before this option existed).
        router_loss: Router-loss config (``DynamicRouterLoss``, holds the running median).
        share_heads: True: one neck + head for both routes; False: separate copies.
        training_step: 1 (joint detectors) or 2 (router only).
        train_cfg: mmdet train cfg of the heads.
        test_cfg: mmdet test cfg of the heads plus ``dynamic=dict(threshold=0.5, route=None)``.
        data_preprocessor, init_cfg: As in mmdet.

    Example:
        >>> import torch, mmdynbnn.det  # noqa
        >>> from mmdet.registry import MODELS
        >>> from mmdet.structures import DetDataSample
        >>> model = MODELS.build(dict(type='DynamicDetector',
        ...     backbone=dict(type='CascadedDualBackbone', backbone=dict(type='ResNet', depth=18,
        ...                   base_channels=8, out_indices=(1, 2, 3))),
        ...     neck=dict(type='FPN', in_channels=[16, 32, 64], out_channels=8, num_outs=3),
        ...     bbox_head=dict(type='RetinaHead', num_classes=2, in_channels=8, feat_channels=8,
        ...         stacked_convs=1, anchor_generator=dict(type='AnchorGenerator', octave_base_scale=4,
        ...         scales_per_octave=1, ratios=[1.0], strides=[8, 16, 32]),
        ...         bbox_coder=dict(type='DeltaXYWHBBoxCoder')),
        ...     test_cfg=dict(score_thr=0.05, nms=dict(type='nms', iou_threshold=0.5), max_per_img=10,
        ...                   dynamic=dict(threshold=1.0)))).eval()
        >>> meta = dict(img_shape=(64, 64), ori_shape=(64, 64), scale_factor=(1., 1.))
        >>> out = model.predict(torch.rand(2, 3, 64, 64), [DetDataSample(metainfo=meta) for _ in range(2)])
        >>> [s.dynamic_route for s in out]  # threshold 1: every image takes route 2
        [2, 2]
    """

    def __init__(self,
                 backbone: dict,
                 neck: Optional[dict] = None,
                 neck2: Optional[dict] = None,
                 bbox_head: Optional[dict] = None,
                 rpn_head: Optional[dict] = None,
                 roi_head: Optional[dict] = None,
                 router: Optional[dict] = dict(type='AdaptiveRouter', reduction=4),
                 router_loss: dict = dict(type='DynamicRouterLoss', median_capacity=8192),
                 router_input: str = 'all_levels',
                 share_heads: bool = False,
                 training_step: int = 1,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if training_step not in (1, 2):
            raise ValueError(f'model.training_step must be 1 (joint detectors) or 2 (router), got {training_step!r}')
        if training_step == 2 and router is None:
            raise ValueError('model.training_step=2 trains the router but model.router is None; set e.g. '
                             "model.router=dict(type='AdaptiveRouter', reduction=4)")
        if router_input not in ROUTER_INPUTS:
            raise ValueError(f"model.router_input must be 'all_levels' (every B1 level, stem included) or "
                             f"'out_indices' (B1's out-index features), got {router_input!r}")
        self.training_step = training_step
        self.router_input = router_input
        self.backbone = MODELS.build(backbone)
        if not isinstance(self.backbone, CascadedDualBackbone):
            raise TypeError(f'model.backbone must be a CascadedDualBackbone, got {type(self.backbone).__name__}')
        self._check_neck_widths(neck, neck2, share_heads)
        test_cfg = ConfigDict(copy.deepcopy(test_cfg)) if test_cfg is not None else ConfigDict()
        dynamic = ConfigDict(test_cfg.pop('dynamic', None) or {})
        unknown = set(dynamic) - {'threshold', 'route'}
        if unknown:
            raise ValueError(f'model.test_cfg.dynamic: unknown keys {sorted(unknown)}; allowed: threshold, route')
        self.threshold = check_threshold(dynamic.get('threshold', 0.5))
        self.force_route = check_route(dynamic.get('route', None))
        train_cfg = ConfigDict(copy.deepcopy(train_cfg)) if train_cfg is not None else None
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.dynamic_head = DynamicDetHead(neck=neck, bbox_head=bbox_head, rpn_head=rpn_head,
                                           roi_head=roi_head, share=share_heads, train_cfg=train_cfg,
                                           test_cfg=test_cfg, neck2=neck2)
        if router is not None:
            router = copy.deepcopy(router)
            widths = self.router_channels
            given = router.setdefault('in_channels', widths)
            if [int(c) for c in given] != widths:
                raise ValueError(f'model.router.in_channels={list(given)} must equal the widths {widths} of the '
                                 f'B1 features it reads (router_input={router_input!r}); leave it out to '
                                 f'get them')
            self.router = ROOT_MODELS.build(router)
        else:
            self.router = None
        self.router_loss = ROOT_MODELS.build(copy.deepcopy(router_loss))
        self._register_load_state_dict_pre_hook(self._strict_load_check)
        if self.training_step == 2:
            for name, param in self.named_parameters():
                param.requires_grad_(name.startswith('router.'))

    @property
    def router_channels(self) -> List[int]:
        """Widths of the B1 features the router pools (per ``router_input``)."""
        if self.router_input == 'all_levels':
            return list(self.backbone.level_channels1)
        return list(self.backbone.out_channels1)

    def _check_neck_widths(self, neck: Optional[dict], neck2: Optional[dict], share_heads: bool) -> None:
        """A neck whose config lists ``in_channels`` must get exactly its route's backbone out widths."""
        routes = [('model.neck', neck, self.backbone.out_channels1)]
        if share_heads:
            routes.append(('model.neck (shared by route 2)', neck, self.backbone.out_channels2))
        else:
            routes.append(('model.neck2' if neck2 is not None else 'model.neck (copied for route 2)',
                           neck2 if neck2 is not None else neck, self.backbone.out_channels2))
        for field, cfg, widths in routes:
            given = cfg.get('in_channels') if cfg is not None else None
            if isinstance(given, (list, tuple)) and [int(c) for c in given] != list(widths):
                hint = (' (B1 and B2 have different widths: give route 2 its own neck with model.neck2 and '
                        'share_heads=False)' if list(self.backbone.out_channels1) != list(
                            self.backbone.out_channels2) else '')
                raise ValueError(f'{field}.in_channels={list(given)} must equal the backbone out widths '
                                 f'{list(widths)} of its route{hint}')

    @property
    def bbox_head(self) -> Optional[_AllRouteHeads]:
        """Both routes' dense heads behind one object (None for a two-stage head)."""
        if self.dynamic_head.two_stage:
            return None
        return _AllRouteHeads(self.dynamic_head.heads)

    # -- loading ---------------------------------------------------------------------------------------
    def _strict_load_check(self, state_dict, prefix, local_metadata, strict, missing_keys,
                           unexpected_keys, error_msgs) -> None:
        """Refuse any checkpoint whose keys or shapes differ from this model (no silent partial load)."""
        for name, module in self.named_modules():  # a step-1 median of another capacity loads (it is empty)
            if hasattr(module, 'adapt_loaded_state'):
                field = 'model.' + (name.replace('.median', '.median_capacity') if name.endswith('.median') else name)
                module.adapt_loaded_state(state_dict, prefix + name + '.', field)
        own = {prefix + k: v.shape for k, v in self.state_dict().items()}
        given = {k: v.shape for k, v in state_dict.items() if k.startswith(prefix)}
        missing = sorted(set(own) - set(given))
        unexpected = sorted(set(given) - set(own))
        shapes = sorted(k for k in set(own) & set(given) if tuple(own[k]) != tuple(given[k]))
        if missing or unexpected or shapes:
            def head(keys):
                return ', '.join(keys[:8]) + (f' ... (+{len(keys) - 8})' if len(keys) > 8 else '')
            layout = (prefix + 'backbone.connections.', prefix + 'router.')
            hint = ''
            if any(k.startswith(layout) for k in missing + unexpected + shapes):
                hint = ("; the composite connections or the router differ: a checkpoint of the earlier layout "
                        "(no stem level, fusion after each stage's first block) loads into a model built with "
                        "model.backbone.fusion='first_block' and model.router_input='out_indices'")
            raise RuntimeError(
                'DynamicDetector: the checkpoint does not match the model (refusing a partial load). '
                f'missing {len(missing)}: [{head(missing)}]; unexpected {len(unexpected)}: '
                f'[{head(unexpected)}]; shape mismatch {len(shapes)}: [{head(shapes)}]{hint}')

    # -- modes -----------------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> 'DynamicDetector':
        super().train(mode)
        if mode and self.training_step == 2:
            for name, child in self.named_children():
                if name != 'router':
                    child.eval()
        return self

    def set_dynamic(self, threshold: Optional[float] = None, route='keep') -> None:
        """Change tau and/or the forced route at run time (validated like the config)."""
        if threshold is not None:
            self.threshold = check_threshold(threshold)
        if route != 'keep':
            self.force_route = check_route(route)

    @contextlib.contextmanager
    def routing(self, threshold: Optional[float] = None, route='keep') -> Iterator[None]:
        """:meth:`set_dynamic` for the duration of a ``with`` block (``with model.routing(route=2): ...``);
        the previous settings come back afterwards, also on an error."""
        saved = (self.threshold, self.force_route)
        self.set_dynamic(threshold, route)
        try:
            yield
        finally:
            self.threshold, self.force_route = saved

    def frozen_state(self) -> Dict[str, Tensor]:
        """Copies of every state entry that step 2 must not change (all but the router and its loss)."""
        return {k: v.detach().clone() for k, v in self.state_dict().items()
                if not k.startswith(('router.', 'router_loss.'))}

    # -- routing ---------------------------------------------------------------------------------------
    def router_feats(self, b1_levels: Sequence[Tensor]) -> List[Tensor]:
        """The B1 features the router pools, from :meth:`CascadedDualBackbone.forward_b1`'s output."""
        if self.router_input == 'all_levels':
            return list(b1_levels)
        return list(self.backbone.select_outs(b1_levels))

    def easy_scores(self, b1_levels: Sequence[Tensor]) -> Tensor:
        """Router scores ``(N,)`` from all B1 levels (``backbone.forward_b1(inputs)``)."""
        if self.router is None:
            raise ValueError('model.router is None: set model.test_cfg.dynamic.route to 1 or 2 or add a router')
        return self.router(self.router_feats(b1_levels))

    def route_mask(self, scores: Optional[Tensor], batch_size: int, device) -> Tensor:
        """Boolean ``(N,)``: True for hard images (route 2), by :func:`mmdynbnn.models.routers.hard_mask`
        (the rule every tool uses) unless a route is forced."""
        tau = check_threshold(self.threshold)
        if scores is None and self.force_route is None and 0.0 < tau < 1.0:
            raise ValueError(f'model.test_cfg.dynamic.threshold={tau} routes by router score, but no scores '
                             'were given')
        if self.force_route is not None or scores is None:
            all_hard = self.force_route == 2 if self.force_route is not None else tau >= 1.0
            make = torch.ones if all_hard else torch.zeros
            return make(batch_size, dtype=torch.bool, device=device)
        return hard_mask(scores, tau)

    def _route(self, batch_inputs: Tensor):
        b1_levels = self.backbone.forward_b1(batch_inputs)
        feats1 = self.backbone.select_outs(b1_levels)
        need_scores = self.force_route is None and 0.0 < self.threshold < 1.0
        scores = self.easy_scores(b1_levels) if (need_scores or self.router is not None) else None
        hard = self.route_mask(scores, batch_inputs.shape[0], batch_inputs.device)
        return b1_levels, feats1, scores, hard

    def extract_feat(self, batch_inputs: Tensor) -> Tuple[Tuple[Tensor, ...], Tuple[Tensor, ...]]:
        """Both backbones' out features ``(feats1, feats2)`` (no routing)."""
        return self.backbone(batch_inputs)

    # -- training --------------------------------------------------------------------------------------
    def loss(self, batch_inputs: Tensor, batch_data_samples: SampleList) -> Dict[str, Tensor]:
        if self.training_step == 1:
            feats1, feats2 = self.backbone(batch_inputs)
            losses = {}
            for route, feats in ((0, feats1), (1, feats2)):
                for key, value in self.dynamic_head.loss(route, feats, batch_data_samples).items():
                    losses[f'd{route + 1}_{key}'] = value
            return losses
        with torch.no_grad():
            b1_levels = self.backbone.forward_b1(batch_inputs)
            feats1 = self.backbone.select_outs(b1_levels)
            feats2 = self.backbone.forward_b2(batch_inputs, b1_levels)
            loss1 = self.dynamic_head.per_image_losses(0, feats1, batch_data_samples)
            loss2 = self.dynamic_head.per_image_losses(1, feats2, batch_data_samples)
        scores = self.router([f.detach() for f in self.router_feats(b1_levels)])
        loss_router, delta = self.router_loss(scores, loss1, loss2)
        tau = self.threshold if 0.0 < self.threshold < 1.0 else 0.5
        return dict(loss_router=loss_router, delta=delta.detach(),
                    hard_ratio=hard_mask(scores, tau).float().mean(),
                    easy_score=scores.detach().mean(), loss_gap=(loss1 - loss2).mean())

    # -- inference -------------------------------------------------------------------------------------
    def _split_by_route(self, batch_inputs: Tensor, samples: Optional[SampleList]):
        """Route the batch: ``(scores, hard, parts)`` where each part is ``(route, indices, feats,
        sub_samples)`` -- route 0 with the easy images' B1 features, route 1 with B2 run on the hard images
        only -- and a route no image takes is left out. ``sub_samples`` is None without samples."""
        b1_levels, feats1, scores, hard = self._route(batch_inputs)
        parts = []
        for route, mask in ((0, ~hard), (1, hard)):
            idx = mask.nonzero().flatten()
            if idx.numel() == 0:
                continue
            if route == 0:
                feats = tuple(f[idx] for f in feats1)
            else:
                feats = self.backbone.forward_b2(batch_inputs[idx], [f[idx] for f in b1_levels])
            indices = idx.tolist()
            parts.append((route, indices, feats, [samples[i] for i in indices] if samples else None))
        return scores, hard, parts

    def predict(self, batch_inputs: Tensor, batch_data_samples: SampleList,
                rescale: bool = True) -> SampleList:
        scores, hard, parts = self._split_by_route(batch_inputs, batch_data_samples)
        results: List = [None] * len(batch_data_samples)
        for route, indices, feats, sub in parts:
            for i, r in zip(indices, self.dynamic_head.predict(route, feats, sub, rescale=rescale)):
                results[i] = r
        score_list = scores.detach().tolist() if scores is not None else [float('nan')] * len(hard)
        for sample, is_hard, score in zip(batch_data_samples, hard.tolist(), score_list):
            sample.set_metainfo(dict(dynamic_route=2 if is_hard else 1, router_score=score))
        return self.add_pred_to_datasample(batch_data_samples, results)

    def _forward(self, batch_inputs: Tensor, batch_data_samples: Optional[SampleList] = None):
        """Raw outputs of the route each image takes: ``(route-1 outputs of the easy images, route-2
        outputs of the hard images)`` (an empty tuple for a route no image takes). Used by get_flops."""
        outs = [(), ()]
        for route, _, feats, sub in self._split_by_route(batch_inputs, batch_data_samples)[2]:
            outs[route] = self.dynamic_head.forward(route, feats, sub)
        return tuple(outs)

"""The two detection routes of DynamicDet: neck + head on B1 (route 1) and on B2 (route 2)."""
import copy
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn
from mmdet.models.utils import unpack_gt_instances
from mmdet.registry import MODELS
from mmdet.structures import SampleList
from mmengine.model import BaseModule, ModuleDict, ModuleList
from mmengine.structures import InstanceData
from torch import Tensor


def sum_losses(losses: Dict[str, object]) -> Tensor:
    """Sum every entry whose name contains ``'loss'`` (tensors or lists of tensors), like mmengine's
    ``BaseModel.parse_losses``."""
    total = None
    for name, value in losses.items():
        if 'loss' not in name:
            continue
        parts = value if isinstance(value, (list, tuple)) else [value]
        for part in parts:
            total = part.mean() if total is None else total + part.mean()
    if total is None:
        raise ValueError(f'no loss entries in {list(losses)}')
    return total


def slice_outputs(outs, index: int):
    """Take image ``index`` (keeping the batch dim) from nested tuples/lists of batched tensors."""
    if isinstance(outs, Tensor):
        return outs[index:index + 1]
    if isinstance(outs, (list, tuple)):
        return type(outs)(slice_outputs(o, index) for o in outs)
    return outs


@MODELS.register_module()
class DynamicDetHead(BaseModule):
    """Route 1 (neck + head on B1's features) and route 2 (on B2's), separate copies or shared.

    Either a dense head (``bbox_head``: RetinaNet-, YOLOX-style, ...) or a two-stage head
    (``rpn_head`` + ``roi_head``: Faster R-CNN). Every method takes the route index (0 or 1).

    Args:
        neck: Neck config (or None).
        neck2: Route 2's neck config when it differs from route 1's (e.g. B2 is a wider subnet than B1, so
            the FPN's ``in_channels`` differ); only with ``share=False``. None: a copy of ``neck``.
        bbox_head: Dense head config (one-stage).
        rpn_head: RPN head config (two-stage).
        roi_head: RoI head config (two-stage).
        share: True: one neck + head serves both routes (CBNet-style); False: two identical copies.
        train_cfg: The detector's ``train_cfg`` (with ``rpn``/``rpn_proposal``/``rcnn`` for two-stage).
        test_cfg: The detector's ``test_cfg`` (with ``rpn``/``rcnn`` for two-stage).
        init_cfg: mmengine init config.

    Example:
        >>> import torch, mmdynbnn.det  # noqa
        >>> from mmdet.utils import register_all_modules; register_all_modules(init_default_scope=False)
        >>> head = DynamicDetHead(neck=None, bbox_head=dict(type='RetinaHead', num_classes=2,
        ...     in_channels=8, feat_channels=8, anchor_generator=dict(type='AnchorGenerator',
        ...     octave_base_scale=4, scales_per_octave=1, ratios=[1.0], strides=[8]),
        ...     bbox_coder=dict(type='DeltaXYWHBBoxCoder')))
        >>> len(head.forward(0, (torch.rand(1, 8, 4, 4),))[0])
        1
    """

    def __init__(self,
                 neck: Optional[dict] = None,
                 bbox_head: Optional[dict] = None,
                 rpn_head: Optional[dict] = None,
                 roi_head: Optional[dict] = None,
                 share: bool = False,
                 train_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None,
                 neck2: Optional[dict] = None,
                 init_cfg=None) -> None:
        super().__init__(init_cfg=init_cfg)
        if (bbox_head is None) == (rpn_head is None and roi_head is None):
            raise ValueError('DynamicDetHead needs either bbox_head (one-stage) or rpn_head + roi_head '
                             '(two-stage), not both and not neither')
        if bbox_head is None and (rpn_head is None or roi_head is None):
            raise ValueError('DynamicDetHead: a two-stage head needs both rpn_head and roi_head')
        self.share = bool(share)
        self.two_stage = bbox_head is None
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        if neck2 is not None and self.share:
            raise ValueError('DynamicDetHead: neck2 (a separate route-2 neck) needs share_heads=False; '
                             'with shared heads both routes use neck')
        copies = 1 if self.share else 2
        neck_cfgs = [neck] if self.share else [neck, neck2 if neck2 is not None else neck]
        self.necks = ModuleList(
            [MODELS.build(copy.deepcopy(cfg)) if cfg is not None else nn.Identity() for cfg in neck_cfgs])
        heads = []
        for _ in range(copies):
            if self.two_stage:
                heads.append(ModuleDict(dict(rpn_head=self._build_rpn(rpn_head),
                                                 roi_head=self._build_roi(roi_head))))
            else:
                cfg = copy.deepcopy(bbox_head)
                cfg.update(train_cfg=copy.deepcopy(train_cfg), test_cfg=copy.deepcopy(test_cfg))
                heads.append(MODELS.build(cfg))
        self.heads = ModuleList(heads)

    def _build_rpn(self, rpn_head: dict) -> nn.Module:
        cfg = copy.deepcopy(rpn_head)
        cfg.update(train_cfg=self.train_cfg.rpn if self.train_cfg is not None else None,
                   test_cfg=self.test_cfg.rpn if self.test_cfg is not None else None)
        if cfg.get('num_classes', 1) != 1:
            raise ValueError(f'rpn_head.num_classes must be 1, got {cfg["num_classes"]}')
        cfg['num_classes'] = 1
        return MODELS.build(cfg)

    def _build_roi(self, roi_head: dict) -> nn.Module:
        cfg = copy.deepcopy(roi_head)
        cfg.update(train_cfg=self.train_cfg.rcnn if self.train_cfg is not None else None,
                   test_cfg=self.test_cfg.rcnn if self.test_cfg is not None else None)
        return MODELS.build(cfg)

    # -- route access --------------------------------------------------------------------------------
    def neck(self, route: int) -> nn.Module:
        return self.necks[0 if self.share else route]

    def head(self, route: int) -> nn.Module:
        return self.heads[0 if self.share else route]

    def _neck_feats(self, route: int, feats: Tuple[Tensor, ...]) -> Tuple[Tensor, ...]:
        out = self.neck(route)(feats)
        return tuple(out) if isinstance(out, (list, tuple)) else (out, )

    # -- training --------------------------------------------------------------------------------------
    def _two_stage_loss(self, head: nn.Module, x: Tuple[Tensor, ...], samples: SampleList) -> dict:
        proposal_cfg = self.train_cfg.get('rpn_proposal', self.test_cfg.rpn)
        rpn_samples = copy.deepcopy(samples)
        for s in rpn_samples:
            s.gt_instances.labels = torch.zeros_like(s.gt_instances.labels)
        rpn_losses, proposals = head['rpn_head'].loss_and_predict(x, rpn_samples, proposal_cfg=proposal_cfg)
        losses = {(f'rpn_{k}' if 'loss' in k and 'rpn' not in k else k): v for k, v in rpn_losses.items()}
        losses.update(head['roi_head'].loss(x, proposals, samples))
        return losses

    def loss(self, route: int, feats: Tuple[Tensor, ...], samples: SampleList) -> dict:
        """The route's ordinary (batch-reduced) loss dict."""
        x = self._neck_feats(route, feats)
        head = self.head(route)
        return self._two_stage_loss(head, x, samples) if self.two_stage else head.loss(x, samples)

    def per_image_losses(self, route: int, feats: Tuple[Tensor, ...], samples: SampleList) -> Tensor:
        """Total detection loss of every image on its own, shape ``(N,)`` (mmdet losses reduce over the
        batch, so each image is scored separately; dense heads run their forward once for the batch)."""
        x = self._neck_feats(route, feats)
        head = self.head(route)
        totals = []
        if self.two_stage:
            for i, sample in enumerate(samples):
                totals.append(sum_losses(self._two_stage_loss(head, slice_outputs(x, i), [sample])))
        else:
            outs = head(x)
            for i, sample in enumerate(samples):
                gts, gts_ignore, metas = unpack_gt_instances([sample])
                losses = head.loss_by_feat(*slice_outputs(outs, i), gts, metas, gts_ignore)
                totals.append(sum_losses(losses))
        return torch.stack(totals)

    # -- inference -------------------------------------------------------------------------------------
    def predict(self, route: int, feats: Tuple[Tensor, ...], samples: SampleList,
                rescale: bool = True) -> List[InstanceData]:
        x = self._neck_feats(route, feats)
        head = self.head(route)
        if self.two_stage:
            if samples[0].get('proposals', None) is None:
                proposals = head['rpn_head'].predict(x, samples, rescale=False)
            else:
                proposals = [s.proposals for s in samples]
            return head['roi_head'].predict(x, proposals, samples, rescale=rescale)
        return head.predict(x, samples, rescale=rescale)

    def forward(self, route: int, feats: Tuple[Tensor, ...], samples: Optional[SampleList] = None):
        """Raw head outputs (no post-processing) of one route."""
        x = self._neck_feats(route, feats)
        head = self.head(route)
        if self.two_stage:
            proposals = head['rpn_head'].predict(x, samples, rescale=False)
            return head['roi_head'].forward(x, proposals, samples)
        return head.forward(x)

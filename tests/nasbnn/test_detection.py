"""A static NAS-BNN backbone inside an mmdet detector (multi-scale outputs into the FPN)."""
import os.path as osp

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

CONFIG = osp.join(osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
                  'configs/nasbnn/retinanet_nasbnn-smallest_fpn_coco-mini.py')


def test_retinanet_with_nasbnn_backbone_trains_one_step():
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.structures import InstanceData
    from mmengine.optim import OptimWrapper
    cfg = Config.fromfile(CONFIG)
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):  # scoped: later tests build mmpretrain models
        model = MODELS.build(cfg.model)
    assert type(model.backbone).__name__ == 'NASBNN'
    assert model.backbone.out_channels == tuple(cfg.model.neck.in_channels)
    sample = DetDataSample(metainfo=dict(img_shape=(128, 160), pad_shape=(128, 160), batch_input_shape=(128, 160)))
    sample.gt_instances = InstanceData(bboxes=torch.tensor([[10.0, 20.0, 90.0, 100.0]]), labels=torch.tensor([3]))
    data = dict(inputs=[torch.randint(0, 256, (3, 128, 160), dtype=torch.uint8)], data_samples=[sample])
    feats = model.backbone(torch.randn(1, 3, 128, 160))
    assert [f.shape[-2:] for f in feats] == [(32, 40), (16, 20), (8, 10), (4, 5)]
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))
    before = model.backbone.stages[3][0].conv1.weight.detach().clone()
    log = model.train_step(data, optim)
    assert torch.isfinite(log['loss']) and 'loss_cls' in log
    assert not torch.equal(before, model.backbone.stages[3][0].conv1.weight)

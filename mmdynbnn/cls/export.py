"""Turn a trained Bi-Teacher supernet classifier into a static subnet classifier (config + weights)."""
from typing import Dict, Tuple

from torch import Tensor, nn

from ..models.backbones.nasbnn_static import export_static_state_dict
from ..nas import build_subnet
from ..nas.subnet import SubnetLike


def export_classifier(model: nn.Module, subnet: SubnetLike) -> Tuple[dict, Dict[str, Tensor]]:
    """``(model_cfg, state_dict)`` of an ``ImageClassifier`` with a ``NASBNN`` backbone for ``subnet``.

    ``model`` is a :class:`BiTeacherClassifier` (or any classifier with a ``NASBNNSuperNet`` backbone, a
    ``GlobalAveragePooling`` neck and a linear ``head.fc``). The head keeps its class count and gets the
    first ``C`` input columns of the supernet FC, ``C`` the subnet's last width.
    """
    backbone = model.backbone
    subnet = build_subnet(subnet, backbone.space)
    state = {f'backbone.{k}': v for k, v in export_static_state_dict(backbone, subnet).items()}
    c_last = subnet.stage_out_channels()[-1]
    fc = model.head.fc
    state['head.fc.weight'] = fc.weight.detach()[:, :c_last].clone()
    state['head.fc.bias'] = fc.bias.detach().clone()
    cfg = dict(type='ImageClassifier',
               backbone=dict(type='NASBNN', space=backbone.space.to_config(), subnet=subnet.to_config()),
               neck=dict(type='GlobalAveragePooling'),
               head=dict(type='LinearClsHead', num_classes=fc.out_features, in_channels=c_last,
                         loss=dict(type='CrossEntropyLoss', loss_weight=1.0), topk=model.head.topk))
    return cfg, state

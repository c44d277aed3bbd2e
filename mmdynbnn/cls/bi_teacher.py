"""Bi-Teacher training of the NAS-BNN supernet (``docs/nasbnn.md`` §3.1) as an mmpretrain classifier."""
import random
from typing import Dict, List, Optional, Union

import torch
import torch.nn.functional as F
from mmengine.dist import sync_random_seed
from mmpretrain.models.classifiers import ImageClassifier
# mean_n( -sum_k target[n, k] * log_softmax(logits)[n, k] ), also exported by mmdynbnn.cls
from mmpretrain.models.losses.cross_entropy_loss import soft_cross_entropy
from mmpretrain.registry import MODELS
from mmpretrain.structures import DataSample
from torch import Tensor

from ..nas import Subnet


@MODELS.register_module()
class BiTeacherClassifier(ImageClassifier):
    """Supernet classifier whose training loss is NAS-BNN's Bi-Teacher objective.

    One ``loss`` call runs four passes over the batch: the biggest subnet with full-precision (WN) weights
    and binary activations, trained with label-smoothed CE (the teacher); then, with binary weights, the
    smallest subnet and ``num_random`` uniform random ND-valid subnets, each trained with
    CE(softmax(teacher.detach()), log_softmax(student)). The losses are returned separately and summed
    by ``parse_losses``, so mmengine's optim wrapper takes **one** step per iteration, with or without
    ``MMDistributedDataParallel`` (put ``find_unused_parameters=True`` in ``model_wrapper_cfg``: a
    kernel transform that no pass of an iteration uses gets no gradient).

    The random subnets come from ``random.Random`` seeded with (``sampler_seed``, step counter); both
    are buffers, so every rank draws the same subnets and a resumed run continues the sequence. With
    ``sampler_seed=None`` the seed is drawn on rank 0 and broadcast at the first training step.

    Outside training the backbone runs its active subnet (``eval_subnet``: ``'biggest'``, ``'smallest'``,
    a subnet dict/file, or ``None`` to keep whatever the user activated) with binary weights.

    Args:
        backbone: must be a ``NASBNNSuperNet`` config.
        num_random: random students per iteration (2 in the paper).
        label_smoothing: epsilon of the teacher's CE.
        sampler_seed: see above.
        eval_subnet: see above.
        other args: as mmpretrain's ``ImageClassifier``; ``head`` should be ``SlicedLinearClsHead``.

    Example:
        >>> import torch, mmdynbnn, mmdynbnn.cls
        >>> from mmdynbnn.nas import CIFAR_SPACE
        >>> from mmpretrain.structures import DataSample
        >>> model = BiTeacherClassifier(
        ...     backbone=dict(type='NASBNNSuperNet', space=CIFAR_SPACE),
        ...     neck=dict(type='GlobalAveragePooling'),
        ...     head=dict(type='SlicedLinearClsHead', num_classes=10, in_channels=96), sampler_seed=0)
        >>> x = torch.randn(4, 3, 32, 32)
        >>> samples = [DataSample().set_gt_label(i) for i in range(4)]
        >>> sorted(model.loss(x, samples))
        ['loss_kd_random0', 'loss_kd_random1', 'loss_kd_smallest', 'loss_teacher']
    """

    def __init__(self, backbone: dict, neck: Optional[dict] = None, head: Optional[dict] = None,
                 num_random: int = 2, label_smoothing: float = 0.1, sampler_seed: Optional[int] = None,
                 eval_subnet: Union[str, dict, None] = 'biggest', pretrained: Optional[str] = None,
                 train_cfg: Optional[dict] = None, data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(backbone, neck, head, pretrained, train_cfg, data_preprocessor, init_cfg)
        for attr in ('set_subnet', 'sample_subnet', 'biggest', 'smallest', 'mode'):
            if not hasattr(self.backbone, attr):
                raise ValueError(f'BiTeacherClassifier: backbone {type(self.backbone).__name__} is not a '
                                 f'supernet (no {attr!r}); use NASBNNSuperNet')
        if not isinstance(num_random, int) or num_random < 0:
            raise ValueError(f'BiTeacherClassifier: num_random={num_random!r} must be an int >= 0')
        if not 0 <= label_smoothing < 1:
            raise ValueError(f'BiTeacherClassifier: label_smoothing={label_smoothing!r} must be in [0, 1)')
        if sampler_seed is not None and (not isinstance(sampler_seed, int) or sampler_seed < 0):
            raise ValueError(f'BiTeacherClassifier: sampler_seed={sampler_seed!r} must be None or an int >= 0')
        self.num_random = num_random
        self.label_smoothing = label_smoothing
        # [seed, step]; seed -1 = draw (and broadcast) at the first training step.
        self.register_buffer('sampler_state', torch.tensor([-1 if sampler_seed is None else sampler_seed, 0]))
        self.eval_subnet = None if eval_subnet is None else self.backbone.set_subnet(eval_subnet)

    # ---------------------------------------------------------------- subnets
    def iteration_subnets(self) -> Dict[str, Subnet]:
        """The students of the next training step (deterministic in (seed, step))."""
        seed, step = (int(v) for v in self.sampler_state)
        if seed < 0:
            seed = int(sync_random_seed()) & 0x7FFFFFFF  # same value on every rank
            self.sampler_state[0] = seed
        rng = random.Random((seed << 32) + step)
        students = {'smallest': self.backbone.smallest()}
        for i in range(self.num_random):
            students[f'random{i}'] = self.backbone.sample_subnet(rng)
        return students

    def _logits(self, inputs: Tensor) -> Tensor:
        return self.head(self.extract_feat(inputs))

    def _teacher_target(self, data_samples: List[DataSample], num_classes: int) -> Tensor:
        if 'gt_score' in data_samples[0]:
            target = torch.stack([s.gt_score for s in data_samples]).float()
        else:
            labels = torch.cat([s.gt_label for s in data_samples])
            target = F.one_hot(labels, num_classes).float()
        return target * (1 - self.label_smoothing) + self.label_smoothing / num_classes

    # ---------------------------------------------------------------- mmpretrain API
    def loss(self, inputs: Tensor, data_samples: List[DataSample]) -> Dict[str, Tensor]:
        backbone = self.backbone
        previous, previous_mode = backbone.subnet, backbone.mode
        students = self.iteration_subnets()
        losses = {}
        try:
            backbone.set_subnet(backbone.biggest())
            backbone.mode = 'fp'
            teacher = self._logits(inputs)
            target = self._teacher_target(data_samples, teacher.shape[1]).to(teacher.device)
            losses['loss_teacher'] = soft_cross_entropy(teacher, target)
            soft = teacher.detach().softmax(dim=1)
            backbone.mode = 'binary'
            for name, subnet in students.items():
                backbone.set_subnet(subnet)
                losses[f'loss_kd_{name}'] = soft_cross_entropy(self._logits(inputs), soft)
        finally:
            backbone.set_subnet(previous)
            backbone.mode = previous_mode
        self.sampler_state[1] += 1
        return losses

    def predict(self, inputs: Tensor, data_samples: Optional[List[DataSample]] = None, **kwargs):
        if self.eval_subnet is not None:
            self.backbone.set_subnet(self.eval_subnet)
            self.backbone.mode = 'binary'
        return super().predict(inputs, data_samples, **kwargs)

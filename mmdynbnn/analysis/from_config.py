"""Build the model of an mmdet/mmpretrain config and summarise its cost (``model_summary.py``'s core)."""
import os
from typing import Sequence, Union

import torch
from mmengine.config import Config
from mmengine.registry import MODELS, DefaultScope

from .summary import ModelSummary, summarize


def build_model_from_config(config: Union[str, os.PathLike, Config]) -> torch.nn.Module:
    """Build ``cfg.model`` in the config's default scope (its ``custom_imports`` are honoured).

    The scope is set only while building, so the caller's default scope is left as it was.
    """
    cfg = config if isinstance(config, Config) else Config.fromfile(os.fspath(config))
    if 'model' not in cfg:
        raise ValueError(f'config {getattr(cfg, "filename", config)!r} has no "model" field')
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmengine')):
        return MODELS.build(cfg.model)


def summarize_config(config: Union[str, os.PathLike, Config], shape: Sequence[int] = (224, 224)) -> ModelSummary:
    """Cost of one ``(1, 3, *shape)`` image through the model in ``mode='tensor'``.

    Detectors run backbone, neck and dense head; a model whose tensor mode needs more than an image
    (e.g. two-stage detectors) is summarised through ``extract_feat``.
    """
    if len(shape) != 2 or not all(isinstance(s, int) and s > 0 for s in shape):
        raise ValueError(f'shape={tuple(shape)!r} must be two positive ints (H, W)')
    model = build_model_from_config(config)
    model.eval()  # not chained: some OpenMMLab modules' train() returns None
    inputs = torch.randn(1, 3, *shape)
    try:
        return summarize(model, inputs, forward=lambda x: model(x, mode='tensor'))
    except (TypeError, AttributeError, KeyError, IndexError):
        if not hasattr(model, 'extract_feat'):
            raise
        return summarize(model, inputs, forward=model.extract_feat)

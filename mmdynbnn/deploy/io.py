"""Deploy checkpoints: build a model from an OpenMMLab config, convert it, save / load the packed state.

A deploy checkpoint is ``{'meta': {...}, 'state_dict': <deploy model state>}``. It holds no pickled
modules: :func:`load_deploy_model` rebuilds the float model from the config, converts its structure and
loads the packed state (``torch.load(weights_only=True)`` compatible). The file is written atomically and
carries ``meta.content_sha256``, checked when it is loaded.
"""
import os
from typing import Optional, Union

import torch
from torch import nn

from ..analysis import build_model_from_config as _build_model
from .converter import convert_to_deploy

DEPLOY_FORMAT = 'mmdynbnn-bitpacked-v1'


def build_model_from_config(config, checkpoint: Optional[str] = None) -> nn.Module:
    """:func:`mmdynbnn.analysis.build_model_from_config`, optionally loading a (float, training-code)
    checkpoint strictly; returns the model in eval mode on the CPU."""
    model = _build_model(config)
    if checkpoint is not None:
        from mmengine.runner import load_checkpoint
        load_checkpoint(model, str(checkpoint), map_location='cpu', strict=True)
    return model.cpu().eval()


def save_deploy_checkpoint(deploy_model: nn.Module, path: Union[str, os.PathLike], meta: Optional[dict] = None
                           ) -> int:
    """Save the deploy state atomically, with a content hash checked on load; returns the file size in bytes."""
    from ..utils.io import save_checkpoint
    meta = dict(meta or {}, format=DEPLOY_FORMAT)
    state = {k: v.detach().cpu().clone() for k, v in deploy_model.state_dict().items()}
    return save_checkpoint(state, str(path), meta=meta)


def load_deploy_model(config, path: Union[str, os.PathLike]) -> nn.Module:
    """Rebuild the deploy model of ``config`` and load a checkpoint written by :func:`save_deploy_checkpoint`
    (a broken file raises naming the file and the cause, see :func:`mmdynbnn.utils.load_checkpoint_file`)."""
    from ..utils.checkpoint import load_checkpoint_file
    ckpt = load_checkpoint_file(str(path), map_location='cpu')
    if not isinstance(ckpt, dict) or ckpt.get('meta', {}).get('format') != DEPLOY_FORMAT:
        raise ValueError(f'{path} is not a mmdynbnn deploy checkpoint (expected meta.format={DEPLOY_FORMAT!r}); '
                         f'convert a training checkpoint with tools/deploy/convert.py first')
    model = convert_to_deploy(build_model_from_config(config), inplace=True)
    model.load_state_dict(ckpt['state_dict'], strict=True)
    return model.eval()

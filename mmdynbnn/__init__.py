"""mmdynbnn: binary networks (NAS-BNN) and dynamic detectors (DynamicDet) for OpenMMLab 2.x.

Importing the package registers the generic modules in mmengine's root ``MODELS`` registry, prices the
binary ops in mmengine's complexity analysis, lets mmcv's ``fuse_conv_bn`` fold BN into binary convs
correctly, allow-lists the types mmengine stores in checkpoints for ``torch.load(weights_only=True)`` (through
restricted stand-ins that cannot reach code, see :mod:`mmdynbnn.utils.checkpoint`) and makes mmengine's local
checkpoint loading name the file and the cause of a broken checkpoint.
It does not import mmdet or mmpretrain.
"""
from . import ops  # noqa: F401  (registers the ops)
from . import models, nas  # noqa: F401  (NAS-BNN backbones, DynamicDet router, search space)
from .analysis import register_complexity_handles
from .utils import patch_mmcv_fuse_conv_bn, register_checkpoint_safe_globals, register_mmengine_checkpoint_loader
from .version import __version__

register_complexity_handles()
patch_mmcv_fuse_conv_bn()
register_checkpoint_safe_globals()
register_mmengine_checkpoint_loader()

__all__ = ['__version__']

from .checkpoint import register_checkpoint_safe_globals
from .mmcv_fuse import patch_mmcv_fuse_conv_bn

__all__ = ['patch_mmcv_fuse_conv_bn', 'register_checkpoint_safe_globals']

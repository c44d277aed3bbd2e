from .checkpoint import (CheckpointFileError, load_checkpoint_file, register_checkpoint_safe_globals,
                         register_mmengine_checkpoint_loader)
from .io import (atomic_open, atomic_path, atomic_torch_save, atomic_write_json, atomic_write_text,
                 remove_orphan_tmp_files, save_checkpoint)
from .mmcv_fuse import patch_mmcv_fuse_conv_bn
from .randomness import EpochRandomnessHook

__all__ = ['CheckpointFileError', 'EpochRandomnessHook', 'atomic_open', 'atomic_path', 'atomic_torch_save',
           'atomic_write_json', 'atomic_write_text', 'load_checkpoint_file', 'patch_mmcv_fuse_conv_bn',
           'register_checkpoint_safe_globals', 'register_mmengine_checkpoint_loader', 'remove_orphan_tmp_files',
           'save_checkpoint']

"""Make mmcv's ``fuse_conv_bn`` (used by mmdet's ``benchmark.py --fuse-conv-bn``) fold BN correctly into
the project's quantised convs.

mmcv folds BN by rescaling ``conv.weight``; for a binary conv that is silently wrong (WN removes the
scale, sign drops it). mmcv's ``fuse_conv_bn`` looks its helper ``_fuse_conv_bn`` up at call time, so
wrapping that helper works even for tools that imported ``fuse_conv_bn`` before this plugin: quantised
convs fold into their output affine (:meth:`FoldableConv2d.fuse_bn_`), every other conv goes to mmcv.
"""
import importlib

from ..ops.foldable_conv import FoldableConv2d


def patch_mmcv_fuse_conv_bn() -> bool:
    """Install the wrapper once; returns False when mmcv is not installed."""
    try:
        module = importlib.import_module('mmcv.cnn.utils.fuse_conv_bn')
    except ImportError:
        return False
    original = module._fuse_conv_bn
    if getattr(original, 'handles_foldable_conv', False):
        return True

    def _fuse_conv_bn(conv, bn):
        if isinstance(conv, FoldableConv2d):
            return conv.fuse_bn_(bn)
        return original(conv, bn)

    _fuse_conv_bn.handles_foldable_conv = True
    module._fuse_conv_bn = _fuse_conv_bn
    return True

"""Convert a trained model with :class:`mmdynbnn.ops.BinaryConv2d` layers into a bit-packed deploy model.

Works on any module tree (classifier, detector backbone, hand-written ``nn.Module``):

1. checks every binary conv and raises one error naming each unsupported layer (qualified name) and why;
2. folds each eval BN into the conv it directly follows among the children of one module (the convention
   of mmcv/mmdet/mmpretrain blocks; see :func:`fold_batchnorms`): into the output affine of binary and
   quantised convs, into weight and bias of float convs;
3. replaces each :class:`BinaryConv2d` by a :class:`PackedBinaryConv2d` (packed weights, scale = alpha x
   out_scale, bias, RSign threshold), each :class:`QuantConv2d` (8-bit stem) by a float ``nn.Conv2d`` and
   each :class:`RPReLU` by the one-pass :class:`FusedRPReLU`; plain float convs, FC, pooling, residual
   adds are kept (float conv weights stored channels_last, see ``channels_last``);
4. inside an ``nn.Sequential``: an :class:`RSign` directly followed by a binary conv that takes +-1 input
   (``act_binarizer='none'``) is merged into that conv's pack threshold; a binary conv directly followed
   by another binary conv (nothing in between once BN is folded) emits the next layer's packed
   activations (fused next sign), skipping the float tensor.
"""
import copy
from typing import List, Optional

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_weights

from ..ops import BinaryConv2d, FoldableConv2d, QuantConv2d, RPReLU, RSign
from .modules import FusedRPReLU, PackedBinaryConv2d, float_conv_from_quant


class UnsupportedLayerError(ValueError):
    """A layer cannot be converted; the message names every such layer and the reason."""


def _check_binary_conv(name: str, conv: BinaryConv2d) -> Optional[str]:
    if conv.mode != 'binary':
        return (f"mode={conv.mode!r}: full-precision weights are not binary; set conv.mode = 'binary' "
                f"(the deployed weight is alpha * sign(WN(w)))")
    if conv.padding_mode != 'zeros':
        return f'padding_mode={conv.padding_mode!r}: only zero padding is reproduced'
    if isinstance(conv.padding, str):
        return f'padding={conv.padding!r}: give explicit int padding'
    if conv.weight.dtype != torch.float32:
        return f'weight dtype {conv.weight.dtype}: convert the model to float32 first'
    if conv.weight.is_meta:
        return 'weights are on the meta device'
    if not torch.isfinite(conv.weight).all():
        return 'weight contains NaN/Inf'
    if conv.out_scale is not None and not torch.isfinite(conv.out_scale).all():
        return 'out_scale contains NaN/Inf'
    return None


def find_unsupported(model: nn.Module) -> List[str]:
    """``'<qualified name> (<layer>): <reason>'`` for every binary conv that cannot be deployed."""
    problems = []
    for name, module in model.named_modules():
        if isinstance(module, BinaryConv2d):
            reason = _check_binary_conv(name, module)
            if reason:
                problems.append(f'{name or "<root>"} ({module.layer_name}): {reason}')
        elif isinstance(module, QuantConv2d) and module.padding_mode != 'zeros':
            problems.append(f'{name} ({module.layer_name}): padding_mode={module.padding_mode!r} unsupported')
    return problems


def _foldable_pair(conv: nn.Module, bn: nn.Module) -> bool:
    return (isinstance(conv, nn.Conv2d) and isinstance(bn, _BatchNorm) and bn.num_features == conv.out_channels
            and bn.track_running_stats and bn.running_mean is not None and bn.running_var is not None)


@torch.no_grad()
def _fold_into_float_conv(conv: nn.Conv2d, bn: _BatchNorm) -> None:
    conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, bn.running_mean, bn.running_var,
                                                  bn.eps, bn.weight, bn.bias)


def _output_conv(module: nn.Module) -> Optional[nn.Conv2d]:
    """The conv whose output is ``module``'s output: the module itself, or the last module of a (nested)
    ``nn.Sequential`` ending in a conv."""
    while isinstance(module, nn.Sequential) and len(module) > 0:
        module = module[-1]
    return module if isinstance(module, nn.Conv2d) else None


def fold_batchnorms(model: nn.Module) -> nn.Module:
    """Fold every eval BN that *directly* follows a conv among the children of a module (the mmcv /
    mmdet / mmpretrain convention: ``conv1, bn1, ...``) into that conv; the BN becomes ``nn.Identity``.

    Binary and quantised convs fold into their output affine (:meth:`FoldableConv2d.fuse_bn_`), plain
    convs into weight and bias. A conv at the end of an ``nn.Sequential`` counts as that Sequential's
    output (``Sequential(RSign, BinaryConv2d), BN``). Unlike mmcv's ``fuse_conv_bn``, a module between conv and BN (e.g. an
    activation) prevents folding. BNs without running statistics are left alone.
    """
    order = getattr(model, 'order', None)  # mmcv ConvModule: children order need not be forward order
    norm_first = isinstance(order, tuple) and {'conv', 'norm'} <= set(order) and \
        order.index('norm') < order.index('conv')
    previous = None
    for name, child in list(model.named_children()):
        conv = _output_conv(previous[1]) if previous is not None else None
        if conv is not None and not norm_first and _foldable_pair(conv, child):
            if isinstance(conv, FoldableConv2d):
                conv.fuse_bn_(child)
            else:
                _fold_into_float_conv(conv, child)
            model._modules[name] = nn.Identity()
            previous = None
            continue
        if not isinstance(child, nn.Conv2d):
            fold_batchnorms(child)
        previous = (name, child)
    return model


def _replace_convs(module: nn.Module, prefix: str) -> None:
    for child_name, child in list(module.named_children()):
        name = f'{prefix}.{child_name}' if prefix else child_name
        if isinstance(child, BinaryConv2d):
            setattr(module, child_name, PackedBinaryConv2d.from_binary_conv(child, name=name))
        elif isinstance(child, QuantConv2d):
            setattr(module, child_name, float_conv_from_quant(child))
        elif isinstance(child, RPReLU):
            setattr(module, child_name, FusedRPReLU.from_rprelu(child))
        else:
            _replace_convs(child, name)


def _fusable_next_sign(producer: PackedBinaryConv2d, consumer: PackedBinaryConv2d) -> bool:
    cg = consumer.in_channels // consumer.groups
    coutg = producer.out_channels // producer.groups
    return (producer.out_channels == consumer.in_channels and not producer.emit_packed
            and (consumer.groups == 1 or cg % 64 == 0)
            and (producer.groups == 1 or coutg % 16 == 0))


def _fuse_sequentials(model: nn.Module) -> None:
    for module in model.modules():
        if not isinstance(module, nn.Sequential):
            continue
        names = list(module._modules.keys())
        # RSign -> binary conv taking +-1 input: the threshold moves into the conv's packing.
        for a, b in zip(names, names[1:]):
            first, second = module._modules[a], module._modules[b]
            if (isinstance(first, RSign) and isinstance(second, PackedBinaryConv2d)
                    and second.threshold is None and first.num_channels == second.in_channels):
                second.threshold = first.bias.detach().float().clone().contiguous()
                module._modules[a] = nn.Identity()
        # binary conv -> (Identity)* -> binary conv: fused next sign, packed hand-over.
        effective = [n for n in names if not isinstance(module._modules[n], nn.Identity)]
        for a, b in zip(effective, effective[1:]):
            first, second = module._modules[a], module._modules[b]
            if (isinstance(first, PackedBinaryConv2d) and isinstance(second, PackedBinaryConv2d)
                    and _fusable_next_sign(first, second)):
                first.emit_packed = True
                first.next_threshold = (None if second.threshold is None else second.threshold.clone())
                first.next_padding = second.padding
                first.next_groups = second.groups


@torch.no_grad()
def convert_to_deploy(model: nn.Module, fold_bn: bool = True, fuse: bool = True, channels_last: bool = True,
                      inplace: bool = False) -> nn.Module:
    """Return the bit-packed deploy version of ``model`` (in eval mode, on the CPU).

    Args:
        model: any module tree containing :class:`BinaryConv2d` layers (binary mode).
        fold_bn: fold BN layers that follow a conv (see module docstring). Unfolded BNs stay float ops.
        fuse: apply the ``nn.Sequential`` fusions (RSign into threshold, fused next sign).
        channels_last: store float conv weights channels_last, so float convs (stem, necks, heads) emit
            channels_last activations like the packed convs do; mixed layouts make every residual add
            a slow transposing copy.
        inplace: convert ``model`` itself instead of a deep copy.

    Raises:
        UnsupportedLayerError: naming every binary conv that cannot be deployed and the reason.
    """
    problems = find_unsupported(model)
    if problems:
        raise UnsupportedLayerError('cannot convert to a bit-packed deploy model:\n  ' + '\n  '.join(problems))
    if not inplace:
        model = copy.deepcopy(model)
    model = model.cpu().float().eval()
    if fold_bn:
        model = fold_batchnorms(model)
    if isinstance(model, BinaryConv2d):
        return PackedBinaryConv2d.from_binary_conv(model, name='<root>')
    if isinstance(model, QuantConv2d):
        return float_conv_from_quant(model)
    _replace_convs(model, '')
    if fuse:
        _fuse_sequentials(model)
    if channels_last:
        for m in model.modules():
            if type(m) is nn.Conv2d:
                m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
    return model.eval()


def deploy_summary(float_model: nn.Module, deploy_model: nn.Module) -> dict:
    """Byte counts: float binary-conv weights vs their packed form, and all parameters + buffers."""
    float_bin = sum(m.weight.numel() * m.weight.element_size() for m in float_model.modules()
                    if isinstance(m, BinaryConv2d))
    packed = sum(m.weight_packed.numel() * 8 for m in deploy_model.modules() if isinstance(m, PackedBinaryConv2d))
    # Only the bits that carry weights (without the zero padding of channel blocks and words).
    packed_bits = sum(m.out_channels * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                      for m in deploy_model.modules() if isinstance(m, PackedBinaryConv2d)) / 8

    def total(model):
        tensors = {id(t): t for t in list(model.parameters()) + list(model.buffers())}
        return sum(t.numel() * t.element_size() for t in tensors.values())

    return {'binary_weights_float_bytes': float_bin, 'binary_weights_packed_bytes': packed,
            'binary_weights_bit_bytes': packed_bits, 'model_float_bytes': total(float_model),
            'model_deploy_bytes': total(deploy_model),
            'num_binary_convs': sum(isinstance(m, PackedBinaryConv2d) for m in deploy_model.modules())}

"""Export one subnet of a trained NAS-BNN supernet classifier as a static model: weights + config.

    python tools/nas/export_subnet.py SUPERNET_CONFIG SUPERNET_CKPT --subnet smallest --out-dir DIR \
        [--name NAME] [--base-config FINETUNE_CONFIG]

``--subnet`` is ``biggest``, ``smallest`` or a ``.json``/``.yaml``/``.py`` file holding the subnet dict.
Writes ``DIR/NAME.pth`` (an mmengine checkpoint of an ``ImageClassifier`` with a ``NASBNN`` backbone;
kernel transforms baked in), ``DIR/NAME.json`` (the subnet) and ``DIR/NAME.py``: a config inheriting the
fine-tune config (default: the supernet config's name with ``supernet_bi-teacher`` replaced by
``subnet_finetune``) with the subnet, the head width and ``load_from`` filled in, ready for the stock
``tools/test.py`` (evaluate) or ``tools/train.py`` (fine-tune). Prints the subnet's analytic OPs.

Every input (configs, checkpoint, subnet, name) is checked before the model is built; the three files are
written atomically (a kill leaves the previous version or the new one), the ``.pth`` with a content hash
checked when it is loaded.
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config
from mmengine.registry import DefaultScope
from mmengine.runner import load_checkpoint


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='supernet (BiTeacherClassifier) config')
    p.add_argument('checkpoint', help='supernet checkpoint')
    p.add_argument('--subnet', default='biggest', help="'biggest', 'smallest' or a subnet file")
    p.add_argument('--out-dir', required=True)
    p.add_argument('--name', default=None, help='file stem (default: subnet_<OPs>M)')
    p.add_argument('--base-config', default=None, help='fine-tune config the written config inherits')
    return p.parse_args()


def check_inputs(args: argparse.Namespace) -> tuple:
    """Everything that needs neither the model nor the checkpoint's weights; returns
    ``(cfg, space, subnet, base_config)`` or raises naming the argument."""
    from mmdynbnn.nas import build_space, build_subnet

    for what, path in (('config', args.config), ('checkpoint', args.checkpoint)):
        if not osp.isfile(path):
            raise FileNotFoundError(f'{what} {path!r} not found')
    if args.name is not None and (not args.name or osp.basename(args.name) != args.name):
        raise ValueError(f'--name {args.name!r} must be a plain file stem (no folder)')
    if args.base_config is not None:
        base = args.base_config
        if not osp.isfile(base):
            raise FileNotFoundError(f'--base-config {base!r} not found')
    else:
        base = args.config.replace('supernet_bi-teacher', 'subnet_finetune')
        if base == args.config or not osp.isfile(base):
            raise FileNotFoundError(f'no fine-tune config for {args.config!r} (looked for {base!r}, the config name '
                                    f'with supernet_bi-teacher -> subnet_finetune); pass --base-config')
    cfg = Config.fromfile(args.config)  # imports custom_imports (mmdynbnn, mmdynbnn.cls)
    space = build_space(cfg.model['backbone'].get('space'))
    if args.subnet not in ('biggest', 'smallest') and not osp.isfile(args.subnet):
        raise FileNotFoundError(f"--subnet {args.subnet!r}: neither 'biggest', 'smallest' nor an existing file")
    subnet = build_subnet(args.subnet, space)  # a malformed or out-of-space subnet raises naming the field
    return cfg, space, subnet, base


def main() -> None:
    args = parse_args()
    cfg, space, subnet, base = check_inputs(args)
    from mmpretrain.registry import MODELS

    from mmdynbnn.cls import export_classifier
    from mmdynbnn.nas import subnet_ops
    from mmdynbnn.utils import atomic_write_text, save_checkpoint

    # The scope is set only while building, so a caller running this in-process keeps its own.
    with DefaultScope.overwrite_default_scope(cfg.get('default_scope', 'mmpretrain')):
        model = MODELS.build(cfg.model)
    load_checkpoint(model, args.checkpoint, map_location='cpu')
    model_cfg, state = export_classifier(model, subnet)
    ops = subnet_ops(subnet, model.backbone.space, num_classes=model.head.fc.out_features)
    name = args.name or f'subnet_{ops.ops / 1e6:.1f}M'
    os.makedirs(args.out_dir, exist_ok=True)
    ckpt = osp.abspath(osp.join(args.out_dir, f'{name}.pth'))
    c_last = model_cfg['head']['in_channels']
    config_text = (f'# Static NAS-BNN subnet exported from {osp.abspath(args.checkpoint)} '
                   f'({ops.ops / 1e6:.3f}M OPs at {model.backbone.space.input_size}px)\n'
                   f'_base_ = [{osp.abspath(base)!r}]\n'
                   f'subnet = {subnet.to_config()!r}\n'
                   f'# _delete_: the base config names its subnet with a string\n'
                   f'model = dict(backbone=dict(subnet=dict(_delete_=True, **subnet)), '
                   f'head=dict(in_channels={c_last}))\n'
                   f'load_from = {ckpt!r}\n')
    # weights first, the config that points at them last: a kill leaves no config without its weights
    save_checkpoint(state, ckpt, meta=dict(subnet=subnet.to_config(), ops=ops.ops))
    atomic_write_text(subnet.to_json() + '\n', osp.join(args.out_dir, f'{name}.json'))
    atomic_write_text(config_text, osp.join(args.out_dir, f'{name}.py'))
    print(f'subnet: {subnet}\nOPs: {ops.ops / 1e6:.3f}M (FLOPs {ops.flops / 1e6:.3f}M, '
          f'BOPs {ops.bops / 1e6:.3f}M)\nwrote {ckpt} and {name}.py / {name}.json in {args.out_dir}')


if __name__ == '__main__':
    main()

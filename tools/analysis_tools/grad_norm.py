"""First-step gradient health of any mmdet / mmpretrain config, against its float twin, on real batches.

    python tools/analysis_tools/grad_norm.py CONFIG [--twin-cfg-options model.backbone.binary=False] \
        [--batches 2] [--cfg-options ...] [--seed 0]

A binary network that can learn has gradients of about the size of its float twin's; a gradient norm
orders of magnitude larger (BN after a conv whose input sign is constant divides by sqrt(eps)) or a BN
that sees no input variance means it cannot. For ``--batches`` batches of the config's own training
loader (its pipeline, its data preprocessor, train mode, the model's own ``loss``), the tool prints the
L2 norm of the whole gradient and per top-level module, and the number of BN layers whose input has
(almost) zero variance in some channel. With ``--twin-cfg-options`` it builds the float twin with the same
seed and data and prints the ratios side by side.
"""
import argparse
import math
import os.path as osp
import sys
from typing import Dict, List, Optional

import torch
from mmengine.config import Config, DictAction
from mmengine.registry import DefaultScope
from torch import nn

# A BN channel whose input variance is below this (relative to the mean variance of the layer) is dead.
DEAD_VARIANCE = 1e-6


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('config')
    p.add_argument('--batches', type=int, default=2, help='training batches averaged (default 2)')
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default={})
    p.add_argument('--twin-cfg-options', nargs='+', action=DictAction, default=None,
                   help='options that turn the config into its float twin, e.g. model.backbone.binary=False')
    args = p.parse_args(argv)
    if args.batches < 1:
        p.error(f'--batches={args.batches} must be >= 1')
    if not osp.isfile(args.config):
        p.error(f'config {args.config!r} is not a file')
    return args


def measure(cfg: Config, batches: int, seed: int) -> Dict:
    """Gradient norms and dead-BN counts of ``cfg``'s model on the first ``batches`` training batches."""
    from mmengine.runner import Runner
    torch.manual_seed(seed)
    scope = cfg.get('default_scope', 'mmengine')
    with DefaultScope.overwrite_default_scope(scope):
        from mmengine.registry import MODELS
        model = MODELS.build(cfg.model)
        if hasattr(model, 'init_weights'):
            model.init_weights()
        loader_cfg = cfg.train_dataloader.to_dict() if hasattr(cfg.train_dataloader, 'to_dict') \
            else dict(cfg.train_dataloader)
        loader_cfg.update(num_workers=0, persistent_workers=False)
        loader = Runner.build_dataloader(loader_cfg, seed=seed)
    model.train()
    dead: Dict[str, int] = {}

    def hook(name):
        def fn(module, inputs):
            var = inputs[0].detach().float().var(dim=(0, 2, 3))
            if (var < DEAD_VARIANCE * var.mean().clamp_min(1e-12)).any() or (var == 0).any():
                dead[name] = dead.get(name, 0) + 1
        return fn

    hooks = [m.register_forward_pre_hook(hook(n)) for n, m in model.named_modules()
             if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    totals: List[float] = []
    per_module: Dict[str, List[float]] = {}
    with DefaultScope.overwrite_default_scope(scope):
        for i, data in enumerate(loader):
            if i == batches:
                break
            model.zero_grad(set_to_none=True)
            data = model.data_preprocessor(data, training=True)
            losses = model(**data, mode='loss')
            loss, _ = model.parse_losses(losses)
            loss.backward()
            grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
            totals.append(float(torch.stack([g.norm() for g in grads.values()]).norm()))
            for top in sorted({n.split('.')[0] for n in grads}):
                norm = torch.stack([g.norm() for n, g in grads.items() if n.split('.')[0] == top]).norm()
                per_module.setdefault(top, []).append(float(norm))
    for h in hooks:
        h.remove()
    if not totals:
        raise SystemExit(f'{cfg.filename}: the training loader gave no batch')
    mean = lambda v: sum(v) / len(v)  # noqa: E731
    return dict(total=mean(totals), modules={k: mean(v) for k, v in per_module.items()},
                dead_bn=len(dead), num_bn=len(hooks), finite=all(math.isfinite(t) for t in totals))


def report(name: str, res: Dict, twin: Optional[Dict]) -> str:
    lines = [f'{name}: gradient norm {res["total"]:.4g}' +
             (f' ({res["total"] / twin["total"]:.3g}x the float twin\'s {twin["total"]:.4g})' if twin else ''),
             f'  BN layers with a zero-variance input channel: {res["dead_bn"]} of {res["num_bn"]}' +
             (f' (float twin: {twin["dead_bn"]} of {twin["num_bn"]})' if twin else '')]
    for k, v in res['modules'].items():
        ratio = f'  ({v / twin["modules"][k]:.3g}x twin)' if twin and twin['modules'].get(k) else ''
        lines.append(f'  {k:<20} {v:.4g}{ratio}')
    return '\n'.join(lines)


def main(argv=None) -> int:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    cfg.merge_from_dict(args.cfg_options)
    twin = None
    if args.twin_cfg_options is not None:
        twin_cfg = Config.fromfile(args.config)
        twin_cfg.merge_from_dict(args.cfg_options)
        twin_cfg.merge_from_dict(args.twin_cfg_options)
        twin = measure(twin_cfg, args.batches, args.seed)
    res = measure(cfg, args.batches, args.seed)
    print(report(osp.basename(args.config), res, twin))
    if not res['finite']:
        print('the gradient is not finite')
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

"""Pick DynamicDet's threshold tau for a hard ratio or a target latency on this machine.

Runs B1 + router over the validation set (``val_dataloader`` as configured, so padding and hence scores
match ``test.py``), measures both routes' latency (batch 1, ``test_step``, on ``--device``: the GPU when there
is one) and FLOPs, and prints for hard ratios 0%, 10%, ..., 100% (and each ``--target-latency``) the threshold,
the expected FLOPs and latency. ``--eval`` adds the COCO AP at each threshold (both routes are run once per
image), ``--plot`` writes an accuracy-speed PNG, ``--out`` a JSON.

Example::

    PYTHONPATH=. python tools/dynamicdet/threshold.py \
        configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step2.py \
        work_dirs/dy-retinanet_r18_fpn_coco-mini_step2/epoch_1.pth --eval --plot speed.png
"""
import argparse
import copy
import os.path as osp
from typing import Dict

import torch
from mmengine.config import Config, DictAction
from mmengine.evaluator import Evaluator
from mmengine.registry import init_default_scope
from mmengine.runner import Runner, load_checkpoint
from mmengine.utils import ProgressBar


def parse_args():
    parser = argparse.ArgumentParser(description='DynamicDet threshold / speed calibration')
    parser.add_argument('config', help='a DynamicDetector config (step 2)')
    parser.add_argument('checkpoint', help='the trained (step-2) checkpoint')
    parser.add_argument('--target-latency', type=float, nargs='*', default=[],
                        help='target latencies in ms per image (batch 1) to get a threshold for')
    parser.add_argument('--latency-images', type=int, default=8, help='val images timed per route')
    parser.add_argument('--flops-images', type=int, default=2, help='val images whose FLOPs are counted')
    parser.add_argument('--max-images', type=int, default=0, help='use only the first N val images (0: all)')
    parser.add_argument('--batch-size', type=int, default=0,
                        help='batch size for the router scores (0: val_dataloader\'s; use the one you deploy with)')
    parser.add_argument('--step', type=float, default=10.0, help='hard-ratio step in percent')
    parser.add_argument('--eval', action='store_true', help='evaluate AP at every threshold')
    parser.add_argument('--plot', help='write an accuracy-speed (or FLOPs-speed) PNG here')
    parser.add_argument('--out', help='write the table as JSON here')
    parser.add_argument('--device', default=None,
                        help="where to run and time the model: 'cpu', 'cuda' or 'cuda:N' "
                             "(default: cuda when available, else cpu)")
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='override config settings')
    return parser.parse_args()


def resolve_device(name) -> torch.device:
    """``--device`` as a ``torch.device``, checked before any long work."""
    if name is None:
        return torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SystemExit(f"--device {name!r} is not a device; allowed: 'cpu', 'cuda', 'cuda:N'") from None
    if device.type not in ('cpu', 'cuda'):
        raise SystemExit(f"--device {name!r}: allowed are 'cpu', 'cuda' and 'cuda:N'")
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise SystemExit(f'--device {name!r}: CUDA is not available on this machine; use --device cpu')
    if device.type == 'cuda' and device.index is not None and device.index >= torch.cuda.device_count():
        raise SystemExit(f'--device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)')
    return device


def main() -> None:
    args = parse_args()
    device = resolve_device(args.device)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    init_default_scope(cfg.get('default_scope', 'mmdet'))
    import mmdynbnn.det  # noqa: F401  (registers the modules even without custom_imports)
    from mmdet.registry import MODELS
    from mmdynbnn.det.calibration import (hard_ratio_at, mix, ratio_for_latency, route_flops, route_latency_ms,
                                          router_scores, threshold_for_hard_ratio)
    from mmdynbnn.models.routers import hard_mask
    from mmdynbnn.det.dynamic_detector import DynamicDetector

    torch.set_grad_enabled(False)
    model = MODELS.build(cfg.model)
    if not isinstance(model, DynamicDetector):
        raise TypeError(f'{args.config}: model must be a DynamicDetector, got {type(model).__name__}')
    if model.router is None:
        raise ValueError(f'{args.config}: model.router is None; the threshold tool needs a trained router')
    load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.to(device)  # the data preprocessor follows, so batches land on the same device
    model.eval()

    # Router scores with the val_dataloader as configured (its batch size decides the padding, and so the
    # scores, exactly as in test.py); latency and FLOPs per image at batch 1.
    loader_cfg = copy.deepcopy(cfg.val_dataloader)
    if args.batch_size > 0:
        loader_cfg['batch_size'] = args.batch_size
    if args.max_images > 0:
        loader_cfg['dataset']['indices'] = args.max_images
    single_cfg = copy.deepcopy(loader_cfg)
    single_cfg['batch_size'] = 1
    loader = Runner.build_dataloader(loader_cfg)
    print(f'{len(loader.dataset)} validation images, batch size {loader_cfg["batch_size"]}')
    progress = ProgressBar(len(loader.dataset))

    def tracked(batches):
        for batch in batches:
            yield batch
            for _ in batch['data_samples']:
                progress.update()

    # Router scores over the validation set. With --eval both routes predict every image once; their
    # predictions carry the router score (B1 + router run in either route), so B1 is not run a third time.
    preds = {1: [], 2: []}
    if args.eval:
        for batch in tracked(loader):
            for route in (1, 2):
                with model.routing(route=route):
                    preds[route] += model.test_step(copy.deepcopy(batch))
        scores = [float(p.router_score) for p in preds[1]]
    else:
        scores = router_scores(model, tracked(loader))
    print()

    singles = []
    for batch in Runner.build_dataloader(single_cfg):
        singles.append(batch)
        if len(singles) >= max(args.latency_images, args.flops_images, 1):
            break
    lat = {r: route_latency_ms(model, singles[:max(1, args.latency_images)], r) for r in (1, 2)}
    flops = {r: route_flops(model, singles[:max(1, args.flops_images)], r) for r in (1, 2)}
    print(f'route 1 (B1 + D1):      {lat[1]:8.1f} ms/img  {flops[1] / 1e9:8.2f} GFLOPs')
    print(f'route 2 (B1 + B2 + D2): {lat[2]:8.1f} ms/img  {flops[2] / 1e9:8.2f} GFLOPs')

    def evaluate(tau: float) -> Dict[str, float]:
        evaluator = Evaluator(copy.deepcopy(cfg.val_evaluator))
        evaluator.dataset_meta = loader.dataset.metainfo
        # each prediction already carries its route and router score; the metrics only read them
        hard = hard_mask(scores, tau).tolist()  # the model's routing rule
        evaluator.process([p2 if h else p1 for h, p1, p2 in zip(hard, preds[1], preds[2])])
        return evaluator.evaluate(len(scores))

    rows = []
    targets = [(i * args.step / 100.0, None) for i in range(int(round(100 / args.step)) + 1)]
    targets += [(ratio_for_latency(t, lat[1], lat[2]), t) for t in args.target_latency]
    for ratio, target in targets:
        tau = threshold_for_hard_ratio(scores, ratio)
        real = hard_ratio_at(scores, tau)
        row = dict(target_hard_ratio=ratio, target_latency_ms=target, threshold=tau, hard_ratio=real,
                   gflops=mix(flops[1], flops[2], real) / 1e9, latency_ms=mix(lat[1], lat[2], real))
        if args.eval:
            metrics = evaluate(tau)
            row['bbox_mAP'] = float(metrics.get('coco/bbox_mAP', float('nan')))
        rows.append(row)

    header = f'{"target":>14} {"threshold":>10} {"hard %":>7} {"GFLOPs":>8} {"ms/img":>8}'
    print(header + (f' {"bbox_mAP":>9}' if args.eval else ''))
    for row in rows:
        target = (f'{row["target_latency_ms"]:.1f} ms' if row['target_latency_ms'] is not None
                  else f'{100 * row["target_hard_ratio"]:.0f}% hard')
        line = (f'{target:>14} {row["threshold"]:10.4f} {100 * row["hard_ratio"]:7.1f} '
                f'{row["gflops"]:8.2f} {row["latency_ms"]:8.1f}')
        print(line + (f' {row["bbox_mAP"]:9.3f}' if args.eval else ''))

    if args.eval and all(r['bbox_mAP'] != r['bbox_mAP'] for r in rows):
        print('note: no detection passed test_cfg.score_thr at any threshold, so CocoMetric returned no AP '
              '(an undertrained model?); try --cfg-options model.test_cfg.score_thr=0.0')
    result = dict(config=osp.abspath(args.config), checkpoint=osp.abspath(args.checkpoint),
                  route_latency_ms={str(k): v for k, v in lat.items()},
                  route_gflops={str(k): v / 1e9 for k, v in flops.items()}, scores=scores, rows=rows)
    if args.out:
        from mmdynbnn.utils import atomic_write_json
        atomic_write_json(result, args.out, indent=2)
        print(f'wrote {args.out}')
    if args.plot:
        import matplotlib
        matplotlib.use('Agg')
        import matplotlib.pyplot as plt
        table = [r for r in rows if r['target_latency_ms'] is None]
        xs = [r['latency_ms'] for r in table]
        with_ap = args.eval and any(r['bbox_mAP'] == r['bbox_mAP'] for r in table)  # not all NaN
        key, label = ('bbox_mAP', 'COCO bbox mAP') if with_ap else ('gflops', 'GFLOPs')
        ys = [r[key] for r in table]
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.plot(xs, ys, 'o-')
        for r, x, y in zip(table, xs, ys):
            ax.annotate(f'{100 * r["hard_ratio"]:.0f}%', (x, y), fontsize=7)
        ax.set_xlabel('latency per image (ms, this machine)')
        ax.set_ylabel(label)
        ax.set_title('DynamicDet: accuracy-speed by threshold (label: hard %)')
        fig.tight_layout()
        from mmdynbnn.utils import atomic_path
        with atomic_path(args.plot, suffix=osp.splitext(args.plot)[1]) as tmp:  # savefig reads the extension
            fig.savefig(tmp, dpi=100)
        print(f'wrote {args.plot}')


if __name__ == '__main__':
    main()

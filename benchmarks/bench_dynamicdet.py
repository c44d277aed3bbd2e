"""Latency of DynamicDet's batched per-image routing vs. the linear mix of its two routes (not a test).

Runs a Dy-RetinaNet (default: the bundled-data R18 config, random weights unless ``--checkpoint``) on one
batch of ``--batch`` images and times: route 1 for all, route 2 for all, and the dynamic model with tau
chosen so that exactly 10 / 50 / 90 % of the batch is hard. For each hard share k it prints
``dynamic / ((1 - k) * route1 + k * route2)``; the goal is within 5 % of 1. Measurements are interleaved
over ``--repeats`` rounds and the median is kept (the machine may be shared).

Example::

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_dynamicdet.py --batch 10 --size 320 --repeats 3
"""
import argparse
import copy
import os.path as osp
import statistics
import time

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..'))


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument('--config', default=osp.join(ROOT, 'configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step2.py'))
    p.add_argument('--checkpoint', default=None)
    p.add_argument('--batch', type=int, default=10)
    p.add_argument('--size', type=int, default=320)
    p.add_argument('--repeats', type=int, default=3)
    p.add_argument('--ratios', type=float, nargs='+', default=[0.1, 0.5, 0.9])
    p.add_argument('--flops', action='store_true', help='also count per-route FLOPs (one image)')
    p.add_argument('--mode', choices=['tensor', 'predict'], default='tensor',
                   help="tensor: network only (what get_flops counts); predict: + box decoding and NMS, whose "
                        "cost depends on how many boxes pass score_thr (data- and weight-dependent)")
    return p.parse_args()


def main() -> None:
    args = parse_args()
    cfg = Config.fromfile(args.config)
    init_default_scope('mmdet')
    import mmdynbnn.det  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.structures import DetDataSample
    from mmengine.runner import load_checkpoint

    from mmdynbnn.det.calibration import mix, route_flops, threshold_for_hard_ratio

    from mmengine.logging import MMLogger
    MMLogger.get_current_instance().setLevel('WARNING')  # no per-parameter init log
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    if args.checkpoint:
        load_checkpoint(model, args.checkpoint, map_location='cpu', strict=True)
    model.eval()
    n, s = args.batch, args.size
    inputs = torch.randn(n, 3, s, s)
    meta = dict(img_shape=(s, s), ori_shape=(s, s), pad_shape=(s, s), batch_input_shape=(s, s),
                scale_factor=(1.0, 1.0))
    samples = [DetDataSample(metainfo=dict(meta, img_id=i)) for i in range(n)]

    with torch.inference_mode():
        scores = model.easy_scores(model.backbone.forward_b1(inputs)).tolist()
    settings = {'route 1': dict(route=1), 'route 2': dict(route=2)}
    for k in args.ratios:
        settings[f'{round(100 * k)}% hard'] = dict(route=None, threshold=threshold_for_hard_ratio(scores, k))

    def run(setting):
        model.set_dynamic(threshold=setting.get('threshold'), route=setting['route'])
        batch_samples = copy.deepcopy(samples)
        with torch.inference_mode():
            start, cpu_start = time.perf_counter(), time.process_time()
            if args.mode == 'predict':
                model.predict(inputs, batch_samples, rescale=False)
            else:
                model(inputs, batch_samples, mode='tensor')
            elapsed = (time.perf_counter() - start, time.process_time() - cpu_start)
            _, _, _, hard_mask = model._route(inputs)
        return elapsed, float(hard_mask.float().mean())

    run(settings['route 1'])  # warm-up
    times = {name: [] for name in settings}
    hard = {}
    for _ in range(args.repeats):
        for name, setting in settings.items():
            t, h = run(setting)
            times[name].append(t)
            hard[name] = h
    # wall-clock latency, and process CPU time (a steadier proxy when other jobs share the cores)
    lat = {name: 1000 * statistics.median(t[0] for t in v) / n for name, v in times.items()}
    cpu = {name: 1000 * statistics.median(t[1] for t in v) / n for name, v in times.items()}
    print(f'config: {osp.relpath(args.config, ROOT)}  batch {n} x {s}x{s}  threads {torch.get_num_threads()}  '
          f'repeats {args.repeats}  mode {args.mode}')
    if args.flops:
        one = dict(inputs=[torch.randint(0, 255, (3, s, s), dtype=torch.uint8)],
                   data_samples=[DetDataSample(metainfo=dict(meta, img_id=0))])
        f1, f2 = (route_flops(model, [one], r) / 1e9 for r in (1, 2))
        print(f'FLOPs per image: route 1 {f1:.2f} G, route 2 {f2:.2f} G')
    for label, table in (('wall clock', lat), ('process CPU time', cpu)):
        print(f'-- {label}: route 1 {table["route 1"]:.1f} ms/img, route 2 {table["route 2"]:.1f} ms/img '
              f'(x{table["route 2"] / table["route 1"]:.2f})')
        print(f'{"setting":>10} {"hard":>6} {"dynamic ms/img":>15} {"linear mix":>11} {"ratio":>7}')
        for name in settings:
            if name.startswith('route'):
                continue
            expected = mix(table['route 1'], table['route 2'], hard[name])
            print(f'{name:>10} {100 * hard[name]:5.0f}% {table[name]:15.1f} {expected:11.1f} '
                  f'{table[name] / expected:7.3f}')


if __name__ == '__main__':
    main()

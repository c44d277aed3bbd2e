"""Search throughput on CPU for the CIFAR space: candidates evaluated per minute (BN recalibration +
top-1 on the held-out split), with the settings of ``configs/nasbnn/nasbnn-search_cifar10-mini.py``
(64 calibration images in 2 batches of 32, 50 held-out images) on the bundled sample.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_search.py [--n 40] [--calib-images 64]
        [--holdout 5] [--no-cache]
"""
import argparse
import random
import time

import torch
from mmengine.config import Config
from mmengine.registry import DefaultScope

CONFIG = 'configs/nasbnn/nasbnn-search_cifar10-mini.py'


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n', type=int, default=40, help='random subnets to evaluate')
    p.add_argument('--calib-images', type=int, default=None)
    p.add_argument('--holdout', type=int, default=None, help='held-out images per class')
    p.add_argument('--no-cache', action='store_true', help='decode the held-out images for every candidate')
    args = p.parse_args()
    import mmdynbnn.cls  # noqa: F401
    from mmdynbnn.nas import sample_subnet
    from mmdynbnn.nas.bn_recalib import recalibrate_bn
    from mmdynbnn.nas.search import CandidateEvaluator, SearchSettings, build_classifier, build_search_data

    cfg = Config.fromfile(CONFIG)
    overrides = {k: v for k, v in dict(calib_images=args.calib_images, holdout=args.holdout).items()
                 if v is not None}
    settings = SearchSettings.from_config(dict(cfg.search, cache_holdout=not args.no_cache, **overrides))
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        torch.manual_seed(0)
        model = build_classifier(cfg).eval()
        t = time.perf_counter()
        loader, calib, info = build_search_data(cfg, settings)
        ev = CandidateEvaluator(model, calib, loader, settings.cache_holdout)
        setup = time.perf_counter() - t
        space = model.backbone.space
        rng = random.Random(0)
        nets = [sample_subnet(space, rng) for _ in range(args.n)]
        ev(nets[0])  # warm-up
        t_cal = 0.0
        t = time.perf_counter()
        for net in nets:
            t0 = time.perf_counter()
            model.backbone.set_subnet(net)
            recalibrate_bn(model, ev.calib_inputs)
            t_cal += time.perf_counter() - t0
            ev(net)  # recalibrates again + evaluates
        total = time.perf_counter() - t - t_cal  # = the evaluator calls alone
    per = total / args.n
    cal = t_cal / args.n
    print(f'CIFAR space, {len(info["calib_indices"])} calibration images in {len(calib)} batches, '
          f'{len(info["holdout_indices"])} held-out images (cache_holdout={settings.cache_holdout}), '
          f'{torch.get_num_threads()} thread(s); one-off data setup {setup:.1f}s')
    print(f'{args.n} candidates: {per:.3f}s/candidate = {60 / per:.0f} candidates/min '
          f'(BN recalibration {cal:.3f}s = {100 * cal / per:.0f}%, evaluation {per - cal:.3f}s)')


if __name__ == '__main__':
    main()

"""Bi-Teacher iteration vs static-subnet iteration: time and peak memory, side by side, as ratios.

    PYTHONPATH=. OMP_NUM_THREADS=1 python benchmarks/bench_biteacher.py \
        [--config configs/nasbnn/nasbnn-supernet_bi-teacher_cifar10-mini.py] [--batch 32] [--iters 10]

Each variant runs in its own fresh process (same config, same batch, Adam through mmengine's
``OptimWrapper``, ``train_step`` as the runner calls it):

- ``bi-teacher``: the supernet classifier's full iteration (4 forward/backward passes, one step);
- ``static-biggest`` / ``static-smallest``: an ``ImageClassifier`` with the static ``NASBNN`` of that
  subnet (the most / least expensive single pass of a Bi-Teacher iteration), plain CE.

Time: median seconds per iteration after warm-up. Peak memory: ``torch.cuda.max_memory_allocated`` on
GPU; on CPU the growth of the process's peak RSS (``ru_maxrss``) from before the first training step
(activations, gradients, optimizer state, allocator slack), plus the
bytes of activations saved for backward in one iteration (exact, allocator-independent).
"""
import argparse
import multiprocessing as mp
import os
import os.path as osp
import resource
import statistics
import time

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))


def build(config: str, variant: str):
    import torch
    from mmengine.config import Config
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(config)
    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    from mmpretrain.registry import MODELS
    model_cfg = cfg.model.to_dict()
    if variant != 'bi-teacher':
        from mmdynbnn.nas import build_subnet
        subnet = build_subnet(variant.split('-')[1], model_cfg['backbone']['space'])
        model_cfg = dict(
            type='ImageClassifier', data_preprocessor=cfg.get('data_preprocessor'),
            backbone=dict(type='NASBNN', space=model_cfg['backbone']['space'], subnet=subnet.to_config(),
                          out_indices=model_cfg['backbone'].get('out_indices', (-1,))),
            neck=dict(type='GlobalAveragePooling'),
            head=dict(type='LinearClsHead', num_classes=model_cfg['head']['num_classes'],
                      in_channels=subnet.stage_out_channels()[-1]))
    else:
        model_cfg['data_preprocessor'] = cfg.get('data_preprocessor')
        model_cfg['sampler_seed'] = 0  # the same random students in every benchmark run
    torch.manual_seed(0)
    return MODELS.build(model_cfg), cfg


def measure(config: str, variant: str, batch: int, iters: int, warmup: int, queue) -> None:
    import torch
    from mmengine.optim import OptimWrapper
    from mmpretrain.structures import DataSample

    torch.set_num_threads(int(os.environ.get('OMP_NUM_THREADS', '1')))
    model, cfg = build(config, variant)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    model.to(device).train()
    size = cfg.model.backbone.space.get('input_size', 32)
    classes = cfg.model.head.num_classes
    g = torch.Generator().manual_seed(0)
    data = dict(inputs=[torch.randint(0, 256, (3, size, size), generator=g, dtype=torch.uint8)
                        for _ in range(batch)],
                data_samples=[DataSample().set_gt_label(i % classes) for i in range(batch)])
    optim = OptimWrapper(torch.optim.Adam(model.parameters(), lr=1e-3))

    def step():
        model.train_step(data, optim)
        if device == 'cuda':
            torch.cuda.synchronize()

    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # model, data: no training yet
    for _ in range(warmup):
        step()
    # Activation bytes saved for backward in one iteration (parameters excluded: they are not new memory).
    params = {p.data_ptr() for p in model.parameters()}
    saved = []

    def pack(t):
        if t.data_ptr() not in params:
            saved.append(t.numel() * t.element_size())
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        step()
    if device == 'cuda':
        torch.cuda.reset_peak_memory_stats()
    times = []
    for _ in range(iters):
        t = time.perf_counter()
        step()
        times.append(time.perf_counter() - t)
    peak = (torch.cuda.max_memory_allocated() if device == 'cuda'
            else (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) * 1024)
    queue.put(dict(variant=variant, time=statistics.median(times), saved=sum(saved), peak=peak,
                   device=device))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--config', default=osp.join(REPO, 'configs/nasbnn/nasbnn-supernet_bi-teacher_cifar10-mini.py'))
    p.add_argument('--batch', type=int, default=32)
    p.add_argument('--iters', type=int, default=10)
    p.add_argument('--warmup', type=int, default=3)
    args = p.parse_args()
    ctx = mp.get_context('spawn')
    results = {}
    for variant in ('bi-teacher', 'static-biggest', 'static-smallest'):
        q = ctx.Queue()
        proc = ctx.Process(target=measure, args=(args.config, variant, args.batch, args.iters, args.warmup, q))
        proc.start()
        results[variant] = q.get()
        proc.join()
    bt = results['bi-teacher']
    print(f"config {osp.basename(args.config)}, batch {args.batch}, {args.iters} timed iterations, "
          f"device {bt['device']}, threads {os.environ.get('OMP_NUM_THREADS', 'default')}")
    print(f"{'variant':<16}{'s/iter':>10}{'time ratio':>12}{'saved act. MiB':>16}{'act. ratio':>12}"
          f"{'peak MiB':>10}{'peak ratio':>12}")
    for name, r in results.items():
        print(f"{name:<16}{r['time']:>10.4f}{bt['time'] / r['time']:>12.2f}{r['saved'] / 2**20:>16.2f}"
              f"{bt['saved'] / r['saved']:>12.2f}{r['peak'] / 2**20:>10.1f}"
              f"{(bt['peak'] / r['peak'] if r['peak'] > 0 else float('nan')):>12.2f}")
    print('ratios = bi-teacher / variant (the bi-teacher row is 1.00 by definition)')


if __name__ == '__main__':
    main()

"""Throughput of the analytic OPs (``mmdynbnn.nas.subnet_ops``) on random subnets of the ImageNet space.

    PYTHONPATH=. python benchmarks/bench_subnet_ops.py [--n 20000]
"""
import argparse
import random
import time

from mmdynbnn.nas import Subnet, build_space, sample_subnet, subnet_ops


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('--n', type=int, default=20000)
    args = p.parse_args()
    space = build_space()
    rng = random.Random(0)
    nets = [sample_subnet(space, rng) for _ in range(args.n)]
    t = time.perf_counter()
    ops = [subnet_ops(n, space).ops for n in nets]
    dt = time.perf_counter() - t
    print(f'{args.n} subnets in {dt:.3f} s: {args.n / dt:,.0f} subnets/s '
          f'(OPs {min(ops) / 1e6:.1f}M .. {max(ops) / 1e6:.1f}M)')
    for name in ('biggest', 'smallest'):
        o = subnet_ops(getattr(Subnet, name)(space), space)
        print(f'{name}: {o.ops / 1e6:.3f}M OPs (FLOPs {o.flops / 1e6:.3f}M + BOPs {o.bops / 1e6:.1f}M / 64) '
              f'at {space.input_size}x{space.input_size}, {space.num_classes} classes')


if __name__ == '__main__':
    main()

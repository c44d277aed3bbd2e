"""Bit-packed binary conv vs float, per layer and end to end, measured in one run (issue 6, §3).

The model is the real static NAS-BNN backbone (``mmdynbnn.models.backbones.NASBNN``) of the default
(ImageNet) space's biggest subnet (docs/nasbnn.md), as the classifier of
``configs/nasbnn/nasbnn-subnet_finetune_8xb64_in1k.py`` (NASBNN -> global average pooling -> 1000-class
FC; ``--backbone-only`` drops the head). Weights are random, every BN statistic / RSign / RPReLU
parameter randomised (timings do not depend on the values).

Per layer: every distinct binary conv shape of that model at 224x224 (taken from a forward pass; ``n`` =
how many layers have it), batch 1. ``packed`` times the whole deploy op from a float input: sign + bit
packing + XOR/popcount conv + fused scale/bias (input in channels_last, as the previous deploy layer
emits it). ``fp32`` is torch's ``conv2d`` on the same shape, the faster of NCHW and channels_last input.

End to end: ``convert_to_deploy(model)`` vs (a) the float-simulated eval model (training code,
``model.eval()``), (b) the same float simulation with the binarised weights cached and BN folded, and
(c) plain float convs of the same architecture (nn.Conv2d everywhere, BN folded), batch 1.
Every number is a median of repeated runs, candidates interleaved round-robin (other processes share
this machine); at 1 thread the thread CPU-time ratio, immune to descheduling, is printed as well.

    PYTHONPATH=. python benchmarks/bench_bitpacked.py [--quick] [--threads 1 2] [--isa avx2] [--backbone-only]
"""
import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mmdynbnn.deploy import (FusedRPReLU, PackedBinaryConv2d, convert_to_deploy, describe_backend, fold_batchnorms,  # noqa
                             kernel_options)
from mmdynbnn.deploy.io import build_model_from_config  # noqa: E402
from mmdynbnn.deploy.testing import randomize_  # noqa: E402
from mmdynbnn.models.backbones import NASBNN  # noqa: E402
from mmdynbnn.ops import BinaryConv2d, QuantConv2d, RSign  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CLASSIFIER_CFG = REPO / 'configs' / 'nasbnn' / 'nasbnn-subnet_finetune_8xb64_in1k.py'


def cpu_flags() -> str:
    try:
        with open('/proc/cpuinfo') as f:
            lines = f.read().splitlines()
    except OSError:
        return platform.processor()
    model = next((ln.split(':', 1)[1].strip() for ln in lines if ln.startswith('model name')), '?')
    flags = set(next((ln.split(':', 1)[1].split() for ln in lines if ln.startswith('flags')), []))
    wanted = ['popcnt', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'avx512_vpopcntdq', 'avx512_bitalg',
              'avx512_vnni', 'amx_tile']
    return f'{model}; flags: ' + ' '.join(f for f in wanted if f in flags)


def measure(fns: dict, min_runs=5, budget_s=0.4, warmup=1) -> dict:
    """Median wall-clock and calling-thread CPU seconds per function, runs interleaved round-robin so that
    load from other processes hits every candidate alike. The CPU time (``time.thread_time``) is immune
    to being descheduled but only meaningful with 1 thread (other threads' work is not counted)."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    wall = {k: [] for k in fns}
    cpu = {k: [] for k in fns}
    start = time.perf_counter()
    while len(next(iter(wall.values()))) < min_runs or (time.perf_counter() - start < budget_s
                                                        and len(next(iter(wall.values()))) < 200):
        for k, fn in fns.items():
            t0, c0 = time.perf_counter(), time.thread_time()
            fn()
            cpu[k].append(time.thread_time() - c0)
            wall[k].append(time.perf_counter() - t0)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in fns}


def build_model(backbone_only: bool = False) -> nn.Module:
    """The benchmarked model: biggest subnet of the ImageNet space, the real NASBNN backbone; by default
    the mmpretrain classifier of the fine-tuning config (GAP + FC 1000), randomised, eval mode."""
    torch.manual_seed(0)
    if backbone_only:
        model = NASBNN('biggest', None, out_indices=(4,))
    else:
        model = build_model_from_config(CLASSIFIER_CFG)
        assert type(model.backbone) is NASBNN
    return randomize_(model, seed=0).eval()


def backbone_of(model: nn.Module) -> NASBNN:
    return model if isinstance(model, NASBNN) else model.backbone


def forward_fn(model: nn.Module, x: torch.Tensor):
    """Batch-1 inference call: ``mode='tensor'`` (logits) for the mmpretrain classifier."""
    if isinstance(model, NASBNN):
        return lambda: model(x)
    return lambda: model(x, mode='tensor')


def layer_shapes(model: nn.Module, size: int = 224):
    """Distinct binary conv layers of ``model`` at ``size`` x ``size``, in network order:
    ``(name, conv, H_in, count)``, ``name`` as ``s<stage> <k>x<k>[ s2]`` (stages numbered from 1)."""
    seen, order = {}, []
    handles = []
    for qname, m in backbone_of(model).named_modules():
        if isinstance(m, BinaryConv2d):
            def hook(mod, inputs, qname=qname):
                h = inputs[0].shape[-1]
                key = (mod.in_channels, mod.out_channels, mod.kernel_size[0], mod.stride[0], mod.groups, h)
                if key in seen:
                    seen[key][3] += 1
                else:
                    k, st = mod.kernel_size[0], mod.stride[0]
                    name = f's{int(qname.split(".")[1]) + 1} {k}x{k}' + (' s2' if st == 2 else '')
                    seen[key] = [name, mod, h, 1]
                    order.append(key)
            handles.append(m.register_forward_pre_hook(hook))
    with torch.no_grad():
        backbone_of(model)(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return [tuple(seen[k]) for k in order]


def bench_layers(model: nn.Module, thread_counts, quick: bool):
    print('\n== per layer: packed (sign+pack+conv+scale/bias) vs torch fp32 conv2d, batch 1 ==')
    print(f'   every distinct binary conv of the NASBNN biggest subnet at 224x224 ({backbone_of(model).subnet}); '
          'n = layers with that shape')
    print('   1 thread: wall-clock median (and thread CPU-time median); all threads: wall-clock median')
    cols = ''
    for t in thread_counts:
        cols += f'{"fp32 ms":>9}{"packed ms":>10}{"ratio":>7}' + (f'{"cpu ratio":>10}' if t == 1 else '') + '  '
    print(f'{"layer":<12}{"shape":<26}{"n":>3}  ' + cols)
    budget = 0.2 if quick else 0.6
    results = []
    for name, conv, h, count in layer_shapes(model):
        cin, cout, k, s, g = conv.in_channels, conv.out_channels, conv.kernel_size[0], conv.stride[0], conv.groups
        gen = torch.Generator().manual_seed(0)
        packed = PackedBinaryConv2d.from_binary_conv(conv)
        x = torch.randn(1, cin, h, h, generator=gen)
        x_cl = x.contiguous(memory_format=torch.channels_last)
        w = conv.weight.detach().clone()
        row = f'{name:<12}{f"{cin}->{cout} g{g} @{h}x{h}":<26}{count:>3}  '
        per_thread = {}
        for t in thread_counts:
            torch.set_num_threads(t)
            with torch.no_grad():
                m = measure({'nchw': lambda: F.conv2d(x, w, None, s, k // 2, 1, g),
                             'cl': lambda: F.conv2d(x_cl, w, None, s, k // 2, 1, g),
                             'bin': lambda: packed(x_cl)}, budget_s=budget)
            fp = min(m['nchw'], m['cl'])
            per_thread[t] = (fp, m['bin'])
            row += f'{fp[0] * 1e3:9.3f}{m["bin"][0] * 1e3:10.3f}{fp[0] / m["bin"][0]:6.1f}x'
            row += (f'{fp[1] / m["bin"][1]:9.1f}x' if t == 1 else '') + '  '
        print(row, flush=True)
        results.append((name, count, per_thread))
    for t in thread_counts:
        fp = sum(c * r[t][0][0] for _, c, r in results)
        pk = sum(c * r[t][1][0] for _, c, r in results)
        print(f'all {sum(c for _, c, _ in results)} binary convs, {t} thread(s), sum of per-layer medians: '
              f'fp32 {fp * 1e3:.1f} ms, packed {pk * 1e3:.1f} ms, {fp / pk:.1f}x')
    return results


class CachedSignConv(nn.Module):
    """Float simulation with the binarised weight computed once: sign(x + b) then conv with alpha*sign(w),
    then out_scale/bias (the fastest honest float way to run the same binary layer)."""

    def __init__(self, conv: BinaryConv2d) -> None:
        super().__init__()
        self.weight = conv.effective_weight().detach().contiguous()
        self.threshold = None if conv.rsign is None else conv.rsign.bias.detach().view(1, -1, 1, 1)
        self.out_scale = None if conv.out_scale is None else conv.out_scale.detach().view(1, -1, 1, 1)
        self.bias = None if conv.bias is None else conv.bias.detach().view(1, -1, 1, 1)
        self.args = (conv.stride, conv.padding, conv.dilation, conv.groups)

    def forward(self, x):
        if self.threshold is not None:
            x = x + self.threshold
        x = torch.where(x >= 0, 1.0, -1.0)
        y = F.conv2d(x, self.weight, None, *self.args)
        if self.out_scale is not None:
            y = y * self.out_scale
        return y if self.bias is None else y + self.bias


def cached_float_sim(model: nn.Module) -> nn.Module:
    import copy
    model = copy.deepcopy(model)
    fold_batchnorms(model)

    def swap(module):
        for name, child in list(module.named_children()):
            if isinstance(child, BinaryConv2d):
                setattr(module, name, CachedSignConv(child))
            else:
                swap(child)

    swap(model)
    return model.eval()


def plain_float_copy(model: nn.Module) -> nn.Module:
    """Same architecture with ordinary float convs (no binarisation), BN folded: the float baseline."""
    import copy
    model = copy.deepcopy(model)

    def swap(module):
        for name, child in list(module.named_children()):
            if isinstance(child, (BinaryConv2d, QuantConv2d)):
                conv = nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                 child.padding, child.dilation, child.groups, bias=child.bias is not None)
                with torch.no_grad():
                    conv.weight.copy_(child.weight)
                setattr(module, name, conv)
            elif isinstance(child, RSign):
                setattr(module, name, nn.Identity())
            else:
                swap(child)

    swap(model)
    return fold_batchnorms(model).eval()


def profile_deploy(deploy: nn.Module, x: torch.Tensor, runs: int = 5) -> dict:
    """Where the deploy model's time goes: binary convs (pack + conv), stem/FC float convs, the rest."""
    spent = {'binary conv (pack+xor/popcount)': 0.0, 'float stem conv': 0.0, 'fused RPReLU': 0.0}
    stack = {}

    def pre(key):
        def hook(module, inputs):
            stack[id(module)] = time.thread_time()
        return hook

    def post(key):
        def hook(module, inputs, output):
            spent[key] += time.thread_time() - stack.pop(id(module))
        return hook

    handles = []
    for m in deploy.modules():
        key = ('binary conv (pack+xor/popcount)' if isinstance(m, PackedBinaryConv2d)
               else 'float stem conv' if type(m) is nn.Conv2d
               else 'fused RPReLU' if isinstance(m, FusedRPReLU) else None)
        if key:
            handles += [m.register_forward_pre_hook(pre(key)), m.register_forward_hook(post(key))]
    total = 0.0
    with torch.no_grad():
        deploy(x)
        for k in spent:
            spent[k] = 0.0
        for _ in range(runs):
            t = time.thread_time()
            deploy(x)
            total += time.thread_time() - t
    for h in handles:
        h.remove()
    out = {k: v / runs for k, v in spent.items()}
    out['other float ops (residual add, pooling, channel repeat, FC)'] = total / runs - sum(out.values())
    out['total'] = total / runs
    return out


def bench_end_to_end(model: nn.Module, thread_counts, quick: bool, size: int):
    what = 'NASBNN backbone' if isinstance(model, NASBNN) else 'ImageClassifier(NASBNN, GAP, FC 1000)'
    print(f'\n== end to end: {what}, biggest subnet of the ImageNet space, batch 1, {size}x{size} ==')
    print(f'   subnet: {backbone_of(model).subnet}')
    print('   float-sim eval = the training code in eval mode (re-binarises weights every forward);')
    print('   float-sim cached = same math with binarised weights precomputed and BN folded;')
    print('   plain float = same architecture with ordinary float convs, BN folded')
    deploy = convert_to_deploy(model)
    cached = cached_float_sim(model)
    plain = plain_float_copy(model)
    x = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    runs = 3 if quick else 7
    results = {}
    print(f'{"threads":<9}{"float-sim eval":>16}{"float-sim cached":>18}{"plain float":>13}{"deploy":>9}   '
          f'{"vs float-sim eval":>18}{"vs cached":>11}{"vs plain":>10}   (ms; ratios of medians)')
    for t in thread_counts:
        torch.set_num_threads(t)
        with torch.no_grad():
            m = measure({'sim': forward_fn(model, x), 'cached': forward_fn(cached, x),
                         'plain': forward_fn(plain, x), 'deploy': forward_fn(deploy, x)},
                        min_runs=runs, budget_s=0)
        results[t] = m
        for kind, idx in (('wall', 0), ('cpu', 1)):
            if kind == 'cpu' and t != 1:
                continue
            v = {k: m[k][idx] for k in m}
            label = f'{t}' + (' (cpu)' if kind == 'cpu' else '')
            print(f'{label:<9}{v["sim"] * 1e3:16.1f}{v["cached"] * 1e3:18.1f}{v["plain"] * 1e3:13.1f}'
                  f'{v["deploy"] * 1e3:9.1f}   {v["sim"] / v["deploy"]:17.1f}x{v["cached"] / v["deploy"]:10.1f}x'
                  f'{v["plain"] / v["deploy"]:9.1f}x', flush=True)
    torch.set_num_threads(thread_counts[0])
    prof = profile_deploy(deploy, x, runs=runs)
    print(f'deploy time breakdown at {thread_counts[0]} thread(s) (thread CPU time, forward hooks):')
    for k, v in prof.items():
        print(f'  {k:<62}{v * 1e3:8.1f} ms ({100 * v / prof["total"]:5.1f}%)')
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--threads', type=int, nargs='+', default=None,
                        help='thread counts (default: 1 and all available)')
    parser.add_argument('--quick', action='store_true', help='fewer repetitions')
    parser.add_argument('--isa', default=None, help='force an instruction set (scalar, popcnt, avx2, avx512)')
    parser.add_argument('--size', type=int, default=224, help='end-to-end input size')
    parser.add_argument('--skip-layers', action='store_true')
    parser.add_argument('--skip-e2e', action='store_true')
    parser.add_argument('--backbone-only', action='store_true',
                        help='end to end: the NASBNN backbone alone (default: the classifier with its FC head)')
    args = parser.parse_args()
    all_threads = os.cpu_count() or 1
    threads = args.threads or sorted({1, torch.get_num_threads(), all_threads})
    print(f'torch {torch.__version__}; {cpu_flags()}')
    print(f'kernel path: {describe_backend()}' + (f' (forced isa {args.isa})' if args.isa else ''))
    print(f'thread counts: {threads} (torch.get_num_threads() at start: {torch.get_num_threads()})')
    model = build_model(args.backbone_only)
    with kernel_options(isa=args.isa):
        if not args.skip_layers:
            bench_layers(model, threads, args.quick)
        if not args.skip_e2e:
            bench_end_to_end(model, threads, args.quick, args.size)


if __name__ == '__main__':
    main()

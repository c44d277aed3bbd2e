"""Convert a trained binary model (mmdynbnn BinaryConv2d layers) into a bit-packed deploy checkpoint.

Usage:
    python tools/deploy/convert.py CONFIG CHECKPOINT --out DEPLOY.pth [--shape 1 3 224 224]

Prints the active kernel path, the size of the binary conv weights as float vs packed (about 32x), the
checkpoint sizes, and the largest output difference between the float-simulated eval model and the
deploy model on a random input (``model(x, mode='tensor')`` for mmpretrain/mmdet models).
Load the result with ``mmdynbnn.deploy.io.load_deploy_model(CONFIG, DEPLOY.pth)``.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import torch


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config')
    parser.add_argument('checkpoint', help='training checkpoint (mmengine .pth); "none" = random init')
    parser.add_argument('--out', required=True, help='deploy checkpoint to write')
    parser.add_argument('--shape', type=int, nargs=4, default=None, metavar=('N', 'C', 'H', 'W'),
                        help='input shape of the verification forward (default 1 3 32 32 for classifiers '
                             'with CIFAR-sized inputs, else 1 3 224 224); 0 0 0 0 skips it')
    return parser.parse_args()


def forward_tensor(model, x):
    try:
        return model(x, mode='tensor')
    except TypeError:
        return model(x)


def flat(out):
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, (list, tuple)):
        return [t for o in out for t in flat(o)]
    if isinstance(out, dict):
        return [t for o in out.values() for t in flat(o)]
    return []


def main():
    args = parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # this checkout's mmdynbnn
    from mmdynbnn.deploy import convert_to_deploy, deploy_summary, describe_backend
    from mmdynbnn.deploy.io import build_model_from_config, save_deploy_checkpoint

    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = build_model_from_config(args.config, ckpt)
    print(f'kernel path: {describe_backend()}')
    start = time.time()
    deploy = convert_to_deploy(model)
    elapsed = time.time() - start
    s = deploy_summary(model, deploy)
    print(f'converted in {elapsed:.2f}s: {s["num_binary_convs"]} binary convs packed')
    size = save_deploy_checkpoint(deploy, args.out, meta=dict(config=str(args.config), source=str(args.checkpoint)))
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, 'float.pth')
        torch.save({'state_dict': model.state_dict()}, float_path)
        float_size = os.path.getsize(float_path)
    print(f'binary conv weights: float {s["binary_weights_float_bytes"] / 1e6:.3f} MB -> packed '
          f'{s["binary_weights_packed_bytes"] / 1e6:.3f} MB '
          f'({s["binary_weights_float_bytes"] / max(1, s["binary_weights_packed_bytes"]):.1f}x smaller; '
          f'{s["binary_weights_float_bytes"] / max(1, s["binary_weights_bit_bytes"]):.1f}x without block padding)')
    print(f'checkpoint (state dict only): float {float_size / 1e6:.3f} MB -> deploy {size / 1e6:.3f} MB '
          f'({float_size / size:.1f}x smaller; float stem/FC/other layers stay float)')
    print(f'saved deploy checkpoint: {args.out}')
    shape = args.shape
    if shape is None:
        shape = (1, 3, 32, 32) if 'cifar' in str(args.config).lower() else (1, 3, 224, 224)
    if all(v > 0 for v in shape):
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref, out = flat(forward_tensor(model, x)), flat(forward_tensor(deploy, x))
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, out))
        scale = max(float(a.abs().max()) for a in ref)
        print(f'verification on random input {tuple(shape)}: max |float-sim - deploy| = {diff:.3g} '
              f'(outputs up to {scale:.3g})')


if __name__ == '__main__':
    main()

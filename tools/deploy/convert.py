"""Convert a trained binary model (mmdynbnn BinaryConv2d layers) into a bit-packed deploy checkpoint.

Usage:
    python tools/deploy/convert.py CONFIG CHECKPOINT --out DEPLOY.pth [--shape 1 3 224 224] [--allow-no-binary]

Prints the active kernel path, the size of the binary conv weights as float vs packed (about 32x), the
checkpoint sizes, and the largest output difference between the float-simulated eval model and the
deploy model on a random input (``model(x, mode='tensor')`` for mmpretrain/mmdet models). The check runs
before anything is written; the output is written atomically (an existing ``--out`` stays intact until
the new file is complete) with a content hash checked on load. A model without any binary conv is refused
unless ``--allow-no-binary`` is given (its "deploy" checkpoint would be the float model).
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
    parser.add_argument('--allow-no-binary', action='store_true',
                        help='write a deploy checkpoint even if the model has no binary conv to pack')
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

    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise FileNotFoundError(f'--out {args.out}: folder {out_dir} does not exist')
    ckpt = None if args.checkpoint.lower() == 'none' else args.checkpoint
    model = build_model_from_config(args.config, ckpt)
    print(f'kernel path: {describe_backend()}')
    start = time.time()
    deploy = convert_to_deploy(model)
    elapsed = time.time() - start
    s = deploy_summary(model, deploy)
    print(f'converted in {elapsed:.2f}s: {s["num_binary_convs"]} binary convs packed')
    if s['num_binary_convs'] == 0 and not args.allow_no_binary:
        raise SystemExit(f'error: {args.config} has no binary conv (BinaryConv2d) to pack: the deploy checkpoint '
                         f'would be the float model. Convert a binary model, or pass --allow-no-binary; '
                         f'{args.out} was not written')
    shape = args.shape
    if shape is None:
        shape = (1, 3, 32, 32) if 'cifar' in str(args.config).lower() else (1, 3, 224, 224)
    if all(v > 0 for v in shape):  # verify before anything is written
        x = torch.randn(*shape, generator=torch.Generator().manual_seed(0))
        with torch.no_grad():
            ref, out = flat(forward_tensor(model, x)), flat(forward_tensor(deploy, x))
        if len(ref) != len(out) or not ref:
            raise SystemExit(f'error: the deploy model returns {len(out)} tensors, the float model {len(ref)}; '
                             f'{args.out} was not written')
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, out))
        scale = max(float(a.abs().max()) for a in ref)
        print(f'verification on random input {tuple(shape)}: max |float-sim - deploy| = {diff:.3g} '
              f'(outputs up to {scale:.3g})')
        if not diff <= 1e-2 * max(1.0, scale):  # a broken conversion, not float rounding
            raise SystemExit(f'error: the deploy model differs from the float model by {diff:.3g} (outputs up to '
                             f'{scale:.3g}); {args.out} was not written')
    with tempfile.TemporaryDirectory() as tmp:
        float_path = os.path.join(tmp, 'float.pth')
        torch.save({'state_dict': model.state_dict()}, float_path)
        float_size = os.path.getsize(float_path)
    size = save_deploy_checkpoint(deploy, args.out, meta=dict(config=str(args.config), source=str(args.checkpoint)))
    print(f'binary conv weights: float {s["binary_weights_float_bytes"] / 1e6:.3f} MB -> packed '
          f'{s["binary_weights_packed_bytes"] / 1e6:.3f} MB '
          f'({s["binary_weights_float_bytes"] / max(1, s["binary_weights_packed_bytes"]):.1f}x smaller; '
          f'{s["binary_weights_float_bytes"] / max(1, s["binary_weights_bit_bytes"]):.1f}x without block padding)')
    print(f'checkpoint (state dict only): float {float_size / 1e6:.3f} MB -> deploy {size / 1e6:.3f} MB '
          f'({float_size / size:.1f}x smaller; float stem/FC/other layers stay float)')
    print(f'saved deploy checkpoint: {args.out}')


if __name__ == '__main__':
    main()

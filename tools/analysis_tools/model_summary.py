"""Per-layer cost table of a config's model with NAS-BNN's rules: kind (binary / int8 / float), params,
weight memory in bits, FLOPs, BOPs and OPs = FLOPs + BOPs/64, with totals.

Example::

    python tools/analysis_tools/model_summary.py configs/binary_resnet/resnet18-bconv_cifar10-mini.py --shape 32
"""
import argparse

from mmengine.config import Config, DictAction

from mmdynbnn.analysis import summarize_config


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description='Per-layer FLOPs/BOPs/OPs table of a model config')
    parser.add_argument('config', help='mmdet or mmpretrain config file')
    parser.add_argument('--shape', type=int, nargs='+', default=[224, 224],
                        help='input size: H W, or one value for a square input (default 224 224)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, as in the stock tools')
    return parser.parse_args()


def main() -> None:
    args = parse_args()
    if len(args.shape) not in (1, 2):
        raise SystemExit(f'--shape takes 1 or 2 values (H [W]), got {args.shape}')
    shape = tuple(args.shape * 2 if len(args.shape) == 1 else args.shape)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    summary = summarize_config(cfg, shape)
    print(f'Model of {args.config}, input (1, 3, {shape[0]}, {shape[1]}):')
    print(summary.table())


if __name__ == '__main__':
    main()

"""NAS-BNN evolutionary search over a trained supernet, with export of a searched subnet.

    python tools/nas/search.py SEARCH_CONFIG SUPERNET_CKPT --work-dir DIR [--resume [STATE]]
        [--export-ops M | --export-index K] [--export-name NAME] [--export-only]
        [--launcher pytorch] [--cfg-options k=v ...]

SEARCH_CONFIG is a supernet (BiTeacherClassifier) config plus a ``search = dict(...)`` section (see
``configs/nasbnn/nasbnn-search_*.py``, ``mmdynbnn.nas.search.SearchSettings``) and optionally
``search_export = dict(finetune_config=..., detection_config=...)``. Writes into DIR:
``search_state.json`` (after every generation), ``search_results.json`` (every candidate + the Pareto
front), ``search_results.png``, ``search_<time>.log``. ``--resume`` continues from DIR/search_state.json
(if it exists) or the given file. With ``--launcher pytorch`` (torchrun) the candidates of a generation are
evaluated in parallel over the ranks (gloo on CPU, nccl on GPU).

Export (after the search, or from existing results with ``--export-only``): the most accurate front
subnet within ``--export-ops`` M OPs, or ``front[--export-index]``; its BN is recalibrated on the
calibration images, then ``tools/nas/export_subnet.py`` writes DIR/export/NAME.{pth,json,py} (the
classification config for the stock test.py/train.py) and this tool adds NAME_retinanet.py (the subnet as
an mmdet backbone with its exported weights in an FPN detector).
"""
import argparse
import os
import os.path as osp
import subprocess
import sys
import time

import torch

HERE = osp.dirname(osp.abspath(__file__))


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    p.add_argument('config', help='supernet config with a `search` section')
    p.add_argument('checkpoint', help='trained supernet checkpoint')
    p.add_argument('--work-dir', default=None, help='default: work_dirs/<config name>')
    p.add_argument('--resume', nargs='?', const='auto', default=None,
                   help='continue a search: the given state file, or WORK_DIR/search_state.json if it exists')
    p.add_argument('--export-ops', type=float, default=None, help='export the best front subnet within M OPs')
    p.add_argument('--export-index', type=int, default=None, help='export front[K] (front sorted by OPs)')
    p.add_argument('--export-name', default=None, help='file stem of the export (default: searched_<OPs>M)')
    p.add_argument('--export-only', action='store_true', help='skip the search, export from its results')
    p.add_argument('--no-progress', action='store_true', help='no progress bar')
    p.add_argument('--launcher', choices=['none', 'pytorch'], default='none')
    p.add_argument('--cfg-options', nargs='+', default=[], help='override config keys (key=value)')
    return p.parse_args()


def init_distributed() -> None:
    import torch.distributed as dist
    backend = 'nccl' if torch.cuda.is_available() else 'gloo'
    if torch.cuda.is_available():
        torch.cuda.set_device(int(os.environ.get('LOCAL_RANK', 0)))
    dist.init_process_group(backend)


def main() -> None:
    args = parse_args()
    from mmengine.config import Config, DictAction
    from mmengine.registry import init_default_scope

    cfg = Config.fromfile(args.config)  # imports mmdynbnn, mmdynbnn.cls (custom_imports)
    if args.cfg_options:
        opts = argparse.ArgumentParser()
        opts.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(opts.parse_args(['--o', *args.cfg_options]).o)

    from mmdynbnn.nas import build_space
    from mmdynbnn.nas.search import SearchSettings, file_digest, load_state

    # ---- checks that need no data and no model: fail before any evaluation
    settings = SearchSettings.from_config(cfg.get('search'))
    space = build_space(cfg.model['backbone'].get('space'))
    settings.window.check_reachable(space)
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'supernet checkpoint {args.checkpoint!r} not found (second argument)')
    if (args.export_ops is not None) and (args.export_index is not None):
        raise ValueError('give --export-ops or --export-index, not both')
    if args.export_only and args.export_ops is None and args.export_index is None:
        raise ValueError('--export-only needs --export-ops or --export-index')
    work_dir = args.work_dir or cfg.get('work_dir') or osp.join(
        'work_dirs', osp.splitext(osp.basename(args.config))[0])
    work_dir = osp.abspath(work_dir)
    identity = dict(checkpoint_sha256=file_digest(args.checkpoint))
    resume_from = None
    if args.resume is not None and not args.export_only:
        resume_from = osp.join(work_dir, 'search_state.json') if args.resume == 'auto' else args.resume
        if not osp.exists(resume_from):
            if args.resume != 'auto':
                raise FileNotFoundError(f'resume file {resume_from!r} not found')
            resume_from = None  # nothing saved yet: start from scratch
        else:
            load_state(resume_from, space, settings, identity)  # corrupt / foreign state: error now
    results_path = osp.join(work_dir, 'search_results.json')
    if args.export_only and not osp.isfile(results_path):
        raise FileNotFoundError(f'--export-only: {results_path} not found; run the search first')

    init_default_scope(cfg.get('default_scope', 'mmpretrain'))
    if args.launcher == 'pytorch':
        init_distributed()
    from mmengine.dist import get_dist_info
    from mmengine.logging import MMLogger
    from mmengine.runner import load_checkpoint

    from mmdynbnn.nas.search import CandidateEvaluator, EvolutionSearch, build_classifier, build_search_data

    from mmdynbnn.utils import remove_orphan_tmp_files

    rank, world = get_dist_info()
    os.makedirs(work_dir, exist_ok=True)
    logger = MMLogger.get_instance(f'nasbnn_search_{time.time_ns()}', logger_name='nasbnn_search',
                                   log_file=osp.join(work_dir, f'search_{time.strftime("%Y%m%d_%H%M%S")}.log'))
    if rank == 0:  # temporary files of a killed run (state, partial results, export)
        removed = remove_orphan_tmp_files(work_dir, recursive=True)
        if removed:
            logger.info(f'removed {len(removed)} temporary file(s) of an interrupted run: {removed[:5]}')
    torch.set_num_threads(max(1, int(os.environ.get('OMP_NUM_THREADS', torch.get_num_threads()))))

    model = build_classifier(cfg)  # with the config's data_preprocessor, as the stock tools build it
    load_checkpoint(model, args.checkpoint, map_location='cpu', logger=logger)
    device = torch.device(f'cuda:{torch.cuda.current_device()}' if torch.cuda.is_available() else 'cpu')
    model.to(device).eval()
    t0 = time.perf_counter()
    eval_loader, calib_batches, info = build_search_data(cfg, settings)
    evaluator = CandidateEvaluator(model, calib_batches, eval_loader, settings.cache_holdout)
    logger.info(f'search data: {len(info["holdout_indices"])} held-out training images (fitness), '
                f'{len(info["calib_indices"])} calibration images in {len(calib_batches)} batches, '
                f'of {info["num_train"]} training images ({time.perf_counter() - t0:.1f}s)')

    if args.export_only:
        import mmengine
        results = mmengine.load(results_path)
    else:
        logger.info(f'search settings: {settings}; space: {space.to_config()}; OPs window {settings.window}; '
                    f'{world} process(es)')
        search = EvolutionSearch(space, settings, evaluator, work_dir, logger=logger, resume_from=resume_from,
                                 meta=dict(config=osp.abspath(args.config),
                                           checkpoint=osp.abspath(args.checkpoint),
                                           holdout_indices=info['holdout_indices'],
                                           calib_indices=info['calib_indices']),
                                 progress=not args.no_progress, resume=args.resume is not None,
                                 identity=identity)
        results = search.run()
    if (args.export_ops is not None or args.export_index is not None) and rank == 0:
        export(args, cfg, model, evaluator, results, space, work_dir, logger)
    if world > 1:
        import torch.distributed as dist
        dist.barrier()
        dist.destroy_process_group()


def export(args, cfg, model, evaluator, results, space, work_dir, logger) -> None:
    from mmdynbnn.nas import Subnet, subnet_ops
    from mmdynbnn.nas.search import select_from_front
    from mmdynbnn.utils import atomic_open, save_checkpoint

    entry = select_from_front(results, args.export_ops, args.export_index)
    subnet = Subnet.from_config(entry['subnet'], space)
    acc = evaluator(subnet)  # activates the subnet and recalibrates BN on the calibration images
    logger.info(f'export: front subnet {subnet} ({entry["ops"]:.4f}M OPs, searched top-1 {entry["accuracy"]:.2f}, '
                f're-measured {acc:.2f})')
    name = args.export_name or f'searched_{entry["ops"]:.3f}M'
    out = osp.join(work_dir, 'export')
    os.makedirs(out, exist_ok=True)
    recal = osp.join(out, f'{name}_supernet-bnrecal.pth')
    save_checkpoint(model.state_dict(), recal,  # atomic, with a content hash checked on load
                    meta=dict(subnet=subnet.to_config(), note='supernet with BN recalibrated for the subnet'))
    subnet_file = osp.join(out, f'{name}_subnet.json')
    subnet.dump(subnet_file)
    extra = cfg.get('search_export', {}) or {}
    cmd = [sys.executable, osp.join(HERE, 'export_subnet.py'), osp.abspath(args.config), recal, '--subnet',
           subnet_file, '--out-dir', out, '--name', name]
    if extra.get('finetune_config'):
        cmd += ['--base-config', osp.abspath(extra['finetune_config'])]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f'export_subnet.py failed:\n{proc.stdout}\n{proc.stderr}')
    logger.info(proc.stdout.strip())
    ckpt = osp.join(out, f'{name}.pth')
    files = [f'{name}.py', f'{name}.pth', f'{name}.json']
    det_base = extra.get('detection_config')
    if det_base:
        n = len(space.stages)
        out_indices = tuple(range(max(0, n - 3), n))
        widths = [subnet.stage_out_channels()[i] for i in out_indices]
        ops = subnet_ops(subnet, space, num_classes=0).ops / 1e6
        with atomic_open(osp.join(out, f'{name}_retinanet.py'), 'w') as f:
            f.write(f'# The searched NAS-BNN subnet ({ops:.3f}M backbone OPs at {space.input_size}px) as an mmdet\n'
                    f'# backbone (its last {len(out_indices)} stages into the FPN), initialised from the exported\n'
                    f'# static weights {ckpt}\n'
                    f'_base_ = [{osp.abspath(det_base)!r}]\n'
                    f'search_space = {space.to_config()!r}\n'
                    f'subnet = {subnet.to_config()!r}\n'
                    f'model = dict(\n'
                    f'    backbone=dict(_delete_=True, type=\'NASBNN\', space=search_space, subnet=subnet,\n'
                    f'                  out_indices={out_indices!r}, frozen_stages=-1, norm_eval=False,\n'
                    f'                  init_cfg=dict(type=\'Pretrained\', checkpoint={ckpt!r},\n'
                    f'                                prefix=\'backbone.\')),\n'
                    f'    neck=dict(in_channels={widths!r}, start_level=0))\n')
        files.append(f'{name}_retinanet.py')
    logger.info(f'export: wrote {", ".join(files)} in {out}')


if __name__ == '__main__':
    main()

"""Run mmdet's own ``analysis_tools/benchmark.py`` on a machine without CUDA (or force it onto the CPU).

The stock script's ``--task inference`` moves the model to CUDA unconditionally and calls
``torch.cuda.synchronize`` around every ``test_step``, so it cannot run where there is no GPU -- which is
exactly where the bit-packed deploy backend and a CPU-only DynamicDet are meant to be measured. This tool runs
the unmodified stock script (found inside the installed mmdet) with only those CUDA calls redirected:

- ``Module.cuda()`` (torch's and mmengine's ``BaseModel``/``BaseDataPreprocessor`` overrides) → ``.to('cpu')``,
  so the data preprocessor also puts batches on the CPU;
- ``torch.cuda.synchronize()`` → no-op (CPU ops are synchronous);
- ``get_max_cuda_memory()`` → 0, and the log says so.

Everything else -- model building, ``--fuse-conv-bn``, the test dataloader at batch size 1, warm-up, the FPS
log -- is the stock code. All stock arguments pass through unchanged; with CUDA present and no ``--device cpu``
the stock script runs untouched.

Example::

    python tools/analysis_tools/benchmark_on_cpu.py configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step2.py \
        --checkpoint work_dirs/dy-retinanet_r18_fpn_coco-mini_step2/epoch_1.pth --task inference \
        --max-iter 16 --num-warmup 2 --log-interval 4 --cfg-options model.test_cfg.dynamic.threshold=0.5
"""
import argparse
import contextlib
import os.path as osp
import runpy
import sys
from typing import Iterator, List, Tuple
from unittest import mock


def stock_benchmark_path() -> str:
    import mmdet
    path = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools', 'analysis_tools', 'benchmark.py')
    if not osp.isfile(path):
        raise SystemExit(f'mmdet {mmdet.__version__} has no bundled tools/analysis_tools/benchmark.py '
                         f'(looked at {path}); install mmdet with its .mim tools (pip install mmdet==3.3.0)')
    return path


def split_args(argv: List[str]) -> Tuple[str, List[str]]:
    """Take our own ``--device`` out of ``argv``; everything else is the stock script's."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument('--device', choices=['auto', 'cpu'], default='auto',
                        help="'auto': the stock script as is when CUDA is available, on the CPU otherwise; "
                             "'cpu': always on the CPU")
    ours, rest = parser.parse_known_args(argv)
    return ours.device, rest


@contextlib.contextmanager
def cuda_calls_on_cpu() -> Iterator[None]:
    """Redirect the stock benchmark's CUDA-only calls to the CPU for the duration of the block."""
    import torch
    from mmengine.model import BaseDataPreprocessor, BaseModel

    import mmdet.utils.benchmark as stock_benchmark

    def to_cpu(self, *args, **kwargs):
        return self.to('cpu')

    with contextlib.ExitStack() as stack:
        for owner in (torch.nn.Module, BaseModel, BaseDataPreprocessor):
            stack.enter_context(mock.patch.object(owner, 'cuda', to_cpu))
        stack.enter_context(mock.patch.object(torch.cuda, 'synchronize', lambda *a, **k: None))
        stack.enter_context(mock.patch.object(stock_benchmark, 'get_max_cuda_memory', lambda *a, **k: 0))
        yield


def main(argv: List[str] = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    device, stock_args = split_args(argv)
    script = stock_benchmark_path()
    import torch
    on_cpu = device == 'cpu' or not torch.cuda.is_available()
    sys.argv = [script] + stock_args
    if not on_cpu:
        runpy.run_path(script, run_name='__main__')
        return
    print(f'[benchmark_on_cpu] running {script} on the CPU ({torch.get_num_threads()} threads); '
          "its 'cuda memory' lines read 0 MB", flush=True)
    with cuda_calls_on_cpu():
        runpy.run_path(script, run_name='__main__')


if __name__ == '__main__':
    main()

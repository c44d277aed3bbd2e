"""Which bit-packed kernel path is active: the C++ extension or the pure-torch reference.

Lookup order (first that works wins; done once, lazily, at the first use):

1. ``MMDYNBNN_BITPACK=reference`` forces the pure-torch reference path (no build attempted).
2. The extension built by ``setup.py`` (``mmdynbnn._bitpack_ext``: ``pip install -e .`` or
   ``python setup.py build_ext --inplace``).
3. A just-in-time build of ``csrc/bitpack`` with ``torch.utils.cpp_extension.load`` into a cache folder
   (``MMDYNBNN_BITPACK_CACHE``, default ``~/.cache/mmdynbnn/bitpack``); needs a C++ compiler and ninja,
   takes about a minute once, then loads from the cache. ``MMDYNBNN_BITPACK=no-jit`` skips this step.
4. Otherwise the pure-torch reference path (correct, not fast); :func:`backend_info` says why.
"""
import importlib
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Optional

logger = logging.getLogger('mmdynbnn.deploy')

ISA_NAMES = {0: 'scalar', 1: 'popcnt', 2: 'avx2', 3: 'avx512-vpopcntdq'}
CSRC = Path(__file__).resolve().parents[2] / 'csrc' / 'bitpack'
SOURCES = ('bitpack_kernels.cpp', 'bitpack_binding.cpp')
EXTRA_CFLAGS = ['-O3', '-ffp-contract=off', '-fno-strict-aliasing']

_state = {'loaded': False, 'ext': None, 'source': None, 'reason': None}


def _jit_build():
    from torch.utils import cpp_extension
    sources = [str(CSRC / name) for name in SOURCES]
    missing = [s for s in sources if not Path(s).is_file()]
    if missing:
        raise RuntimeError(f'C++ sources not found: {missing} (installed without csrc/?)')
    compiler = os.environ.get('CXX', 'c++')
    if shutil.which(compiler) is None:
        raise RuntimeError(f'no C++ compiler ({compiler!r}) on PATH')
    cache = Path(os.environ.get('MMDYNBNN_BITPACK_CACHE', Path.home() / '.cache' / 'mmdynbnn' / 'bitpack'))
    cache.mkdir(parents=True, exist_ok=True)
    if not any(cache.glob('*.so')):
        logger.warning('mmdynbnn.deploy: compiling the bit-packed C++ kernels into %s (one time, about a minute)',
                       cache)
    start = time.time()
    ext = cpp_extension.load(name='mmdynbnn_bitpack_jit', sources=sources, extra_cflags=EXTRA_CFLAGS,
                             extra_include_paths=[str(CSRC)], build_directory=str(cache), verbose=False)
    logger.info('bit-packed kernels: JIT build/load from %s took %.1fs', cache, time.time() - start)
    return ext


def _load() -> None:
    if _state['loaded']:
        return
    _state['loaded'] = True
    mode = os.environ.get('MMDYNBNN_BITPACK', '').strip().lower()
    if mode in ('reference', 'ref', 'torch'):
        _state['reason'] = 'MMDYNBNN_BITPACK=reference'
        return
    reasons = []
    try:
        _state['ext'] = importlib.import_module('mmdynbnn._bitpack_ext')
        _state['source'] = 'setup.py build (mmdynbnn._bitpack_ext)'
        return
    except ImportError as exc:
        reasons.append(f'no prebuilt extension ({exc})')
    if mode in ('no-jit', 'nojit'):
        reasons.append('JIT build disabled (MMDYNBNN_BITPACK=no-jit)')
    else:
        try:
            _state['ext'] = _jit_build()
            _state['source'] = 'JIT build (torch.utils.cpp_extension.load)'
            return
        except Exception as exc:  # compiler missing, build error: fall back, but say why
            reasons.append(f'JIT build failed: {type(exc).__name__}: {str(exc).strip()[-500:]}')
    _state['reason'] = '; '.join(reasons)
    logger.warning('mmdynbnn.deploy: C++ bit-packed kernels unavailable, using the pure-torch reference '
                   'path (correct but slow): %s', _state['reason'])


def get_extension():
    """The loaded C++ extension module, or ``None`` (reference path)."""
    _load()
    return _state['ext']


def backend_info() -> dict:
    """``{'path': 'cpp' | 'torch-reference', 'isa': ..., 'source': ..., 'reason': ...}``."""
    ext = get_extension()
    if ext is None:
        return {'path': 'torch-reference', 'isa': None, 'source': None, 'reason': _state['reason']}
    isa = int(ext.best_isa())
    return {'path': 'cpp', 'isa': ISA_NAMES[isa], 'source': _state['source'], 'reason': None}


def describe_backend() -> str:
    info = backend_info()
    if info['path'] == 'cpp':
        return f"bit-packed C++ kernels, {info['isa']} ({info['source']})"
    return f"pure-torch reference path ({info['reason']})"


def isa_level(name: Optional[str]) -> int:
    """``-1`` (best available) for ``None``, else the level of an ISA name such as ``'avx2'``."""
    if name is None:
        return -1
    for level, isa in ISA_NAMES.items():
        if isa == name or isa.split('-')[0] == name:
            return level
    raise ValueError(f'unknown instruction set {name!r}; allowed: {sorted(ISA_NAMES.values())}')

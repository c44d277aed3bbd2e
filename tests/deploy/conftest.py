"""Shared fixtures of the deploy tests: the active kernel path and the instruction sets to exercise."""
import os
import shutil
import sys
from pathlib import Path

import mmcv
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from mmdynbnn.deploy import backend_info  # noqa: E402
from mmdynbnn.deploy.backend import ISA_NAMES  # noqa: E402


def _has_compiler() -> bool:
    return shutil.which(os.environ.get('CXX', 'c++')) is not None


@pytest.fixture(scope='session')
def cpp_ext():
    """The C++ extension. Skips only when no C++ compiler exists (then the reference path is tested);
    with a compiler, a failed build is a test failure."""
    info = backend_info()
    if info['path'] != 'cpp':
        if not _has_compiler() or os.environ.get('MMDYNBNN_BITPACK', '').lower() in ('reference', 'ref', 'torch'):
            pytest.skip(f'C++ bit-packed kernels unavailable (no compiler or forced reference): {info["reason"]}')
        pytest.fail(f'a C++ compiler exists but the bit-packed extension did not load: {info["reason"]}')
    from mmdynbnn.deploy import get_extension
    return get_extension()


@pytest.fixture(scope='session')
def isas(cpp_ext):
    """Every instruction set this CPU can run (each is tested against the reference)."""
    return [ISA_NAMES[level] for level in range(int(cpp_ext.best_isa()) + 1)]


@pytest.fixture
def threads():
    """Restore torch's thread count after a test changes it."""
    old = torch.get_num_threads()
    yield
    torch.set_num_threads(old)


@pytest.fixture
def cifar_batch():
    """``cifar_batch(model, n=8)``: the first ``n`` bundled CIFAR-10 test images through the model's own
    data preprocessor."""
    def load(model, n: int = 8):
        paths = sorted((REPO / 'data' / 'cifar10_mini' / 'test').glob('*/*'))[:n]
        assert len(paths) == n, 'bundled data/cifar10_mini is missing'
        imgs = [torch.from_numpy(mmcv.imread(str(p))).permute(2, 0, 1).contiguous() for p in paths]
        return model.data_preprocessor({'inputs': imgs, 'data_samples': None})['inputs']
    return load

"""Checkpoints of mmengine load with torch.load(weights_only=True) after ``import mmdynbnn``, and nothing that
is built from the allow-listed globals can reach code: crafted checkpoints are refused and nothing runs, in
``torch.load`` and through the stock tools (test.py, --resume, load_from)."""
import builtins
import copyreg
import os
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import HistoryBuffer, MessageHub

import mmdynbnn  # noqa: F401  (registers the allow-list)
from mmdynbnn.utils.checkpoint import checkpoint_safe_globals

from .helpers import REPO, run_tool, stock_tool


class Call:
    """Pickles as ``func(*args)`` (a REDUCE), the building block of a crafted checkpoint."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args

    def __call__(self, *args):  # pickle wants a callable as a REDUCE's function (a Call may stand for one)
        raise NotImplementedError


def exec_payload(code: str, builtins_ref=None):
    """``_rebuild_from_type_v2(exec, Tensor, (code,), {})`` with ``exec`` fetched through ``getattr`` from the
    builtins module (``getattr(getattr, '__self__')``): only allow-listed globals appear in the pickle."""
    builtins_ref = builtins_ref if builtins_ref is not None else Call(getattr, getattr, '__self__')
    fetched_exec = Call(getattr, builtins_ref, 'exec')
    return Call(torch._tensor._rebuild_from_type_v2, fetched_exec, torch.Tensor, (code,), {})


def write_evil(path, marker):
    code = f"open({str(marker)!r}, 'w').write('code ran')"
    torch.save({'state_dict': {'w': torch.zeros(1)}, 'meta': {'x': exec_payload(code)}}, path)


def message_hub_state(name):
    hub = MessageHub.get_instance(name)
    for i in range(5):
        hub.update_scalar('train/loss', float(np.float32(1.0 / (i + 1))))
    hub.update_info('iter', np.int64(5))
    return hub.state_dict()


def test_message_hub_state_loads_weights_only(tmp_path):
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': message_hub_state('test_checkpoint_safety'),
                'meta': {'seed': np.int64(3), 'arr': np.arange(4.0), 'flag': np.bool_(True)}}, path)
    loaded = torch.load(path, weights_only=True)
    buf = loaded['message_hub']['log_scalars']['train/loss']
    assert type(buf) is HistoryBuffer  # a plain HistoryBuffer, not the checking subclass
    assert buf.current() == pytest.approx(0.2) and buf.statistics('mean') == pytest.approx(np.mean(
        [np.float32(1.0 / (i + 1)) for i in range(5)]))
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(4.0))
    assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.mean
    # saved again, it is the same as an original HistoryBuffer pickle (no mmdynbnn name inside)
    again = tmp_path / 'again.pth'
    torch.save(loaded, again)
    assert torch.load(again, weights_only=True)['message_hub']['log_scalars']['train/loss'].current() == \
        pytest.approx(0.2)
    assert b'mmdynbnn' not in again.read_bytes()


class NotAllowed:
    def __init__(self):
        self.x = 1


def test_other_globals_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'obj': NotAllowed()}, path)
    with pytest.raises(pickle.UnpicklingError, match='NotAllowed'):
        torch.load(path, weights_only=True)


def test_getattr_escape_to_exec_is_refused(tmp_path):
    marker = tmp_path / 'pwned'
    path = tmp_path / 'evil.pth'
    write_evil(path, marker)
    with pytest.raises(pickle.UnpicklingError, match='refused getattr'):
        torch.load(path, weights_only=True)
    assert not marker.exists()


@pytest.mark.parametrize('obj,name', [
    (getattr, '__self__'),            # -> the builtins module
    (HistoryBuffer, '__init__'),      # any other attribute of the allow-listed class
    (HistoryBuffer, '__class__'),     # -> type
    (HistoryBuffer, '__subclasses__'),
    (HistoryBuffer, '_statistics_methods'),
    (HistoryBuffer, 'statistics'),
    (np.ndarray, 'tofile'),           # methods of other allow-listed objects
    (torch.Tensor, '__class__'),
    (os, 'system'),
])
def test_getattr_reaches_only_history_buffer_statistics(tmp_path, obj, name):
    path = tmp_path / 'evil.pth'
    if obj is os:  # os is not allow-listed itself: reach it through the builtins module's __import__
        target = Call(Call(getattr, Call(getattr, getattr, '__self__'), '__import__'), 'os')
    else:
        target = obj
    torch.save({'x': Call(getattr, target, name)}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)


class PlantedBuffer:
    """Pickles as ``HistoryBuffer`` (NEWOBJ) with the given state (BUILD)."""

    def __init__(self, state):
        self.state = state

    @property
    def __class__(self):  # pickle checks that __newobj__'s class is the object's
        return HistoryBuffer

    def __reduce_ex__(self, protocol):
        return copyreg.__newobj__, (HistoryBuffer,), self.state


def test_history_buffer_state_cannot_plant_callables(tmp_path):
    """HistoryBuffer.__setstate__ updates the class-wide method table: only its own methods may go there."""
    path = tmp_path / 'evil.pth'
    clean = vars(HistoryBuffer([1.0], [1]))
    for planted in (torch._tensor._rebuild_from_type_v2, np.ndarray, Call(getattr, HistoryBuffer, 'min')):
        torch.save({'b': PlantedBuffer(dict(clean, statistics_methods={'mean': planted}))}, path)
        with pytest.raises(pickle.UnpicklingError, match='statistics_methods'):
            torch.load(path, weights_only=True)
        assert HistoryBuffer._statistics_methods['mean'] is HistoryBuffer.mean
    torch.save({'b': PlantedBuffer(dict(clean, max_length=Call(getattr, HistoryBuffer, 'min')))}, path)
    with pytest.raises(pickle.UnpicklingError, match='max_length'):
        torch.load(path, weights_only=True)
    torch.save({'b': PlantedBuffer(dict(clean, statistics_methods={'mean': Call(getattr, HistoryBuffer, 'mean')}))},
               path)
    assert torch.load(path, weights_only=True)['b'].mean() == 1.0  # what mmengine itself writes loads


class DtypeWithState:
    """Pickles as ``numpy.dtype(name, False, copy)`` followed by BUILD with the given state."""

    def __init__(self, name, state, copy=True):
        self.name, self.state, self.copy = name, state, copy

    def __reduce__(self):
        return np.dtype, (self.name, False, self.copy), self.state


class ArrayWithState:
    """Pickles as ``_reconstruct(ndarray, (0,), b'b')`` followed by BUILD with the given state."""

    def __init__(self, state):
        self.state = state

    def __reduce__(self):
        return np._core.multiarray._reconstruct, (np.ndarray, (0,), b'b'), self.state


@pytest.mark.parametrize('payload', [
    # an object array whose pointers are raw bytes (numpy itself accepts this)
    Call(np.ndarray, (1,), Call(np.dtype, 'O'), b'A' * 8),
    # a float64 dtype given an object field and flags through its state, then an array of it from raw bytes
    ArrayWithState((1, (1,), DtypeWithState('f8', (3, '|', None, ('a',), {'a': (np.dtype('O'), 0)}, 8, 1, 63)),
                    False, b'A' * 8)),
    # the shared float64 dtype itself (copy=False) with another state
    DtypeWithState('f8', (3, '<', None, None, None, 4, 4, 0), copy=False),
    # an object array given bytes instead of a list
    ArrayWithState((1, (1,), np.dtype('O'), False, b'A' * 8)),
    # a structured / object scalar from raw bytes
    Call(np._core.multiarray.scalar, np.dtype([('a', 'O')]), b'A' * 8),
    Call(np._core.multiarray.scalar, np.dtype('O'), b'A' * 8),
    # array data shorter than its shape
    ArrayWithState((1, (4,), np.dtype('f8'), False, b'A' * 8)),
], ids=['object-array-from-bytes', 'dtype-state-with-object-field', 'shared-dtype-state', 'object-array-state',
        'structured-scalar', 'object-scalar', 'short-data'])
def test_numpy_payloads_are_refused(tmp_path, payload):
    """numpy's own constructors are memory-unsafe under a crafted pickle; the stand-ins refuse these."""
    path = tmp_path / 'evil.pth'
    torch.save({'a': payload}, path)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    assert np.dtype('f8').itemsize == 8 and not np.dtype('f8').hasobject


def test_numpy_values_load_as_numpy(tmp_path):
    values = {'f8': np.arange(6.0).reshape(2, 3), 'i8': np.arange(3), 'f4': np.float32(0.5), 'b': np.bool_(True),
              'u1': np.arange(4, dtype=np.uint8), 'fortran': np.asfortranarray(np.ones((2, 3))), 'empty': np.zeros(0),
              'dtype': np.dtype('i4'), 'be': np.arange(3, dtype='>f4')}
    path = tmp_path / 'v.pth'
    torch.save(values, path)
    loaded = torch.load(path, weights_only=True)
    for k, v in values.items():
        if k == 'dtype':
            assert loaded[k].dtype == v
        else:
            np.testing.assert_array_equal(loaded[k], v)
            assert np.asarray(loaded[k]).dtype.newbyteorder('=') == np.asarray(v).dtype.newbyteorder('=')
    from mmdynbnn.utils import load_checkpoint_file
    plain = load_checkpoint_file(path)
    assert type(plain['f8']) is np.ndarray and plain['dtype'] == np.dtype('i4')
    assert type(plain['f4']) is np.float32
    torch.save(loaded, tmp_path / 'again.pth')  # the stand-ins pickle as numpy
    assert b'mmdynbnn' not in (tmp_path / 'again.pth').read_bytes()


def test_allow_list_is_exactly_the_reviewed_one():
    """Every entry beyond torch's defaults was reviewed (module doc of mmdynbnn.utils.checkpoint): stand-ins
    only, no real getattr, HistoryBuffer or numpy callable."""
    entries = dict((name, obj) for obj, name in checkpoint_safe_globals())
    assert set(entries) == {'builtins.getattr', 'mmengine.logging.history_buffer.HistoryBuffer', 'numpy.ndarray',
                            'numpy.dtype', 'numpy.core.multiarray._reconstruct', 'numpy._core.multiarray._reconstruct',
                            'numpy.core.multiarray.scalar', 'numpy._core.multiarray.scalar',
                            'mmdynbnn.utils.checkpoint.CheckedArray', 'builtins.bytes'}
    real = (builtins.getattr, HistoryBuffer, np.ndarray, np.dtype, np._core.multiarray._reconstruct,
            np._core.multiarray.scalar)
    for obj in entries.values():
        assert all(obj is not r for r in real)
    registered = [g[0] if isinstance(g, tuple) else g for g in torch.serialization.get_safe_globals()]
    assert not any(g is r for g in registered for r in real)


# ---------------------------------------------------------------------------- through the stock tools
CLS_CONFIG = REPO / 'configs/binary_resnet/resnet18-bconv_cifar10-mini.py'
DET_CONFIG = REPO / 'configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step1.py'


def _assert_refused(out, marker):
    assert not marker.exists(), 'the crafted checkpoint ran code'
    assert 'refused' in out and 'evil.pth' in out, out[-3000:]


def test_stock_mmpretrain_test_refuses_crafted_checkpoint(tmp_path):
    marker, evil = tmp_path / 'pwned', tmp_path / 'evil.pth'
    write_evil(evil, marker)
    out = run_tool([stock_tool('mmpretrain', 'test.py'), CLS_CONFIG, evil, '--work-dir', tmp_path], check=False)
    _assert_refused(out, marker)


def test_stock_mmpretrain_load_from_refuses_crafted_checkpoint(tmp_path):
    marker, evil = tmp_path / 'pwned', tmp_path / 'evil.pth'
    write_evil(evil, marker)
    out = run_tool([stock_tool('mmpretrain', 'train.py'), CLS_CONFIG, '--work-dir', tmp_path, '--cfg-options',
                    f'load_from={evil}'], check=False)
    _assert_refused(out, marker)
    assert 'Epoch(train)' not in out


def test_stock_mmdet_resume_refuses_crafted_checkpoint(tmp_path):
    marker, evil = tmp_path / 'pwned', tmp_path / 'evil.pth'
    write_evil(evil, marker)
    out = run_tool([stock_tool('mmdet', 'train.py'), DET_CONFIG, '--work-dir', tmp_path, '--resume', evil],
                   check=False)
    _assert_refused(out, marker)
    assert 'Epoch(train)' not in out

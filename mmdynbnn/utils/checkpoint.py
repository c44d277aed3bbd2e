"""Load mmengine checkpoints with ``torch.load(weights_only=True)`` (torch >= 2.6 default) without letting a
checkpoint run code, and say which file is broken when one is.

**What mmengine checkpoints need.** mmengine 0.10.7 stores its message hub in every checkpoint:
``HistoryBuffer`` objects holding numpy arrays and scalars. ``HistoryBuffer.__getstate__`` adds the class's
statistic methods, which pickle (protocol 2) as ``getattr(HistoryBuffer, 'min')``. So a stock ``test.py``,
``--resume`` or ``load_from`` fails with ``UnpicklingError: Weights only load failed`` unless these globals
are allow-listed.

**Why not allow-list them as they are.** ``builtins.getattr`` reaches everything: ``getattr(getattr,
'__self__')`` is the ``builtins`` module, ``getattr(<builtins>, 'eval')`` is ``eval``, and torch's own
allow-listed ``torch._tensor._rebuild_from_type_v2(func, type, args, state)`` calls ``func(*args)``. A
checkpoint made only of allow-listed globals would run arbitrary code. ``HistoryBuffer`` as is would let a
checkpoint put any object it can build into the *class-level* ``HistoryBuffer._statistics_methods`` (its
``__setstate__`` updates that shared dict), which every later ``statistics()`` call then invokes.

**What is registered instead** (:func:`checkpoint_safe_globals`):

* ``builtins.getattr`` -> :func:`history_buffer_getattr`: returns ``getattr(HistoryBuffer, name)`` only for
  the names of ``HistoryBuffer``'s registered statistic methods (``min``, ``max``, ``current``, ``mean``, and
  any registered with ``HistoryBuffer.register_statistics``); any other object or name raises
  ``UnpicklingError``. It returns plain functions of ``HistoryBuffer`` that compute a statistic of a buffer.
* ``mmengine.logging.history_buffer.HistoryBuffer`` -> :class:`CheckedHistoryBuffer`, a subclass whose
  ``__setstate__`` accepts only those same methods in ``statistics_methods`` and only data for the other
  attributes, then turns the object into a plain ``HistoryBuffer`` (so a re-saved checkpoint is unchanged).
  The real ``HistoryBuffer`` class itself is not allow-listed.
* numpy: nothing of numpy itself. numpy's own constructors are memory-unsafe under a crafted pickle:
  ``ndarray(shape, dtype('O'), buffer=b'...')`` makes an object array whose pointers are the given bytes,
  and ``dtype.__setstate__`` accepts a state that gives a float dtype object fields or flags (then an
  array built with it reads pointers from raw bytes). The pickled names map to stand-ins instead:
  ``numpy.ndarray`` -> a non-callable token; ``numpy.dtype`` -> :class:`DtypeSpec` (numeric and bool dtypes
  by name, and only the exact state numpy writes for them); ``_reconstruct`` and ``scalar`` (both module
  spellings) -> :func:`checked_reconstruct` / :func:`checked_scalar`, which build arrays and scalars only
  from such a dtype and bytes of the right length (:class:`CheckedArray`, a numpy array that pickles as a
  plain one and cannot be constructed directly).
* ``builtins.bytes``: an empty array's data pickles as ``bytes()``; ``bytes`` makes a bytes object from
  data (torch already allows ``bytearray``).

Everything else in the allow-list is torch's own default (tensors, storages, dtypes, ``OrderedDict``...).
With these stand-ins no allow-listed callable returns a module, a class outside the list, a builtin or a
numpy constructor, so ``_rebuild_from_type_v2``'s ``func(*args)`` can only call allow-listed callables and
the statistic functions (which compute a number from a buffer's arrays).
``tests/test_checkpoint_safety.py`` checks the known escapes.

**Broken files.** :func:`load_checkpoint_file` (also registered as mmengine's loader for local paths, so the
stock tools use it) names the file and the cause: missing, empty, not a torch checkpoint, truncated, a zip
member whose CRC does not match (torch itself does not check them: flipped bytes in tensor data load
silently), a refused global, or a mismatching ``meta.content_sha256`` (written by
:func:`mmdynbnn.utils.io.save_checkpoint`).
"""
import hashlib
import os
import pickle
import zipfile
from typing import Any, Dict, List, Tuple

import numpy as np
import torch

_HB_NAME = 'mmengine.logging.history_buffer.HistoryBuffer'


def _history_buffer():
    from mmengine.logging.history_buffer import HistoryBuffer
    return HistoryBuffer


def _statistic_methods() -> Dict[str, Any]:
    """name -> function for every statistic method that ``HistoryBuffer`` defines and has registered."""
    hb = _history_buffer()
    hb._statistics_methods.setdefault('min', hb.min)  # what HistoryBuffer() registers on first use
    hb._statistics_methods.setdefault('max', hb.max)
    hb._statistics_methods.setdefault('current', hb.current)
    hb._statistics_methods.setdefault('mean', hb.mean)
    return {name: fn for name, fn in hb._statistics_methods.items() if getattr(hb, name, None) is fn}


def history_buffer_getattr(obj: Any, name: Any) -> Any:
    """Stands in for ``builtins.getattr`` while unpickling: ``getattr(HistoryBuffer, <statistic>)`` only.

    Raises:
        pickle.UnpicklingError: for any other object or attribute.
    """
    hb = _history_buffer()
    if obj is CheckedHistoryBuffer or obj is hb:
        methods = _statistic_methods()
        if isinstance(name, str) and name in methods:
            return methods[name]
    raise pickle.UnpicklingError(
        f'refused getattr({_describe(obj)}, {name!r}) in a weights-only checkpoint: only the statistic methods '
        f'of mmengine\'s HistoryBuffer ({sorted(_statistic_methods())}) may be fetched')


def _describe(obj: Any) -> str:
    if isinstance(obj, type):
        return f'<class {obj.__module__}.{obj.__qualname__}>'
    return f'<{type(obj).__name__} object>'


def _is_data(value: Any) -> bool:
    """Numbers, strings, numpy arrays/scalars and containers of them: no callables, no other objects."""
    if value is None or isinstance(value, (bool, int, float, complex, str, bytes, np.generic)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind in 'biufc' and not value.dtype.hasobject
    if isinstance(value, (list, tuple)):
        return all(_is_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _is_data(v) for k, v in value.items())
    return False


class CheckedHistoryBuffer(_history_buffer()):
    """Unpickles as mmengine's ``HistoryBuffer`` after checking its state (see the module doc)."""

    def __setstate__(self, state: Any) -> None:
        hb = _history_buffer()
        if not isinstance(state, dict):
            raise pickle.UnpicklingError(f'HistoryBuffer state must be a dict, got {type(state).__name__}')
        state = dict(state)
        methods = state.pop('statistics_methods', {})
        allowed = _statistic_methods()
        if not isinstance(methods, dict) or any(
                not isinstance(k, str) or allowed.get(k) is not v for k, v in methods.items()):
            raise pickle.UnpicklingError(
                'refused HistoryBuffer state: statistics_methods may only map the names of HistoryBuffer\'s own '
                f'statistic methods ({sorted(allowed)}) to those methods')
        bad = sorted(k for k, v in state.items() if not (isinstance(k, str) and _is_data(v)))
        if bad:
            raise pickle.UnpicklingError(f'refused HistoryBuffer state: {bad} hold objects, not data')
        state = {k: plain_numpy(v) for k, v in state.items()}
        self.__class__ = hb  # a plain HistoryBuffer from here on (saved again under its own name)
        hb.__setstate__(self, dict(state, statistics_methods=methods))


class _NdarrayName:
    """What the pickled name ``numpy.ndarray`` resolves to: a token that :func:`checked_reconstruct` accepts.
    Not callable and not buildable, so ``ndarray(shape, dtype, buffer)`` cannot be reached."""

    def __repr__(self) -> str:
        return '<numpy.ndarray (weights-only token)>'


NDARRAY_TOKEN = _NdarrayName()


def _canonical_dtype(name: Any) -> np.dtype:
    """A fresh numeric/bool dtype for a dtype string (``'f8'``, ``'<i8'``, ``'?'``); anything else raises."""
    if isinstance(name, str):
        try:
            dt = np.dtype(name)
        except TypeError:
            dt = None
        if dt is not None and dt.kind in 'biufc' and dt.fields is None and not dt.hasobject and dt.subdtype is None:
            return np.dtype(dt.str)
    raise pickle.UnpicklingError(f'refused numpy dtype {name!r} in a weights-only checkpoint: only numeric and '
                                 f'bool dtypes are allowed')


class DtypeSpec:
    """What the pickled name ``numpy.dtype`` resolves to: records a numeric/bool dtype by name and accepts
    exactly the state numpy pickles for it (a crafted dtype state can give a dtype object fields or flags,
    e.g. pointers read from raw bytes). :func:`checked_reconstruct` / :func:`checked_scalar` use a fresh
    dtype built from the name; a bare dtype in a checkpoint stays a ``DtypeSpec`` (``.dtype``) unless read
    through :func:`load_checkpoint_file`, which turns it into the dtype."""

    def __init__(self, name: Any, align: Any = False, copy: Any = True) -> None:
        self.dtype = _canonical_dtype(name)

    def __setstate__(self, state: Any) -> None:
        want = self.dtype.__reduce__()[2]  # numpy's state: only the byte order may differ from this one
        order = state[1] if isinstance(state, tuple) and len(state) == len(want) else None
        same = order in ('<', '>', '|', '=') and all(
            type(a) is type(b) and a == b for a, b in zip(state[:1] + state[2:], want[:1] + want[2:]))
        if not same:
            raise pickle.UnpicklingError(f'refused numpy dtype state {state!r} for {self.dtype}: expected {want!r}')
        if order in '<>' and self.dtype.itemsize > 1:
            self.dtype = self.dtype.newbyteorder(order)

    def __reduce__(self):
        return self.dtype.__reduce__()

    def __repr__(self) -> str:
        return f'DtypeSpec({self.dtype.str!r})'


def _spec_dtype(spec: Any) -> np.dtype:
    if type(spec) is not DtypeSpec or not hasattr(spec, 'dtype'):
        raise pickle.UnpicklingError(f'refused numpy dtype argument of type {type(spec).__name__}')
    return spec.dtype


class CheckedArray(np.ndarray):
    """The arrays :func:`checked_reconstruct` creates: ``__setstate__`` accepts only numeric data given as
    bytes of the right length, with the dtype rebuilt from its name. Not constructible directly (no
    ``CheckedArray(shape, dtype, buffer)``). Pickles as a plain ``numpy.ndarray``; :func:`load_checkpoint_file`
    and the ``HistoryBuffer`` stand-in return plain arrays."""

    def __new__(cls, *args, **kwargs):
        raise pickle.UnpicklingError('CheckedArray cannot be constructed from a checkpoint')

    def __setstate__(self, state: Any) -> None:
        if not (isinstance(state, tuple) and len(state) == 5):
            raise pickle.UnpicklingError(f'refused numpy array state of type {type(state).__name__}')
        version, shape, spec, fortran, raw = state
        dtype = _spec_dtype(spec)
        if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)):
            raise pickle.UnpicklingError(f'refused numpy array shape {shape!r}')
        count = int(np.prod(shape, dtype=np.int64)) if shape else 1
        if not isinstance(raw, (bytes, bytearray)) or len(raw) != count * dtype.itemsize:
            raise pickle.UnpicklingError(f'refused numpy array data: expected {count * dtype.itemsize} bytes for '
                                         f'shape {shape} of {dtype}, got {type(raw).__name__}')
        np.ndarray.__setstate__(self, (version, shape, dtype, bool(fortran), bytes(raw)))

    def __reduce__(self):
        return np.asarray(self).__reduce__()


def checked_reconstruct(subtype: Any, shape: Any, typecode: Any) -> CheckedArray:
    """Stands in for ``numpy.core.multiarray._reconstruct(ndarray, (0,), b'b')`` (how numpy pickles arrays)."""
    if subtype is not NDARRAY_TOKEN:
        raise pickle.UnpicklingError(f'refused numpy _reconstruct of {_describe(subtype)}: only ndarray')
    return np.ndarray.__new__(CheckedArray, (0,), np.uint8)


def checked_scalar(spec: Any, data: Any = None) -> np.generic:
    """Stands in for ``numpy.core.multiarray.scalar(dtype, bytes)`` (how numpy pickles scalars)."""
    dtype = _spec_dtype(spec)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise pickle.UnpicklingError(f'refused numpy scalar data for {dtype}: expected {dtype.itemsize} bytes')
    return np.frombuffer(data, dtype=dtype)[0].copy()


def _numpy_globals() -> List[Tuple[object, str]]:
    found: List[Tuple[object, str]] = []
    for obj, attr in ((checked_reconstruct, '_reconstruct'), (checked_scalar, 'scalar')):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # both spellings load
            found.append((obj, f'{module}.{attr}'))
    found += [(NDARRAY_TOKEN, 'numpy.ndarray'), (DtypeSpec, 'numpy.dtype'),
              (CheckedArray, 'mmdynbnn.utils.checkpoint.CheckedArray'),  # for BUILD's type check
              (bytes, 'builtins.bytes')]  # an empty array's data pickles as bytes() (torch allows bytearray)
    return found


def plain_numpy(obj: Any) -> Any:
    """Turn the numpy stand-ins in a loaded checkpoint (dicts, lists, tuples) into plain arrays/dtypes."""
    if isinstance(obj, CheckedArray):
        return np.asarray(obj)
    if type(obj) is DtypeSpec:
        return obj.dtype
    if isinstance(obj, dict):
        for k, v in obj.items():
            new = plain_numpy(v)
            if new is not v:
                obj[k] = new
        return obj
    if isinstance(obj, list):
        for i, v in enumerate(obj):
            new = plain_numpy(v)
            if new is not v:
                obj[i] = new
        return obj
    if type(obj) is tuple:
        new = tuple(plain_numpy(v) for v in obj)
        return new if any(a is not b for a, b in zip(new, obj)) else obj
    return obj


def checkpoint_safe_globals() -> List[Tuple[object, str]]:
    """The (object, pickled name) pairs that mmengine checkpoints contain beyond torch's defaults."""
    return [(CheckedHistoryBuffer, _HB_NAME), (history_buffer_getattr, 'builtins.getattr')] + _numpy_globals()


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load(weights_only=True)`` (idempotent).

    Raises:
        RuntimeError: if something else allow-listed the real ``builtins.getattr`` or ``HistoryBuffer``
            (it would make checkpoints able to run code).
    """
    ser = torch.serialization
    add = getattr(ser, 'add_safe_globals', None)
    if add is None:  # torch < 2.4 has no allow-list
        return
    add(checkpoint_safe_globals())
    get = getattr(ser, 'get_safe_globals', None)
    if get is not None:
        import builtins
        unsafe = [g for g in get() if (g[0] if isinstance(g, tuple) else g) in (builtins.getattr, _history_buffer())]
        if unsafe:
            raise RuntimeError(f'torch.serialization safe globals contain {unsafe}: with those a checkpoint can run '
                               f'code; remove them (mmdynbnn registers restricted stand-ins)')


# ---------------------------------------------------------------------------- loading with named errors
class CheckpointFileError(RuntimeError):
    """A checkpoint file that cannot be read: missing, empty, truncated, corrupt or of the wrong kind."""


def state_digest(state: Dict[str, Any]) -> str:
    """sha256 over the names, dtypes, shapes and bytes of a flat tensor dict (order-independent)."""
    h = hashlib.sha256()
    for key in sorted(state):
        v = state[key]
        h.update(key.encode())
        if isinstance(v, torch.Tensor):
            t = v.detach().cpu().contiguous()
            h.update(f'{t.dtype}{tuple(t.shape)}'.encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b'')
        else:
            h.update(repr(v).encode())
    return h.hexdigest()


def _check_zip(path: str) -> None:
    """Every member of the torch zip archive is complete and matches its CRC-32."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
    except zipfile.BadZipFile as e:
        raise CheckpointFileError(f'checkpoint {path} is corrupt or truncated ({e}); re-create or re-download '
                                  f'it') from None
    except (OSError, EOFError) as e:
        raise CheckpointFileError(f'checkpoint {path} is truncated or unreadable ({type(e).__name__}: {e})') \
            from None
    if bad is not None:
        raise CheckpointFileError(f'checkpoint {path} is corrupt: member {bad!r} does not match its CRC-32 (bytes '
                                  f'changed after it was written); re-create or re-download it')


def load_checkpoint_file(path: str, map_location: Any = 'cpu') -> Any:
    """``torch.load(path, weights_only=True)`` with errors that name the file and the cause.

    Checks, in this order: the file exists and is not empty; a zip checkpoint (torch >= 1.6 format) is
    complete and every member matches its CRC-32; ``torch.load`` succeeds (a refused global is reported as
    such, without torch's advice to turn ``weights_only`` off); a ``meta.content_sha256`` (written by
    :func:`mmdynbnn.utils.io.save_checkpoint`) matches the loaded ``state_dict``.

    Raises:
        FileNotFoundError: missing file.
        CheckpointFileError: empty, truncated, corrupt or unreadable file, or content hash mismatch.
        pickle.UnpicklingError: the file needs globals that are not allow-listed.
    """
    path = os.path.expanduser(str(path))
    if not os.path.isfile(path):
        raise FileNotFoundError(f'checkpoint {path} not found')
    size = os.path.getsize(path)
    if size == 0:
        raise CheckpointFileError(f'checkpoint {path} is empty (0 bytes): an interrupted write? re-create it')
    if zipfile.is_zipfile(path):
        _check_zip(path)
    else:
        with open(path, 'rb') as f:
            head = f.read(4)
        if head[:2] == b'PK':  # a zip whose end (central directory) is missing
            raise CheckpointFileError(f'checkpoint {path} is truncated ({size} bytes, the zip directory at its end '
                                      f'is missing): an interrupted write or download? re-create it')
        if not head.startswith(b'\x80'):  # neither zip nor a (legacy) pickle stream
            raise CheckpointFileError(f'checkpoint {path} is not a torch checkpoint (starts with {head!r}): '
                                      f'corrupt, or another file format')
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        cause = str(e).split('Check the documentation of torch.load')[0]
        cause = ' '.join(cause.split('WeightsUnpickler error:')[-1].split())  # drop torch's weights_only=False advice
        if 'Unsupported' in cause or 'refused' in cause or 'unrecognized' in cause or 'allowlisted' in cause:
            raise pickle.UnpicklingError(
                f'checkpoint {path} was refused by torch.load(weights_only=True): {cause.strip()}. It holds objects '
                f'that are not plain weights; do not load it with weights_only=False unless you trust its '
                f'source') from None
        raise CheckpointFileError(f'checkpoint {path} is corrupt (unpickling failed: {cause.strip()})') from None
    except (EOFError, RuntimeError, ValueError, OSError, KeyError, TypeError, IndexError, AttributeError) as e:
        raise CheckpointFileError(f'checkpoint {path} is corrupt or truncated ({type(e).__name__}: '
                                  f'{str(e).splitlines()[0] if str(e) else ""})') from None
    verify_content_digest(ckpt, path)
    return plain_numpy(ckpt)


def verify_content_digest(ckpt: Any, path: str = '<checkpoint>') -> None:
    """Check ``ckpt['meta']['content_sha256']`` against ``ckpt['state_dict']`` when the file has one."""
    meta = ckpt.get('meta') if isinstance(ckpt, dict) else None
    want = meta.get('content_sha256') if isinstance(meta, dict) else None
    if want is None:
        return
    got = state_digest(ckpt.get('state_dict', {}))
    if got != want:
        raise CheckpointFileError(f'checkpoint {path} is corrupt: its state_dict does not match the content '
                                  f'hash written with it (meta.content_sha256 {want[:12]}..., now {got[:12]}...)')


def _mmengine_load_from_local(filename: str, map_location: Any) -> Any:
    return load_checkpoint_file(filename, map_location)


def register_mmengine_checkpoint_loader() -> None:
    """Make mmengine read local checkpoints (``load_from``, ``--resume``, ``test.py``, ``Pretrained``) through
    :func:`load_checkpoint_file` (idempotent)."""
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme(prefixes='', force=True)(_mmengine_load_from_local)

"""Let checkpoints written by mmengine load with ``torch.load(weights_only=True)`` (torch >= 2.6 default).

mmengine 0.10.7 stores its message hub in every checkpoint: ``HistoryBuffer`` objects holding numpy
arrays and scalars, whose statistic methods pickle as ``getattr(HistoryBuffer, 'min')``. The stock
``test.py`` and ``--resume`` then fail with ``UnpicklingError: Weights only load failed``. Instead of
turning ``weights_only`` off, exactly those globals are allow-listed. ``builtins.getattr`` is among them
and stays harmless: the weights-only unpickler only *calls* allow-listed callables, so an attribute it
fetches can be stored but never invoked.
"""
import builtins
from typing import List, Tuple

import numpy as np
import torch


def _numpy_globals() -> List[Tuple[object, str]]:
    core = getattr(np, '_core', None) or np.core  # numpy 2 renamed numpy.core to numpy._core
    found: List[Tuple[object, str]] = []
    for obj, attr in ((core.multiarray._reconstruct, '_reconstruct'), (core.multiarray.scalar, 'scalar')):
        for module in ('numpy.core.multiarray', 'numpy._core.multiarray'):  # both spellings load
            found.append((obj, f'{module}.{attr}'))
    found += [(np.ndarray, 'numpy.ndarray'), (np.dtype, 'numpy.dtype')]
    dtypes = getattr(np, 'dtypes', None)  # numpy >= 1.25 pickles dtypes by their class
    if dtypes is not None:
        for name in dir(dtypes):
            cls = getattr(dtypes, name)
            if isinstance(cls, type) and issubclass(cls, np.dtype):
                found.append((cls, f'numpy.dtypes.{name}'))
    return found


def checkpoint_safe_globals() -> List[Tuple[object, str]]:
    """The (object, pickled name) pairs that mmengine checkpoints contain beyond tensors and builtins."""
    from mmengine.logging.history_buffer import HistoryBuffer
    return [(HistoryBuffer, 'mmengine.logging.history_buffer.HistoryBuffer'),
            (builtins.getattr, 'builtins.getattr')] + _numpy_globals()


def register_checkpoint_safe_globals() -> None:
    """Allow-list :func:`checkpoint_safe_globals` for ``torch.load(weights_only=True)`` (idempotent)."""
    add = getattr(torch.serialization, 'add_safe_globals', None)
    if add is not None:  # torch < 2.4 loads these without an allow-list
        add(checkpoint_safe_globals())

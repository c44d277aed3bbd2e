"""Atomic file output: a kill at any moment leaves either the old file or the complete new one.

Every output goes to a temporary file in the destination's folder (``<name>.tmp.<pid>``, same file system,
so the rename is atomic), is flushed to disk, and is then renamed over the destination with
``os.replace``. On an error the temporary file is removed; a temporary file of a killed process (whose
pid no longer runs) is removed by :func:`remove_orphan_tmp_files`.
"""
import contextlib
import json
import os
import os.path as osp
import re
from typing import Any, Iterator, List, Optional

import torch

_TMP_RE = re.compile(r'^(?P<target>.+)\.tmp\.(?P<pid>\d+)(?:\.[A-Za-z0-9]+)?$')


def tmp_path_for(path: str, suffix: str = '') -> str:
    """The temporary name :func:`atomic_open` writes ``path`` through (``suffix`` keeps an extension that a
    writer such as matplotlib's ``savefig`` dispatches on)."""
    return f'{path}.tmp.{os.getpid()}{suffix}'


@contextlib.contextmanager
def atomic_path(path: str, suffix: str = '') -> Iterator[str]:
    """Yield a temporary path next to ``path``; when the block succeeds, fsync it and rename it to ``path``.

    On an exception the temporary file is removed and ``path`` is left as it was.
    """
    path = str(path)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = tmp_path_for(path, suffix)
    try:
        yield tmp
        with open(tmp, 'rb+') as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w') -> Iterator[Any]:
    """``open(path, mode)`` written atomically (``mode`` is ``'w'`` or ``'wb'``)."""
    if mode not in ('w', 'wb'):
        raise ValueError(f'atomic_open: mode must be "w" or "wb", got {mode!r}')
    with atomic_path(path) as tmp:
        with open(tmp, mode) as f:
            yield f
            f.flush()


def atomic_write_text(text: str, path: str) -> None:
    with atomic_open(path, 'w') as f:
        f.write(text)


def atomic_write_json(obj: Any, path: str, indent: Optional[int] = 1) -> None:
    with atomic_open(path, 'w') as f:
        json.dump(obj, f, indent=indent)


def atomic_torch_save(obj: Any, path: str) -> int:
    """``torch.save(obj, path)`` atomically; returns the file size in bytes."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return osp.getsize(path)


def save_checkpoint(state_dict: dict, path: str, meta: Optional[dict] = None) -> int:
    """Write ``{'meta': meta + content_sha256, 'state_dict': state_dict}`` atomically (loads with mmengine's
    ``load_checkpoint`` / ``load_from``); the hash is checked by
    :func:`mmdynbnn.utils.checkpoint.load_checkpoint_file`. Returns the file size in bytes."""
    from .checkpoint import state_digest
    state = {k: (v.detach().cpu() if isinstance(v, torch.Tensor) else v) for k, v in state_dict.items()}
    meta = dict(meta or {}, content_sha256=state_digest(state))
    return atomic_torch_save(dict(meta=meta, state_dict=state), path)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_orphan_tmp_files(folder: str, recursive: bool = False) -> List[str]:
    """Remove ``*.tmp.<pid>[.ext]`` files of processes that no longer run (left by a kill mid-write);
    returns the removed paths."""
    removed: List[str] = []
    if not osp.isdir(folder):
        return removed
    walk = os.walk(folder) if recursive else [(folder, [], os.listdir(folder))]
    for root, _, names in walk:
        for name in names:
            m = _TMP_RE.match(name)
            path = osp.join(root, name)
            if m and osp.isfile(path) and not _pid_alive(int(m.group('pid'))):
                with contextlib.suppress(OSError):
                    os.remove(path)
                    removed.append(path)
    return removed

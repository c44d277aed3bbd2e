"""Broken checkpoints are reported with the file and the cause; outputs are written atomically (a kill at any
moment leaves the old file or the new one); orphan temporary files are cleaned up."""
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
from mmengine.runner import load_checkpoint

import mmdynbnn  # noqa: F401  (registers mmengine's local loader)
from mmdynbnn.utils import (CheckpointFileError, atomic_torch_save, atomic_write_text, load_checkpoint_file,
                            remove_orphan_tmp_files, save_checkpoint)

from .helpers import REPO


@pytest.fixture
def good(tmp_path):
    path = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.arange(50000.0), 'b': torch.ones(3)}, 'meta': {'epoch': 1}}, path)
    return path


def corrupt(tmp_path, good, kind):
    data = bytearray(good.read_bytes())
    path = tmp_path / f'{kind}.pth'
    if kind == 'empty':
        data = b''
    elif kind == 'truncated':
        data = data[:len(data) // 2]
    elif kind == 'random':
        data = bytes(torch.randint(0, 256, (len(data),), generator=torch.Generator().manual_seed(0),
                                   dtype=torch.uint8).tolist())
    elif kind == 'flipped':  # 4 KiB inside the tensor data: torch itself loads this without a word
        start = data.index(b'good/data/0') + 4096
        for i in range(start, start + 4096):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize('kind,cause', [('empty', 'empty'), ('truncated', 'truncated'),
                                        ('random', 'not a torch checkpoint'), ('flipped', 'CRC')])
def test_broken_checkpoints_name_file_and_cause(tmp_path, good, kind, cause):
    path = corrupt(tmp_path, good, kind)
    with pytest.raises(CheckpointFileError) as info:
        load_checkpoint_file(path)
    assert str(path) in str(info.value) and cause in str(info.value)
    assert 'weights_only=False' not in str(info.value)
    # the same through mmengine (what load_from, --resume and test.py call)
    with pytest.raises(CheckpointFileError, match=cause):
        load_checkpoint(torch.nn.Linear(1, 1), str(path))


def test_flipped_bytes_load_silently_in_plain_torch(tmp_path, good):
    """Why the CRC check is needed: torch.load does not verify the archive."""
    path = corrupt(tmp_path, good, 'flipped')
    assert not torch.equal(torch.load(path, weights_only=True)['state_dict']['w'], torch.arange(50000.0))


def test_good_checkpoint_loads(good):
    ckpt = load_checkpoint_file(good)
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(50000.0))


def test_content_hash_detects_changed_state(tmp_path):
    path = tmp_path / 'deploy.pth'
    save_checkpoint({'w': torch.arange(10.0)}, path, meta=dict(format='x'))
    assert load_checkpoint_file(path)['meta']['content_sha256']
    # rewrite the file consistently (valid zip, valid CRCs) but with other weights and the old hash
    ckpt = torch.load(path, weights_only=True)
    ckpt['state_dict']['w'][3] = 100.0
    torch.save(ckpt, path)
    with pytest.raises(CheckpointFileError, match='content hash'):
        load_checkpoint_file(path)


# ---------------------------------------------------------------------------- atomic writes
def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / 'out.pth'
    atomic_torch_save({'v': torch.ones(3)}, path)
    old = path.read_bytes()

    def broken_save(obj, f, *args, **kwargs):  # writes half a file, then fails
        with open(f, 'wb') as fh:
            fh.write(old[:len(old) // 2])
        raise OSError('disk full')

    monkeypatch.setattr(torch, 'save', broken_save)
    with pytest.raises(OSError, match='disk full'):
        atomic_torch_save({'v': torch.zeros(3)}, path)
    assert path.read_bytes() == old
    assert os.listdir(tmp_path) == ['out.pth']  # no temporary file left


WRITER = textwrap.dedent('''
    import sys, time, torch
    sys.path.insert(0, {repo!r})
    from mmdynbnn.utils.io import atomic_path
    path, value = sys.argv[1], float(sys.argv[2])
    with atomic_path(path) as tmp:
        torch.save({{'v': torch.full((200000,), value)}}, tmp)
        print('written', flush=True)
        time.sleep(60)  # killed here: the temporary file is complete, the rename has not happened
''')


def test_kill_mid_write_leaves_old_file_then_orphan_is_removed(tmp_path):
    path = tmp_path / 'out.pth'
    atomic_torch_save({'v': torch.full((200000,), 1.0)}, path)
    proc = subprocess.Popen([sys.executable, '-c', WRITER.format(repo=str(REPO)), str(path), '2.0'],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == 'written'
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert torch.equal(load_checkpoint_file(path)['v'], torch.full((200000,), 1.0))  # the old file, intact
    orphans = [n for n in os.listdir(tmp_path) if '.tmp.' in n]
    assert orphans == [f'out.pth.tmp.{proc.pid}']
    assert remove_orphan_tmp_files(str(tmp_path)) == [str(tmp_path / orphans[0])]
    assert os.listdir(tmp_path) == ['out.pth']


def test_kill_at_random_moments_leaves_old_or_new(tmp_path):
    """A writer replacing the file in a loop, killed after various delays: always a complete file."""
    path = tmp_path / 'loop.txt'
    atomic_write_text('0\n' * 100000, path)
    code = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {str(REPO)!r})
        from mmdynbnn.utils.io import atomic_write_text
        i = 0
        while True:
            i += 1
            atomic_write_text(f'{{i}}\\n' * 100000, {str(path)!r})
    ''')
    for delay in (0.3, 0.45, 0.6, 0.8):
        proc = subprocess.Popen([sys.executable, '-c', code])
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = path.read_text().split('\n')
        assert len(lines) == 100001 and len(set(lines[:-1])) == 1  # one complete version
        remove_orphan_tmp_files(str(tmp_path))
    assert os.listdir(tmp_path) == ['loop.txt']

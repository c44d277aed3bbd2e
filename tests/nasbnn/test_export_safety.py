"""tools/nas/export_subnet.py checks every input before building anything and writes its files atomically."""
import json
import os
import os.path as osp
import runpy
import sys

import pytest
import torch

from mmdynbnn.analysis import build_model_from_config
from mmdynbnn.nas import Subnet, build_space

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TOOL = osp.join(REPO, 'tools/nas/export_subnet.py')
CONFIG = osp.join(REPO, 'configs/nasbnn/nasbnn-supernet_bi-teacher_cifar10-mini.py')


@pytest.fixture(scope='module')
def supernet_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model_from_config(CONFIG)
    path = tmp_path_factory.mktemp('supernet') / 'supernet.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, path)
    return str(path)


@pytest.fixture
def smallest_cfg():
    from mmengine.config import Config
    return Subnet.smallest(build_space(Config.fromfile(CONFIG).model.backbone.space)).to_config()


def export(monkeypatch, *args):
    monkeypatch.setattr(sys, 'argv', ['export_subnet.py', *map(str, args)])
    runpy.run_path(TOOL, run_name='__main__')


def test_missing_base_config_is_refused_before_writing(monkeypatch, tmp_path, supernet_ckpt):
    out = tmp_path / 'out'
    with pytest.raises(FileNotFoundError, match=r"--base-config '/nope/ft\.py' not found"):
        export(monkeypatch, CONFIG, supernet_ckpt, '--out-dir', out, '--name', 'x', '--base-config', '/nope/ft.py')
    assert not out.exists() or os.listdir(out) == []


def test_missing_default_base_config_says_pass_base_config(monkeypatch, tmp_path, supernet_ckpt):
    cfg = tmp_path / 'my_supernet.py'  # no fine-tune config can be derived from this name
    cfg.write_text(f'_base_ = [{CONFIG!r}]\n')
    out = tmp_path / 'out'
    with pytest.raises(FileNotFoundError, match='pass --base-config'):
        export(monkeypatch, cfg, supernet_ckpt, '--out-dir', out, '--name', 'x')
    assert not out.exists()


@pytest.mark.parametrize('field', ['channels', 'stem'])
def test_non_integer_subnet_values_are_refused(monkeypatch, tmp_path, smallest_cfg, field):
    net = json.loads(json.dumps(smallest_cfg))
    if field == 'stem':
        net['stem']['channels'] = float(net['stem']['channels'])
        match = r'stem: channels=\d+\.0 is not in the allowed choices'
    else:
        net['stages'][0]['blocks'][0]['channels'] = float(net['stages'][0]['blocks'][0]['channels'])
        match = r'stage 0, block 0: channels=\d+\.0 is not in the allowed choices'
    sub = tmp_path / 'sub.json'
    sub.write_text(json.dumps(net))
    garbage = tmp_path / 'not_loaded.pth'  # never read: the subnet is checked first
    garbage.write_bytes(b'not a checkpoint')
    with pytest.raises(ValueError, match=match):
        export(monkeypatch, CONFIG, garbage, '--subnet', sub, '--out-dir', tmp_path / 'out')
    assert not (tmp_path / 'out').exists()


def test_truncated_subnet_file_is_named(monkeypatch, tmp_path, smallest_cfg, supernet_ckpt):
    sub = tmp_path / 'sub.json'
    text = json.dumps(smallest_cfg)
    sub.write_text(text[:len(text) // 2])
    with pytest.raises(ValueError, match=rf'subnet file {sub}: cannot be parsed'):
        export(monkeypatch, CONFIG, supernet_ckpt, '--subnet', sub, '--out-dir', tmp_path / 'out')


def test_export_writes_atomically_and_a_failed_write_keeps_the_old_files(monkeypatch, tmp_path, supernet_ckpt):
    from mmdynbnn.utils import load_checkpoint_file
    out = tmp_path / 'out'
    export(monkeypatch, CONFIG, supernet_ckpt, '--subnet', 'smallest', '--out-dir', out, '--name', 'net')
    assert sorted(os.listdir(out)) == ['net.json', 'net.pth', 'net.py']
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert load_checkpoint_file(out / 'net.pth')['meta']['content_sha256']
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):  # half a file, then the process "dies"
        with open(f, 'wb') as fh:
            fh.write(before['net.pth'][:100])
        raise OSError('killed while writing')

    monkeypatch.setattr(torch, 'save', dying_save)
    with pytest.raises(OSError, match='killed while writing'):
        export(monkeypatch, CONFIG, supernet_ckpt, '--subnet', 'biggest', '--out-dir', out, '--name', 'net')
    monkeypatch.setattr(torch, 'save', real_save)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before

"""The convert tool as a user runs it, and the pure-torch fallback when the extension is absent."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


def run(args, **env):
    full_env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS='ignore', **env)
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=full_env, capture_output=True,
                          text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    return out


def test_convert_tool_writes_loadable_deploy_checkpoint(tmp_path):
    from mmdynbnn.deploy.io import build_model_from_config, load_deploy_model
    from mmdynbnn.deploy.testing import randomize_
    cfg = REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py'
    model = randomize_(build_model_from_config(cfg), seed=9)
    ckpt = tmp_path / 'epoch_1.pth'
    torch.save({'state_dict': model.state_dict(), 'meta': {}}, ckpt)
    out_path = tmp_path / 'deploy.pth'
    out = run(['tools/deploy/convert.py', cfg, ckpt, '--out', out_path])
    assert out_path.is_file()
    assert 'kernel path:' in out and '20 binary convs packed' in out
    ratio = float(out.split('binary conv weights:')[1].split('(')[1].split('x smaller')[0])
    assert 30 < ratio <= 32, out
    diff = float(out.split('max |float-sim - deploy| = ')[1].split()[0])
    assert diff < 1e-3, out
    deploy = load_deploy_model(cfg, out_path)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(deploy(x, mode='tensor'), model(x, mode='tensor'), rtol=1e-4, atol=1e-3)


def test_reference_fallback_reports_path_and_runs():
    code = ('import torch\n'
            'from mmdynbnn.deploy import backend_info, convert_to_deploy\n'
            'from mmdynbnn.deploy.testing import randomize_\n'
            'from mmdynbnn.models.backbones import NASBNN\n'
            'from mmdynbnn.nas import CIFAR_SPACE\n'
            'info = backend_info(); print(info)\n'
            'assert info["path"] == "torch-reference" and "MMDYNBNN_BITPACK=reference" in info["reason"]\n'
            'm = randomize_(NASBNN("smallest", CIFAR_SPACE, out_indices=(0, 1, 2, 3))).eval()\n'
            'x = torch.randn(1, 3, 19, 17)\n'
            'with torch.no_grad():\n'
            '    torch.testing.assert_close(convert_to_deploy(m)(x), m(x), rtol=1e-4, atol=1e-4)\n'
            'print("fallback-ok")\n')
    out = run(['-c', code], MMDYNBNN_BITPACK='reference')
    assert 'fallback-ok' in out


def test_missing_extension_without_jit_falls_back_with_reason():
    code = ('import importlib.util\n'
            'from mmdynbnn.deploy import backend_info, describe_backend\n'
            'info = backend_info()\n'
            'if importlib.util.find_spec("mmdynbnn._bitpack_ext") is not None:\n'
            '    assert info["path"] == "cpp" and "setup.py" in info["source"], info\n'
            '    print("pure-torch reference path not used: prebuilt extension present")\n'
            '    raise SystemExit(0)\n'
            'assert info["path"] == "torch-reference", info\n'
            'assert "no prebuilt extension" in info["reason"] and "JIT build disabled" in info["reason"], info\n'
            'print(describe_backend())\n')
    out = run(['-c', code], MMDYNBNN_BITPACK='no-jit')
    assert 'pure-torch reference path' in out


def run_rc(args):
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONWARNINGS='ignore')
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=300)
    return proc.returncode, proc.stdout + proc.stderr


def test_convert_refuses_a_model_without_binary_convs(tmp_path):
    cfg = REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py'
    twin = tmp_path / 'float_twin.py'  # the same network with float convs
    twin.write_text(f"_base_ = '{cfg}'\nmodel = dict(backbone=dict(conv_cfg=None))\n")
    out_path = tmp_path / 'deploy.pth'
    rc, out = run_rc(['tools/deploy/convert.py', twin, 'none', '--out', out_path])
    assert rc != 0 and 'no binary conv' in out and '--allow-no-binary' in out, out[-2000:]
    assert not out_path.exists()
    run(['tools/deploy/convert.py', twin, 'none', '--out', out_path, '--allow-no-binary'])
    assert out_path.is_file()


def test_convert_keeps_existing_output_when_the_write_fails(tmp_path, monkeypatch):
    """A write that dies half-way (disk full, kill) leaves a previous --out as it was."""
    import runpy

    from mmdynbnn.utils import load_checkpoint_file
    cfg = REPO / 'configs' / 'binary_resnet' / 'resnet18-bconv_cifar10-mini.py'
    out_path = tmp_path / 'deploy.pth'
    run(['tools/deploy/convert.py', cfg, 'none', '--out', out_path, '--shape', '0', '0', '0', '0'])
    before = out_path.read_bytes()
    assert load_checkpoint_file(out_path)['meta']['content_sha256']
    real_save = torch.save

    def dying_save(obj, f, *args, **kwargs):
        if 'deploy' not in str(f):  # the float size measurement
            return real_save(obj, f, *args, **kwargs)
        with open(f, 'wb') as fh:
            fh.write(before[:100])
        raise OSError('killed while writing')

    monkeypatch.setattr(torch, 'save', dying_save)
    monkeypatch.setattr(sys, 'argv', ['convert.py', str(cfg), 'none', '--out', str(out_path), '--shape', '0', '0',
                                      '0', '0'])
    with pytest.raises(OSError, match='killed while writing'):
        runpy.run_path(str(REPO / 'tools' / 'deploy' / 'convert.py'), run_name='__main__')
    assert out_path.read_bytes() == before
    assert os.listdir(tmp_path) == ['deploy.pth']

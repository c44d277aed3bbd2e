"""Shared helpers: the repo root, the stock OpenMMLab tools, and running them as a user would."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def stock_tool(package: str, *parts: str) -> Path:
    """Path of a tool shipped inside an installed OpenMMLab package (``<pkg>/.mim/tools/...``)."""
    module = __import__(package)
    path = Path(module.__file__).parent / '.mim' / 'tools' / Path(*parts)
    assert path.is_file(), f'stock tool {path} not found: is {package} installed with its .mim folder?'
    return path


def run_tool(args, cwd=REPO, timeout=600, check=True) -> str:
    """Run ``python ARGS`` in a subprocess (the way a user runs the stock tools); return stdout+stderr."""
    env = dict(os.environ, PYTHONWARNINGS='ignore', OMP_NUM_THREADS=os.environ.get('OMP_NUM_THREADS', '2'))
    proc = subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        pytest.fail(f'{" ".join(map(str, args))} exited {proc.returncode}:\n{out[-6000:]}')
    return out


def parse_size(text: str, label: str) -> float:
    """Parse a ``label: 12.3G``-style number printed by mmengine's ``_format_size``."""
    match = re.search(rf'{label}: ([\d.]+)([KMGT]?)\b', text)
    assert match, f'no "{label}:" in output:\n{text[-3000:]}'
    return float(match.group(1)) * {'': 1, 'K': 1e3, 'M': 1e6, 'G': 1e9, 'T': 1e12}[match.group(2)]

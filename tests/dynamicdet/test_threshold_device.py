"""The threshold tool's --device is checked before any model is built, with the value and what is allowed."""
import pytest
import torch

from conftest import load_tool


def test_device_default_and_errors():
    tool = load_tool('tools/dynamicdet/threshold.py')
    assert tool.resolve_device('cpu') == torch.device('cpu')
    assert tool.resolve_device(None).type == ('cuda' if torch.cuda.is_available() else 'cpu')
    with pytest.raises(SystemExit, match=r"--device 'tpu' is not a device; allowed: 'cpu', 'cuda', 'cuda:N'"):
        tool.resolve_device('tpu')
    with pytest.raises(SystemExit, match=r"--device 'meta': allowed are 'cpu', 'cuda' and 'cuda:N'"):
        tool.resolve_device('meta')
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match=r"--device 'cuda:0': CUDA is not available on this machine"):
            tool.resolve_device('cuda:0')
    else:
        with pytest.raises(SystemExit, match='CUDA device'):
            tool.resolve_device(f'cuda:{torch.cuda.device_count()}')

"""tools/analysis_tools/benchmark_on_cpu.py redirects only the stock benchmark's CUDA calls, and only inside
its context (the stock run itself is in test_e2e_stock_tools.py)."""
import os.path as osp

import pytest
import torch

from conftest import load_tool, tiny_retinanet

TOOL = 'tools/analysis_tools/benchmark_on_cpu.py'


def test_cuda_calls_go_to_the_cpu_inside_the_context_only(build):
    import mmdet.utils.benchmark as stock
    from mmengine.model import BaseModel
    tool = load_tool(TOOL)
    originals = (torch.nn.Module.cuda, BaseModel.cuda, torch.cuda.synchronize, stock.get_max_cuda_memory)
    model = build(tiny_retinanet())
    with tool.cuda_calls_on_cpu():
        assert model.cuda() is model
        torch.cuda.synchronize()
        assert stock.get_max_cuda_memory() == 0
    assert next(model.parameters()).device.type == 'cpu'
    assert model.data_preprocessor._device == torch.device('cpu')  # batches land where the model is
    assert (torch.nn.Module.cuda, BaseModel.cuda, torch.cuda.synchronize, stock.get_max_cuda_memory) == originals


def test_device_flag_is_ours_and_everything_else_goes_to_the_stock_script():
    tool = load_tool(TOOL)
    assert tool.split_args(['a.py', '--device', 'cpu', '--task', 'inference']) == (
        'cpu', ['a.py', '--task', 'inference'])
    assert tool.split_args(['a.py', '--checkpoint', 'x.pth']) == ('auto', ['a.py', '--checkpoint', 'x.pth'])
    with pytest.raises(SystemExit):
        tool.split_args(['a.py', '--device', 'cuda:1'])
    assert osp.isfile(tool.stock_benchmark_path())

"""The runnable examples in the DynamicDet docstrings run and print what they claim."""
import doctest
import importlib

import pytest

MODULES = ['mmdynbnn.models.routers.adaptive_router', 'mmdynbnn.models.routers.router_loss',
           'mmdynbnn.det.cascaded_backbone', 'mmdynbnn.det.dynamic_head', 'mmdynbnn.det.dynamic_detector',
           'mmdynbnn.det.calibration']


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0

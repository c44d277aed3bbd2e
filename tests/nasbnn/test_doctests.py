"""The docstring examples of the NAS-BNN modules run as written."""
import doctest
import importlib

import pytest

MODULES = ['mmdynbnn.nas.space', 'mmdynbnn.nas.subnet', 'mmdynbnn.nas.sampling', 'mmdynbnn.nas.ops_count',
           'mmdynbnn.models.backbones.nasbnn_supernet', 'mmdynbnn.models.backbones.nasbnn_static',
           'mmdynbnn.cls.heads', 'mmdynbnn.cls.bi_teacher']


@pytest.mark.parametrize('name', MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name))
    assert result.attempted > 0 and result.failed == 0

"""Checkpoints of mmengine load with torch.load(weights_only=True) after ``import mmdynbnn``, and only those."""
import pickle

import numpy as np
import pytest
import torch
from mmengine.logging import MessageHub

import mmdynbnn  # noqa: F401  (registers the allow-list)


def test_message_hub_state_loads_weights_only(tmp_path):
    hub = MessageHub.get_instance('test_checkpoint_safety')
    for i in range(5):
        hub.update_scalar('train/loss', float(np.float32(1.0 / (i + 1))))
    hub.update_info('iter', np.int64(5))
    path = tmp_path / 'ckpt.pth'
    torch.save({'message_hub': hub.state_dict(), 'meta': {'seed': np.int64(3), 'arr': np.arange(4.0)}}, path)
    loaded = torch.load(path, weights_only=True)
    assert loaded['message_hub']['log_scalars']['train/loss'].current() == pytest.approx(0.2)
    np.testing.assert_array_equal(loaded['meta']['arr'], np.arange(4.0))


class NotAllowed:
    def __init__(self):
        self.x = 1


def test_other_globals_are_still_refused(tmp_path):
    path = tmp_path / 'evil.pth'
    torch.save({'obj': NotAllowed()}, path)
    with pytest.raises(pickle.UnpicklingError, match='NotAllowed'):
        torch.load(path, weights_only=True)

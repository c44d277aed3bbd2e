"""The search refuses a training set with an empty class folder, writes its BN-recalibrated export
atomically (with a content hash) and removes the temporary files of a killed run."""
import json
import os
import shutil

import pytest
from mmengine.config import Config
from mmengine.registry import DefaultScope

from mmdynbnn.nas import Subnet, build_space, subnet_ops
from mmdynbnn.nas.search import SearchSettings, build_search_data

from .helpers import CONFIG, REPO, SEARCH_TOOL, run

CIFAR = os.path.join(REPO, 'data', 'cifar10_mini')


def test_empty_class_folder_is_refused_naming_it(tmp_path):
    data = tmp_path / 'cifar'
    shutil.copytree(os.path.join(CIFAR, 'train'), data / 'train')
    for f in os.listdir(data / 'train' / 'frog'):
        os.remove(data / 'train' / 'frog' / f)
    cfg = Config.fromfile(CONFIG)
    cfg.train_dataloader.dataset.data_root = str(data)
    settings = SearchSettings.from_config(cfg.search)
    with DefaultScope.overwrite_default_scope('mmpretrain'):
        with pytest.raises(ValueError, match=r'empty class folder\(s\): .*train/frog'):
            build_search_data(cfg, settings)


def test_export_only_is_atomic_hashed_and_cleans_orphans(tmp_path, supernet_ckpt):
    space = build_space(Config.fromfile(CONFIG).model.backbone.space)
    net = Subnet.smallest(space)
    ops = subnet_ops(net, space, num_classes=10).ops / 1e6
    entry = dict(subnet=net.to_config(), ops=ops, accuracy=0.0, generation=0, index=0)
    work = tmp_path / 'work'
    (work / 'export').mkdir(parents=True)
    (work / 'search_results.json').write_text(json.dumps(dict(front=[entry], candidates=[entry])))
    # temporary files of a killed run (pid 2**22 + 7 is above the largest pid_max Linux allows, 2**22)
    orphans = [work / 'search_state.json.tmp.4194311', work / 'export' / 'x_supernet-bnrecal.pth.tmp.4194311',
               work / 'search_results.png.tmp.4194311.png']
    for o in orphans:
        o.write_bytes(b'half')
    run(SEARCH_TOOL, CONFIG, supernet_ckpt, '--work-dir', str(work), '--export-only', '--export-index', '0',
        '--export-name', 'x', '--no-progress')
    assert not any(o.exists() for o in orphans)
    from mmdynbnn.utils import load_checkpoint_file
    recal = load_checkpoint_file(work / 'export' / 'x_supernet-bnrecal.pth')
    assert recal['meta']['content_sha256'] and recal['meta']['subnet'] == net.to_config()
    assert sorted(os.listdir(work / 'export')) == ['x.json', 'x.pth', 'x.py', 'x_retinanet.py',
                                                  'x_subnet.json', 'x_supernet-bnrecal.pth']

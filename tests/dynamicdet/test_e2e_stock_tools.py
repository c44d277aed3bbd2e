"""End to end on the bundled data with mmdet's stock tools: step 1, step 2 from its checkpoint, test with a
threshold, get_flops per route, the threshold tool, and a refused mismatching checkpoint."""
import json
import os
import os.path as osp
import re
import subprocess
import sys

import pytest
import torch

import mmdet

ROOT = osp.abspath(osp.join(osp.dirname(__file__), '..', '..'))
TOOLS = osp.join(osp.dirname(mmdet.__file__), '.mim', 'tools')
CFG1 = osp.join(ROOT, 'configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step1.py')
CFG2 = osp.join(ROOT, 'configs/dynamicdet/dy-retinanet_r18_fpn_coco-mini_step2.py')
# small and fast: 8 train images (2 iterations of 4), 4 val images, 160 px, no validation while training
SMALL = ['train_dataloader.dataset.indices=8', 'train_dataloader.dataset.pipeline.2.scale=(160,160)',
         'val_dataloader.dataset.indices=4', 'val_dataloader.dataset.pipeline.1.scale=(160,160)',
         'test_dataloader.dataset.indices=4', 'test_dataloader.dataset.pipeline.1.scale=(160,160)',
         'train_cfg.val_interval=5', 'model.test_cfg.score_thr=0.0']


def run(args, cwd, check=True):
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''), OMP_NUM_THREADS='1')
    proc = subprocess.run([sys.executable] + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=400)
    if check and proc.returncode != 0:
        raise AssertionError(f'{args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}')
    return proc


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
    work = tmp_path_factory.mktemp('dynamicdet')
    run([osp.join(TOOLS, 'train.py'), CFG1, '--work-dir', str(work / 's1'), '--cfg-options'] + SMALL, cwd=work)
    ckpt1 = work / 's1' / 'epoch_1.pth'
    assert ckpt1.exists()
    proc = run([osp.join(TOOLS, 'train.py'), CFG2, '--work-dir', str(work / 's2'), '--cfg-options',
                f'load_from={ckpt1}'] + SMALL, cwd=work)
    return work, ckpt1, work / 's2' / 'epoch_1.pth', proc.stdout + proc.stderr


def _state(path):
    return torch.load(path, map_location='cpu', weights_only=True)['state_dict']


def test_step1_logs_both_routes(trained):
    work = trained[0]
    log = open(next((work / 's1').glob('*/*.log'))).read()
    assert re.search(r'd1_loss_cls: [\d.]+ +d1_loss_bbox: [\d.]+ +d2_loss_cls', log)


def test_step2_trains_only_the_router_and_keeps_everything_else(trained):
    work, ckpt1, ckpt2, _ = trained
    log = open(next((work / 's2').glob('*/*.log'))).read()
    assert 'Load checkpoint from' in log and re.search(r'loss_router: [-\d.]+ +delta: [-\d.]+ +hard_ratio: [\d.]+', log)
    s1, s2 = _state(ckpt1), _state(ckpt2)
    assert set(s1) == set(s2)
    frozen = [k for k in s1 if not k.startswith(('router.', 'router_loss.'))]
    assert len(frozen) > 100 and all(torch.equal(s1[k], s2[k]) for k in frozen)
    assert any(not torch.equal(s1[k], s2[k]) for k in s1 if k.startswith('router.'))
    # the running median is in the checkpoint and saw every training image once
    assert int(s2['router_loss.median.count']) == 8 and int(s1['router_loss.median.count']) == 0


def test_anchors_unchanged_after_step2(trained):
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    import mmdynbnn.det  # noqa: F401
    from mmdet.registry import MODELS
    from mmdet.utils import register_all_modules
    register_all_modules(init_default_scope=False)  # the module fixture sets the scope
    _, ckpt1, ckpt2, _ = trained
    anchors = []
    for cfg_path, ckpt in ((CFG1, ckpt1), (CFG2, ckpt2)):
        model = MODELS.build(Config.fromfile(cfg_path).model)
        load_checkpoint(model, str(ckpt), map_location='cpu', strict=True)
        sizes = [(20, 20), (10, 10), (5, 5), (3, 3), (2, 2)]
        anchors.append([torch.cat(model.dynamic_head.head(r).prior_generator.grid_priors(sizes, device='cpu')) for r in (0, 1)])
    assert all(torch.equal(a, b) for a, b in zip(anchors[0], anchors[1]))


def test_threshold_tool_and_test_with_threshold(trained):
    work, _, ckpt2, _ = trained
    out = work / 'thr.json'
    png = work / 'thr.png'
    proc = run([osp.join(ROOT, 'tools/dynamicdet/threshold.py'), CFG2, str(ckpt2), '--device', 'cpu',
                '--max-images', '4', '--latency-images', '2', '--flops-images', '1', '--eval',
                '--target-latency', '1e9',
                '--plot', str(png), '--out', str(out), '--cfg-options'] + SMALL, cwd=work)
    result = json.load(open(out))
    rows = [r for r in result['rows'] if r['target_latency_ms'] is None]
    assert [round(100 * r['target_hard_ratio']) for r in rows] == list(range(0, 101, 10))
    assert rows[0]['threshold'] == 0.0 and rows[-1]['threshold'] == 1.0
    assert rows[0]['hard_ratio'] == 0.0 and rows[-1]['hard_ratio'] == 1.0
    assert [r['threshold'] for r in rows] == sorted(r['threshold'] for r in rows)
    flops = result['route_gflops']
    assert flops['2'] > flops['1'] > 0 and rows[5]['gflops'] == pytest.approx(
        (1 - rows[5]['hard_ratio']) * flops['1'] + rows[5]['hard_ratio'] * flops['2'])
    assert all('bbox_mAP' in r for r in rows) and png.stat().st_size > 0
    assert result['rows'][-1]['hard_ratio'] == 1.0  # an unreachable target latency -> all hard
    assert '100% hard' in proc.stdout

    # stock test.py at the tool's 50% threshold reports the same hard ratio on the same images
    mid = rows[5]
    proc = run([osp.join(TOOLS, 'test.py'), CFG2, str(ckpt2), '--work-dir', str(work / 'test'), '--cfg-options',
                f'model.test_cfg.dynamic.threshold={mid["threshold"]}'] + SMALL, cwd=work)
    text = proc.stdout + proc.stderr
    reported = float(re.search(r'dynamic/hard_ratio: ([\d.]+)', text).group(1))
    assert reported == pytest.approx(mid['hard_ratio'], abs=1e-4)
    assert re.search(r'coco/bbox_mAP: [-\d.]+', text)


def test_stock_get_flops_reports_the_taken_route(trained):
    work = trained[0]
    flops = {}
    for route in (1, 2):
        proc = run([osp.join(TOOLS, 'analysis_tools/get_flops.py'), CFG2, '--num-images', '1', '--cfg-options',
                    f'model.test_cfg.dynamic.route={route}'] + SMALL, cwd=work)
        flops[route] = float(re.search(r'Flops: ([\d.]+)G', proc.stdout).group(1))
    assert flops[2] > flops[1] > 0


def test_step2_refuses_a_mismatching_checkpoint(trained):
    work, ckpt1, _, _ = trained
    ckpt = torch.load(ckpt1, map_location='cpu', weights_only=True)
    ckpt['state_dict'].pop('dynamic_head.heads.1.retina_reg.bias')
    bad = work / 'bad.pth'
    torch.save(ckpt, bad)
    proc = run([osp.join(TOOLS, 'train.py'), CFG2, '--work-dir', str(work / 'bad'), '--cfg-options',
                f'load_from={bad}'] + SMALL, cwd=work, check=False)
    assert proc.returncode != 0
    assert 'does not match the model' in proc.stderr and 'retina_reg.bias' in proc.stderr
    proc = run([osp.join(TOOLS, 'train.py'), CFG2, '--work-dir', str(work / 'none'), '--cfg-options',
                'load_from=None'] + SMALL, cwd=work, check=False)
    assert proc.returncode != 0 and 'load_from' in proc.stderr


@pytest.mark.parametrize('family', ['faster-rcnn_r50_fpn', 'yolox_s'])
def test_other_families_with_stock_train_and_test(tmp_path, family):
    """Two-stage (shared head) and YOLOX: stock train step 1 -> step 2 from it -> test.py, 2 images, 128 px."""
    tiny = ['train_dataloader.batch_size=2', 'train_dataloader.dataset.indices=2',
            'train_dataloader.dataset.pipeline.2.scale=(128,128)', 'val_dataloader.dataset.indices=2',
            'val_dataloader.dataset.pipeline.1.scale=(128,128)', 'test_dataloader.dataset.indices=2',
            'test_dataloader.dataset.pipeline.1.scale=(128,128)', 'train_cfg.val_interval=5']
    cfg1 = osp.join(ROOT, f'configs/dynamicdet/dy-{family}_coco-mini_step1.py')
    cfg2 = osp.join(ROOT, f'configs/dynamicdet/dy-{family}_coco-mini_step2.py')
    run([osp.join(TOOLS, 'train.py'), cfg1, '--work-dir', str(tmp_path / 's1'), '--cfg-options'] + tiny,
        cwd=tmp_path)
    ckpt1 = tmp_path / 's1' / 'epoch_1.pth'
    run([osp.join(TOOLS, 'train.py'), cfg2, '--work-dir', str(tmp_path / 's2'), '--cfg-options',
         f'load_from={ckpt1}'] + tiny, cwd=tmp_path)
    ckpt2 = tmp_path / 's2' / 'epoch_1.pth'
    s1, s2 = _state(ckpt1), _state(ckpt2)
    assert set(s1) == set(s2)
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if not k.startswith(('router.', 'router_loss.')))
    assert int(s2['router_loss.median.count']) == 2
    proc = run([osp.join(TOOLS, 'test.py'), cfg2, str(ckpt2), '--work-dir', str(tmp_path / 't'), '--cfg-options',
                'model.test_cfg.dynamic.threshold=1.0'] + tiny, cwd=tmp_path)
    assert float(re.search(r'dynamic/hard_ratio: ([\d.]+)', proc.stdout + proc.stderr).group(1)) == 1.0


def test_stock_benchmark_runs_the_dynamic_model(trained):
    """mmdet's benchmark.py, unmodified: --task inference with its CUDA-only calls redirected to the CPU
    (batch size 1, so every image takes its own route; --fuse-conv-bn folds BN in both routes), and
    --task dataloader as is."""
    work, _, ckpt2, _ = trained
    proc = run([osp.join(ROOT, 'tools/analysis_tools/benchmark_on_cpu.py'), CFG2, '--checkpoint', str(ckpt2),
                '--task', 'inference', '--max-iter', '4', '--num-warmup', '1', '--log-interval', '2',
                '--fuse-conv-bn', '--cfg-options', 'model.test_cfg.dynamic.threshold=0.5'] + SMALL, cwd=work)
    text = proc.stdout + proc.stderr
    assert 'Done image [4  /4]' in text
    assert float(re.search(r'Overall fps: ([\d.]+) img/s', text).group(1)) > 0
    proc = run([osp.join(TOOLS, 'analysis_tools/benchmark.py'), CFG2, '--task', 'dataloader', '--max-iter', '2',
                '--num-warmup', '0', '--log-interval', '1', '--cfg-options', 'test_dataloader.batch_size=2'] + SMALL,
               cwd=work)
    assert re.search(r'Overall fps: [\d.]+ batch/s', proc.stdout + proc.stderr)

"""Bi-Teacher under mmengine's MMDistributedDataParallel: 2 CPU processes, gloo, as mmengine launches it."""
import os
import socket

import torch
import torch.distributed as dist
import torch.multiprocessing as mp


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    os.environ.update(MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port), OMP_NUM_THREADS='1')
    torch.set_num_threads(1)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        from mmengine.model import MMDistributedDataParallel
        from mmengine.optim import OptimWrapper

        from .test_bi_teacher import Recorder, make_batch, make_model
        # Different initial weights and a seed drawn at run time on each rank: DDP must make them agree.
        model = make_model(seed=rank, sampler_seed=None)
        rec = Recorder(model)
        ddp = MMDistributedDataParallel(module=model, find_unused_parameters=True)
        optim = OptimWrapper(torch.optim.Adam(ddp.parameters(), lr=1e-2))
        losses = []
        for step in range(3):
            log = ddp.train_step(make_batch(n=6, seed=10 * rank + step), optim)  # different data per rank
            losses.append(float(log['loss'].detach()))
        state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        torch.save(dict(calls=[(s.to_config(), m) for s, m in rec.calls], state=state, losses=losses),
                   os.path.join(out_dir, f'rank{rank}.pth'))
    finally:
        dist.destroy_process_group()


def test_two_rank_gloo_bi_teacher_steps_agree(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f'rank{r}.pth', weights_only=False) for r in range(2))
    assert len(r0['calls']) == 12  # 3 steps x 4 passes
    assert r0['calls'] == r1['calls']
    assert [m for _, m in r0['calls'][:4]] == ['fp', 'binary', 'binary', 'binary']
    randoms = [r0['calls'][4 * s + 2][0] for s in range(3)] + [r0['calls'][4 * s + 3][0] for s in range(3)]
    assert len({str(c) for c in randoms}) > 1  # random subnets vary from step to step
    assert r0['losses'] != r1['losses']  # the ranks did see different data
    for k, v in r0['state'].items():
        if k.endswith('running_mean') or k.endswith('running_var') or 'num_batches' in k:
            continue  # BN statistics are per rank (no SyncBN), as in any DDP run
        assert torch.equal(v, r1['state'][k]), k

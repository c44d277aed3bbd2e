"""Step 2 on several ranks: the running median of L1 - L2 must be the median over *all* ranks' images (each
rank sees a different shard, and the last batch may be shorter on some ranks), identical on every rank, so
that every rank trains its router copy against the same delta and rank 0's checkpoint holds the global state.
Two CPU processes over gloo."""
import socket

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from mmdynbnn.models.routers import DynamicRouterLoss

# per rank, per step: the L1 - L2 gaps of the images that rank saw (rank 1's last batch is shorter)
GAPS = {0: [[3.0, -1.0, 0.5], [2.0, 7.0, -4.0], [0.25, 1.5, 9.0]],
        1: [[10.0, -2.5, 6.0], [1.0, -3.0, 4.5], [8.0]]}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


def _worker(rank: int, world_size: int, port: int, queue) -> None:
    dist.init_process_group('gloo', init_method=f'tcp://127.0.0.1:{port}', rank=rank, world_size=world_size)
    try:
        crit = DynamicRouterLoss(median_capacity=64)
        deltas = []
        for gaps in GAPS[rank]:
            loss2 = torch.ones(len(gaps))
            score = torch.full((len(gaps), ), 0.5, requires_grad=True)
            _, delta = crit(score, loss2 + torch.tensor(gaps), loss2)
            deltas.append(float(delta))
        state = {k: v.clone() for k, v in crit.state_dict().items()}
        queue.put((rank, deltas, state))
    finally:
        dist.destroy_process_group()


def test_running_median_is_gathered_over_ranks_and_identical_on_each():
    ctx = mp.get_context('spawn')
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(rank, 2, port, queue)) for rank in range(2)]
    for p in procs:
        p.start()
    results = dict((r, (d, s)) for r, d, s in (queue.get(timeout=120) for _ in procs))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0

    seen = []
    expected = []
    for step in range(3):  # the median after each step covers every rank's images up to that step
        seen += GAPS[0][step] + GAPS[1][step]
        expected.append(float(np.median(seen)))
    (deltas0, state0), (deltas1, state1) = results[0], results[1]
    assert deltas0 == deltas1 == expected
    # the checkpointed state (what rank 0 saves) is the same on both ranks and counts all 15 images once
    assert int(state0['median.count']) == int(state1['median.count']) == len(seen)
    assert torch.equal(state0['median.values'], state1['median.values'])

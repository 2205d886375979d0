"""Under DDP every rank's driver writes the same LR and momentum as a single process does.

Two CPU processes with the gloo backend train a DDP model whose ranks see different data;
each records the LR and momentum of every update. Counting comes from each rank's own
optimizer (its step hook), not from the data loader, so the sequences must equal a
single-process run's exactly, including updates skipped on every rank by gradient
accumulation boundaries.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lrlab.optim import HyperparamScheduler
from lrlab.schedules import cyclical_momentum, one_cycle

UPDATES, ACCUMULATE = 24, 2


def _train(rank: int, world: int, out: str) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))
    if world > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    lr = one_cycle(max_lr=0.5, total=UPDATES)
    HyperparamScheduler(opt, lr=lr, momentum=cyclical_momentum(lr))
    g = torch.Generator().manual_seed(100 + rank)  # every rank sees different data
    seen = []
    for micro in range(UPDATES * ACCUMULATE):
        x, y = torch.randn(4, 8, generator=g), torch.randint(0, 3, (4,), generator=g)
        (torch.nn.functional.cross_entropy(model(x), y) / ACCUMULATE).backward()
        if (micro + 1) % ACCUMULATE == 0:
            seen.append((opt.param_groups[0]["lr"], opt.param_groups[0]["momentum"]))
            opt.step()
            opt.zero_grad()
    torch.save(seen, Path(out) / f"rank{rank}.pt")


def _worker(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        _train(rank, world, out)
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_every_rank_gets_the_single_process_sequence(tmp_path: Path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    _train(0, 1, str(single))
    reference = torch.load(single / "rank0.pt")
    multi = tmp_path / "ddp"
    multi.mkdir()
    mp.spawn(_worker, args=(2, _free_port(), str(multi)), nprocs=2, join=True)
    for rank in range(2):
        assert torch.load(multi / f"rank{rank}.pt") == reference
    lr = one_cycle(max_lr=0.5, total=UPDATES)
    assert [v[0] for v in reference] == [lr(t) for t in range(UPDATES)]

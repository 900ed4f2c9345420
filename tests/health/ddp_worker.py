"""One rank of the DDP test: a tiny MLP with a dead first layer, trained under watch (gloo, CPU)."""
import os
import warnings

import torch
import torch.distributed as dist
from torch import nn

from pytest_nncheck import TrainingHealthWarning, watch


COLLECTIVES = ("all_reduce", "all_gather", "all_gather_object", "broadcast",
               "broadcast_object_list", "reduce", "gather", "scatter", "barrier", "all_to_all")


def count_collectives() -> dict:
    """Wrap torch.distributed's Python collectives with counters (DDP's own gradient all-reduce
    runs in C++ and is not counted), so the test sees any collective that watch would add."""
    calls = {}
    for name in COLLECTIVES:
        original = getattr(dist, name)

        def counted(*args, _original=original, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args, **kwargs)
        setattr(dist, name, counted)
    return calls


def emit(line: str) -> None:
    """One write per line: both ranks share the pipe, and print's separate newline interleaves."""
    os.write(1, (line + "\n").encode())


def main() -> None:
    dist.init_process_group("gloo")
    calls = count_collectives()
    rank = dist.get_rank()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 2))
    with torch.no_grad():
        model[0].bias.fill_(-50.0)
    ddp = nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
    generator = torch.Generator().manual_seed(rank)
    x, y = torch.randn(16, 8, generator=generator), torch.randint(0, 2, (16,), generator=generator)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TrainingHealthWarning)
        with watch(ddp, optimizer, every=2) as watcher:
            for _ in range(8):
                optimizer.zero_grad()
                loss = nn.functional.cross_entropy(ddp(x), y)
                loss.backward()
                optimizer.step()
                watcher.record(loss)
    for warning in caught:
        emit(f"WARNING {warning.message}")
    codes = ",".join(sorted({p.code for p in watcher.report.problems}))
    emit(f"REPORT rank={watcher.report.rank} collectives={sum(calls.values())} codes={codes} "
         f"layers={sorted(watcher.report.parameters)}")
    dist.destroy_process_group()


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()

"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest).

Trains with bp.Trainer(distributed=True) and a checkpoint; rank 1 exits abruptly
(os._exit(3)) in its 45th step (in the second epoch) while rank 0 waits for it in the
gradient all-reduce.
Usage: mpi_worker_failure.py CHECKPOINT_PATH"""

import os
import sys

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn


def main():
    dist.init()
    rank = dist.rank()
    rng = np.random.default_rng(0)
    X = rng.standard_normal((512, 16)).astype(np.float32)
    y = rng.integers(0, 3, 512).astype(np.int64)
    calls = [0]

    def loss_fn(output, target):
        calls[0] += 1
        if rank == 1 and calls[0] == 45:
            os._exit(3)
        return F.cross_entropy(output, target)

    model = nn.Sequential(nn.Linear(16, 64), nn.ReLU(), nn.Linear(64, 3))
    trainer = bp.Trainer(model, loss_fn, bp.optim.SGD(model.parameters(), lr=0.1),
                         distributed=True)  # fmt: skip
    trainer.fit(X, y, epochs=5, batch_size=8, progress=False, checkpoint=sys.argv[1])
    print(f"rank {rank}: training finished (rank 1 should have died)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

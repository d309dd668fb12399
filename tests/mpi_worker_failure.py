"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest).

Trains with bp.Trainer on a DistributedDataParallel model, with a checkpoint; rank 1 exits
abruptly (os._exit(3)) in its 45th gradient sync (in the second epoch) while rank 0 waits for
it in the all-reduce. (Not in the loss function: the Trainer replays a captured step, so
Python code in the loss runs only while the step is recorded.)
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
    model = dist.DistributedDataParallel(nn.Sequential(nn.Linear(16, 64), nn.ReLU(),
                                                       nn.Linear(64, 3)))  # fmt: skip
    sync, calls = model.sync_gradients, [0]

    def sync_then_die():
        calls[0] += 1
        if rank == 1 and calls[0] == 45:
            os._exit(3)
        sync()

    model.sync_gradients = sync_then_die
    trainer = bp.Trainer(model, F.cross_entropy, bp.optim.SGD(model.parameters(), lr=0.1))
    trainer.fit(X, y, epochs=5, batch_size=8, progress=False, checkpoint=sys.argv[1])
    print(f"rank {rank}: training finished (rank 1 should have died)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Digits, data-parallel: the MLP of examples/digits.py trained with DistributedDataParallel
over MPI. Every rank trains on its share of each global batch; rank 0 prints progress and
accuracy and saves the checkpoint.

    pip install ".[mpi,examples]"
    mpiexec -n 2 python examples/train_digits_ddp.py [--epochs 30]

Writes digits_ddp.safetensors (rank 0) in the current directory."""

from __future__ import annotations

import argparse
import sys
import time

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn

try:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split
except ImportError:
    sys.exit('This demo needs scikit-learn: pip install ".[mpi,examples]"')


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=16, help="per rank")
    args = parser.parse_args()

    dist.init()
    rank, ranks = dist.rank(), dist.world_size()
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32).reshape(-1, 64)
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target.astype(np.int64), test_size=0.2, random_state=0,
        stratify=digits.target,
    )  # fmt: skip

    bp.manual_seed(0)  # rank 0's initial weights are broadcast to every rank anyway
    model = dist.DistributedDataParallel(
        nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    )
    optimizer = bp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    trainer = bp.Trainer(model, F.cross_entropy, optimizer)  # a DDP model: distributed
    if rank == 0:
        print(f"{ranks} ranks x batch {args.batch_size} = global batch {ranks * args.batch_size}")
    start = time.perf_counter()
    history = trainer.fit(x_train, y_train, epochs=args.epochs, batch_size=args.batch_size,
                          seed=0, progress=rank == 0,
                          checkpoint="digits_ddp.safetensors")  # fmt: skip
    seconds = time.perf_counter() - start
    if rank == 0:
        accuracy = trainer.evaluate(x_test, y_test)["accuracy"] or 0.0
        losses = f"{history.loss[0]:.3f} -> {history.loss[-1]:.3f}"
        print(f"MLP 64-128-10: {args.epochs} epochs in {seconds:.2f} s, loss {losses}, "
              f"test accuracy {accuracy:.2%}")  # fmt: skip
        print("checkpoint: digits_ddp.safetensors")


if __name__ == "__main__":
    main()

"""Data-parallel overhead over MPI: all-reduce throughput, and the digits MLP's step time on
1 rank vs 2 ranks (same per-rank batch, so 2 ranks process twice the data per step), for an
eager loop written by hand and for bp.Trainer on a DDP model, whose forward + backward is a
captured replay: with the default single bucket, and with small buckets, sent during backward.

    mpiexec -n 2 python benchmarks/bench_distributed.py

The 1-rank row is rank 0 alone on a single-rank communicator (MPI.COMM_SELF) while the
other rank waits. Bus bandwidth is the ring all-reduce's 2*(N-1)/N * bytes / time.
Not a test: nothing here asserts a timing."""

from __future__ import annotations

import statistics
import time

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn
from mpi4py import MPI

SMALL_BUCKET_MB = 16 / 1024  # 16 KB: the digits MLP's 38 KB of gradients in 2 buckets


def allreduce_table(comm) -> list[tuple[int, float, float]]:
    rows = []
    n = comm.Get_size()
    for nbytes in [4 << 10, 64 << 10, 1 << 20, 16 << 20, 64 << 20]:
        a = np.ones(nbytes // 4, dtype=np.float32)
        repeat = max(5, min(200, (256 << 20) // nbytes))
        comm.Allreduce(MPI.IN_PLACE, a)
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(repeat):
            comm.Allreduce(MPI.IN_PLACE, a)
        seconds = (time.perf_counter() - start) / repeat
        rows.append((nbytes, seconds, 2 * (n - 1) / n * nbytes / seconds / 1e9))
    return rows


def step_time(comm, batch: int = 32, steps: int = 300) -> tuple[float, int]:
    dist.init(comm)
    rng = np.random.default_rng(0)
    X = bp.from_numpy(rng.standard_normal((4096, 64)).astype(np.float32))
    y = bp.from_numpy(rng.integers(0, 10, 4096).astype(np.int64))
    bp.manual_seed(0)
    model = dist.DistributedDataParallel(
        nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    )
    nbytes = sum(p.numel() * 4 for p in model.parameters())
    opt = bp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sampler = dist.DistributedSampler(4096, batch_size=batch)
    batches = [bp.from_numpy(i) for i in sampler.batches()]
    times = []
    for i in range(steps):
        idx = batches[i % len(batches)]
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(model(X[idx]), y[idx]).backward()
        model.sync_gradients()
        opt.step()
        times.append(time.perf_counter() - start)
    return statistics.median(times[20:]), nbytes


def trainer_step_time(
    comm, bucket_cap_mb: float = 25, batch: int = 32, epochs: int = 3
) -> tuple[float, int]:
    """Seconds per step of Trainer.fit on a DDP model (the best of `epochs` epochs), and the
    number of gradient buckets."""
    dist.init(comm)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((4096, 64)).astype(np.float32)
    y = rng.integers(0, 10, 4096).astype(np.int64)
    bp.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
    opt = bp.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=bucket_cap_mb)
    trainer = bp.Trainer(ddp, F.cross_entropy, opt)
    history = trainer.fit(X, y, epochs=epochs, batch_size=batch, progress=False)
    steps = 4096 // (batch * comm.Get_size())
    return min(history.seconds) / steps, len(ddp._buckets)


def main() -> None:
    world = MPI.COMM_WORLD
    rank = world.Get_rank()
    rows = allreduce_table(world)
    if rank == 0:
        one, nbytes = step_time(MPI.COMM_SELF)
        trainer_one, _ = trainer_step_time(MPI.COMM_SELF)
        split_one, buckets = trainer_step_time(MPI.COMM_SELF, bucket_cap_mb=SMALL_BUCKET_MB)
    world.Barrier()
    two, nbytes = step_time(world)
    trainer_two, _ = trainer_step_time(world)
    split_two, buckets = trainer_step_time(world, bucket_cap_mb=SMALL_BUCKET_MB)
    if rank != 0:
        return
    print(f"MPI: {MPI.Get_library_version().splitlines()[0]}, {world.Get_size()} ranks")
    print(f"{'message':>10} {'time (us)':>10} {'bus GB/s':>9}")
    for size, seconds, gbps in rows:
        label = f"{size >> 20} MB" if size >= 1 << 20 else f"{size >> 10} KB"
        print(f"{label:>10} {seconds * 1e6:>10.1f} {gbps:>9.2f}")
    n = world.Get_size()
    print(f"digits MLP 64-128-10 ({nbytes / 1024:.0f} KB of gradients), per-rank batch 32:")
    overlapped = f"Trainer.fit, {buckets} buckets sent during backward"
    rows = [("eager loop", one, two), ("Trainer.fit", trainer_one, trainer_two),
            (overlapped, split_one, split_two)]  # fmt: skip
    for name, single, multi in rows:
        overhead, speedup = (multi - single) * 1e6, n * single / multi
        print(f"  {name}:")
        print(f"    1 rank : {single * 1e6:8.1f} us/step")
        print(f"    {n} ranks: {multi * 1e6:8.1f} us/step  "
              f"(sync overhead {overhead:.1f} us, throughput x{speedup:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()

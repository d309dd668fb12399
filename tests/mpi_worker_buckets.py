"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest).

DistributedDataParallel's overlap: with small buckets, every bucket is sent during backward
(before sync_gradients), and the averages equal an all-reduce of the whole gradients done by
hand; gradient accumulation under no_sync() averages the sum of the micro-batches (also after
a forward that had no backward); a second backward without no_sync() raises on every rank; an
interrupted sync makes the wrapper refuse further use; the wrapper is freed by reference
counting and takes its hooks with it.
Exit status 0 = pass."""

import sys
import weakref

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn


def mlp():
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 16), nn.Tanh(),
                         nn.Linear(16, 4))  # fmt: skip


def grads(model):
    return [p.grad.numpy().copy() for p in model.parameters()]


def averaged_by_hand(model, batches, X, y):
    """Each rank's summed gradient over `batches`, averaged over ranks with all_reduce_."""
    copy = mlp()
    copy.load_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()})
    for idx in batches:
        F.cross_entropy(copy(X[idx]), y[idx]).backward()
    for p in copy.parameters():
        dist.all_reduce_(p.grad, op="mean")
    return grads(copy)


def fail(message):
    print(f"rank {dist.rank()}: {message}", flush=True)
    return 1


def main():
    dist.init()
    rank = dist.rank()
    rng = np.random.default_rng(5 + rank)  # each rank its own data
    X = bp.from_numpy(rng.standard_normal((64, 10)).astype(np.float32))
    y = bp.from_numpy(rng.integers(0, 4, 64).astype(np.int64))
    first, second = bp.arange(0, 16), bp.arange(16, 32)
    bp.manual_seed(rank)
    model = dist.DistributedDataParallel(mlp(), bucket_cap_mb=1 / 1024)  # 1 KB: 4 buckets
    buckets = len(model._buckets)
    if buckets < 4:
        return fail(f"expected several buckets, got {buckets}")

    F.cross_entropy(model(X[first]), y[first]).backward()
    if model._sent != buckets:
        return fail(f"{model._sent} of {buckets} buckets sent during backward")
    model.sync_gradients()
    expected = averaged_by_hand(model.module, [first], X, y)
    for got, want in zip(grads(model), expected):
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return fail("bucketed average differs from all_reduce_ by hand")

    model.zero_grad()
    model(X[first])  # a forward with grad on but no backward: its arming ends at no_sync()
    with model.no_sync():
        F.cross_entropy(model(X[first]), y[first]).backward()
    if model._sent != 0:
        return fail("a bucket was sent inside no_sync()")
    F.cross_entropy(model(X[second]), y[second]).backward()
    model.sync_gradients()
    expected = averaged_by_hand(model.module, [first, second], X, y)
    for got, want in zip(grads(model), expected):
        if not np.allclose(got, want, rtol=1e-6, atol=1e-7):
            return fail("no_sync accumulation differs from the summed gradients")

    model.zero_grad()
    F.cross_entropy(model(X[first]), y[first]).backward()
    try:
        F.cross_entropy(model(X[second]), y[second]).backward()
    except RuntimeError as error:
        if "with model.no_sync()" not in str(error):
            return fail(f"unexpected message: {error}")
    else:
        return fail("a second backward without no_sync() did not raise")
    model.sync_gradients()  # every rank sends the same buckets, so nothing hangs

    # An interrupted sync leaves the wrapper unusable, with a clear error, on every rank.
    broken = dist.DistributedDataParallel(mlp(), bucket_cap_mb=1 / 1024)

    def interrupted(b):
        raise KeyboardInterrupt

    broken._send = interrupted
    try:
        broken.sync_gradients()
    except KeyboardInterrupt:
        pass
    try:
        broken(X[first])
    except RuntimeError as error:
        if "make a new DistributedDataParallel on every rank" not in str(error):
            return fail(f"unexpected message: {error}")
    else:
        return fail("a wrapper whose sync was interrupted ran a forward")

    # The hooks on the parameters hold the wrapper weakly: it goes with its last reference,
    # and takes its hooks off the parameters.
    gone, removal = weakref.ref(model), model._hooks_removal
    del model
    if gone() is not None:
        return fail("the DistributedDataParallel wrapper outlived its last reference")
    if removal.alive:
        return fail("the wrapper's hooks were not removed")
    print(f"rank {rank}: buckets ok ({buckets} buckets)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

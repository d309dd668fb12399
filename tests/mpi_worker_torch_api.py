"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest).

PyTorch's torch.distributed names over bprop's MPI backend: init_process_group joins the MPI
job; all_reduce with each ReduceOp, broadcast, all_gather and barrier give the values worked
out by hand; bprop.nn.parallel.DistributedDataParallel (PyTorch's constructor, no
sync_gradients call) averages the gradients by the time backward returns, with one bucket
and with several, with find_unused_parameters for a layer only one rank's forward reaches,
and under no_sync; without find_unused_parameters an unused layer is an error at the next
forward.
Exit status 0 = pass."""

import sys

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn


def check(condition, what):
    if not condition:
        print(f"rank {dist.get_rank()}: FAILED {what}", flush=True)
        sys.exit(1)


def mlp():
    bp.manual_seed(0)  # the same start on both ranks (and DDP broadcasts rank 0's anyway)
    return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = mlp()
        self.extra = nn.Linear(6, 3)

    def forward(self, x):
        out = self.net(x)
        return out + self.extra(x) if dist.get_rank() == 1 else out


class Unused(Branchy):
    def forward(self, x):
        return self.net(x)


def batch(seed):
    rng = np.random.default_rng(seed)
    return (bp.tensor(rng.standard_normal((8, 6)).astype(np.float32)),
            bp.tensor(rng.integers(0, 3, 8)))  # fmt: skip


def by_hand(make, state, seeds_per_rank):
    """The average over ranks of each rank's summed gradients (all_reduce AVG of plain
    gradients), from the wrapper's starting state."""
    model = make()
    model.load_state_dict(state)
    for seed in seeds_per_rank:
        x, y = batch(seed)
        F.cross_entropy(model(x), y).backward()
    out = {}
    for name, p in model.named_parameters():
        g = p.grad if p.grad is not None else bp.zeros(*p.shape)
        dist.all_reduce(g, op=dist.ReduceOp.AVG)
        out[name] = g.numpy().copy()
    return out


def grads_of(ddp):
    return {n: p.grad.numpy().copy() for n, p in ddp.module.named_parameters()}


def same(a, b):
    return a.keys() == b.keys() and all(np.allclose(a[k], b[k], rtol=1e-5, atol=1e-7) for k in a)


def main():
    dist.init_process_group("gloo")
    r, n = dist.get_rank(), dist.get_world_size()
    check(n == 2 and dist.is_initialized() and dist.get_backend() == "gloo", "group")

    t = bp.tensor([1.0 + r, 10.0 * (r + 1)])
    dist.all_reduce(t)
    check(t.tolist() == [3.0, 30.0], f"SUM {t.tolist()}")
    expectations = [
        (dist.ReduceOp.AVG, [1.5, 15.0]),
        (dist.ReduceOp.MAX, [2.0, 20.0]),
        (dist.ReduceOp.MIN, [1.0, 10.0]),
        (dist.ReduceOp.PRODUCT, [2.0, 200.0]),
    ]
    for op, expected in expectations:
        t = bp.tensor([1.0 + r, 10.0 * (r + 1)])
        work = dist.all_reduce(t, op=op, async_op=True)
        work.wait()
        check(t.tolist() == expected, f"{op.name} {t.tolist()}")
    bits = bp.tensor([0b1100 if r == 0 else 0b1010])
    dist.all_reduce(bits, op=dist.ReduceOp.BAND)
    check(bits.tolist() == [0b1000], "BAND")
    w = bp.tensor([float(r)], requires_grad=True) * 1.0  # a non-leaf that requires grad
    dist.all_reduce(w)
    check(w.detach().tolist() == [1.0], "all_reduce on a tensor that requires grad")

    t = bp.full((3,), float(r + 5))
    dist.broadcast(t, src=1)
    check(t.tolist() == [6.0] * 3, "broadcast")
    parts = [bp.zeros(2, dtype=bp.int64) for _ in range(n)]
    dist.all_gather(parts, bp.tensor([r, 10 * r]))
    check([p.tolist() for p in parts] == [[0, 0], [1, 10]], "all_gather")
    dist.barrier()

    for cap in (None, 1 / 2048):  # one bucket; several, sent during backward
        ddp = nn.parallel.DistributedDataParallel(mlp(), bucket_cap_mb=cap)
        state = {k: v.clone() for k, v in ddp.module.state_dict().items()}
        x, y = batch(100 + r)
        F.cross_entropy(ddp(x), y).backward()  # no sync call: averaged by now
        check(same(grads_of(ddp), by_hand(mlp, state, [100 + r])), f"DDP cap={cap}")

        ddp.zero_grad()
        with ddp.no_sync():
            for seed in (200 + r, 300 + r):
                xs, ys = batch(seed)
                F.cross_entropy(ddp(xs), ys).backward()
        xs, ys = batch(400 + r)
        F.cross_entropy(ddp(xs), ys).backward()
        expected = by_hand(mlp, state, [200 + r, 300 + r, 400 + r])
        check(same(grads_of(ddp), expected), f"no_sync cap={cap}")

    ddp = nn.parallel.DistributedDataParallel(Branchy(), find_unused_parameters=True)
    state = {k: v.clone() for k, v in ddp.module.state_dict().items()}
    for step in range(2):
        ddp.zero_grad()
        x, y = batch(500 + r + step)
        F.cross_entropy(ddp(x), y).backward()
        check(same(grads_of(ddp), by_hand(Branchy, state, [500 + r + step])), "unused")
        with bp.no_grad():
            for p in ddp.parameters():
                p.sub_(0.1 * p.grad)
        state = {k: v.clone() for k, v in ddp.module.state_dict().items()}

    # A layer no rank's forward uses, without find_unused_parameters: PyTorch's error at the
    # next forward, on every rank (a layer only some ranks use would hang, as in PyTorch).
    strict = nn.parallel.DistributedDataParallel(Unused())
    x, y = batch(600 + r)
    F.cross_entropy(strict(x), y).backward()
    try:
        strict(x)
        check(False, "a parameter left without a gradient must be an error")
    except RuntimeError as error:
        check("find_unused_parameters=True" in str(error) and "extra" in str(error), str(error))

    dist.destroy_process_group()
    check(not dist.is_initialized(), "destroyed")
    print(f"rank {r}: torch api ok", flush=True)


if __name__ == "__main__":
    main()

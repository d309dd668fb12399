"""Run under `mpiexec -n 2` by tests/test_distributed.py (not collected by pytest).

Trains an MLP for 20 SGD steps with DDP and per-rank batch B; rank 0 also trains a
single-process copy with batch N*B on the same data order and compares the parameters after
every step. Then the same through bp.Trainer: fit(distributed=True) with batch B (captured
steps, one gradient bucket) against a single-process fit with batch N*B, over 2 epochs, on a
model with a parameter backward never reaches; and a Trainer with 1 KB buckets, sent from the
replayed backward's hooks, on a model whose parameter only rank 1's forward reaches. Both
ranks' parameters must agree exactly.
Exit status 0 = pass."""

import sys

import bprop as bp
import bprop.distributed as dist
import bprop.nn.functional as F
import numpy as np
from bprop import nn

STEPS, B = 20, 8


def mlp():
    return nn.Sequential(nn.Linear(10, 32), nn.Tanh(), nn.Linear(32, 4))


class WithUnused(nn.Module):
    """An MLP plus a layer forward never calls: DDP must still average (zero) gradients."""

    def __init__(self):
        super().__init__()
        self.net = mlp()
        self.unused = nn.Linear(3, 4)

    def forward(self, x):
        return self.net(x)


class UsedOnRankOne(WithUnused):
    """Only rank 1's forward reaches `unused`: rank 0 averages in zeros for it."""

    def forward(self, x):
        out = self.net(x)
        return out + self.unused(x[:, :3]) if dist.rank() == 1 else out


def params(model):
    return [p.detach().numpy().copy() for p in model.parameters()]


def ranks_agree(model):
    """Whether every rank's parameters are bit-identical to this rank's."""
    mine = np.concatenate([p.ravel() for p in params(model)])
    return all(np.array_equal(mine, other) for other in dist._get_comm().allgather(mine))


def compare(model, reference, worst, what):
    """The largest relative difference so far, or None (after saying so) where a parameter
    differs beyond float32 round-off."""
    for a, b in zip(params(model), params(reference)):
        worst = max(worst, float(np.max(np.abs(a - b) / (np.abs(b) + 1e-6))))
        if not np.allclose(a, b, rtol=1e-5, atol=1e-6):
            print(f"{what} differs from single process: max abs {np.max(np.abs(a - b)):.3g}",
                  flush=True)  # fmt: skip
            return None
    return worst


def main():
    dist.init()
    rank, n = dist.rank(), dist.world_size()
    rng = np.random.default_rng(123)
    X = rng.standard_normal((400, 10)).astype(np.float32)
    y = rng.integers(0, 4, 400).astype(np.int64)
    Xt, yt = bp.from_numpy(X), bp.from_numpy(y)

    bp.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = dist.DistributedDataParallel(mlp())
    opt = bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    if rank == 0:
        reference = mlp()
        reference.load_state_dict({k: v.detach().clone() for k, v in model.state_dict().items()})
        ref_opt = bp.optim.SGD(reference.parameters(), lr=0.1, momentum=0.9)
        whole = dist.DistributedSampler(len(X), num_replicas=1, rank=0, seed=7, batch_size=n * B)
        whole_batches = whole.batches()
    sampler = dist.DistributedSampler(len(X), seed=7, batch_size=B)
    worst = 0.0
    for step, idx in enumerate(sampler.batches()):
        if step == STEPS:
            break
        opt.zero_grad()
        F.cross_entropy(model(Xt[bp.from_numpy(idx)]), yt[bp.from_numpy(idx)]).backward()
        model.sync_gradients()
        opt.step()
        if not ranks_agree(model):
            print(f"rank {rank}: step {step}: ranks' parameters differ", flush=True)
            return 1
        if rank == 0:
            big = bp.from_numpy(next(whole_batches))
            ref_opt.zero_grad()
            F.cross_entropy(reference(Xt[big]), yt[big]).backward()
            ref_opt.step()
            worst = compare(model, reference, worst, f"step {step}: DDP")
            if worst is None:
                return 1
    if rank == 0:
        print(f"equivalence ok: {STEPS} steps, {n} ranks, max rel error {worst:.3g}", flush=True)
    return trainer_equivalence(X, y)


def trainer_equivalence(X, y):
    rank, n = dist.rank(), dist.world_size()
    bp.manual_seed(10 + rank)
    model = WithUnused()
    trainer = bp.Trainer(model, F.cross_entropy, bp.optim.SGD(model.parameters(), lr=0.05,
                         momentum=0.9), distributed=True)  # fmt: skip
    if trainer.model.overlaps:
        print("expected one bucket (no hooks) with the default bucket_cap_mb", flush=True)
        return 1
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    history = trainer.fit(X, y, epochs=2, batch_size=B, seed=3, progress=False)
    if not ranks_agree(model):
        print(f"rank {rank}: Trainer: ranks' parameters differ", flush=True)
        return 1
    if partly_used_parameter(X, y):
        return 1
    if rank != 0:
        return 0
    reference = WithUnused()
    reference.load_state_dict(start)
    single = bp.Trainer(reference, F.cross_entropy,
                        bp.optim.SGD(reference.parameters(), lr=0.05, momentum=0.9))  # fmt: skip
    expected = single.fit(X, y, epochs=2, batch_size=n * B, seed=3, progress=False)
    worst = compare(model, reference, 0.0, "Trainer: distributed")
    if worst is None:
        return 1
    if not np.allclose(history.loss, expected.loss, rtol=1e-5):
        print(f"Trainer: losses {history.loss} != {expected.loss}", flush=True)
        return 1
    steps = 2 * len(X) // (n * B)
    print(f"trainer equivalence ok: {steps} steps, max rel error {worst:.3g}", flush=True)
    return 0


def partly_used_parameter(X, y):
    # 1 KB buckets, sent by the replayed backward's hooks. The bucket holding `unused`
    # completes during backward on rank 1 only; rank 0, which never gets that gradient,
    # sends zeros for it from sync_gradients, in the same bucket order (and each replay must
    # start without the .grad that sync gave it last step). Checked against an eager DDP
    # loop by hand over the same per-rank batches.
    bp.manual_seed(20 + dist.rank())
    model = UsedOnRankOne()
    ddp = dist.DistributedDataParallel(model, bucket_cap_mb=1 / 1024)
    if not ddp.overlaps:
        print("expected several buckets", flush=True)
        return 1
    start = {k: v.detach().clone() for k, v in model.state_dict().items()}
    trainer = bp.Trainer(ddp, F.cross_entropy, bp.optim.SGD(model.parameters(), lr=0.05))
    trainer.fit(X, y, epochs=1, batch_size=B, seed=4, progress=False)

    by_hand = UsedOnRankOne()
    by_hand.load_state_dict(start)
    eager = dist.DistributedDataParallel(by_hand)
    opt = bp.optim.SGD(by_hand.parameters(), lr=0.05)
    Xt, yt = bp.from_numpy(X), bp.from_numpy(y)
    for idx in dist.DistributedSampler(len(X), batch_size=B, seed=4).batches():
        batch = bp.from_numpy(idx)
        opt.zero_grad()
        F.cross_entropy(eager(Xt[batch]), yt[batch]).backward()
        eager.sync_gradients()
        opt.step()
    if not ranks_agree(model):
        print(f"rank {dist.rank()}: partly used parameter: ranks differ", flush=True)
        return 1
    for a, b in zip(params(model), params(by_hand)):
        if not np.allclose(a, b, rtol=1e-6, atol=1e-7):
            print(f"rank {dist.rank()}: partly used parameter: Trainer differs from an eager "
                  f"loop by {np.max(np.abs(a - b)):.3g}", flush=True)  # fmt: skip
            return 1
    if np.array_equal(start["unused.weight"].numpy(), model.unused.weight.detach().numpy()):
        print("partly used parameter: never updated", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

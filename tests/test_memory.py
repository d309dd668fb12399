"""Memory: graphs go when Python drops them, nothing forms reference cycles that outlive their
users, and long training runs keep a flat resident set size."""

import gc
import os
import weakref

import bprop as bp
import numpy as np
import pytest
from conftest import UNDER_ASAN


def _rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096


needs_proc = pytest.mark.skipif(
    not os.path.exists("/proc/self/statm"), reason="needs /proc (Linux)"
)


def _graph_saving_an_array():
    """y = sum(x * w) where x shares a numpy array's memory: the multiplication saves x, so the
    array lives exactly as long as what the graph saved. Returns (y, w, weakref to the array)."""
    array = np.arange(4, dtype=np.float32)
    w = bp.ones(4, requires_grad=True)
    return (bp.from_numpy(array) * w).sum(), w, weakref.ref(array)


def test_graph_is_freed_when_python_drops_the_output():
    y, _, alive = _graph_saving_an_array()
    gc.collect()
    assert alive() is not None  # the graph keeps it
    del y
    assert alive() is None  # freed at once, by reference counting alone: no cycle


def test_backward_frees_the_saved_tensors_while_the_output_lives():
    y, w, alive = _graph_saving_an_array()
    y.backward()
    assert alive() is None
    assert np.array_equal(w.grad.numpy(), [0, 1, 2, 3])
    assert y.grad_fn is not None  # the output keeps its node, but not what the node saved


def test_retain_graph_keeps_the_saved_tensors_until_the_output_goes():
    y, _, alive = _graph_saving_an_array()
    y.backward(retain_graph=True)
    assert alive() is not None
    del y
    assert alive() is None


def test_tensors_grads_and_nodes_need_no_garbage_collector():
    # A training step makes no reference cycles: with the collector off, everything a step made
    # is gone by reference counting, so gc.collect() finds nothing of ours to free afterwards.
    model = bp.nn.Sequential(bp.nn.Linear(8, 16), bp.nn.Tanh(), bp.nn.Linear(16, 3))
    opt = bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    x, target = bp.randn(32, 8), bp.randint(0, 3, (32,))
    alive = []
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            opt.zero_grad()
            logits = model(x)
            loss = bp.nn.functional.cross_entropy(logits, target)
            loss.backward()
            opt.step()
            alive += [weakref.ref(logits), weakref.ref(loss)]
        del logits, loss
        assert all(ref() is None for ref in alive)
        assert gc.collect() == 0
    finally:
        gc.enable()


def test_higher_order_graph_is_freed():
    x = bp.randn(5, requires_grad=True)
    y = (x.tanh() ** 2).sum()
    (g,) = bp.grad(y, [x], create_graph=True)
    (gg,) = bp.grad(g.sum(), [x])
    refs = [weakref.ref(t) for t in (y, g, gg)]
    del y, g, gg
    assert all(ref() is None for ref in refs)


@needs_proc
@pytest.mark.skipif(
    "libasan" in os.environ.get("LD_PRELOAD", ""),
    reason="under AddressSanitizer (scripts/sanitize.sh) freed memory waits in a quarantine, "
    "so the RSS grows by design",
)
@pytest.mark.parametrize("compiled", [False, True], ids=["eager", "captured"])
def test_ten_thousand_training_steps_keep_a_flat_rss(compiled):
    bp.manual_seed(0)
    model = bp.nn.Sequential(bp.nn.Linear(16, 32), bp.nn.ReLU(), bp.nn.Linear(32, 4))
    opt = bp.optim.Adam(model.parameters(), lr=1e-3)
    x, target = bp.randn(64, 16), bp.randint(0, 4, (64,))

    def train_step():
        opt.zero_grad()
        loss = bp.nn.functional.cross_entropy(model(x), target)
        loss.backward()
        opt.step()
        return loss

    step = bp.compile(train_step) if compiled else train_step
    for _ in range(1_000):  # warm up: allocator pools, optimizer state, the capture
        step()
    before = _rss_bytes()
    for _ in range(9_000):
        loss = step()
    growth = _rss_bytes() - before
    assert np.isfinite(loss.item())
    # A leak of one small tensor a step (~256 bytes) would add over 2 MiB.
    assert growth < 2 * 2**20, f"RSS grew by {growth / 2**20:.1f} MiB over 9,000 steps"


# Note [Block cache] in cpp/src/tensor/tensor.cpp: freed blocks of 64 KiB and more are kept
# for reuse up to BPROP_BLOCK_CACHE_MB (default 64), so a training step stops faulting in fresh
# pages, and memory stays bounded by the limit.
BLOCK_CACHE_SCRIPT = """
import resource, bprop as bp
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096
x = bp.ones(256, 1024)  # 1 MiB
for _ in range(3):
    (x * 2).sum()
before_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    (x * 2).sum()  # a 1 MiB temporary, freed at once
faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before_faults
base = rss()
kept = [bp.empty(1024, 1024) for _ in range(300)]  # 300 blocks of 4 MiB
for t in kept:
    t.fill_(1.0)  # touch every page
del kept  # freed: at most the limit is kept
after = rss()
y = bp.ones(512, 1024) * 3  # blocks still work after the churn
print(faults, (after - base) >> 20, float(y.sum()))
"""


@needs_proc
@pytest.mark.skipif(
    UNDER_ASAN, reason="the cache is off under ASan, whose quarantine keeps freed memory resident"
)
@pytest.mark.parametrize("limit_mb", [None, "0", "16"])
def test_freed_blocks_are_reused_within_the_limit(limit_mb):
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "BPROP_BLOCK_CACHE_MB"}
    if limit_mb is not None:
        env["BPROP_BLOCK_CACHE_MB"] = limit_mb
    run = subprocess.run(
        [sys.executable, "-c", BLOCK_CACHE_SCRIPT], env=env, capture_output=True, text=True,
        timeout=120, check=True,
    )  # fmt: skip
    faults, kept_mb, total = run.stdout.split()
    limit = 64 if limit_mb is None else int(limit_mb)
    assert float(total) == 512 * 1024 * 3
    # 1200 MiB were freed; what stays resident is what the cache may keep, plus what malloc
    # itself holds on to (up to a few tens of MiB).
    assert int(kept_mb) <= limit + 64
    if limit > 0:
        assert int(faults) < 50  # 200 temporaries of 1 MiB took the same block each time

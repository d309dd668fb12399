"""Threads: separate graphs built and backpropagated on several Python threads at once, grad
mode per thread, leaves and graphs shared between threads (the rules of "Threads" in
docs/cpp.md), and the library in a child process forked after threads used it.

Timings are not asserted here: benchmarks/bench_threads.py measures how much threads overlap
while the GIL is released."""

import os
import threading
import warnings

import bprop as bp
import numpy as np
import pytest
from conftest import skip_fork_with_threads_under_asan

N_THREADS = 4


@pytest.fixture
def two_kernel_threads(restore_threads):
    """The kernels split large products over two threads (whichever Python thread has the
    pool), so the test covers the pool shared by several callers."""
    bp.set_num_threads(2)


def run_threads(body, n=N_THREADS):
    """body(i) on n threads started together; returns their results, re-raising the first
    exception any of them raised."""
    barrier = threading.Barrier(n)
    results, errors = [None] * n, [None] * n

    def run(i):
        try:
            barrier.wait()
            results[i] = body(i)
        except BaseException as error:  # re-raised in the main thread
            errors[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for error in errors:
        if error is not None:
            raise error
    return results


def mlp_arrays(seed):
    rng = np.random.default_rng(seed)
    return [
        rng.standard_normal((64, 128)).astype(np.float32),
        (rng.standard_normal((128, 128)) / 10).astype(np.float32),
        rng.standard_normal(128).astype(np.float32),
        (rng.standard_normal((128, 32)) / 10).astype(np.float32),
    ]


def mlp_step(arrays, use_grad=False):
    """One forward and backward of a two-layer tanh network; the loss and the gradients as
    numpy arrays (copies)."""
    x = bp.tensor(arrays[0])
    w1, b1, w2 = (bp.tensor(a, requires_grad=True) for a in arrays[1:])
    loss = bp.tanh(bp.tanh(x @ w1 + b1) @ w2).sum()
    if use_grad:
        grads = bp.grad(loss, [w1, b1, w2])
    else:
        loss.backward()
        grads = (w1.grad, b1.grad, w2.grad)
    return [loss.detach().numpy().copy()] + [g.numpy().copy() for g in grads]


def assert_same(actual, expected):
    assert len(actual) == len(expected)
    for a, e in zip(actual, expected):
        np.testing.assert_array_equal(a, e)


def test_separate_graphs_on_threads_match_one_thread_exactly(two_kernel_threads):
    arrays = [mlp_arrays(seed) for seed in range(N_THREADS)]
    reference = [mlp_step(a) for a in arrays]  # computed before any thread starts

    def body(i):
        # Several iterations, alternating backward() and bp.grad().
        return [mlp_step(arrays[i], use_grad=step % 2 == 1) for step in range(4)]

    for i, steps in enumerate(run_threads(body)):
        for result in steps:
            assert_same(result, reference[i])


def test_no_grad_in_one_thread_does_not_affect_another():
    inside = threading.Event()
    checked = threading.Event()
    seen = {}

    def quiet():
        with bp.no_grad():
            inside.set()
            assert checked.wait(10)
            x = bp.ones(3, requires_grad=True)
            seen["quiet"] = (bp.is_grad_enabled(), (x * x).requires_grad)

    def recording():
        assert inside.wait(10)
        x = bp.ones(3, requires_grad=True)
        seen["recording"] = (bp.is_grad_enabled(), (x * x).requires_grad)
        checked.set()

    run_threads(lambda i: (quiet, recording)[i](), n=2)
    assert seen == {"quiet": (False, False), "recording": (True, True)}
    assert bp.is_grad_enabled()


def test_graphs_sharing_a_leaf_accumulate_every_contribution():
    # Integer-valued gradients, so the sum is exact whatever the order of the additions.
    w = bp.tensor([1.0, 2.0, 3.0, 4.0], dtype=bp.float64, requires_grad=True)
    steps = 20

    def body(i):
        c = bp.tensor([i + 1.0, 2.0, -1.0, 0.5 * (i + 1)], dtype=bp.float64)
        for _ in range(steps):
            (w * c).sum().backward()

    run_threads(body)
    expected = sum(steps * np.array([i + 1.0, 2.0, -1.0, 0.5 * (i + 1)]) for i in range(N_THREADS))
    np.testing.assert_array_equal(w.grad.numpy(), expected)


def test_backward_through_a_shared_graph_with_retain_graph_is_correct(two_kernel_threads):
    rng = np.random.default_rng(0)
    x = bp.tensor(rng.standard_normal((128, 128)))
    w = bp.tensor(rng.standard_normal((128, 128)) / 10, requires_grad=True)
    y = bp.tanh(x @ w)  # shared by every thread's graph
    (unit,) = bp.grad(y.sum(), w, retain_graph=True)
    steps = 3

    def body(i):
        for _ in range(steps):
            (y * (i + 1)).sum().backward(retain_graph=True)

    run_threads(body)
    scale = sum(steps * (i + 1) for i in range(N_THREADS))
    np.testing.assert_allclose(w.grad.numpy(), unit.numpy() * scale, rtol=1e-12, atol=1e-12)


def test_backward_through_a_shared_graph_without_retain_graph_raises_cleanly():
    """Exactly one thread runs the shared tanh node first and frees what it saved; the
    others get the usual RuntimeError there. No crash, and .grad is that one backward's."""
    w = bp.tensor([0.5, -1.0, 2.0], dtype=bp.float64, requires_grad=True)
    y = bp.tanh(w * w)

    def body(i):
        try:
            y.sum().backward()
            return "ok"
        except RuntimeError as error:
            assert "backward through the graph a second time" in str(error)
            return "refused"

    outcomes = run_threads(body)
    assert sorted(outcomes) == ["ok"] + ["refused"] * (N_THREADS - 1)
    v = np.array([0.5, -1.0, 2.0])
    np.testing.assert_allclose(w.grad.numpy(), (1 - np.tanh(v * v) ** 2) * 2 * v, rtol=1e-14)


def test_building_on_a_graph_while_other_threads_backpropagate_through_it():
    w = bp.tensor([0.25, 0.5, 0.75], dtype=bp.float64, requires_grad=True)
    y = bp.tanh(w * w)
    (unit,) = bp.grad(y.sum(), w, retain_graph=True)

    def body(i):
        for _ in range(20):
            (g,) = bp.grad((y * (i + 1)).sum(), w, retain_graph=True)
        return g.numpy()

    for i, g in enumerate(run_threads(body)):
        np.testing.assert_allclose(g, unit.numpy() * (i + 1), rtol=1e-14)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@skip_fork_with_threads_under_asan  # threads just joined may still be freeing their memory
def test_autograd_works_in_a_child_forked_after_threads_used_it(two_kernel_threads):
    arrays = mlp_arrays(7)
    reference = mlp_step(arrays)
    run_threads(lambda i: mlp_step(arrays))  # threads and the kernel pool have run
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of threaded process
        pid = os.fork()
    if pid == 0:  # the child: its own threads, then the same numbers
        try:
            results = run_threads(lambda i: mlp_step(arrays), n=2)
            ok = all(
                all(np.array_equal(a, e) for a, e in zip(r, reference))
                for r in results + [mlp_step(arrays)]
            )
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0

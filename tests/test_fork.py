"""fork() while other threads are inside the library: the child never inherits a lock held
forever (Note [Fork safety] in cpp/src/tensor/meta_lock.h). Each child exits with a status
that says whether autograd, the generator, hooks, the kernels' threads and a compiled step all
work in it; a child that hangs is killed and fails the test."""

import os
import random
import signal
import threading
import time
import warnings

import bprop as bp
import numpy as np
import pytest
from conftest import skip_fork_with_threads_under_asan

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

N_FORKS = 200
CHILD_DEADLINE_S = 60.0


def fork_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of threaded process
        return os.fork()


def wait_or_kill(pid):
    """The child's exit status, or None if it has not ended within the deadline (killed)."""
    deadline = time.monotonic() + CHILD_DEADLINE_S
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.001)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.fixture
def two_kernel_threads():
    before = bp.get_num_threads()
    bp.set_num_threads(2)
    yield
    bp.set_num_threads(before)


@skip_fork_with_threads_under_asan
def test_forks_at_random_moments_while_threads_run_backward(two_kernel_threads):
    # Shared by every thread, as a model's parameters are: their .grad and accumulator locks
    # are the ones a fork used to leave held.
    w = bp.randn(96, 96, dtype=bp.float64, requires_grad=True)
    x_child = np.random.default_rng(0).normal(size=(16, 96))
    expected_grad = x_child.T @ (1 - np.tanh(x_child @ w.detach().numpy()) ** 2)
    compiled = bp.compile(lambda x: (x @ x).sum())
    square = bp.ones(48, 48)
    batch = bp.ones(8, 32, 32)
    stop = threading.Event()
    errors = []

    def worker():
        try:
            while not stop.is_set():
                x = bp.randn(64, 96, dtype=bp.float64)  # the generator's lock
                handle = w.register_hook(lambda g: g)  # a hook lock
                bp.tanh(x @ w).sum().backward()  # grad, accumulator and execution locks
                handle.remove()
                compiled(square)  # the step's lock, held across a replay
                # Small products in a batch: each runs inside the pool and asks for the
                # thread count, which once took the lock the fork handler holds.
                bp.bmm(batch, batch)
        except BaseException as error:  # re-raised by the test
            errors.append(error)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    moments = random.Random(7)
    failures = []
    try:
        for i in range(N_FORKS):
            time.sleep(moments.uniform(0, 0.002))
            pid = fork_quietly()
            if pid == 0:  # the child: only this thread exists; no output, just a status
                code = 1
                try:
                    w.grad = None
                    handle = w.register_hook(lambda g: g)
                    bp.tanh(bp.tensor(x_child) @ w).sum().backward()
                    handle.remove()
                    noise = bp.randn(1000)
                    product = bp.ones(256, 256) @ bp.ones(256, 256)  # the kernels' pool
                    ok = (
                        np.allclose(w.grad.numpy(), expected_grad, rtol=1e-12)
                        and noise.numel() == 1000
                        and float(product[0, 0]) == 256.0
                        and float(compiled(square)) == 48.0**3
                    )
                    code = 0 if ok else 1
                finally:
                    os._exit(code)
            status = wait_or_kill(pid)
            if status is None:
                failures.append(f"fork {i}: the child hung and was killed")
            elif not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
                failures.append(f"fork {i}: the child failed (status {status})")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors, errors
    assert not failures, failures


def test_a_child_backpropagating_a_node_its_parent_was_running_raises():
    # A custom backward blocks in the parent's thread, inside the node, while the main thread
    # forks: in the child that node is half run, and backward through it must raise, not hang.
    entered, release = threading.Event(), threading.Event()

    class Blocking(bp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            entered.set()
            release.wait(30)
            return grad * 2

    x = bp.ones(3, requires_grad=True)
    y = Blocking.apply(x).sum()
    thread = threading.Thread(target=lambda: y.backward(retain_graph=True))
    thread.start()
    try:
        assert entered.wait(30)
        pid = fork_quietly()
        if pid == 0:
            code = 1
            try:
                try:
                    y.backward(retain_graph=True)
                except RuntimeError as error:
                    code = 0 if "when the process forked" in str(error) else 2
                # The rest of the library still works in the child.
                z = bp.ones(2, requires_grad=True)
                (z * 3).sum().backward()
                if code == 0 and z.grad.tolist() != [3.0, 3.0]:
                    code = 3
            finally:
                os._exit(code)
        status = wait_or_kill(pid)
    finally:
        release.set()
        thread.join()
    assert status is not None, "the child hung"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])  # the parent's run ended


def test_two_threads_backpropagating_one_graph_take_turns_at_each_node():
    # The execution lock's waiting path (not a fork): both threads get the whole gradient.
    x = bp.ones(4, dtype=bp.float64, requires_grad=True)
    y = (x * 3).tanh().sum()
    start = threading.Barrier(2)

    def run():
        start.wait()
        for _ in range(50):
            y.backward(retain_graph=True)

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(x.grad.numpy(), 100 * 3 * (1 - np.tanh(3.0) ** 2), rtol=1e-12)

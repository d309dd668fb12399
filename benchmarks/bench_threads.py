"""Do Python threads overlap? Heavy bprop calls (matmul, backward, ...) release the GIL.

    python benchmarks/bench_threads.py [--size 512] [--steps 20] [--repeats 5]

With the kernel pool at one thread (bp.set_num_threads(1)), each case runs `steps` iterations
on one Python thread, then `steps` iterations on each of two Python threads at once, on their
own tensors. Reported: both wall times (best of `repeats`) and their ratio. On a machine with
two free cores, 1.0 is perfect overlap and 2.0 none (the GIL serialising the threads), as for
the last case, elementwise tanh, which keeps the GIL.
Not a test: nothing here asserts a timing."""

from __future__ import annotations

import argparse
import threading
import time

import bprop as bp
import numpy as np


def make_case(name: str, n: int):
    rng = np.random.default_rng(0)
    x = bp.tensor(rng.standard_normal((n, n)).astype(np.float32))
    w = bp.tensor((rng.standard_normal((n, n)) / np.sqrt(n)).astype(np.float32), requires_grad=True)

    def matmul():
        with bp.no_grad():
            x @ w

    def forward_backward():
        loss = bp.tanh(x @ w).sum()
        loss.backward()
        w.grad = None

    retained = bp.tanh(x @ w).sum()

    def backward():  # the same graph again and again: backward alone
        retained.backward(retain_graph=True)

    def tanh():  # elementwise ops keep the GIL: the no-overlap reference
        with bp.no_grad():
            for _ in range(8):
                bp.tanh(x)

    cases = {"matmul": matmul, "backward": backward, "forward+backward": forward_backward}
    return {**cases, "tanh (GIL held)": tanh}[name]


def run(threads: int, name: str, n: int, steps: int) -> float:
    """Wall time for `threads` Python threads each doing `steps` iterations of the case."""
    steps_of = [make_case(name, n) for _ in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def body(i):
        step = steps_of[i]
        step()  # warm-up
        barrier.wait()
        for _ in range(steps):
            step()
        barrier.wait()

    workers = [threading.Thread(target=body, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    barrier.wait()
    start = time.perf_counter()
    barrier.wait()
    wall = time.perf_counter() - start
    for w in workers:
        w.join()
    return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    bp.set_num_threads(1)
    print(f"bprop {bp.__version__}, kernel threads 1, size {args.size}, {args.steps} steps")
    print(f"{'case':<18} {'1 thread':>10} {'2 threads':>10} {'ratio':>7}")
    for name in ("matmul", "backward", "forward+backward", "tanh (GIL held)"):
        one = min(run(1, name, args.size, args.steps) for _ in range(args.repeats))
        two = min(run(2, name, args.size, args.steps) for _ in range(args.repeats))
        print(f"{name:<18} {one * 1e3:8.1f}ms {two * 1e3:8.1f}ms {two / one:7.2f}")


if __name__ == "__main__":
    main()

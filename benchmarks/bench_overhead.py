"""Per-op overhead and a small training step, bprop beside PyTorch in one run, as ratios.

    python benchmarks/bench_overhead.py [--repeat 5]

Prints the median time per unit for each library and bprop/torch (below 1: bprop faster).
Not a test: nothing here asserts a timing."""

from __future__ import annotations

import argparse
import statistics
import time

import bprop as bp

try:
    import torch
except ImportError:  # the table then shows bprop alone
    torch = None


def per_call(fn, number: int, repeat: int) -> float:
    """Median seconds per call of fn over `repeat` rounds of `number` calls."""
    fn()
    rounds = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        rounds.append((time.perf_counter() - start) / number)
    return statistics.median(rounds)


def small_add(lib):
    x = lib.ones(4, requires_grad=True)
    y = lib.ones(4)
    return lambda: x + y


def chain_backward(lib, length=200):
    x = lib.ones(4, requires_grad=True)

    def run():
        y = x
        for _ in range(length):
            y = y * 1.0001
        y.sum().backward()

    return run, length + 1


def mlp_step(lib, batch=32, hidden=64):
    lib.manual_seed(0)
    x = lib.randn(batch, 16)
    y = lib.randn(batch, 1)
    w1 = (lib.randn(16, hidden) * 0.25).requires_grad_()
    w2 = (lib.randn(hidden, 1) * 0.125).requires_grad_()
    opt = lib.optim.SGD([w1, w2], lr=0.01)

    def run():
        opt.zero_grad()
        loss = (((x @ w1).tanh() @ w2 - y) ** 2).mean()
        loss.backward()
        opt.step()

    return run


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    libs = [("bprop", bp)] + ([("torch", torch)] if torch is not None else [])
    if torch is not None:
        torch.set_num_threads(1)

    results = {}
    for name, lib in libs:
        results[name] = [
            per_call(small_add(lib), 20000, args.repeat),
        ]
        run, ops = chain_backward(lib)
        results[name].append(per_call(run, 50, args.repeat) / ops)
        results[name].append(per_call(mlp_step(lib), 300, args.repeat))
    labels = [
        "x + y, 4 elements, recording (per op)",
        "201-op chain, forward + backward (per op)",
        "MLP 16-64-1 SGD step, batch 32 (per step)",
    ]
    header = f"{'benchmark':45s} {'bprop':>10s}"
    if torch is not None:
        header += f" {'torch':>10s} {'bprop/torch':>12s}"
    print(header)
    for i, label in enumerate(labels):
        line = f"{label:45s} {results['bprop'][i] * 1e6:8.2f}us"
        if torch is not None:
            t = results["torch"][i]
            line += f" {t * 1e6:8.2f}us {results['bprop'][i] / t:12.2f}"
        print(line)


if __name__ == "__main__":
    main()

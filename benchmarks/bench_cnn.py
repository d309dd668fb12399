"""A small CNN training step on 28x28 images, bprop beside PyTorch (same shapes, same math).

    python benchmarks/bench_cnn.py [--batch 64] [--steps 20]

Prints milliseconds per step (forward, cross-entropy, backward, SGD) and the ratio."""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import bprop as bp  # noqa: E402
import bprop.nn.functional as F  # noqa: E402
import numpy as np  # noqa: E402

try:
    import torch
except ImportError:
    torch = None


def make_step(lib, functional, images, labels):
    rng = np.random.default_rng(0)

    def param(*shape, scale):
        return lib.tensor(
            (rng.standard_normal(shape) * scale).astype(np.float32), requires_grad=True
        )

    w1, b1 = param(8, 1, 3, 3, scale=0.3), param(8, scale=0.0)
    w2, b2 = param(16, 8, 3, 3, scale=0.1), param(16, scale=0.0)
    w3, b3 = param(10, 16 * 7 * 7, scale=0.03), param(10, scale=0.0)
    params = [w1, b1, w2, b2, w3, b3]
    opt = lib.optim.SGD(params, lr=0.05)
    x, y = lib.tensor(images), lib.tensor(labels)

    def step():
        h = functional.max_pool2d(functional.relu(functional.conv2d(x, w1, b1, padding=1)), 2)
        h = functional.max_pool2d(functional.relu(functional.conv2d(h, w2, b2, padding=1)), 2)
        logits = functional.linear(h.reshape(h.shape[0], -1), w3, b3)
        loss = functional.cross_entropy(logits, y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        return loss.item()

    return step


def time_steps(step, steps):
    step()
    start = time.perf_counter()
    losses = [step() for _ in range(steps)]
    return (time.perf_counter() - start) / steps, losses


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    images = rng.standard_normal((args.batch, 1, 28, 28)).astype(np.float32)
    labels = rng.integers(0, 10, args.batch)
    libs = [("bprop", bp, F)]
    if torch is not None:
        libs.append(("torch", torch, torch.nn.functional))
    results = {}
    for name, lib, functional in libs:
        time.sleep(0.1)
        results[name], losses = time_steps(make_step(lib, functional, images, labels), args.steps)
        print(
            f"{name:6s} {results[name] * 1e3:8.2f} ms/step   loss {losses[0]:.4f} -> "
            f"{losses[-1]:.4f}"
        )
    if "torch" in results:
        print(f"bprop/torch time ratio: {results['bprop'] / results['torch']:.2f}")


if __name__ == "__main__":
    main()

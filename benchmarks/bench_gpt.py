"""A GPT's training step in bprop (eager and captured) against PyTorch (eager, and
torch.compile where it works here), one run, same machine, same threads:

    python benchmarks/bench_gpt.py                 # nanoGPT's CPU configuration
    python benchmarks/bench_gpt.py --steps 10 --no-torch-compile    # quicker

The model is examples/char_gpt.py's GPT (4 layers, 4 heads, 128 wide, block 64, batch 12 by
default), built once in bprop and, with PyTorch in bprop's place, once in PyTorch with the same
initial weights copied across; both train with AdamW on the same batches of tiny Shakespeare
(or random tokens without it). Each way runs in its own process, which imports its own
library and not the other (the initial weights come from a file the parent writes), so that
its peak resident memory is its own: ms per step (median of --steps after warm-up), tokens per
second and peak RSS. The ways take turns, --rounds times (default 3), so that a machine whose
speed drifts between processes slows them alike: a way's time is the median of its rounds, and each
round's ratios to PyTorch eager are printed too. Then forward + backward of the pieces a
transformer spends its time in, at the GPT's shapes, bprop against PyTorch. The header
names the CPU: figures from one machine say nothing about another.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import runpy
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = pathlib.Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "char_gpt.py"
SHARED_TEXT = ROOT.parent / "shared" / "data" / "tiny_shakespeare.txt"
MODES = ("bprop eager", "bprop captured", "torch eager", "torch.compile")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        import platform

        return platform.processor() or "unknown CPU"


def peak_rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def bprop_gpt_class():
    """examples/char_gpt.py's GPT as bprop code."""
    return runpy.run_path(str(EXAMPLE), run_name="bench_gpt_bprop")["GPT"]


def torch_gpt_class():
    """The same source with torch in bprop's place (the aliasing benchmarks/with_torch.py
    does), without importing bprop."""
    import torch
    import torch.nn
    import torch.nn.functional

    saved = {name: sys.modules.get(name) for name in ("bprop", "bprop.nn", "bprop.nn.functional")}
    sys.modules.update(
        {"bprop": torch, "bprop.nn": torch.nn, "bprop.nn.functional": torch.nn.functional}
    )
    try:
        torch_gpt = runpy.run_path(str(EXAMPLE), run_name="bench_gpt_torch")["GPT"]
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return torch_gpt


def config_of(args) -> dict:
    return dict(
        vocab_size=65,
        block_size=args.block_size,
        n_layer=args.n_layer,
        n_head=args.n_head,
        n_embd=args.n_embd,
        dropout=0.0,
    )


def write_initial_weights(args, path: pathlib.Path) -> None:
    """The GPT's initial weights (bprop's init, seed 1337), for every way to load."""
    import bprop as bp

    bp.manual_seed(1337)
    model = bprop_gpt_class()(**config_of(args))
    np.savez(path, **{k: v.detach().numpy() for k, v in model.state_dict().items()})


def batches(args, count: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    if SHARED_TEXT.is_file():
        text = SHARED_TEXT.read_text(encoding="utf-8")
        chars = sorted(set(text))
        data = np.array([chars.index(c) for c in text[:200_000]], dtype=np.int64)
    else:
        data = rng.integers(0, 65, 200_000).astype(np.int64)
    out = []
    for _ in range(count):
        starts = rng.integers(0, len(data) - args.block_size - 1, args.batch_size)
        x = np.stack([data[s : s + args.block_size] for s in starts])
        y = np.stack([data[s + 1 : s + 1 + args.block_size] for s in starts])
        out.append((x, y))
    return out


def run_mode(args) -> dict:
    """One way of training, in this process: its step times and peak memory."""
    weights = dict(np.load(args.weights))
    if args.mode.startswith("bprop"):
        import bprop as lib

        lib.set_num_threads(args.threads)
        model = bprop_gpt_class()(**config_of(args))
    else:
        import torch as lib

        lib.set_num_threads(args.threads)
        model = torch_gpt_class()(**config_of(args))
    model.load_state_dict({k: lib.from_numpy(v) for k, v in weights.items()})
    data = batches(args, args.warmup + args.steps)
    optimizer = lib.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    forward = lib.compile(model) if args.mode == "torch.compile" else model

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = forward(x, y)
        loss.backward()
        optimizer.step()
        return loss

    if args.mode == "bprop captured":
        step = lib.compile(step)
    inputs = [(lib.from_numpy(x), lib.from_numpy(y)) for x, y in data]
    times, losses = [], []
    for i, (x, y) in enumerate(inputs):
        start = time.perf_counter()
        loss = step(x, y)
        elapsed = time.perf_counter() - start
        losses.append(float(loss.item()))
        if i >= args.warmup:
            times.append(elapsed)
    return {
        "ms": statistics.median(times) * 1e3,
        "ms_min": min(times) * 1e3,
        "first_loss": losses[0],
        "last_loss": losses[-1],
        "peak_rss_mb": peak_rss_mb(),
    }


def kernel_rows(threads: int) -> list[tuple[str, float, float]]:
    """Forward + backward of the transformer's pieces at the GPT's shapes, in microseconds."""
    import bprop as bp
    import torch

    bp.set_num_threads(threads)
    torch.set_num_threads(threads)
    rng = np.random.default_rng(1)
    f32 = np.float32

    def pieces(lib, F):
        x = lib.tensor(rng.standard_normal((12, 64, 128)).astype(f32), requires_grad=True)
        w = lib.tensor(np.ones(128, f32), requires_grad=True)
        b = lib.tensor(np.zeros(128, f32), requires_grad=True)
        h = lib.tensor(rng.standard_normal((12, 64, 512)).astype(f32), requires_grad=True)
        q, k, v = (
            lib.tensor(rng.standard_normal((12, 4, 64, 32)).astype(f32), requires_grad=True)
            for _ in range(3)
        )
        logits = lib.tensor(rng.standard_normal((768, 65)).astype(f32), requires_grad=True)
        targets = lib.tensor(rng.integers(0, 65, 768))
        table = lib.tensor(rng.standard_normal((65, 128)).astype(f32), requires_grad=True)
        idx = lib.tensor(rng.integers(0, 65, (12, 64)))
        scores = lib.tensor(rng.standard_normal((12, 4, 64, 64)).astype(f32), requires_grad=True)
        return {
            "layer_norm (12,64,128)": lambda: F.layer_norm(x, (128,), w, b).sum().backward(),
            "attention, causal (12,4,64,32)": lambda: (
                F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()
            ),
            "gelu (12,64,512)": lambda: F.gelu(h).sum().backward(),
            "cross_entropy (768,65)": lambda: F.cross_entropy(logits, targets).backward(),
            "embedding (65,128)[12,64]": lambda: F.embedding(idx, table).sum().backward(),
            # attention written out by hand (a mask tensor, or a model that predates sdpa)
            "softmax (12,4,64,64)": lambda: F.softmax(scores, -1).sum().backward(),
        }

    def best_us(fn) -> float:
        for _ in range(5):
            fn()
        best = float("inf")
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(20):
                fn()
            best = min(best, (time.perf_counter() - start) / 20)
        return best * 1e6

    ours, theirs = pieces(bp, bp.nn.functional), pieces(torch, torch.nn.functional)
    return [(name, best_us(ours[name]), best_us(theirs[name])) for name in ours]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=30, help="timed steps per way")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batch-size", type=int, default=12)
    parser.add_argument("--block-size", type=int, default=64)
    parser.add_argument("--n-layer", type=int, default=4)
    parser.add_argument("--n-head", type=int, default=4)
    parser.add_argument("--n-embd", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=3, help="turns of every way")
    parser.add_argument("--no-torch-compile", action="store_true")
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # a child's one way
    parser.add_argument("--weights", help=argparse.SUPPRESS)  # the child's initial weights
    args = parser.parse_args()
    if args.mode:
        print(json.dumps(run_mode(args)))
        return

    import bprop as bp
    import torch

    print(
        f"bprop {bp.__version__} on {cpu_model()} ({bp._core._isa()}), {args.threads} threads; "
        f"torch {torch.__version__}"
    )
    print(
        f"GPT {args.n_layer} layers, {args.n_head} heads, width {args.n_embd}, block "
        f"{args.block_size}, batch {args.batch_size}; AdamW; median of {args.steps} steps"
    )
    tokens = args.batch_size * args.block_size
    forwarded = [
        f"--{name}={getattr(args, name.replace('-', '_'))}"
        for name in (
            "steps",
            "warmup",
            "threads",
            "batch-size",
            "block-size",
            "n-layer",
            "n-head",
            "n-embd",
        )
    ]
    modes = [m for m in MODES if not (m == "torch.compile" and args.no_torch_compile)]
    weights_dir = tempfile.TemporaryDirectory(prefix="bench_gpt_")
    weights = pathlib.Path(weights_dir.name) / "initial.npz"
    write_initial_weights(args, weights)
    forwarded.append(f"--weights={weights}")
    rounds: list[dict] = []
    failed: dict[str, str] = {}
    for _ in range(max(1, args.rounds)):
        this_round = {}
        for mode in modes:
            if mode in failed:
                continue
            run = subprocess.run(
                [sys.executable, __file__, "--mode", mode, *forwarded],
                capture_output=True,
                text=True,
                timeout=900,
            )
            if run.returncode != 0:
                failed[mode] = (run.stderr.strip().splitlines() or ["no output"])[-1][:70]
                continue
            this_round[mode] = json.loads(run.stdout.strip().splitlines()[-1])
        rounds.append(this_round)
    print(f"{'way':<16}{'ms/step':>10}{'tokens/s':>11}{'peak RSS MB':>13}{'loss':>16}")
    results = {}
    for mode in modes:
        runs = [r[mode] for r in rounds if mode in r]
        if not runs:
            print(f"{mode:<16} failed here: {failed[mode]}")
            continue
        result = dict(runs[0])
        result["ms"] = statistics.median(r["ms"] for r in runs)
        result["peak_rss_mb"] = max(r["peak_rss_mb"] for r in runs)
        results[mode] = result
        loss = f"{result['first_loss']:.3f} -> {result['last_loss']:.3f}"
        print(
            f"{mode:<16}{result['ms']:>10.2f}{tokens / result['ms'] * 1e3:>11.0f}"
            f"{result['peak_rss_mb']:>13.0f}{loss:>16}"
        )
    if "torch eager" in results:
        base = results["torch eager"]
        for mode in ("bprop eager", "bprop captured"):
            if mode in results:
                each = ", ".join(
                    f"{r[mode]['ms'] / r['torch eager']['ms']:.2f}"
                    for r in rounds
                    if mode in r and "torch eager" in r
                )
                print(
                    f"{mode} / torch eager: time {results[mode]['ms'] / base['ms']:.2f} "
                    f"(rounds: {each}), peak RSS "
                    f"{results[mode]['peak_rss_mb'] / base['peak_rss_mb']:.2f}"
                )
    print(f"\n{'forward + backward':<34}{'bprop us':>10}{'torch us':>10}{'bprop/torch':>13}")
    for name, ours, theirs in kernel_rows(args.threads):
        print(f"{name:<34}{ours:>10.1f}{theirs:>10.1f}{ours / theirs:>13.2f}")


if __name__ == "__main__":
    main()

"""The benchmark suite: bprop beside PyTorch, JAX (jit) and numpy on the same workloads, in
one run. Peers that aren't installed are skipped with a note.

    python benchmarks/suite.py [--quick] [--out benchmarks/results]

Workloads: per-op overhead with autograd recording, a 201-op elementwise chain (forward and
backward), SGD training steps of three MLPs (2-16-16-1 batch 32, 784-128-128-10 batch 64,
784-512-512-10 batch 256), peak and late-run memory over 1,000 steps of the largest MLP (each
library in its own process), `import` time, and the kernel workloads of bench_kernels.py.
Prints min and median times and ratios to PyTorch; writes suite.json and suite.png (ratios,
bar chart) under --out. Not a test: nothing asserts a timing."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP workers sleep at once

import bprop as bp  # noqa: E402
import numpy as np  # noqa: E402

# The memory runs import only the library they measure (BPROP_SUITE_ONLY), so that one
# library's peak RSS doesn't include another's.
ONLY = os.environ.get("BPROP_SUITE_ONLY")
torch = jax = None
if ONLY in (None, "torch"):
    try:
        import torch
    except ImportError:
        pass
if ONLY in (None, "jax"):
    try:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_platforms", "cpu")
    except ImportError:
        pass

HERE = os.path.dirname(os.path.abspath(__file__))
QUIESCE_S = 0.1
MLPS = [("2-16-16-1", (2, 16, 16, 1), 32), ("784-128-128-10", (784, 128, 128, 10), 64),
        ("784-512-512-10", (784, 512, 512, 10), 256)]  # fmt: skip


def timings(fn, rounds: int, min_time: float = 0.05) -> tuple[float, float]:
    """(min, median) seconds per call over rounds, each round lasting about min_time."""
    fn()
    number = 1
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        if time.perf_counter() - start >= min_time or number >= 1 << 20:
            break
        number *= 2
    samples = []
    for _ in range(rounds):
        time.sleep(QUIESCE_S)
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return min(samples), statistics.median(samples)


# ---- workloads: each returns {library: zero-argument callable}, and a unit count ----


def op_overhead():
    runners = {}
    x, y = bp.ones(4, requires_grad=True), bp.ones(4)
    runners["bprop"] = lambda: x + y
    if torch is not None:
        xt, yt = torch.ones(4, requires_grad=True), torch.ones(4)
        runners["torch"] = lambda: xt + yt
    return runners, 1


def chain(length: int = 200):
    runners = {}

    def make(lib):
        x = lib.ones(4, requires_grad=True)

        def run():
            y = x
            for _ in range(length):
                y = y * 1.0001
            y.sum().backward()
            x.grad = None

        return run

    runners["bprop"] = make(bp)
    if torch is not None:
        runners["torch"] = make(torch)
    if jax is not None:

        def f(v):
            for _ in range(length):
                v = v * 1.0001
            return v.sum()

        g = jax.jit(jax.grad(f))
        v = jnp.ones(4)
        runners["jax"] = lambda: g(v).block_until_ready()
    return runners, length + 1


def mlp_step(sizes, batch):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    classes = sizes[-1] > 1
    y = rng.integers(0, sizes[-1], batch) if classes else rng.standard_normal((batch, 1))
    y = y.astype(np.int64 if classes else np.float32)
    runners = {}

    def torch_like(lib, nn, functional, optim):
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(nn.Tanh() if i == 0 else nn.ReLU())
        model = nn.Sequential(*layers)
        opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        xs_default, ys_default = lib.tensor(x), lib.tensor(y)
        loss_fn = functional.cross_entropy if classes else functional.mse_loss

        def step(xs=xs_default, ys=ys_default):
            opt.zero_grad()
            loss = loss_fn(model(xs), ys)
            loss.backward()
            opt.step()

        return step

    runners["bprop"] = torch_like(bp, bp.nn, bp.nn.functional, bp.optim)
    # The same step captured once and replayed from C++ (bp.compile).
    captured_step = bp.compile(torch_like(bp, bp.nn, bp.nn.functional, bp.optim))
    xs_c, ys_c = bp.tensor(x), bp.tensor(y)
    runners["bprop-captured"] = lambda: captured_step(xs_c, ys_c)
    if torch is not None:
        runners["torch"] = torch_like(torch, torch.nn, torch.nn.functional, torch.optim)
    if jax is not None:
        keys = jax.random.split(jax.random.PRNGKey(0), len(sizes) - 1)
        params = [(jax.random.normal(k, (sizes[i], sizes[i + 1])) * 0.05, jnp.zeros(sizes[i + 1]))
                  for i, k in enumerate(keys)]  # fmt: skip
        velocity = jax.tree_util.tree_map(jnp.zeros_like, params)

        def loss(params, xs, ys):
            h = xs
            for i, (w, b) in enumerate(params):
                h = h @ w + b
                if i < len(params) - 1:
                    h = jnp.tanh(h) if i == 0 else jax.nn.relu(h)
            if classes:
                return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(h), ys[:, None], 1))
            return jnp.mean((h - ys) ** 2)

        @jax.jit
        def step(params, velocity, xs, ys):
            grads = jax.grad(loss)(params, xs, ys)
            velocity = jax.tree_util.tree_map(lambda v, g: 0.9 * v + g, velocity, grads)
            params = jax.tree_util.tree_map(lambda p, v: p - 0.01 * v, params, velocity)
            return params, velocity

        state = {"p": params, "v": velocity}
        xs, ys = jnp.asarray(x), jnp.asarray(y)

        def run():
            state["p"], state["v"] = step(state["p"], state["v"], xs, ys)
            jax.block_until_ready(state["p"])

        runners["jax"] = run
    return runners, 1


# ---- memory and import time, each in a fresh process ----

MEMORY_SCRIPT = """
import os, sys
sys.path.insert(0, {here!r})
os.environ["OMP_WAIT_POLICY"] = "PASSIVE"
import suite
runners, _ = suite.mlp_step((784, 512, 512, 10), 256)
step = runners[{lib!r}]
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
for i in range(1000):
    step()
    if i == 99:
        early = rss()
def peak():  # this process's high-water mark (ru_maxrss would include the parent's, via fork)
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) * 1024 for l in f if l.startswith("VmHWM:"))
print(early, rss(), peak())
"""


def memory(lib: str):
    env = dict(os.environ, PYTHONPATH=HERE + os.pathsep + os.environ.get("PYTHONPATH", ""),
               BPROP_SUITE_ONLY=lib)  # fmt: skip
    run = subprocess.run([sys.executable, "-c", MEMORY_SCRIPT.format(here=HERE, lib=lib)],
                         capture_output=True, text=True, env=env)  # fmt: skip
    if run.returncode != 0:
        return None
    early, late, peak = (int(v) for v in run.stdout.split())
    return {"rss_at_step_100": early, "rss_at_step_1000": late, "peak_rss": peak}


def import_seconds(module: str) -> float:
    best = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", f"import {module}"], check=True)
        best = min(best, time.perf_counter() - start)
    baseline = float("inf")
    for _ in range(5):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        baseline = min(baseline, time.perf_counter() - start)
    return best - baseline


def machine() -> dict:
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    return {"cpu": model, "cores": os.cpu_count(), "isa": bp._core._isa(),
            "threads": bp.get_num_threads(), "platform": platform.platform(),
            "python": platform.python_version(),
            "date": time.strftime("%Y-%m-%d")}  # fmt: skip


def chart(rows: list, path: str) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart")
        return False
    labels = [r["workload"] for r in rows if "torch" in r["median"]]
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    libs = ["bprop", "bprop-captured", "jax"]
    for offset, lib in enumerate(libs):
        values = [r["median"].get(lib, float("nan")) / r["median"]["torch"]
                  for r in rows if "torch" in r["median"]]  # fmt: skip
        ax.barh([i + 0.27 * offset for i in range(len(labels))], values, height=0.27, label=lib)
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_yticks([i + 0.27 for i in range(len(labels))])
    ax.set_yticklabels(labels)
    ax.invert_yaxis()
    ax.set_xlabel("time / PyTorch's time (lower is faster)")
    ax.legend()
    ax.set_title("bprop (eager and captured) and JAX (jit) against PyTorch, median times")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    rounds = 3 if args.quick else 7
    if torch is not None:
        torch.set_num_threads(bp.get_num_threads())
    for name, module in [("torch", torch), ("jax", jax)]:
        if module is None:
            print(f"note: {name} is not installed; its columns are skipped")
    info = machine()
    versions = {"bprop": bp.__version__, "numpy": np.__version__,
                "torch": torch.__version__ if torch else None,
                "jax": jax.__version__ if jax else None}  # fmt: skip
    print(
        f"{info['date']}  {info['cpu']}, {info['cores']} cores, {info['isa']}; "
        + ", ".join(f"{k} {v}" for k, v in versions.items() if v)
    )

    workloads = [
        ("x + y, 4 elements, recording (per op)", op_overhead),
        ("201-op chain fwd+bwd (per op)", chain),
    ]
    workloads += [(f"MLP {name} batch {batch} SGD step", lambda s=sizes, b=batch: mlp_step(s, b))
                  for name, sizes, batch in MLPS]  # fmt: skip
    rows = []
    print(f"{'workload':42s} {'lib':14s} {'min':>10s} {'median':>10s} {'/torch':>7s}")
    for label, make in workloads:
        runners, units = make()
        row = {"workload": label, "min": {}, "median": {}}
        for lib, fn in runners.items():
            lo, mid = timings(fn, rounds)
            row["min"][lib], row["median"][lib] = lo / units, mid / units
        for lib in runners:
            ratio = (
                row["median"][lib] / row["median"]["torch"] if "torch" in row["median"] else None
            )
            print(
                f"{label:42s} {lib:14s} {row['min'][lib] * 1e6:8.2f}us "
                f"{row['median'][lib] * 1e6:8.2f}us " + (f"{ratio:7.2f}" if ratio else "")
            )
        rows.append(row)

    print("memory: 1,000 training steps per library, each in a fresh process ...", flush=True)
    mem = {lib: memory(lib) for lib in ["bprop"] + (["torch"] if torch else [])}
    for lib, m in mem.items():
        if m:
            early, late, peak = (m[k] / 2**20 for k in ("rss_at_step_100", "rss_at_step_1000",
                                                         "peak_rss"))  # fmt: skip
            print(f"memory {lib:6s} 784-512-512-10, 1000 steps: RSS at step 100 {early:.0f} MiB, "
                  f"at 1000 {late:.0f} MiB, peak {peak:.0f} MiB")  # fmt: skip
    imports = {"bprop": import_seconds("bprop")}
    if torch is not None:
        imports["torch"] = import_seconds("torch")
    print("import time: " + ", ".join(f"{k} {v:.3f} s" for k, v in imports.items()))

    print("kernel workloads (bench_kernels.py):", flush=True)
    # Its output streams through, row by row: the kernel runs take minutes.
    kernel_run = subprocess.run([sys.executable, "-u", os.path.join(HERE, "bench_kernels.py"),
                                 "--json", os.path.join(args.out, "kernels.json")]
                                + (["--quick"] if args.quick else []))  # fmt: skip
    if kernel_run.returncode != 0:
        sys.exit(f"bench_kernels.py failed (exit {kernel_run.returncode})")

    os.makedirs(args.out, exist_ok=True)
    report = {"machine": info, "versions": versions, "workloads": rows, "memory": mem,
              "import_seconds": imports}  # fmt: skip
    with open(os.path.join(args.out, "suite.json"), "w") as f:
        json.dump(report, f, indent=2)
    drawn = chart(rows, os.path.join(args.out, "suite.png"))
    print(
        f"wrote {os.path.join(args.out, 'suite.json')}"
        + (f" and {os.path.join(args.out, 'suite.png')}" if drawn else "")
    )


if __name__ == "__main__":
    main()

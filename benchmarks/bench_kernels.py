"""Kernel benchmark: bprop beside numpy (and PyTorch when installed), in one process.

    python benchmarks/bench_kernels.py [--quick] [--threads N] [--contention]
                                       [--json benchmarks/results/kernels.json]

For each case every library runs the same operation on the same data; rounds alternate
between libraries, each round preceded by a short sleep so that the previous library's
spinning worker threads have gone quiet. Reports the median time, the rate (GFLOP/s or GB/s),
bprop's share of the machine's roofline (the FMA peak of the threads used, measured once by a
register-only loop, for products; the memory bandwidth, measured once by a large copy, for the
rest) and bprop's time ratio to numpy (below 1: bprop faster), and writes everything as JSON.
The roofline line also gives the GEMM micro-kernel's rate alone (one core, its operands in
cache): the ceiling a whole product's roof % approaches.
--threads N runs every library on N threads (default: bprop's default, libraries' own).
--contention adds rows measured while a busy-loop process is pinned to CPU 0: bprop's time
with 2 threads over its time with 1 (a descheduled worker must not cost more than it brings).
Not a test: nothing here asserts a timing."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time

# Idle OpenMP workers (PyTorch's) sleep at once instead of spinning on the 2 cores.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def _threads_argument() -> int | None:
    """--threads N, read before numpy is imported: OpenBLAS sizes its pool at import."""
    for i, arg in enumerate(sys.argv):
        if arg == "--threads" and i + 1 < len(sys.argv):
            return int(sys.argv[i + 1])
        if arg.startswith("--threads="):
            return int(arg.split("=", 1)[1])
    return None


THREADS = _threads_argument()
if THREADS is not None:
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[_name] = str(THREADS)

import bprop as bp  # noqa: E402
import numpy as np  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

QUIESCE_S = 0.3  # OpenBLAS workers spin up to 2**28 cycles (~0.1 s) after a call: let them sleep
WARM_S = 0.02  # then each library's calls for this long, untimed, before a timed round


def measure(fn, min_time: float = 0.02) -> tuple[int, float]:
    """Calls per round so that a round lasts about min_time, and the time of one call."""
    fn()
    number, elapsed = 1, 0.0
    while True:
        start = time.perf_counter()
        for _ in range(number):
            fn()
        elapsed = time.perf_counter() - start
        if elapsed >= min_time or number >= 1 << 20:
            return number, elapsed / number
        number *= 2


def seconds_per_call(fn, number: int) -> float:
    """fn called `number` times back to back: the time of one call."""
    start = time.perf_counter()
    for _ in range(number):
        fn()
    return (time.perf_counter() - start) / number


def compare(runners: dict, rounds: int) -> dict:
    """Median seconds per call for each library, rounds alternating between libraries."""
    numbers = {}
    for name, fn in runners.items():
        time.sleep(QUIESCE_S)
        numbers[name], _ = measure(fn)
    samples = {name: [] for name in runners}
    for _ in range(rounds):
        for name, fn in runners.items():
            time.sleep(QUIESCE_S)
            # Untimed calls first: after the pause a core (a VM's virtual one most of all) needs
            # a call to get back up to speed (on the AMD EPYC of docs/performance.md, 1 thread,
            # medians of 12 pauses, six sgemm n=512 calls after each: 3.78 ms without this call,
            # 3.25 with it), and threads longer (on the Intel(R) Xeon(R) Processor there, 2
            # threads, --quick: with one call, bprop/numpy 1.07-1.31 on the MLP's 256x784x512
            # dW and dX and the GPT's qkv and down; with 20 ms of calls, 0.79-1.08).
            warm_until = time.perf_counter() + WARM_S
            fn()
            while time.perf_counter() < warm_until:
                fn()
            samples[name].append(seconds_per_call(fn, numbers[name]))
    return {name: statistics.median(values) for name, values in samples.items()}


def in_a_loop(fn, thread_counts, rounds: int) -> dict:
    """Median seconds per call of bprop's fn for each thread count, called back to back (no
    pause, so the pool's workers stay awake), rounds alternating between the thread counts.
    Each round is long (0.2 s) and starts with a few untimed calls: a new thread count starts a
    new pool, whose worker starts cold."""
    numbers = {}
    for threads in thread_counts:
        bp.set_num_threads(threads)
        numbers[threads], _ = measure(fn, min_time=0.2)
    samples = {threads: [] for threads in thread_counts}
    for _ in range(rounds):
        for threads in thread_counts:
            bp.set_num_threads(threads)
            for _ in range(3):
                fn()
            samples[threads].append(seconds_per_call(fn, numbers[threads]))
    return {threads: statistics.median(values) for threads, values in samples.items()}


def first_call_after_pause(fn, thread_counts, rounds: int) -> dict:
    """Median seconds of bprop's first call of fn after a QUIESCE_S pause, for each thread count:
    what a program that calls now and then gets (the pool's workers have gone to sleep)."""
    samples = {threads: [] for threads in thread_counts}
    for _ in range(rounds):
        for threads in thread_counts:
            bp.set_num_threads(threads)
            fn()
            time.sleep(QUIESCE_S)
            start = time.perf_counter()
            fn()
            samples[threads].append(time.perf_counter() - start)
    return {threads: statistics.median(values) for threads, values in samples.items()}


def gemm_case(label, m, k, n, transpose_a=False, transpose_b=False, dtype=np.float32):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    a_np = a.T if transpose_a else a
    b_np = b.T if transpose_b else b
    ta, tb = bp.tensor(a), bp.tensor(b)
    ta, tb = (ta.T if transpose_a else ta), (tb.T if transpose_b else tb)
    runners = {"bprop": lambda: ta @ tb, "numpy": lambda: a_np @ b_np}
    if torch is not None:
        xa, xb = torch.from_numpy(a), torch.from_numpy(b)
        xa, xb = (xa.T if transpose_a else xa), (xb.T if transpose_b else xb)
        runners["torch"] = lambda: xa @ xb
    return label, runners, 2.0 * m * n * k, "GFLOP/s"


def unary_case(label, n, np_fn, bp_fn, torch_fn):
    x = np.random.default_rng(1).standard_normal(n).astype(np.float32)
    tx = bp.tensor(x)
    runners = {"bprop": lambda: bp_fn(tx), "numpy": lambda: np_fn(x)}
    if torch is not None:
        xt = torch.from_numpy(x)
        runners["torch"] = lambda: torch_fn(xt)
    return label, runners, 8.0 * n, "GB/s"  # one read and one write of float32


def add_case(n):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    tx, ty = bp.tensor(x), bp.tensor(y)
    runners = {"bprop": lambda: tx + ty, "numpy": lambda: x + y}
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        runners["torch"] = lambda: xt + yt
    return f"add, {n:,} float32", runners, 12.0 * n, "GB/s"


def softmax_case(rows, cols):
    x = np.random.default_rng(4).standard_normal((rows, cols)).astype(np.float32)
    tx = bp.tensor(x)

    def numpy_softmax():
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    runners = {"bprop": lambda: bp.softmax(tx, 1), "numpy": numpy_softmax}
    if torch is not None:
        xt = torch.from_numpy(x)
        runners["torch"] = lambda: torch.softmax(xt, 1)
    return f"softmax rows, {rows} x {cols} float32", runners, 8.0 * rows * cols, "GB/s"


def sum_case(n):
    x = np.random.default_rng(3).random(n).astype(np.float32)
    tx = bp.tensor(x)
    runners = {"bprop": lambda: tx.sum(), "numpy": lambda: x.sum()}
    if torch is not None:
        xt = torch.from_numpy(x)
        runners["torch"] = lambda: xt.sum()
    return f"sum, {n:,} float32", runners, 4.0 * n, "GB/s"


def memory_bandwidth() -> float:
    """GB/s of a 256 MB copy (a read and a write per byte), the best of five."""
    source = np.ones(64 * 1024 * 1024, dtype=np.float32)
    target = np.empty_like(source)
    best = min(_timed(lambda: np.copyto(target, source)) for _ in range(5))
    return 2 * source.nbytes / best / 1e9


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def mlp_step_runner(hidden: int, batch: int):
    """One SGD step of the 784-hidden-hidden-10 MLP on a fixed batch."""
    bp.manual_seed(0)
    model = bp.nn.Sequential(
        bp.nn.Linear(784, hidden), bp.nn.ReLU(), bp.nn.Linear(hidden, hidden), bp.nn.ReLU(),
        bp.nn.Linear(hidden, 10),
    )  # fmt: skip
    optimizer = bp.optim.SGD(model.parameters(), lr=0.01)
    x, y = bp.randn(batch, 784), bp.randint(0, 10, (batch,))

    def step():
        optimizer.zero_grad()
        bp.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    return step


def mlp_step_rows(rounds: int) -> list[dict]:
    """The suite's MLP training steps (SGD with momentum, cross-entropy), bprop beside PyTorch."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import suite

    rows = []
    for name, sizes, batch in suite.MLPS[1:]:
        runners, _ = suite.mlp_step(sizes, batch)
        libraries = [lib for lib in ("bprop", "torch") if lib in runners]
        times = compare({lib: runners[lib] for lib in libraries}, rounds)
        row = {"case": f"MLP {name} b{batch} SGD step", "seconds": times}
        line = f"{row['case']:34s} " + " ".join(f"{lib} {times[lib] * 1e3:.2f} ms" for lib in times)
        if "torch" in times:
            row["ratio_vs_torch"] = times["bprop"] / times["torch"]
            line += f", bprop/torch {row['ratio_vs_torch']:.2f}"
        rows.append(row)
        print(line)
    return rows


def gpt_parameter_shapes(layers: int = 4, width: int = 128, vocab: int = 65, block: int = 64):
    """The parameter shapes of bench_gpt.py's GPT (examples/char_gpt.py, no biases, the head
    tied to the token embedding): 27 tensors, 0.80M values."""
    shapes = [(vocab, width), (block, width)]
    for _ in range(layers):
        shapes += [(width,), (3 * width, width), (width, width)]
        shapes += [(width,), (4 * width, width), (width, 4 * width)]
    return shapes + [(width,)]


def optimizer_step_rows(rounds: int) -> list[dict]:
    """One optimizer step over many parameters (gradients fixed): bprop beside PyTorch's
    default (a loop over the parameters) and its fused CPU step."""
    mlp_shapes = [(512, 784), (512,), (512, 512), (512,), (10, 512), (10,)]
    cases = [
        ("AdamW step, GPT parameters", gpt_parameter_shapes(), "AdamW", {"weight_decay": 0.1}),
        ("SGD momentum step, MLP 784-512-512-10", mlp_shapes, "SGD", {"momentum": 0.9}),
    ]
    rows = []
    for label, shapes, name, options in cases:
        rng = np.random.default_rng(0)
        values = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        grads = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        params = [bp.tensor(v, requires_grad=True) for v in values]
        for p, g in zip(params, grads):
            p.grad = bp.tensor(g)
        runners = {"bprop": getattr(bp.optim, name)(params, lr=1e-3, **options).step}
        if torch is not None:
            for way, extra in (("torch", {}), ("torch fused", {"fused": True})):
                tensors = [torch.tensor(v, requires_grad=True) for v in values]
                for t, g in zip(tensors, grads):
                    t.grad = torch.tensor(g)
                try:
                    runners[way] = getattr(torch.optim, name)(
                        tensors, lr=1e-3, **options, **extra
                    ).step
                except (RuntimeError, TypeError, ValueError):  # no fused step here
                    pass
        times = compare(runners, rounds)
        count = sum(v.size for v in values)
        row = {"case": f"{label} ({count / 1e6:.2f}M values)", "seconds": times}
        line = f"{row['case']:52s} " + " ".join(f"{k} {t * 1e3:.2f} ms" for k, t in times.items())
        others = [t for k, t in times.items() if k != "bprop"]
        if others:
            row["ratio_vs_torch"] = times["bprop"] / min(others)
            line += f", bprop/best torch {row['ratio_vs_torch']:.2f}"
        rows.append(row)
        print(line)
    return rows


def contention_rows(rounds: int) -> list[dict]:
    """bprop with 2 threads over 1 thread while a busy loop holds CPU 0."""
    if not hasattr(os, "sched_setaffinity") or (os.cpu_count() or 1) < 2:
        print("contention rows skipped: needs sched_setaffinity and 2 CPUs")
        return []
    busy = subprocess.Popen(
        [sys.executable, "-c", "import os; os.sched_setaffinity(0, {0})\nwhile True: pass"]
    )
    a, b = bp.randn(512, 512), bp.randn(512, 512)
    cases = {
        "sgemm n=512": lambda: a @ b,
        "MLP 784-512-512-10 b256 SGD step": mlp_step_runner(512, 256),
    }
    rows = []
    before = bp.get_num_threads()
    try:
        time.sleep(0.2)
        for label, fn in cases.items():
            per_threads = {}
            for threads in (1, 2):
                bp.set_num_threads(threads)
                per_threads[threads] = compare({"bprop": fn}, rounds)["bprop"]
            ratio = per_threads[2] / per_threads[1]
            rows.append({"case": label, "seconds": per_threads, "ratio_2_over_1": ratio})
            print(
                f"under contention, {label}: 1 thread {per_threads[1] * 1e3:.2f} ms, "
                f"2 threads {per_threads[2] * 1e3:.2f} ms, 2/1 = {ratio:.2f}"
            )
    finally:
        bp.set_num_threads(before)
        busy.kill()
        busy.wait()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds and sizes")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--json", default=os.path.join("benchmarks", "results", "kernels.json"))
    parser.add_argument("--threads", type=int, default=None, help="threads for every library")
    parser.add_argument("--contention", action="store_true", help="add the contention rows")
    args = parser.parse_args()
    rounds = args.rounds or (3 if args.quick else 7)
    if args.threads is not None:
        bp.set_num_threads(args.threads)
        if torch is not None:
            torch.set_num_threads(args.threads)
    config = bp.show_config(mode="dicts")
    threads = bp.get_num_threads()
    core_peak = bp._core._fma_peak_gflops(0.2)
    peak = core_peak * threads
    # The GEMM micro-kernel alone on one core (B's panel in L1, packed A from L2, no packing, edges
    # or C traffic): the most a whole product's roof % can approach.
    micro_kernel = bp._core._micro_kernel_gflops(0.2)
    bandwidth = memory_bandwidth()

    sizes = [32, 64, 128, 256, 512, 1024] + ([] if args.quick else [2048])
    cases = [gemm_case(f"sgemm n={n}", n, n, n) for n in sizes]
    cases += [
        gemm_case("MLP fwd (64x784)(784x128)", 64, 784, 128),
        gemm_case("MLP dW (784x64)(64x128), A^T", 784, 64, 128, transpose_a=True),
        gemm_case("MLP dX (64x128)(128x784), B^T", 64, 128, 784, transpose_b=True),
        gemm_case("MLP fwd (256x784)(784x512)", 256, 784, 512),
        gemm_case("MLP dW (784x256)(256x512), A^T", 784, 256, 512, transpose_a=True),
        gemm_case("MLP dX (256x512)(512x784), B^T", 256, 512, 784, transpose_b=True),
        gemm_case("GPT qkv (768x128)(128x384)", 768, 128, 384),
        gemm_case("GPT mlp up (768x128)(128x512)", 768, 128, 512),
        gemm_case("GPT mlp down (768x512)(512x128)", 768, 512, 128),
        gemm_case("GPT head (768x128)(128x65)", 768, 128, 65),
        add_case(1_000_000),
        unary_case("exp, 1,000,000 float32", 1_000_000, np.exp, bp.exp,
                   torch.exp if torch else None),
        unary_case("tanh, 1,000,000 float32", 1_000_000, np.tanh, bp.tanh,
                   torch.tanh if torch else None),
        softmax_case(256, 1000),
        sum_case(10_000_000),
    ]  # fmt: skip

    results = []
    header = f"{'case':34s} {'bprop':>16s} {'numpy':>16s}"
    header += f" {'torch':>16s}" if torch is not None else ""
    header += f" {'roof %':>7s} {'bprop/numpy':>12s}"
    print(
        f"bprop {bp.__version__} on {config['cpu']} ({config['isa']}), {threads} threads; "
        f"numpy {np.__version__}" + (f"; torch {torch.__version__}" if torch else "")
    )
    print(
        f"roofline: FMA peak {peak:.0f} GFLOP/s ({threads} threads, measured), "
        f"memory {bandwidth:.1f} GB/s (a 256 MB copy); the GEMM micro-kernel alone "
        f"{micro_kernel:.0f} GFLOP/s a core, {100 * micro_kernel / core_peak:.0f}% of its peak"
    )
    print(header)
    for label, runners, work, unit in cases:
        times = compare(runners, rounds)
        scale = 1e9
        row = {
            "case": label,
            "unit": unit,
            "seconds": times,
            "rate": {k: work / v / scale for k, v in times.items()},
            "ratio_vs_numpy": times["bprop"] / times["numpy"],
        }
        row["roofline_percent"] = (
            100 * row["rate"]["bprop"] / (peak if unit == "GFLOP/s" else bandwidth)
        )
        results.append(row)
        cells = " ".join(f"{times[k] * 1e6:8.1f}us {row['rate'][k]:6.1f}" for k in runners)
        print(f"{label:34s} {cells} {row['roofline_percent']:7.0f} {row['ratio_vs_numpy']:12.2f}")

    # Thread scaling of bprop's GEMM at n = 1024: products back to back, as in a training loop
    # (compare's pauses would measure a worker waking from sleep instead: the next row).
    a, b = bp.randn(1024, 1024), bp.randn(1024, 1024)
    threads_before = bp.get_num_threads()
    per_threads = in_a_loop(lambda: a @ b, (1, 2), rounds)
    after_pause = first_call_after_pause(lambda: a @ b, (1, 2), rounds)
    bp.set_num_threads(threads_before)
    speedup = per_threads[1] / per_threads[2]
    print(
        f"sgemm n=1024, 1 -> 2 threads speed-up: {speedup:.2f}x "
        f"({per_threads[1] * 1e3:.2f} ms -> {per_threads[2] * 1e3:.2f} ms, back to back); "
        f"first call after a {QUIESCE_S:.1f} s pause: {after_pause[1] * 1e3:.2f} ms -> "
        f"{after_pause[2] * 1e3:.2f} ms"
    )

    mlp_steps = mlp_step_rows(rounds)
    optimizer_steps = optimizer_step_rows(rounds)
    contention = contention_rows(rounds) if args.contention else []

    report = {
        "machine": {"platform": platform.platform(), "cpu": config["cpu"],
                    "cpus": os.cpu_count(), "isa": config["isa"], "threads": threads,
                    "fma_peak_gflops": peak, "memory_gbps": bandwidth, "config": config,
                    "micro_kernel_gflops_a_core": micro_kernel},
        "contention": contention,
        "mlp_steps": mlp_steps,
        "optimizer_steps": optimizer_steps,
        "versions": {"bprop": bp.__version__, "numpy": np.__version__,
                     "torch": torch.__version__ if torch else None},
        "cases": results,
        "thread_speedup_sgemm_1024_back_to_back": speedup,
        "sgemm_1024_seconds_back_to_back": per_threads,
        "sgemm_1024_first_call_after_pause_seconds": after_pause,
    }  # fmt: skip
    os.makedirs(os.path.dirname(args.json) or ".", exist_ok=True)
    with open(args.json, "w") as f:
        json.dump(report, f, indent=2)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()

"""The kernels seen from Python: threads (count, invariance, fork), instruction-set paths,
fused backward agreeing with the composed VJP, and float32 fast math at its edges. The
exhaustive GEMM and ULP sweeps are C++ tests (cpp/tests/test_kernels.cpp)."""

import json
import os
import subprocess
import sys
import threading
import warnings

import bprop as bp
import numpy as np
import pytest
from conftest import run_python_on_isa


def test_set_and_get_num_threads(restore_threads):
    bp.set_num_threads(1)
    assert bp.get_num_threads() == 1
    bp.set_num_threads(2)
    assert bp.get_num_threads() == 2
    with pytest.raises(ValueError, match="set_num_threads"):
        bp.set_num_threads(0)


def test_results_are_bitwise_independent_of_thread_count(restore_threads):
    bp.manual_seed(5)
    a, b = bp.randn(300, 257), bp.randn(257, 301)
    # Over k blocks: split by rows with B packed (x @ W^T); B read in place (Note [B in place])
    # by one thread's 160 rows packed, by two threads' 80 each in place, and split by columns;
    # a weight gradient's column-major A read in place.
    x_rows, w, g = bp.randn(600, 784), bp.randn(128, 784), bp.randn(600, 128)
    some_rows, few_rows, wide_b = bp.randn(160, 784), bp.randn(64, 784), bp.randn(784, 96)
    x = bp.randn(3_000_000)
    outputs = {}
    for threads in (1, 2):
        bp.set_num_threads(threads)
        products = [a @ b, x_rows @ w.T, some_rows @ wide_b, few_rows @ wide_b, g.T @ x_rows]
        products.append(g.T @ x_rows[:, :256])  # A's columns in place, whole or split
        products.append(x_rows @ w.T @ w)
        # Note [Products split along k]: k past m + n, C split by rows and by columns
        products += [g.T @ x_rows[:, :96], g[:, :40].T @ x_rows[:, :300]]
        outputs[threads] = [p.numpy() for p in products]
        outputs[threads] += [x.sum().numpy(), x.exp().numpy(), (x * 2.5).numpy()]
    for one, two in zip(outputs[1], outputs[2]):
        assert np.array_equal(one, two)


@pytest.mark.parametrize("m, n, k", [(128, 96, 600), (40, 300, 600), (64, 64, 777), (30, 200, 257)])
def test_products_split_along_k_are_right(m, n, k, restore_threads):
    # Note [Products split along k]: two groups of k blocks (k = 777: three blocks made four,
    # 257: one past a block), the second summed into the first; against float64, each thread count
    rng = np.random.default_rng(k)
    a, b = rng.standard_normal((k, m)), rng.standard_normal((k, n))
    want = a.T @ b
    for threads in (1, 2):
        bp.set_num_threads(threads)
        got = (bp.tensor(a.astype(np.float32)).T @ bp.tensor(b.astype(np.float32))).numpy()
        assert got.shape == (m, n)
        np.testing.assert_allclose(got, want, rtol=0, atol=2e-5 * np.sqrt(k) * 4)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_threads_work_in_a_forked_child(restore_threads):
    # The parent's kernel thread pool is running; the child gets none of its threads and must
    # make a fresh pool rather than wait on workers that don't exist (a misuse class:
    # calling into the library after fork).
    bp.set_num_threads(2)
    a = bp.randn(256, 256)
    expected = (a @ a).sum().item()  # the pool is running before the fork
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork of threaded process
        pid = os.fork()
    if pid == 0:  # the child: exit status says whether a threaded product and autograd work
        code = 1
        try:
            x = bp.ones(3, requires_grad=True)
            (x * x).sum().backward()
            ok = np.array_equal(x.grad.numpy(), [2, 2, 2])
            code = 0 if ok and (a @ a).sum().item() == expected else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_the_caller_finishes_a_job_while_the_worker_is_held(restore_threads):
    # A worker descheduled by a busy machine (here: held by a test hook, it wakes but claims
    # nothing) must not hold the caller up: the caller claims every part itself, and the parts'
    # ranges are fixed, so the product has the same bits as with a free worker.
    bp.set_num_threads(2)
    a, b = bp.randn(300, 300), bp.randn(300, 300)
    expected = (a @ b).numpy()
    released = threading.Event()

    def release():  # a safety valve: a caller waiting on the held worker would hang the test
        released.set()
        bp._core._hold_pool_workers(False)

    valve = threading.Timer(60, release)
    bp._core._hold_pool_workers(True)
    valve.start()
    try:
        products = [(a @ b).numpy() for _ in range(20)]
        finished_while_held = not released.is_set()
    finally:
        valve.cancel()
        bp._core._hold_pool_workers(False)
    assert finished_while_held
    for product in products:
        assert np.array_equal(product, expected)


SCRIPT = """
import bprop as bp, numpy as np
bp.manual_seed(1)
a, b = bp.randn(97, 131), bp.randn(131, 61)
x = bp.linspace(-100, 100, 10001)
print(bp._core._isa())
np.save("{path}", np.concatenate([(a @ b).numpy().ravel(), x.exp().numpy(), x.tanh().numpy()]))
"""


ULP_SWEEP = """
import json, numpy as np, bprop as bp
rng = np.random.default_rng(0)
def sweep(lo, hi, n=200_001):
    return np.concatenate([np.linspace(lo, hi, n), rng.uniform(lo, hi, n)]).astype(np.float32)
def ulp(got, exact):
    unit = np.spacing(np.abs(exact).astype(np.float32)).astype(np.float64)
    return float(np.max(np.abs(got.astype(np.float64) - exact) / unit))
out = {"isa": bp._core._isa()}
x = sweep(-87.0, 88.0)
out["exp"] = ulp(bp.tensor(x).exp().numpy(), np.exp(x.astype(np.float64)))
x = np.exp(sweep(-80.0, 80.0)).astype(np.float32)
out["log"] = ulp(bp.tensor(x).log().numpy(), np.log(x.astype(np.float64)))
x = sweep(-10.0, 10.0)
out["tanh"] = ulp(bp.tensor(x).tanh().numpy(), np.tanh(x.astype(np.float64)))
x = sweep(-80.0, 80.0)
out["sigmoid"] = ulp(bp.tensor(x).sigmoid().numpy(), 1 / (1 + np.exp(-x.astype(np.float64))))
print(json.dumps(out))
"""


@pytest.mark.parametrize("isa", ["scalar", "avx2", "avx512"])
def test_float32_exp_log_tanh_sigmoid_are_within_4_ulp_on_every_path(isa):
    # docs/performance.md's claim for the vectorised float32 functions, over their normal
    # range (linspace and uniform samples), against float64 rounded to the float32 grid's ulp.
    run = run_python_on_isa(ULP_SWEEP, isa, timeout=120)
    report = json.loads(run.stdout.strip().splitlines()[-1])
    assert report.pop("isa") == isa
    assert all(error <= 4 for error in report.values()), report


@pytest.mark.parametrize("isa", ["scalar", "avx2"])
def test_forced_instruction_set_paths_agree(isa, tmp_path):
    results = {}
    for which in (isa, None):
        path = tmp_path / f"{which}.npy"
        run = run_python_on_isa(SCRIPT.format(path=path), which)
        if which:
            assert run.stdout.strip() == which
        results[which] = np.load(path)
    # Different vector widths and FMA change roundings, not results.
    np.testing.assert_allclose(results[isa], results[None], rtol=1e-5, atol=1e-5)


def test_unknown_instruction_set_is_an_error():
    env = dict(os.environ, BPROP_ISA="sse9")
    run = subprocess.run(
        [sys.executable, "-c", "import bprop as bp; (bp.ones(64, 64) @ bp.ones(64, 64))"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "BPROP_ISA=sse9" in run.stderr


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("fn", ["tanh", "sigmoid"])
def test_fused_backward_agrees_bitwise_with_composed_vjp(fn, dtype):
    bp.manual_seed(2)
    x = bp.randn(10_000, dtype=dtype, requires_grad=True)
    g = bp.randn(10_000, dtype=dtype)
    y = getattr(x, fn)()
    y.backward(g, retain_graph=True)  # plain backward: the fused kernel
    fused = x.grad.numpy().copy()
    x.grad = None
    y.backward(g, create_graph=True)  # create_graph: the composed ops
    assert np.array_equal(fused, x.grad.detach().numpy())


def test_float32_fast_math_edges():
    special = np.array([np.inf, -np.inf, np.nan, 0.0, -0.0, 88.8, -104.0, 1e-45], np.float32)
    x = bp.tensor(special)
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(x.exp().numpy(), np.exp(special))
        np.testing.assert_array_equal(x.tanh().numpy(), np.tanh(special))
        np.testing.assert_array_equal(x.log().numpy()[[0, 2, 3, 4]], np.log(special)[[0, 2, 3, 4]])
    assert np.isnan(x.log().numpy()[1])  # log(-inf)
    sig = x.sigmoid().numpy()
    np.testing.assert_array_equal(sig[[0, 1, 3, 4]], [1.0, 0.0, 0.5, 0.5])
    assert np.isnan(sig[2])


def test_float32_sum_of_ten_million_is_accurate():
    values = np.random.default_rng(4).random(10_000_000).astype(np.float32)
    got = float(bp.tensor(values).sum())
    exact = values.astype(np.float64).sum()
    assert abs(got - exact) / exact < 1e-6


PRODUCTS = """
import bprop as bp, numpy as np
rng = np.random.default_rng(5)
out = []
for m, k, n in [(64, 64, 64), (13, 7, 5), (97, 131, 61), (300, 70, 200), (25, 300, 40),
                (40, 50, 70), (40, 600, 70)]:
    for dtype in (bp.float32, bp.float64):
        a = bp.tensor(rng.standard_normal((m, k)), dtype=dtype)
        b = bp.tensor(rng.standard_normal((k, n)), dtype=dtype)
        bt = bp.tensor(rng.standard_normal((n, k)), dtype=dtype).T
        out += [(a @ b).numpy().ravel(), (a @ bt).numpy().ravel(), (a.T.T @ b).numpy().ravel()]
        # A column-major: a transposed view, and one of a wider matrix's columns (a column
        # stride past m), and a view whose rows are every other one (not read in place)
        at = bp.tensor(rng.standard_normal((k, m)), dtype=dtype).T
        wide = bp.tensor(rng.standard_normal((k, 2 * m + 1)), dtype=dtype)
        out += [(at @ b).numpy().ravel(), (wide[:, 1 : m + 1].T @ b).numpy().ravel()]
        out += [(wide[:, 1::2].T @ b).numpy().ravel()]
np.save("{path}", np.concatenate([o.astype(np.float64) for o in out]))
"""


def test_operands_read_in_place_or_packed_give_the_same_bits(tmp_path):
    # Notes [A in place] and [B in place] in gemm.cpp: small products read a row-major A where
    # it lies instead of packing it, and a column-major A's whole strips too, and a row-major
    # B's whole panels where B is small or A has few rows (40x50x70: whole panels in place, the
    # columns past the last packed; 40x600x70 the same over three k blocks); the sums are the
    # same, in the same order.
    results = []
    for panels, b_bytes in (("0", "0"), ("1000", "1000000")):
        path = tmp_path / f"products-{panels}.npy"
        env = dict(
            os.environ, BPROP_GEMM_A_IN_PLACE_PANELS=panels, BPROP_GEMM_B_IN_PLACE_BYTES=b_bytes
        )
        subprocess.run(
            [sys.executable, "-c", PRODUCTS.format(path=path)], env=env, check=True, timeout=120
        )
        results.append(np.load(path))
    assert np.array_equal(results[0], results[1])
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((64, 64)), rng.standard_normal((64, 64))
    expected = a.astype(np.float32).astype(np.float64) @ b.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(results[1][: 64 * 64], expected.ravel(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("batch, inputs, outputs", [(19, 37, 23), (2, 3, 4), (256, 784, 512)])
def test_linear_weight_grad_arrives_row_major_with_the_bits_of_x_t_g(batch, inputs, outputs):
    # vjp_mm computes a transposed operand's gradient as (G^T A)^T, so W.grad needs no copy;
    # the same products in the same order as A^T G.
    bp.manual_seed(0)
    layer = bp.nn.Linear(inputs, outputs)
    x, g = bp.randn(batch, inputs), bp.randn(batch, outputs)
    layer(x).backward(g)
    assert layer.weight.grad.is_contiguous()
    assert np.array_equal(layer.weight.grad.numpy(), (x.T @ g).T.numpy())
    assert np.array_equal(layer.bias.grad.numpy(), g.sum(0).numpy())


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("shape, dims", [((256, 512), 0), ((3, 7, 1500), (0, 1)), ((1000, 3), 0)])
def test_column_sums_give_the_bits_of_the_strided_loop(dtype, shape, dims, restore_threads):
    # reduce.cpp sums down columns row by row (a bias's gradient); a strided view takes the
    # generic per-column loop. Both add in the same order in double: the same bits.
    bp.manual_seed(3)
    wide = bp.randn(*shape[:-1], 2 * shape[-1], dtype=dtype)
    strided = wide[..., ::2]
    assert not strided.is_contiguous()
    columns = strided.contiguous().sum(dims)
    assert np.array_equal(columns.numpy(), strided.sum(dims).numpy())
    exact = strided.numpy().astype(np.float64).sum(axis=dims)
    np.testing.assert_allclose(columns.numpy(), exact, rtol=1e-6 if dtype == bp.float32 else 1e-12)
    bp.set_num_threads(1)
    assert np.array_equal(strided.contiguous().sum(dims).numpy(), columns.numpy())

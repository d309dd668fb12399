"""bp.show_config() and `python -m bprop --config`: what the kernels run with on this machine
(the CPU and its caches as read from sysfs, the instruction-set path, threads, the GEMM's tile
and cache blocking), and BPROP_GEMM_BLOCKING, which overrides the blocking."""

import ast
import os
import subprocess
import sys

import bprop as bp
import numpy as np
import pytest


def lscpu_model():
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def test_show_config_dicts_describe_the_machine_and_the_gemm():
    config = bp.show_config(mode="dicts")
    model = lscpu_model()
    if model is not None:
        assert config["cpu"] == model
    assert config["isa"] == bp._core._isa()
    assert config["threads"] == bp.get_num_threads()
    if os.path.exists("/sys/devices/system/cpu/cpu0/cache/index0/size"):
        assert config["l1d_bytes"] >= 16 * 1024 and config["l2_bytes"] >= config["l1d_bytes"]
    for dtype in ("float32", "float64"):
        gemm = config[f"gemm_{dtype}"]
        assert gemm["mr"] > 0 and gemm["nr"] > 0
        assert 64 <= gemm["kc"] <= 512 and gemm["kc"] % 16 == 0
        assert gemm["mc"] % gemm["mr"] == 0 and gemm["nc"] % gemm["nr"] == 0
        assert gemm["kernel"] == f"{config['isa']}-{gemm['mr']}x{gemm['nr']}"
        assert gemm["kernel"] in bp._core._gemm_kernels(getattr(bp, dtype))


def test_show_config_prints_what_it_returns(capsys):
    assert bp.show_config() is None
    text = capsys.readouterr().out
    config = bp.show_config(mode="dicts")
    assert f"CPU:              {config['cpu']}" in text
    assert f"instruction set:  {config['isa']}" in text
    gemm = config["gemm_float32"]
    assert f"micro-kernel {gemm['kernel']} ({gemm['chosen_by']}), blocking KC {gemm['kc']}" in text
    with pytest.raises(ValueError, match=r"\[show_config\] mode must be"):
        bp.show_config(mode="json")


SCRIPT = """
import bprop as bp, numpy as np
rng = np.random.default_rng(0)
a, b = rng.standard_normal((300, 700)), rng.standard_normal((700, 200))
got = (bp.tensor(a, dtype=bp.float32) @ bp.tensor(b, dtype=bp.float32)).numpy()
np.save("{path}", got)
print(bp.show_config(mode="dicts")["gemm_float32"])
"""


def test_gemm_blocking_can_be_overridden_and_products_stay_right(tmp_path):
    path = tmp_path / "product.npy"
    env = dict(os.environ, BPROP_GEMM_BLOCKING="64,24,128")
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT.format(path=path)], env=env, capture_output=True,
        text=True, check=True,
    ).stdout  # fmt: skip
    gemm = ast.literal_eval(out.strip().splitlines()[-1])  # the dict the child printed
    assert gemm["kc"] == 64 and gemm["mc"] % gemm["mr"] == 0 and gemm["mc"] <= 24
    assert gemm["nc"] <= 128 and gemm["nc"] % gemm["nr"] == 0
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((300, 700)), rng.standard_normal((700, 200))
    expected = a.astype(np.float32).astype(np.float64) @ b.astype(np.float32).astype(np.float64)
    np.testing.assert_allclose(np.load(path), expected, rtol=1e-4, atol=1e-3)


def test_python_m_bprop_config_prints_the_configuration():
    out = subprocess.run(
        [sys.executable, "-m", "bprop", "--config"], capture_output=True, text=True, check=True
    ).stdout
    assert out.startswith(f"bprop {bp.__version__}")
    assert "GEMM float64:" in out and "BPROP_GEMM_BLOCKING" in out


def test_the_measured_fma_peak_is_a_rate():
    peak = bp._core._fma_peak_gflops(0.01)
    assert 1.0 < peak < 1e5  # GFLOP/s of one core: plausible on any machine


def test_the_micro_kernel_alone_is_a_rate_and_leaves_products_as_they_were():
    a = bp.randn(97, 131)
    b = bp.randn(131, 75)
    before = (a @ b).numpy()
    rate = bp._core._micro_kernel_gflops(0.01)
    assert 0.1 < rate < 1e5  # GFLOP/s of one core's micro-kernel: plausible on any machine
    assert np.array_equal((a @ b).numpy(), before)
    np.testing.assert_allclose(before, a.numpy() @ b.numpy(), rtol=1e-4, atol=1e-4)

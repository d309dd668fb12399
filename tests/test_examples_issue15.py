"""The examples of issue 15 run end to end, shortened by their own flags: examples/names.py (MLP
and GRU) and examples/fashion_mnist.py. Each runs in a subprocess, as a user runs it; the test
reads the losses it prints and checks that they are finite and fall below the loss of guessing.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NAMES = EXAMPLES.parent.parent / "shared" / "data" / "names.txt"
FASHION = Path("/usr/share/datasets/fashion-mnist")


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def floats(pattern: str, text: str) -> list[float]:
    return [float(v) for v in re.findall(pattern, text)]


@pytest.mark.skipif(not NAMES.is_file(), reason=f"{NAMES} is not here")
@pytest.mark.parametrize(
    "model, steps, threshold",
    [("mlp", "300", 2.6), ("gru", "40", 2.8), ("lstm", "40", 2.8)],
)
def test_names_learns_and_samples(model: str, steps: str, threshold: float) -> None:
    out = run("names.py", "--model", model, "--steps", steps, "--eval-every", "20",
              "--hidden", "32", "--batch-size", "32", "--samples", "5")  # fmt: skip
    train = floats(r"train loss (\S+)", out)
    val = floats(r"val loss (\S+)", out)
    assert len(val) == int(steps) // 20
    assert all(math.isfinite(v) for v in train + val)
    uniform = math.log(27)  # 26 letters and the end token
    assert val[0] < uniform + 0.2
    assert val[-1] < threshold < uniform, out
    assert val[-1] < val[0], out
    samples = re.search(r"samples: (.*)", out)
    assert samples is not None, out
    names = samples.group(1).split(", ")
    assert len(names) == 5 and all(re.fullmatch(r"[a-z]*", n) for n in names), out
    assert sum(len(n) for n in names) > 5, out


def test_names_missing_data_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no_names.txt"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "names.py"), "--data", str(missing)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert str(missing) in result.stderr and "--data" in result.stderr


@pytest.mark.skipif(
    not (FASHION / "train-images-idx3-ubyte.gz").is_file(),
    reason="Fashion-MNIST is not installed (apt-get install -y dataset-fashion-mnist)",
)
def test_fashion_mnist_learns() -> None:
    out = run("fashion_mnist.py", "--epochs", "2", "--limit", "1024", "--test-limit", "1000",
              "--batch-size", "64", "--width", "8")  # fmt: skip
    train = floats(r"train loss (\S+)", out)
    accuracy = floats(r"epoch .* test accuracy (\S+)%", out)
    assert len(train) == 2 and len(accuracy) == 2
    assert all(math.isfinite(v) for v in train)
    assert train[1] < train[0] < math.log(10) + 0.5, out
    assert accuracy[-1] > 50.0, out  # chance is 10%


def test_fashion_mnist_missing_data_names_the_package(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "fashion_mnist.py"), "--data", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    assert "apt-get install -y dataset-fashion-mnist" in result.stderr

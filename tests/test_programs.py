"""The PyTorch programs of tests/programs/ run unchanged with bprop and follow PyTorch's losses.

Each program is ordinary PyTorch code (`import torch`, `import torch.nn as nn`, ...) that ends
by printing `LOSSES <json list>`. It runs twice in subprocesses on one thread each, through
tests/programs/_run.py: once with PyTorch, once with an import hook that makes `torch` mean
bprop. The deterministic programs draw their initial weights and data from numpy, so their loss
lists must agree to float32 rounding (they agree to 2e-6 relative or better; the tolerance is
1e-4), and the rest of what they print must read the same once floating-point numbers are masked
(parameter and buffer names, counts, greedy decodes); `random_names.py` draws its own random
numbers, so there bprop's loss must only fall by about as much as PyTorch's. Without PyTorch
installed only bprop's runs happen, and must finish with finite values.

All runs start at once on a pool as wide as the machine: about 45 s of CPU time in all
(PyTorch's import is a third of it), so about 25 s on two free cores. Under pytest-xdist each
program's two runs start when its test does (see Runs).
"""

import difflib
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
PROGRAMS = HERE / "programs"
RUNNER = PROGRAMS / "_run.py"
DATA = HERE.parent.parent / "shared" / "data"
HAVE_TORCH = importlib.util.find_spec("torch") is not None
TIMEOUT_S = 60

# Programs whose losses must match PyTorch's to float32 rounding.
EXACT = [
    "attention_pooling",
    "bilstm_tagger",
    "char_gpt",
    "checkpoint_resume",
    "cnn_batchnorm",
    "conv1d_signals",
    "gru_names",
    "llama_tiny",
    "lstm_lm",
    "mlp_regression",
    "scalar_autograd",
    "sdpa_ema",
    "seq2seq_transformer",
    "transformer_adder",
]
# Programs that draw random numbers, whose last value is a held-out loss: bprop's loss must fall
# by a comparable fraction.
RANDOM = ["random_names"]
ALL = EXACT + RANDOM
# The text files some programs read (../shared/data, next to the repository).
NEEDS = {
    "char_gpt": "tiny_shakespeare.txt",
    "lstm_lm": "tiny_shakespeare.txt",
    "sdpa_ema": "tiny_shakespeare.txt",
    "llama_tiny": "tiny_shakespeare.txt",
    "gru_names": "names.txt",
    "random_names": "names.txt",
}
RTOL, ATOL = 1e-4, 1e-5
# A number with a fraction or an exponent: printed losses and learning rates, masked before the
# printed text is compared (the values themselves are compared through LOSSES).
FLOAT = re.compile(r"[-+]?(\d+\.\d*|\.\d+|\d+)[eE][-+]?\d+|[-+]?\d+\.\d+")


class Run:
    """The outcome of one program under one backend."""

    def __init__(self, backend, name, proc):
        self.backend, self.name = backend, name
        self.returncode, self.stdout, self.stderr = proc.returncode, proc.stdout, proc.stderr
        lines = [line for line in self.stdout.splitlines() if line.startswith("LOSSES ")]
        self.losses = json.loads(lines[-1][len("LOSSES ") :]) if lines else None

    def text(self):
        """What the program printed, its floating-point numbers masked, without LOSSES."""
        lines = self.stdout.splitlines()
        return [FLOAT.sub("<float>", line) for line in lines if not line.startswith("LOSSES ")]

    def check(self):
        """Fails the test with the program's own error when it did not finish."""
        if self.returncode != 0 or self.losses is None:
            tail = "\n".join((self.stdout + self.stderr).splitlines()[-25:])
            pytest.fail(
                f"{self.name}.py under {self.backend} exited with {self.returncode}"
                f"{'' if self.losses is not None else ' without a LOSSES line'}:\n{tail}",
                pytrace=False,
            )
        assert all(math.isfinite(v) for v in self.losses), self.losses
        return self.losses


def _run(backend, name):
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", BPROP_NUM_THREADS="1")
    if backend == "torch":
        # PyTorch's runs are the reference, with no bprop in them: under scripts/sanitize.sh they
        # run without the preloaded ASan runtime, whose allocator made them the slowest tests of
        # the sanitized suite (286 of its worker-seconds, mostly PyTorch's). Other preloads stay.
        # (ld.so takes spaces or colons between entries.)
        preloads = re.split(r"[\s:]+", env.get("LD_PRELOAD", "").strip())
        env["LD_PRELOAD"] = " ".join(lib for lib in preloads if lib and "libasan" not in lib)
    cmd = [sys.executable, str(RUNNER), backend, str(PROGRAMS / f"{name}.py")]
    try:
        proc = subprocess.run(
            cmd, capture_output=True, text=True, env=env, cwd=PROGRAMS, timeout=TIMEOUT_S
        )
    except subprocess.TimeoutExpired as e:
        proc = subprocess.CompletedProcess(
            cmd, -1, e.stdout or "", f"{e.stderr or ''}\ntimed out after {TIMEOUT_S} s"
        )
        proc.stdout = proc.stdout.decode() if isinstance(proc.stdout, bytes) else proc.stdout
        proc.stderr = proc.stderr.decode() if isinstance(proc.stderr, bytes) else proc.stderr
    return Run(backend, name, proc)


class Runs:
    """Each program's runs, started on a pool: every selected program's at once, or, in a
    pytest-xdist worker (which cannot know which tests it will be handed, and whose every
    collected test is selected), a program's when its test asks, so that no two workers run the
    same program."""

    def __init__(self, pool, names):
        self.pool, self.futures = pool, {}
        for name in names:
            self._start(name)

    def _start(self, name):
        for backend in ["bprop", "torch"] if HAVE_TORCH else ["bprop"]:
            self.futures[name, backend] = self.pool.submit(_run, backend, name)

    def result(self, name, backend):
        if (name, backend) not in self.futures:
            self._start(name)
        return self.futures[name, backend].result()


@pytest.fixture(scope="module")
def runs(request):
    wanted = {
        item.callspec.params["name"]
        for item in request.session.items
        if item.module is request.module and hasattr(item, "callspec")
    }
    runnable = [n for n in ALL if n in wanted and (n not in NEEDS or (DATA / NEEDS[n]).is_file())]
    in_xdist_worker = "PYTEST_XDIST_WORKER" in os.environ
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        yield Runs(pool, [] if in_xdist_worker else runnable)


def _result(runs, name, backend):
    if name in NEEDS and not (DATA / NEEDS[name]).is_file():
        pytest.skip(f"{name}.py reads {DATA / NEEDS[name]}, which is not here")
    return runs.result(name, backend)


def _drop(losses, k=5):
    """How much the loss fell: 1 - held-out loss at the end / mean of the first k steps."""
    return 1.0 - losses[-1] / float(np.mean(losses[:k]))


@pytest.mark.parametrize("name", ALL)
def test_program_runs_under_bprop_like_torch(runs, name):
    # PyTorch's run first: a program PyTorch itself cannot run fails here, naming PyTorch.
    torch_losses = _result(runs, name, "torch").check() if HAVE_TORCH else None
    bp_losses = _result(runs, name, "bprop").check()
    if torch_losses is None:
        pytest.skip("torch is not installed: bprop's run finished, PyTorch's losses not compared")
    assert len(torch_losses) >= 5, torch_losses
    if name in EXACT:
        assert len(bp_losses) == len(torch_losses), (bp_losses, torch_losses)
        np.testing.assert_allclose(
            bp_losses, torch_losses, rtol=RTOL, atol=ATOL, err_msg=f"{name}: bprop vs torch"
        )
        # Everything else printed (names of parameters and buffers, counts, argmax decodes)
        # must read the same.
        bp_text = _result(runs, name, "bprop").text()
        torch_text = _result(runs, name, "torch").text()
        diff = difflib.unified_diff(torch_text, bp_text, "torch", "bprop", lineterm="", n=1)
        assert bp_text == torch_text, f"{name} printed differently:\n" + "\n".join(diff)
    else:
        bp_drop, torch_drop = _drop(bp_losses), _drop(torch_losses)
        assert torch_drop > 0.1, f"{name}: PyTorch's own loss hardly fell ({torch_drop:.3f})"
        assert bp_drop > 0.6 * torch_drop, (
            f"{name}: bprop's loss fell by {bp_drop:.1%}, PyTorch's by {torch_drop:.1%}"
        )

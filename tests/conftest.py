"""Shared pytest configuration.

Hypothesis profiles: "ci" (the default) is deterministic — a fixed seed per test
(derandomize), a fixed number of examples, no example database — so every run checks the same
cases and a failure reproduces anywhere; `print_blob` prints the @reproduce_failure line.
`HYPOTHESIS_PROFILE=thorough pytest tests/test_properties.py` explores many more random
examples locally.
"""

import os
import subprocess
import sys

import bprop as bp
import pytest
from hypothesis import settings

settings.register_profile(
    "ci", derandomize=True, max_examples=25, deadline=None, print_blob=True, database=None
)
settings.register_profile("thorough", max_examples=500, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def pytest_configure(config):
    # To report a failing example, hypothesis imports libcst, whose import warns through
    # mypy_extensions; under filterwarnings=error that hides the failure behind an INTERNALERROR.
    config.addinivalue_line(
        "filterwarnings", "ignore:mypy_extensions.TypedDict is deprecated:DeprecationWarning"
    )


@pytest.fixture
def restore_threads():
    """Puts the kernel thread count back after a test that changes it."""
    before = bp.get_num_threads()
    yield
    bp.set_num_threads(before)


# scripts/sanitize.sh preloads the ASan runtime. GCC 12's ASan allocator is not fork-safe: a
# child forked while another thread is inside malloc waits forever on the sanitizer's own
# allocator lock (seen in SizeClassAllocator64::GetFromAllocator), whatever the library does.
# Tests that fork while other threads run are therefore skipped there; they run in the plain
# suite, where glibc's malloc locks its arenas around fork().
UNDER_ASAN = "libasan" in os.environ.get("LD_PRELOAD", "")
skip_fork_with_threads_under_asan = pytest.mark.skipif(
    UNDER_ASAN, reason="ASan's allocator is not fork-safe while other threads allocate"
)


def run_python_on_isa(script, isa=None, timeout=None):
    """Runs `script` in a fresh Python with BPROP_ISA=isa (None: the path bprop picks here) and
    returns the finished process, asserting it succeeded. Skips the calling test when this CPU
    lacks that instruction set (an AVX2-only machine asked for avx512): the one skip of the
    instruction-set tests."""
    env = dict(os.environ)
    env.pop("BPROP_ISA", None)
    if isa:
        env["BPROP_ISA"] = isa
    run = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=timeout
    )
    if run.returncode != 0 and "lacks it" in run.stderr:
        pytest.skip(f"this CPU has no {isa} path")
    assert run.returncode == 0, run.stderr
    return run

"""The pip-installed package as a way in for native apps: the wheel carries the C++ core's
headers, static library and CMake package, and a C++ project builds against them with
cmake -Dbprop_DIR="$(python -m bprop --cmake-dir)"."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import bprop as bp
import pytest
from conftest import UNDER_ASAN

REPO = Path(__file__).resolve().parents[1]
# Native projects that must build against the pip package and run: (source, executable, a
# line their output must contain).
PROJECTS = {
    "consumer": (REPO / "cpp" / "tests" / "consumer", "bprop_consumer", "bprop consumer: loss"),
    "example_xor": (REPO / "examples" / "cpp" / "xor", "xor", "4/4 correct"),
    "example_mlp_classifier": (
        REPO / "examples" / "cpp" / "mlp_classifier",
        "mlp_classifier",
        "held-out accuracy",
    ),
}


def _run(args, **kwargs):
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert done.returncode == 0, f"{args} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_cmake_dir_holds_the_package_config():
    cmake_dir = Path(bp.cmake_dir())
    assert (cmake_dir / "bpropConfig.cmake").is_file()
    assert (cmake_dir / "bpropConfigVersion.cmake").is_file()
    assert (cmake_dir / "bpropTargets.cmake").is_file()
    # It is the copy inside the imported package, not some other install.
    assert cmake_dir.resolve().is_relative_to(Path(bp._core.__file__).resolve().parent)


def test_command_line_prints_the_same_directories():
    out = _run([sys.executable, "-m", "bprop", "--cmake-dir"])
    assert out.strip() == bp.cmake_dir()
    out = _run([sys.executable, "-m", "bprop", "--include-dir"])
    assert out.strip() == bp.include_dir()
    assert _run([sys.executable, "-m", "bprop", "--version"]).strip() == bp.__version__


def test_command_line_without_an_option_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "bprop"], capture_output=True, text=True)
    assert done.returncode == 2
    assert "one of the arguments --cmake-dir --include-dir --version --config is required" in (
        done.stderr
    )


def test_installed_headers_are_ours_and_python_free():
    include = Path(bp.include_dir())
    headers = sorted(p.relative_to(include).as_posix() for p in include.rglob("*.h"))
    assert "bprop/bprop.h" in headers
    assert all(h.startswith("bprop/") for h in headers), headers
    for header in include.rglob("*.h"):
        text = header.read_text()
        assert "Python.h" not in text and "pybind11" not in text, header


def test_installed_static_library_has_no_python_symbols():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm (binutils) is not installed")
    package = Path(bp._core.__file__).resolve().parent
    (library,) = (package / "lib").glob("libbprop.a")
    symbols = _run([nm, "--undefined-only", "--format=posix", str(library)])
    python_symbols = sorted(
        {line.split()[0] for line in symbols.splitlines() if re.match(r"_?Py[A-Z_]", line)}
    )
    assert python_symbols == []
    assert library.stat().st_size > 100_000  # the real core, not an empty archive


# Under ASan (scripts/sanitize.sh) these builds test the packaging, not memory safety, and
# cost half a minute: the sanitized C++ tests build the same three projects against a
# `cmake --install` of the ASan build (the install rules the wheel's copy comes from) and run
# them with leak detection on.
@pytest.mark.skipif(UNDER_ASAN, reason="the ASan C++ tests build and run these projects")
@pytest.mark.parametrize("project", sorted(PROJECTS))
def test_native_project_builds_and_runs_against_the_pip_package(project, tmp_path):
    cmake = shutil.which("cmake")
    if cmake is None:
        pytest.skip("cmake is not installed")
    source, executable, expected = PROJECTS[project]
    build = tmp_path / "build"
    _run(
        [
            cmake,
            "-S", str(source),
            "-B", str(build),
            f"-Dbprop_DIR={bp.cmake_dir()}",
            "-DCMAKE_BUILD_TYPE=Release",
            "-DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF",
        ]
    )  # fmt: skip
    cache = (build / "CMakeCache.txt").read_text()
    found = re.search(r"^bprop_DIR:[A-Z]+=(.*)$", cache, re.M).group(1)
    assert os.path.realpath(found) == os.path.realpath(bp.cmake_dir())
    _run([cmake, "--build", str(build), "--parallel", "2"])
    out = _run([str(build / executable)])
    assert expected in out, out
    if project == "consumer":
        match = re.search(r"bprop consumer: loss (\S+) -> (\S+), w = ", out)
        first_loss, last_loss = float(match.group(1)), float(match.group(2))
        assert last_loss < 1e-6 < first_loss
    elif project == "example_xor":
        losses = [float(v) for v in re.findall(r"^step +\d+ +loss (\S+)$", out, re.M)]
        assert len(losses) == 6 and losses[-1] < 1e-3 < losses[0], out
    else:
        losses = [float(v) for v in re.findall(r"^epoch +\d+ +loss (\S+) ", out, re.M)]
        assert len(losses) == 8 and losses[-1] < losses[0] / 2, out
        assert float(re.search(r"held-out accuracy (\S+)", out).group(1)) > 0.9

"""Where a pip-installed bprop keeps its C++ core, for native builds.

The wheel carries the core's headers, its static library and its CMake package next to the
Python module, so a C++ project can build against the same bprop that Python imports:

    cmake -S . -B build -Dbprop_DIR="$(python -m bprop --cmake-dir)"
"""

from __future__ import annotations

import os

from . import _core

# Next to the extension module, which is where the wheel's CMake install puts them (in an
# editable install that is site-packages, not the source tree this file lives in).
_PACKAGE_DIR = os.path.dirname(os.path.abspath(_core.__file__))


def _existing(path: str, what: str) -> str:
    if not os.path.isdir(path):
        raise FileNotFoundError(
            f"bprop.{what}: {path} does not exist; this bprop was not installed from a wheel "
            "(pip install .), so it carries no C++ package. Build the core with CMake instead "
            "(docs/cpp.md)."
        )
    return path


def cmake_dir() -> str:
    """The directory holding bpropConfig.cmake: pass it as -Dbprop_DIR=... to CMake."""
    return _existing(os.path.join(_PACKAGE_DIR, "lib", "cmake", "bprop"), "cmake_dir()")


def include_dir() -> str:
    """The directory holding bprop/bprop.h, for builds that do not use CMake."""
    return _existing(os.path.join(_PACKAGE_DIR, "include"), "include_dir()")

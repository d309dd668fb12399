"""The committed stub python/bprop/_core.pyi covers the extension module as built.

A name the bindings (or bprop._tensor's Python-side methods) add without a regenerated stub
fails here; `python scripts/stubs.py` fixes it. Needs neither pybind11-stubgen nor mypy: the
stub is read with ast."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import bprop  # noqa: F401  (installs the Python-side Tensor methods the stub also declares)
import pytest
from bprop import _core

STUB = Path(__file__).resolve().parent.parent / "python" / "bprop" / "_core.pyi"


def _stub_tree() -> ast.Module:
    return ast.parse(STUB.read_text(), filename=str(STUB))


def _names(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
    return names


def _stub_classes() -> dict[str, set[str]]:
    return {
        node.name: _names(node.body) for node in _stub_tree().body if isinstance(node, ast.ClassDef)
    }


def _covered(name: str) -> bool:
    """Module attributes the stub must declare: all but the module's own dunders."""
    return not (name.startswith("__") and name.endswith("__"))


def test_stub_declares_every_module_attribute():
    declared = _names(_stub_tree().body)
    missing = sorted(n for n in dir(_core) if _covered(n) and n not in declared)
    assert not missing, f"_core.pyi lacks {missing}: run python scripts/stubs.py"


def test_stub_declares_nothing_the_module_lacks():
    # Stub-only helpers (type aliases and the like) are private; every public name is real.
    declared = _names(_stub_tree().body)
    extra = sorted(n for n in declared if not n.startswith("_") and not hasattr(_core, n))
    assert extra == ["Number"], f"_core.pyi declares {extra}, which bprop._core lacks"


@pytest.mark.parametrize(
    "cls", [c for _, c in inspect.getmembers(_core, inspect.isclass)], ids=lambda c: c.__name__
)
def test_stub_declares_every_public_class_attribute(cls):
    classes = _stub_classes()
    assert cls.__name__ in classes
    missing = sorted(
        n for n in dir(cls) if not n.startswith("_") and n not in classes[cls.__name__]
    )
    assert not missing, f"_core.pyi's {cls.__name__} lacks {missing}: run scripts/stubs.py"


def test_stub_declares_tensor_protocol_methods():
    # The dunders bprop defines on Tensor itself (operators, numpy and Python protocols).
    declared = _stub_classes()["Tensor"]
    own = {n for n in vars(_core.Tensor) if n.startswith("__") and n.endswith("__")}
    own -= {"__doc__", "__module__", "__dict__", "__weakref__", "__annotations__"}
    missing = sorted(own - declared)
    assert not missing, f"_core.pyi's Tensor lacks {missing}: run python scripts/stubs.py"

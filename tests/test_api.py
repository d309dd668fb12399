"""The one-home rule, checked by introspection (CONTRIBUTING.md, "One home per API").

Every public name of bprop and every public Tensor attribute has a docstring and a typed
declaration (the generated stub python/bprop/_core.pyi for the extension module and Tensor,
the annotated source for functions defined in Python); where bprop.<name> and
Tensor.<name> both exist they take the same keywords. No list of names here: the names come
from bp.__all__ and dir(bp.Tensor). That the stub declares every Tensor attribute is
tests/test_stubs.py's test_stub_declares_every_public_class_attribute."""

from __future__ import annotations

import inspect
import re
import types

import bprop as bp
import pytest
from bprop import _core
from test_stubs import _names, _stub_tree

# A pybind11 docstring opens with the signature of each overload: `name(a: T, b: U) -> R`.
_PYBIND_SIGNATURE = re.compile(r"^(?:\d+\. )?(\w+)\((.*)\) -> .*$", flags=re.M)


def _public_tensor_attributes() -> list[str]:
    return sorted(n for n in dir(bp.Tensor) if not n.startswith("_"))


def _public_functions() -> list[str]:
    return sorted(
        n for n in bp.__all__ if callable(getattr(bp, n)) and not inspect.isclass(getattr(bp, n))
    )


def _is_pybind(obj: object) -> bool:
    return isinstance(obj, types.BuiltinFunctionType) or type(obj).__name__ == "instancemethod"


def _description(obj: object) -> str:
    """The docstring without pybind11's signature lines."""
    doc = inspect.getdoc(obj) or ""
    if _is_pybind(obj) or isinstance(obj, property):
        doc = _PYBIND_SIGNATURE.sub("", doc).replace("Overloaded function.", "")
    return doc.strip()


def _keywords(obj: object) -> set[str]:
    """The names a caller may pass by keyword, less the tensor itself (input or self)."""
    if _is_pybind(obj):
        names: set[str] = set()
        for match in _PYBIND_SIGNATURE.finditer(inspect.getdoc(obj) or ""):
            params = [p.split(":")[0].strip() for p in match[2].split(", ") if p]
            names.update(p for p in params[1:] if p not in ("*", "/") and not p.startswith("arg"))
        return names
    params = list(inspect.signature(obj).parameters.values())[1:]
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name for p in params if p.kind in kinds}


def _stub_module_names() -> set[str]:
    return _names(_stub_tree().body)


def test_all_names_exactly_the_public_names():
    # __all__ is static for type checkers; it must not drift from what bprop defines.
    public = {
        name
        for name, value in vars(bp).items()
        if not name.startswith("_")
        and name != "annotations"
        and not isinstance(value, types.ModuleType)
    }
    modules = {"autograd", "nn", "optim", "random", "testing", "viz"}
    modules |= {"accelerator", "amp", "backends", "cuda", "onnx"}
    modules |= {"distributed", "utils"}
    assert set(bp.__all__) - modules == public
    assert len(bp.__all__) == len(set(bp.__all__))


@pytest.mark.parametrize("name", sorted(bp.__all__))
def test_every_public_name_has_a_docstring(name):
    value = getattr(bp, name)
    doc = value.__doc__ if isinstance(value, (bp.dtype, types.ModuleType)) else _description(value)
    assert doc and doc.strip(), f"bprop.{name} has no docstring"


@pytest.mark.parametrize("name", _public_tensor_attributes())
def test_every_tensor_attribute_has_a_docstring(name):
    assert _description(vars(bp.Tensor).get(name, getattr(bp.Tensor, name))), (
        f"Tensor.{name} has no docstring"
    )


@pytest.mark.parametrize("name", _public_functions())
def test_every_public_function_is_typed(name):
    fn = getattr(bp, name)
    if _is_pybind(fn):  # bound in C++: declared by the generated stub
        assert getattr(_core, fn.__name__) is fn
        assert fn.__name__ in _stub_module_names(), f"_core.pyi lacks {name}: run stubs.py"
        return
    # Defined in Python: the annotated source is its stub (the package ships py.typed).
    signature = inspect.signature(fn)
    unannotated = [p.name for p in signature.parameters.values() if p.annotation is p.empty]
    assert not unannotated, f"bprop.{name}: parameters {unannotated} have no annotation"
    assert signature.return_annotation is not signature.empty, f"bprop.{name} has no return type"


_BOTH_FORMS = [
    n
    for n in _public_functions()
    if hasattr(bp.Tensor, n) and not isinstance(inspect.getattr_static(bp.Tensor, n), property)
]


def test_function_and_method_pairs_are_found():
    # The introspection below must see the pairs (a check that finds none proves nothing).
    assert {"sum", "exp", "add", "amax", "max", "clamp", "matmul", "transpose"} <= set(_BOTH_FORMS)


@pytest.mark.parametrize("name", _BOTH_FORMS)
def test_function_and_method_take_the_same_keywords(name):
    function, method = getattr(bp, name), vars(bp.Tensor).get(name, getattr(bp.Tensor, name))
    assert _keywords(function) == _keywords(method), (
        f"bprop.{name} takes {sorted(_keywords(function))}, "
        f"Tensor.{name} takes {sorted(_keywords(method))}"
    )


@pytest.mark.parametrize("name", _BOTH_FORMS)
def test_function_and_method_are_one_definition(name):
    function, method = getattr(bp, name), inspect.getattr_static(bp.Tensor, name)
    if _is_pybind(function):  # def_function_and_method: the docstring is written once
        assert _description(function) == _description(method)
    else:  # @function_and_method: the very same function object
        assert function is method


def test_no_name_is_defined_in_both_homes():
    from bprop import _tensor

    python_defined = {
        n
        for n, v in vars(_tensor).items()
        if inspect.isfunction(v) and v.__module__ == _tensor.__name__
    }
    assert not python_defined & set(_core.__all__)


def test_size_taking_ops_accept_pytorchs_keyword():
    x = bp.arange(6)
    assert bp.reshape(x, shape=(2, 3)).shape == x.reshape(2, 3).shape == (2, 3)
    assert bp.permute(x.reshape(2, 3), dims=(1, 0)).shape == (3, 2)
    assert x.view(size=(3, 2)).shape == x.reshape(3, 2).expand(size=(2, 3, 2)).shape[1:]
    with pytest.raises(TypeError, match=r"\[reshape\] takes the shape"):
        bp.reshape(x, dims=(3, 2))


def test_keyword_comparison_detects_a_difference():
    def function(input, dim=None, keepdim=False):  # noqa: A002
        """A function form."""

    def method(self, dim=None, keepdim=False, *, axis=None):
        """A method form with one more keyword."""

    assert _keywords(function) != _keywords(method)
    assert _keywords(bp.amax) == {"dim", "keepdim", "axis", "keepdims"}
    assert _keywords(bp.transpose) == {"dim0", "dim1"}


def test_version_has_one_source():
    # project(bprop VERSION x.y.z) in CMakeLists.txt: the extension, the package metadata
    # (scikit-build-core's regex provider) and bprop.__version__ all read it.
    from importlib.metadata import version
    from pathlib import Path

    cmake = (Path(__file__).resolve().parent.parent / "CMakeLists.txt").read_text()
    declared = re.search(r"project\(bprop\s+VERSION\s+([0-9.]+)", cmake)
    assert declared is not None
    assert bp.__version__ == _core.__version__ == version("bprop") == declared[1]

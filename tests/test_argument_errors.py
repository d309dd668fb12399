"""A wrong-typed argument to any public function gives PyTorch's kind of message, naming the
function and the argument, never pybind11's "incompatible function arguments" listing of C++
overloads (python/src/call_errors.cpp, python/bprop/_arguments.py)."""

import inspect

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest


class Bad:
    """An argument no bprop function takes."""

    def __repr__(self):
        return "Bad()"


def public_functions():
    """(label, callable, arguments, names the message may use for the function)."""
    cases = []
    for name in bp.__all__:
        fn = getattr(bp, name)
        if inspect.isclass(fn) or inspect.ismodule(fn) or not callable(fn):
            continue
        cases.append((f"bp.{name}", fn, (Bad(),), {name, getattr(fn, "__name__", name)}))
    t = bp.ones(2, 3)
    for name in dir(bp.Tensor):
        if name.startswith("_"):
            continue
        fn = getattr(t, name, None)
        if not callable(fn):
            continue
        cases.append((f"Tensor.{name}", fn, (Bad(),), {name, getattr(fn, "__name__", name)}))
    for name in F.__all__ if hasattr(F, "__all__") else dir(F):
        fn = getattr(F, name)
        if name.startswith("_") or inspect.isclass(fn) or inspect.ismodule(fn):
            continue
        if callable(fn):
            cases.append((f"F.{name}", fn, (t, Bad()), {name, getattr(fn, "__name__", name)}))
    return cases


CASES = public_functions()


@pytest.mark.parametrize("label, fn, args, names", CASES, ids=[c[0] for c in CASES])
def test_no_pybind11_overload_listing_reaches_the_user(label, fn, args, names):
    try:
        fn(*args)
    except Exception as error:  # whatever it is, it is not pybind11's overload dump
        message = str(error)
        assert "incompatible function arguments" not in message, message
        if isinstance(error, TypeError) and "operand type" not in message:  # Python's own
            assert any(f"{name}()" in message or f"[{name}]" in message for name in names), message


# The functions the extension module implements, called as users call them: each error names
# the public function and the argument, in PyTorch's words.
EXPLAINED = [
    (lambda t: bp.matmul(t, 3), "matmul(): argument 'other' (position 2) must be Tensor, not int"),
    (lambda t: t.matmul("x"), "Tensor.matmul(): argument 'other' (position 1) must be Tensor"),
    (lambda t: bp.add(t, "x"), "add(): argument 'other' must be Tensor or a number, not str"),
    (lambda t: bp.add(None, t), "add(): argument 'input' must be Tensor or a number, not None"),
    (lambda t: t.transpose("a", 1), "Tensor.transpose(): argument 'dim0' (position 1) must be int"),
    (lambda t: bp.sum(Bad()), "sum(): argument 'input' must be Tensor, not Bad"),
    (lambda t: t.sum(dim="a"), "sum(): argument 'dim' must be tuple of ints, not str"),
    (
        lambda t: bp.mean(t, dim=[1.5]),
        "mean(): argument 'dim' must be tuple of ints, but found element of type float at pos 0",
    ),
    (lambda t: F.cross_entropy(t, "a"), "cross_entropy(): argument 'target' must be Tensor"),
    (lambda t: bp.matmul(t, x=t), "matmul(): got an unexpected keyword argument 'x'"),
    (lambda t: t.numel(3), "Tensor.numel(): takes at most 0 positional arguments"),
]


@pytest.mark.parametrize("call, expected", EXPLAINED, ids=[e[1][:40] for e in EXPLAINED])
def test_errors_name_the_public_function_and_the_argument(call, expected):
    t = bp.ones(2, 2)
    before = t.numpy().copy()
    with pytest.raises(TypeError) as error:
        call(t)
    assert expected in str(error.value)
    np.testing.assert_array_equal(t.numpy(), before)  # nothing the user owns changed


def test_a_function_called_with_its_right_arguments_is_unaffected():
    # The explaining dispatcher runs only when pybind11 refused the call.
    t = bp.arange(6.0).reshape(2, 3)
    assert t.transpose(0, 1).shape == (3, 2)
    assert bp.matmul(t, t.T).shape == (2, 2)
    assert float(bp.sum(t, dim=(0, 1))) == 15.0
    with pytest.raises(IndexError):  # other errors pass through unchanged
        t.transpose(0, 5)

"""Objects made by cls.__new__(cls) without __init__ (as pickle, copy and subclassing libraries
make them) are safe for every class bound in python/src: a Tensor (and nn.Parameter) is an
empty tensor as in PyTorch, the private C++ classes either need their constructor's arguments
in __new__ or cannot be created from Python. Each case runs in a subprocess, so a segfault
fails the test instead of killing pytest (it used to crash on .shape, repr, numel(), ...)."""

import copy
import json
import pickle
import subprocess
import sys
import textwrap

import bprop as bp
import pytest

_RUNNER = textwrap.dedent(
    """
    import copy, json, pickle, sys
    import bprop as bp
    from bprop import _core
    results = {}
    for name, code in json.loads(sys.argv[1]).items():
        try:
            value = eval(code)
            results[name] = ["ok", repr(value)]
        except Exception as e:
            results[name] = [type(e).__name__, str(e)]
    print(json.dumps(results))
    """
)


def _run(cases: dict[str, str]) -> dict[str, list[str]]:
    """Evaluates each expression in a fresh interpreter: {name: [outcome, text]}, where outcome
    is "ok" (text: the repr of the value) or the exception's class name (text: its message)."""
    proc = subprocess.run(
        [sys.executable, "-c", _RUNNER, json.dumps(cases)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, f"crashed (rc {proc.returncode}): {proc.stderr[-2000:]}"
    return json.loads(proc.stdout.strip().splitlines()[-1])


_TENSOR_CASES = {
    "shape": "tuple(NEW.shape)",
    "ndim": "NEW.ndim",
    "dtype": "str(NEW.dtype)",
    "numel": "NEW.numel()",
    "len": "len(NEW)",
    "repr": "repr(NEW)",
    "str": "str(NEW)",
    "add": "(NEW + 1).shape",
    "radd": "(1 + NEW).shape",
    "sum": "NEW.sum().item()",
    "tolist": "NEW.tolist()",
    "numpy": "NEW.detach().numpy().shape",
    "is_leaf": "NEW.is_leaf",
    "grad": "NEW.grad",
    "grad_fn": "NEW.grad_fn",
    "clone": "NEW.clone().shape",
    "reshape": "NEW.reshape(0, 1).shape",
    "copy": "copy.copy(NEW).shape",
    "deepcopy": "copy.deepcopy(NEW).shape",
    "pickle": "pickle.loads(pickle.dumps(NEW)).shape",
    "init_after": "(lambda t: (t.__init__(bp.ones(2)), tuple(t.shape))[1])(NEW)",
}


@pytest.mark.parametrize(
    "cls, requires_grad, repr_start",
    [
        ("bp.Tensor", False, "tensor([]"),
        ("_core.Tensor", False, "tensor([]"),
        ("bp.nn.Parameter", True, "Parameter containing:\ntensor([], requires_grad=True)"),
    ],
)
def test_tensor_new_is_an_empty_tensor_as_in_pytorch(cls, requires_grad, repr_start):
    cases = {k: v.replace("NEW", f"{cls}.__new__({cls})") for k, v in _TENSOR_CASES.items()}
    cases["type"] = f"type({cls}.__new__({cls})) is {cls}"
    cases["requires_grad"] = f"{cls}.__new__({cls}).requires_grad"
    cases["subclass"] = "(lambda S: tuple(S.__new__(S).shape))(type('S', (bp.Tensor,), {}))"
    r = _run(cases)
    expected = {
        "shape": "(0,)",
        "ndim": "1",
        "dtype": "'bprop.float32'",
        "numel": "0",
        "len": "0",
        "add": "(0,)",
        "radd": "(0,)",
        "sum": "0.0",
        "tolist": "[]",
        "numpy": "(0,)",
        "is_leaf": "True",
        "grad": "None",
        "grad_fn": "None",
        "clone": "(0,)",
        "reshape": "(0, 1)",
        "copy": "(0,)",
        "deepcopy": "(0,)",
        "pickle": "(0,)",
        "init_after": "(2,)",
        "type": "True",
        "requires_grad": repr(requires_grad),
        "subclass": "(0,)",
    }
    for name, value in expected.items():
        assert r[name] == ["ok", value], (name, r[name])
    assert r["repr"][0] == "ok" and eval(r["repr"][1]).startswith(repr_start), r["repr"]
    assert r["str"][0] == "ok" and "tensor([]" in eval(r["str"][1]), r["str"]


def test_tensor_new_follows_the_default_dtype():
    r = _run(
        {"dtype": "(bp.set_default_dtype(bp.float64), str(bp.Tensor.__new__(bp.Tensor).dtype))[1]"}
    )
    assert r["dtype"] == ["ok", "'bprop.float64'"]


def test_tensor_construction_still_works():
    # __init__ is a plain method now that __new__ makes the value: every form still builds.
    assert bp.Tensor([1.0, 2.0]).tolist() == [1.0, 2.0]
    assert tuple(bp.Tensor(2, 3).shape) == (2, 3)
    assert tuple(bp.Tensor().shape) == (0,)
    p = bp.nn.Parameter(bp.ones(2), requires_grad=False)
    assert isinstance(p, bp.nn.Parameter) and not p.requires_grad and p.tolist() == [1.0, 1.0]
    assert bp.nn.Parameter(bp.ones(2)).requires_grad


# Private C++ classes that bprop's Python wrappers create with arguments: __new__ builds the
# object, so without the arguments it raises TypeError naming the class (never a half-made
# object whose methods would run on a null pointer).
_NEEDS_ARGUMENTS = ["Adam", "SGD", "_Trainer"]
# Objects only bprop makes.
_REFUSED = {"Node": "graph nodes are made by operations", "_HookHandle": "register_hook"}
_ANY_USE = {
    "bare": "NEW",
    "repr": "repr(NEW)",
    "str": "str(NEW)",
    "step": "NEW.step()",
    "lr": "NEW.lr",
    "params": "NEW.params",
    "name": "NEW.name()",
    "remove": "NEW.remove()",
    "id": "NEW.id",
    "add": "NEW + 1",
    "len": "len(NEW)",
    "copy": "copy.copy(NEW)",
    "pickle": "pickle.dumps(NEW)",
}


@pytest.mark.parametrize("name", _NEEDS_ARGUMENTS)
def test_private_class_new_needs_its_arguments(name):
    new = f"_core.{name}.__new__(_core.{name})"
    r = _run({k: v.replace("NEW", new) for k, v in _ANY_USE.items()})
    for case, (outcome, message) in r.items():
        assert outcome == "TypeError", (case, outcome, message)
        assert f"[{name}] {name}.__new__ builds the object" in message, (case, message)
        assert "takes __init__'s arguments" in message


@pytest.mark.parametrize("name", sorted(_REFUSED))
def test_bprop_made_class_cannot_be_created(name):
    r = _run(
        {k: v.replace("NEW", f"_core.{name}.__new__(_core.{name})") for k, v in _ANY_USE.items()}
    )
    r["call"] = _run({"call": f"_core.{name}()"})["call"]
    for case, (outcome, message) in r.items():
        assert outcome == "TypeError", (case, outcome, message)
        assert f"[{name}] cannot create '{name}' instances" in message, (case, message)
        assert _REFUSED[name] in message


def test_capture_new_is_a_working_empty_capture():
    # _Capture's constructor takes no arguments, so __new__ alone makes a usable one.
    r = _run(
        {
            "launches": "_core._Capture.__new__(_core._Capture).launches",
            "replay": "_core._Capture.__new__(_core._Capture).replay()",
            "repr": "repr(_core._Capture.__new__(_core._Capture)).startswith('<')",
        }
    )
    assert r["launches"] == ["ok", "0"]
    assert r["repr"] == ["ok", "True"]
    assert r["replay"][0] in ("ok", "RuntimeError", "ValueError"), r["replay"]


def test_private_classes_still_construct_with_arguments():
    w = bp.nn.Parameter(bp.ones(2))
    w.grad = bp.ones(2)
    sgd = bp._core.SGD([w], 0.5)
    sgd.step()
    assert w.tolist() == [0.5, 0.5]
    adam = bp._core.Adam([w], 0.1, 0.9, 0.999, 1e-8, 0.0, False)
    assert adam.lr == pytest.approx(0.1)
    with pytest.raises(TypeError, match=r"\[SGD\] SGD.__new__ builds the object"):
        bp._core.SGD("not params")


def test_every_bound_class_is_covered():
    # A class bound later must be added to one of the lists above.
    covered = {"Tensor", "dtype", "Reduction", "_Capture", *_NEEDS_ARGUMENTS, *_REFUSED}
    bound = {n for n in dir(bp._core) if isinstance(getattr(bp._core, n), type)}
    assert bound <= covered, bound - covered


@pytest.mark.parametrize(
    "enum, member, name, value",
    [(bp.dtype, bp.float32, "float32", 2), (bp._core.Reduction, bp._core.Reduction.sum, "sum", 2)],
)
def test_enums_have_their_members_and_nothing_else(enum, member, name, value):
    # cls.__new__(cls) used to leave an instance holding no member (repr 'bprop.???', and a
    # tensor of that dtype), and cls(99) took any int.
    for args in [(), (99,), ("no such member",), (2.0,)]:
        with pytest.raises(ValueError, match=rf"\[{enum.__name__}\] .*takes one member's name"):
            enum.__new__(enum, *args)
    assert enum(name) is member and enum(value) is member
    for copied in [
        pickle.loads(pickle.dumps(member)),
        pickle.loads(pickle.dumps(member, protocol=0)),
        copy.copy(member),
        copy.deepcopy(member),
    ]:
        assert copied is member

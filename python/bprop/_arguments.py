"""Argument errors as PyTorch words them: `mse_loss(): argument 'input' (position 1) must be
Tensor, not str`. One wording for the whole package: the Python functions call check_tensor,
and the extension module routes pybind11's "incompatible function arguments" through
explain_incompatible_call, which names the public function the user called and the argument
that does not fit."""

from __future__ import annotations

import numbers
import operator
import re
import sys
from typing import Any

from ._core import Tensor

__all__ = ["argument_error", "as_float", "as_int", "check_tensor", "explain_incompatible_call"]


def _type_name(value: Any) -> str:
    return "None" if value is None else type(value).__name__


def argument_error(
    function: str, name: str, position: int | None, expected: str, value: Any
) -> TypeError:
    """The TypeError for argument `name` of `function` (position counted from 1, None for a
    keyword-only argument) that should be `expected`."""
    where = f" (position {position})" if position is not None else ""
    return TypeError(
        f"{function}(): argument '{name}'{where} must be {expected}, not {_type_name(value)}"
    )


def check_tensor(function: str, name: str, position: int | None, value: Any) -> None:
    """Raises argument_error unless value is a Tensor."""
    if not isinstance(value, Tensor):
        raise argument_error(function, name, position, "Tensor", value)


def as_int(function: str, name: str, position: int | None, value: Any) -> int:
    """value as an int (an int, a numpy integer, anything with __index__), else
    argument_error."""
    if isinstance(value, int):
        return value
    try:
        return operator.index(value)
    except TypeError:
        raise argument_error(function, name, position, "int", value) from None


def as_float(function: str, name: str, position: int | None, value: Any) -> float:
    """value as a float (a real number, or anything with __float__ or __index__, such as a
    one-element tensor), else argument_error."""
    if isinstance(value, float):
        return value
    if isinstance(value, (str, bytes)) or not (
        hasattr(value, "__float__") or hasattr(value, "__index__")
    ):
        raise argument_error(function, name, position, "float", value)
    return float(value)


# ---- pybind11's overload errors (called by the extension module, on the error path only) ----

_SIGNATURE = re.compile(r"^\s*\d+\.\s*\((.*)\)\s*->\s*(.*)$")
_PREFIXES = ("bprop._core.", "collections.abc.", "typing.", "numpy.typing.", "numpy.")


def _split_top_level(text: str) -> list[str]:
    """Splits a parameter list at the commas outside brackets and quotes."""
    parts, depth, quote, current = [], 0, "", []
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    if "".join(current).strip():
        parts.append("".join(current).strip())
    return parts


def _parameters(signature: str) -> list[tuple[str, str, bool, bool]]:
    """(name, type, has_default, keyword_only) for each parameter of a pybind11 signature."""
    params, keyword_only = [], False
    for part in _split_top_level(signature):
        if part in ("*", "/"):
            keyword_only = keyword_only or part == "*"
            continue
        if part.startswith("*"):
            keyword_only = True
            continue
        name, _, rest = part.partition(":")
        annotation, eq, _ = rest.partition(" = ")
        params.append((name.strip(), annotation.strip(), bool(eq), keyword_only))
    return params


_WORDS = {
    "SupportsInt | SupportsIndex": "int",
    "SupportsFloat | SupportsIndex": "float",
    "SupportsInt": "int",
    "SupportsFloat": "float",
    "SupportsIndex": "int",
}


def _pretty(annotation: str) -> str:
    for prefix in _PREFIXES:
        annotation = annotation.replace(prefix, "")
    for typing_name, word in _WORDS.items():
        annotation = annotation.replace(typing_name, word)
    return annotation


def _fits(annotation: str, value: Any) -> bool:
    """Whether value plausibly fits a pybind11 annotation; unknown annotations fit."""
    a = _pretty(annotation).strip()
    if a.startswith("Optional[") and a.endswith("]"):
        return value is None or _fits(a[9:-1], value)
    if "|" in a:
        return any(_fits(part.strip(), value) for part in _split_union(a))
    if a == "None":
        return value is None
    if a == "Tensor":
        return isinstance(value, Tensor)
    if a == "Number":  # bindings.h's Scalar: a Python or numpy number
        return isinstance(value, numbers.Number) or type(value).__module__ == "numpy"
    if a in ("float", "SupportsFloat", "SupportsFloat | SupportsIndex"):
        return isinstance(value, numbers.Real) or (
            hasattr(value, "__float__") and not isinstance(value, (str, bytes))
        )
    if a in ("int", "SupportsInt", "SupportsIndex", "SupportsInt | SupportsIndex"):
        return isinstance(value, numbers.Integral) or hasattr(value, "__index__")
    if a == "bool":
        return isinstance(value, (bool, numbers.Integral)) or type(value).__name__ == "bool_"
    if a == "str":
        return isinstance(value, str)
    if a == "dtype":
        return type(value).__name__ == "dtype"
    if a.startswith(("list[", "Sequence[", "tuple[")):
        if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
            return False
        inner = a[a.index("[") + 1 : -1]
        try:
            items = list(value)
        except Exception:  # a generator that fails: not a fit
            return False
        element = _split_top_level(inner)[0] if inner else "Any"
        return all(_fits(element, item) for item in items)
    if a.startswith(("Callable", "function")):
        return callable(value)
    return True  # object, Any, ndarray, buffers...: pybind11 converts; let it be


def _container(annotation: str) -> str | None:
    """The element annotation of a list/tuple/Sequence annotation, else None."""
    a = _pretty(annotation).strip()
    if a.startswith(("list[", "Sequence[", "tuple[")) and a.endswith("]"):
        inner = _split_top_level(a[a.index("[") + 1 : -1])
        return inner[0] if inner else "Any"
    return None


def _expected(annotation: str, value: Any) -> str:
    """The annotation in words: "tuple of ints" for tuple[int, ...]."""
    element = _container(annotation)
    if element is not None:
        return f"tuple of {_pretty(element)}s"
    return _pretty(annotation)


def _bad_element(annotation: str, value: Any) -> tuple[int, Any] | None:
    """(index, item) of the first item of an iterable value that its container annotation
    refuses."""
    element = _container(annotation)
    if element is None or isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        return None
    try:
        items = list(value)
    except Exception:
        return None
    for i, item in enumerate(items):
        if not _fits(element, item):
            return i, item
    return None


def _split_union(annotation: str) -> list[str]:
    parts, depth, current = [], 0, []
    for ch in annotation:
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _first_misfit(params, args, kwargs):
    """(position or None, name, annotation, value, reason) of the first argument a signature
    refuses, or None if every argument fits it."""
    positional = [p for p in params if not p[3]]
    if len(args) > len(positional):
        return (len(positional) + 1, None, None, args[len(positional)], "too many")
    bound = {}
    for i, (value, param) in enumerate(zip(args, positional)):
        bound[param[0]] = (i + 1, value)
    names = {p[0] for p in params}
    for key, value in kwargs.items():
        if key not in names:
            return (None, key, None, value, "unexpected")
        if key in bound:
            return (None, key, None, value, "twice")
        bound[key] = (None, value)
    for name, annotation, has_default, _ in params:
        if name not in bound:
            if not has_default:
                return (None, name, annotation, None, "missing")
            continue
        position, value = bound[name]
        if not _fits(annotation, value):
            return (position, name, annotation, value, "type")
    return None


def _public_caller(depth: int = 2) -> tuple[str, dict[str, Any]] | None:
    """The innermost Python function of bprop on the stack (the public function the user
    called, which called the extension), with its local variables; None if the user called the
    extension directly."""
    frame = sys._getframe(depth)
    found = None
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("bprop"):
            break
        if module != __name__ and not frame.f_code.co_name.startswith("_"):
            found = (frame.f_code.co_name, frame.f_locals)
        frame = frame.f_back
    return found


def _message(function: str, misfit, signatures: list[str], holder: dict[str, Any] | None):
    position, name, annotation, value, reason = misfit
    if holder is not None:  # name the public function's own argument that holds the value
        for local, local_value in holder.items():
            if local.startswith("_") or value is None:
                continue
            held = isinstance(value, (tuple, list)) and any(v is local_value for v in value)
            same_items = (
                isinstance(value, (tuple, list))
                and isinstance(local_value, (tuple, list))
                and len(value) == len(local_value)
                and all(a is b for a, b in zip(value, local_value))
            )
            if local_value is value or held or same_items:
                name, position, value = local, None, local_value
                break
    shown = "\n".join(f"  {function}({s})" for s in signatures)
    if reason == "too many":
        head = f"{function}(): takes at most {position - 1} positional arguments"
    elif reason == "unexpected":
        head = f"{function}(): got an unexpected keyword argument '{name}'"
    elif reason == "twice":
        head = f"{function}(): got multiple values for argument '{name}'"
    elif reason == "missing":
        head = f"{function}(): missing required argument '{name}'"
    else:
        head = str(argument_error(function, name, position, _expected(annotation, value), value))
        element = _bad_element(annotation, value)
        if element is not None:
            head = head.rsplit(", not ", 1)[0]
            head += f", but found element of type {_type_name(element[1])} at pos {element[0]}"
    # The signatures are the extension function's: shown only when it is what the user called.
    return head if holder is not None else f"{head}\nIt takes:\n{shown}"


def explain_incompatible_call(message: str, args: tuple, kwargs: dict) -> str:
    """A message for pybind11's "incompatible function arguments" TypeError (`message`),
    raised by a call with `args` and `kwargs`: which argument of which function is wrong, and
    the signatures it accepts. Names the public bprop function on the stack when the failing
    call was an internal one."""
    first_line = message.split("\n", 1)[0]
    internal = first_line.split("(", 1)[0]
    signatures, results = [], []
    for line in message.splitlines()[1:]:
        match = _SIGNATURE.match(line)
        if match:
            signatures.append(match.group(1))
    is_method = bool(signatures) and all(s.startswith("self") for s in signatures)
    for signature in signatures:
        params = _parameters(signature)
        misfit = _first_misfit(params, args, kwargs)
        if misfit is not None:
            results.append((misfit, params))
    # The user called a public Python function of bprop, which called the extension: name
    # that function and its argument; else the extension's function itself (a method of Tensor
    # when it has self).
    caller = _public_caller()
    function, holder = internal, None
    if caller is not None:
        function, holder = caller
    elif is_method:
        function = f"Tensor.{internal}"
    display = [_pretty(signature) for signature in signatures]
    if is_method:
        display = [", ".join(_split_top_level(d)[1:]) for d in display]
    if not results:
        kinds = ", ".join(_type_name(a) for a in args)
        return f"{function}(): the arguments ({kinds}) match none of its signatures:\n" + (
            "\n".join(f"  {function}({d})" for d in display)
        )
    # The signature that got furthest before refusing: the most likely one meant.
    misfit = results[0][0]
    if is_method and misfit[0] is not None:
        misfit = (misfit[0] - 1,) + misfit[1:]
    return _message(function, misfit, display, holder)

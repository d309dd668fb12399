"""bp.save / bp.load: checkpoints in the safetensors format, written and validated in C++.

A checkpoint holds a (possibly nested) dict whose leaves are tensors or plain values (numbers,
strings, bools, None, lists or tuples of them), such as a module's or an optimizer's
state_dict. Tensors go in the file's tensor section under dotted names; the nesting and the
plain values go in its __metadata__ as JSON, so `safetensors` reads the tensors of any bprop
checkpoint, and bp.load reads any safetensors file (as a flat dict)."""

from __future__ import annotations

import json
import os
from typing import Any

from . import _core
from ._core import Tensor

__all__ = ["save", "load"]

_STRUCTURE_KEY = "bprop.structure"


def _flatten(obj, prefix: str, tensors: list, where: str):
    """The JSON-able structure of obj, with each tensor replaced by {"tensor": name}."""
    if isinstance(obj, Tensor):
        tensors.append((prefix, obj))
        return {"tensor": prefix}
    if isinstance(obj, dict):
        items = []
        for key, value in obj.items():
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"[save] dict keys must be str or int, got {key!r} at {where}")
            name = f"{prefix}.{key}" if prefix else str(key)
            items.append([key, _flatten(value, name, tensors, f"{where}[{key!r}]")])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        values = [_flatten(v, f"{prefix}.{i}", tensors, f"{where}[{i}]") for i, v in enumerate(obj)]
        return {"tuple" if isinstance(obj, tuple) else "list": values}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise TypeError(f"[save] can't store {type(obj).__name__} at {where}: only tensors, dicts, "
                    "lists, tuples, numbers, strings, bools and None")  # fmt: skip


def _rebuild(spec, tensors: dict, path: str, depth: int = 0):
    """The object `spec` describes; any malformed part raises ValueError naming the file."""

    def bad(what):
        return ValueError(f"[load] {path}: malformed {_STRUCTURE_KEY} metadata: {what}")

    if depth > 100:
        raise bad("nested too deeply")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise bad(f"expected a one-key object, got {type(spec).__name__}")
    ((kind, value),) = spec.items()
    if kind == "tensor":
        if not isinstance(value, str) or value not in tensors:
            raise bad(f"names a missing tensor {value!r}")
        return tensors[value]
    if kind == "dict":
        if not isinstance(value, list) or not all(
            isinstance(item, list) and len(item) == 2 and isinstance(item[0], (str, int))
            for item in value
        ):
            raise bad("a dict must be a list of [key, value] pairs")
        return {key: _rebuild(item, tensors, path, depth + 1) for key, item in value}
    if kind in ("list", "tuple"):
        if not isinstance(value, list):
            raise bad(f"a {kind} must be a list")
        items = [_rebuild(item, tensors, path, depth + 1) for item in value]
        return tuple(items) if kind == "tuple" else items
    if kind == "value":
        if value is not None and not isinstance(value, (bool, int, float, str)):
            raise bad(f"unsupported value {value!r}")
        return value
    raise bad(f"unknown entry {kind!r}")


def save(obj: Any, path: str | os.PathLike[str]) -> None:
    """Writes obj (a tensor, or a dict such as a state_dict) to path, atomically: the file is
    written beside it and renamed into place."""
    tensors: list = []
    structure = _flatten(obj, "", tensors, "the object")
    if isinstance(obj, Tensor):  # a lone tensor gets a name
        tensors = [("tensor", obj)]
        structure = {"tensor": "tensor"}
    metadata = {_STRUCTURE_KEY: json.dumps(structure)}
    _core._save_safetensors(os.fspath(path), tensors, metadata)


# Any: what comes back is whatever structure was saved (a dict of tensors for plain files).
def load(path: str | os.PathLike[str]) -> Any:
    """Reads a checkpoint written by bp.save (the same structure back), or any safetensors
    file (a dict of its tensors). Every byte is validated before use."""
    path = os.fspath(path)
    named, metadata = _core._load_safetensors(path)
    tensors = dict(named)
    if _STRUCTURE_KEY not in metadata:
        return tensors
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"[load] {path}: bad {_STRUCTURE_KEY} metadata: {error}") from None
    return _rebuild(structure, tensors, path)

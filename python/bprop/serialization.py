"""bp.save / bp.load: checkpoints in the safetensors format, written and validated in C++.

A checkpoint holds a tensor, or a (possibly nested) dict, list or tuple whose leaves are
tensors or plain values (ints, floats, strings, bools, None), such as
``{'model': model.state_dict(), 'optimizer': opt.state_dict(), 'epoch': 3}``. Tensors go in
the file's tensor section under dotted names; the nesting and the plain values go in its
__metadata__ as JSON, so `safetensors` reads the tensors of any bprop checkpoint, bp.load reads
any safetensors file (as a flat dict), and what comes back has the saved Python types (tuples
stay tuples, int keys stay ints). There is no pickle: objects (a Module, an optimizer) are
refused with a TypeError that says to save their state_dict(). A file may be a path or a binary
file object (io.BytesIO, open(..., "wb")), as in PyTorch."""

from __future__ import annotations

import io
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from typing import IO, Any, Union

import numpy as np

from . import _core
from ._core import Tensor

__all__ = ["save", "load"]

_STRUCTURE_KEY = "bprop.structure"

FileLike = Union[str, "os.PathLike[str]", IO[bytes]]  # noqa: UP007  (runs on 3.9)


class _Names:
    """Unique tensor names: the dotted path, with #2, #3 ... where two paths spell the same."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def take(self, name: str) -> str:
        unique, k = name, 1
        while unique in self.used:
            k += 1
            unique = f"{name}#{k}"
        self.used.add(unique)
        return unique


def _unsupported(obj: Any, where: str) -> TypeError:
    kind = type(obj).__name__
    if hasattr(obj, "state_dict") and callable(obj.state_dict):
        return TypeError(
            f"[save] can't save a {kind} object at {where}: bprop checkpoints hold tensors and "
            f"plain values, not pickled objects. Save its state instead, "
            f"bp.save(obj.state_dict(), f) (for a model: model.state_dict()), and restore it "
            f"with obj.load_state_dict(bp.load(f))"
        )
    return TypeError(
        f"[save] can't store {kind} at {where}: only tensors, dicts, lists, tuples, ints, "
        "floats, strings, bools and None"
    )


def _flatten(obj: Any, prefix: str, tensors: list, names: _Names, where: str) -> Any:
    """The JSON-able structure of obj, with each tensor replaced by {"tensor": name}."""
    if isinstance(obj, Tensor):
        name = names.take(prefix or "tensor")
        tensors.append((name, obj))
        return {"tensor": name}
    if isinstance(obj, Mapping):
        items = []
        for key, value in obj.items():
            if isinstance(key, np.integer):
                key = int(key)
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"[save] dict keys must be str or int, got {key!r} at {where}")
            name = f"{prefix}.{key}" if prefix else str(key)
            items.append([key, _flatten(value, name, tensors, names, f"{where}[{key!r}]")])
        return {"dict": items}
    if isinstance(obj, (list, tuple)):
        values = [
            _flatten(v, f"{prefix}.{i}" if prefix else str(i), tensors, names, f"{where}[{i}]")
            for i, v in enumerate(obj)
        ]
        return {"tuple" if isinstance(obj, tuple) else "list": values}
    if isinstance(obj, (np.bool_, np.integer, np.floating)):
        obj = obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    raise _unsupported(obj, where)


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


def _is_path(f: Any) -> bool:
    return isinstance(f, (str, os.PathLike))


def save(obj: Any, f: FileLike, pickle_module: Any = None, pickle_protocol: int = 2) -> None:
    """Writes obj (a tensor, or a dict, list or tuple of tensors and plain values, such as
    a state_dict) to f, as torch.save: f is a path or a binary file object with write(). The
    pickle arguments are accepted for PyTorch's signature and unused: the format is
    safetensors.

    A path is written atomically: to a fresh, randomly named temporary in the same directory
    (created exclusively and with mode 0600, so nothing already there is written through),
    fsynced and renamed over the path. Readers and crashes see the old file or the new one,
    never a mix; of two saves to one path at once, one wins whole. The new file keeps the
    permission bits of the file it replaces (a new file gets 0666 less the umask). On
    failure an OSError (FileNotFoundError, PermissionError, ...) whose message starts with
    ``[save]`` names the path and the reason, and the old file is left as it was. A path
    holding a NUL character raises ValueError. Unlike torch.save, a symlink at the path is
    replaced by the new regular file; the file it pointed to is not changed (save to
    ``os.path.realpath(path)`` to write through the link)."""
    del pickle_module, pickle_protocol
    tensors: list = []
    structure = _flatten(obj, "", tensors, _Names(), "the object")
    metadata = {_STRUCTURE_KEY: json.dumps(structure)}
    if _is_path(f):
        _core._save_safetensors(os.fspath(f), tensors, metadata)
        return
    if not callable(getattr(f, "write", None)):
        raise TypeError(
            f"[save] f must be a path (str or os.PathLike) or a binary file object with "
            f"write(), got {type(f).__name__}"
        )
    if isinstance(f, io.TextIOBase):
        raise TypeError("[save] f is a text file; open it in binary mode ('wb')")
    # The C++ writer (one home for the format) writes a file; its bytes go to f.
    with tempfile.TemporaryDirectory(prefix="bprop-save-") as folder:
        path = os.path.join(folder, "checkpoint.safetensors")
        _core._save_safetensors(path, tensors, metadata)
        with open(path, "rb") as written:
            data = written.read()
    f.write(data)


def _check_cpu(location: Any, what: str) -> None:
    name = str(location)
    if name != "cpu" and not name.startswith("cpu:"):
        raise RuntimeError(
            f"[load] {what} asks for device {name!r}; bprop runs on the CPU only, so use "
            "map_location='cpu' (or leave it out)"
        )


def _map_location(tensors: dict[str, Tensor], map_location: Any) -> dict[str, Tensor]:
    """torch.load's map_location on a CPU-only library: every tensor is stored on the CPU."""
    if map_location is None:
        return tensors
    if isinstance(map_location, Mapping):
        for source, target in map_location.items():
            if str(source) == "cpu" or str(source).startswith("cpu:"):
                _check_cpu(target, "map_location")
        return tensors
    if callable(map_location) and not isinstance(map_location, str):
        mapped = {}
        for name, t in tensors.items():
            result = map_location(t, "cpu")  # PyTorch passes (storage, location)
            if result is None:
                mapped[name] = t
            elif isinstance(result, Tensor):
                mapped[name] = result
            else:
                raise TypeError(
                    f"[load] map_location returned {type(result).__name__}; it must return a "
                    "tensor or None"
                )
        return mapped
    _check_cpu(map_location, "map_location")
    return tensors


# Any: what comes back is whatever structure was saved (a dict of tensors for plain files).
def load(
    f: FileLike,
    map_location: Callable[[Tensor, str], Tensor | None] | str | Mapping[str, str] | Any = None,
    pickle_module: Any = None,
    *,
    weights_only: bool | None = None,
    mmap: bool | None = None,
) -> Any:
    """Reads a checkpoint written by bp.save (the same structure back), or any safetensors
    file (a dict of its tensors), from a path or a binary file object with read(), as
    torch.load. Every byte is validated before use. map_location may name the CPU ('cpu', a
    cpu device, a dict mapping 'cpu' to 'cpu') or be a function called with (tensor, 'cpu')
    that returns the tensor to use (None keeps it); other devices raise RuntimeError.
    weights_only, mmap and pickle_module are accepted for PyTorch's signature: without pickle
    every load is weights-only."""
    del pickle_module, weights_only, mmap
    if _is_path(f):
        path = os.fspath(f)
        named, metadata = _core._load_safetensors(path)
    else:
        if not callable(getattr(f, "read", None)):
            raise TypeError(
                f"[load] f must be a path (str or os.PathLike) or a binary file object with "
                f"read(), got {type(f).__name__}"
            )
        data = f.read()
        if isinstance(data, str):
            raise TypeError("[load] f is a text file; open it in binary mode ('rb')")
        path = str(getattr(f, "name", "<file object>"))
        try:
            named, metadata = _core._parse_safetensors(bytes(data))
        except ValueError as error:
            raise ValueError(str(error).replace("<bytes>", path, 1)) from None
    tensors = _map_location(dict(named), map_location)
    if _STRUCTURE_KEY not in metadata:
        return tensors
    try:
        structure = json.loads(metadata[_STRUCTURE_KEY])
    except (json.JSONDecodeError, RecursionError) as error:
        raise ValueError(f"[load] {path}: bad {_STRUCTURE_KEY} metadata: {error}") from None
    return _rebuild(structure, tensors, path)

"""The Python-defined half of bprop's API, each function and Tensor method defined once here.

What lives here is what needs Python: argument normalisation (PyTorch's *size varargs,
dim/axis and keepdim/keepdims aliases, numbers as operands, numpy keys), numpy and DLPack
conversion, and the Python protocols. All computation happens in C++ (bprop._core).

The one-home rule (CONTRIBUTING.md): a definition decorated with ``@function_and_method``
is both ``bprop.<name>`` and ``Tensor.<name>`` (the same function object, so the two forms
take the same keywords); ``@method`` makes a Tensor method only; an undecorated public
function is a ``bprop.*`` function only. Ops without Python-side normalisation are bound in
C++ instead (python/src/ops.cpp, ``def_function_and_method``). The stub python/bprop/_core.pyi
is generated from these signatures (scripts/stubs.py).
"""

from __future__ import annotations

import collections
import collections.abc
import typing
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from . import _core
from ._arguments import argument_error, as_int
from ._core import Tensor
from ._device import check_device, check_dtype
from ._format import tensor_repr

if TYPE_CHECKING:
    from ._core import Number, _Dims, _DType, _NDArray, _RemovableHandle, _Shape

__all__ = ["Tensor", "tensor", "from_dlpack"]

_F = TypeVar("_F", bound=collections.abc.Callable[..., typing.Any])


def method(fn: _F) -> _F:
    """Installs fn as the Tensor method of its name (a dunder keeps its own name)."""
    setattr(Tensor, fn.__name__, fn)
    return fn


def function_and_method(fn: _F) -> _F:
    """fn is both the bprop function and the Tensor method of its name."""
    return method(fn)


def _named(name: str, doc: str, fn: _F) -> _F:
    """fn (made by a factory below) under its public name, with its docstring."""
    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    # Tracebacks and argument errors (bprop._arguments) read the code's name: the public one.
    if hasattr(fn.__code__, "co_qualname"):  # Python 3.11+
        fn.__code__ = fn.__code__.replace(co_name=name, co_qualname=name)
    else:
        fn.__code__ = fn.__code__.replace(co_name=name)
    return fn


def _alias(fn: _F, name: str) -> _F:
    """A second name for a method (clip for clamp, __iadd__ for add_): the same object."""
    setattr(Tensor, name, fn)
    return fn


_NUMPY_TO_BPROP = {
    np.dtype(np.bool_): _core.dtype.bool,
    np.dtype(np.int64): _core.dtype.int64,
    np.dtype(np.float32): _core.dtype.float32,
    np.dtype(np.float64): _core.dtype.float64,
}


def _size_args(op: str, size: tuple) -> tuple:
    """`f(2, 3)` and `f((2, 3))` both mean shape (2, 3), as in PyTorch."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise TypeError(f"[{op}] sizes must be ints, got {size!r}")
    return tuple(int(s) for s in size)


def _dims(op: str, dim, axis) -> tuple:
    """dim (or its numpy alias axis) as a tuple of dims; () means every dim."""
    if axis is not None:
        if dim not in (None, ()):
            raise TypeError(f"[{op}] got both dim and axis")
        dim = axis
    if dim is None:
        return ()
    if isinstance(dim, (tuple, list)):
        if len(dim) == 0:
            return ()
        return tuple(dim)
    return (dim,)


def _keep(keepdim, keepdims) -> bool:
    """keepdim, or its numpy alias keepdims where given."""
    return bool(keepdim if keepdims is None else keepdims)


def _detached(data: typing.Any) -> typing.Any:
    """data with every tensor in its nested lists and tuples detached."""
    if isinstance(data, Tensor):
        return data.detach()
    if isinstance(data, (list, tuple)):
        return [_detached(item) for item in data]
    return data


def _numpy_for(data, op: str) -> np.ndarray:
    """A numpy array holding `data` in a dtype bprop supports."""
    try:
        try:
            array = np.asarray(data)
        except RuntimeError:
            # A sequence holding tensors that require grad (their __array__ refuses): PyTorch
            # takes their values, so convert detached copies.
            array = np.asarray(_detached(data))
    except ValueError as error:  # numpy refuses ragged nested sequences
        raise ValueError(f"[{op}] ragged nested sequence: {error}") from None
    if array.dtype == object:
        raise ValueError(f"[{op}] ragged nested sequence or unsupported element types: {data!r}")
    kind = array.dtype.kind
    if kind in "biuf" and (
        not array.dtype.isnative or any(s % array.dtype.itemsize for s in array.strides)
    ):
        # Byte-swapped, or a field of a structured array: copy into a plain native layout.
        array = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))
    if kind == "b":
        return array
    if kind == "u" and array.dtype.itemsize == 8 and array.size:
        if int(array.max()) > np.iinfo(np.int64).max:
            raise ValueError(f"[{op}] uint64 value {int(array.max())} does not fit in int64")
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind == "f":
        if array.dtype.itemsize < 4:
            return array.astype(np.float32)
        return array
    raise TypeError(f"[{op}] can't make a tensor from data of numpy dtype {array.dtype}")


def _check_int64_fits(op: str, values: typing.Any) -> None:
    """RuntimeError, as PyTorch raises, when a float (or float array) headed for int64 is NaN,
    infinite or outside [-2**63, 2**63): C's conversion would give garbage (INT64_MIN)."""
    array = np.asarray(values)
    if array.dtype.kind != "f" or array.size == 0:
        return
    with np.errstate(invalid="ignore"):
        fits = np.isfinite(array) & (array >= -(2.0**63)) & (array < 2.0**63)
    if not fits.all():
        bad = array[~fits].flat[0]
        raise RuntimeError(
            f"[{op}] value {float(bad)!r} cannot be converted to type int64 without overflow"
        )


# ---- creation from data ----


def tensor(
    data: typing.Any,
    dtype: _core.dtype | None = None,
    requires_grad: bool = False,
    *,
    device: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested sequence, numpy array or Tensor).

    Python ints become int64, floats the default dtype (float32), bools bool; numpy arrays keep
    their dtype (other integer widths become int64). device: None or the CPU (bprop runs on
    the CPU only); pin_memory=True raises, as PyTorch does without an accelerator."""
    check_device("tensor", device)
    if pin_memory:
        raise RuntimeError("[tensor] pin_memory=True needs an accelerator; bprop runs on the CPU")
    check_dtype("tensor", dtype)
    if isinstance(data, Tensor):
        result = data.detach().clone()
    else:
        # numpy arrays and numpy scalars keep their dtype; Python floats take the default.
        from_python = not isinstance(data, (np.ndarray, np.generic))
        array = _numpy_for(data, "tensor")
        if from_python and dtype == _core.dtype.int64:
            _check_int64_fits("tensor", array)
        if dtype is not None and array.dtype.kind in "biuf":
            # Straight to the requested dtype: float64 values must not pass through float32.
            array = array.astype(_to_numpy_dtype(dtype), copy=False)
        elif from_python and array.dtype.kind == "f":
            array = array.astype(_to_numpy_dtype(_core.get_default_dtype()), copy=False)
        result = _core._tensor_from_numpy(array)
    if dtype is not None and result.dtype != dtype:
        result = _core._to_dtype(result, dtype)
    if requires_grad:
        result.requires_grad_(True)
    return result


def _to_numpy_dtype(dtype) -> np.dtype:
    for np_dtype, bp_dtype in _NUMPY_TO_BPROP.items():
        if bp_dtype == dtype:
            return np_dtype
    raise TypeError(f"unknown dtype {dtype!r}")


_KDLCPU, _KDLCUDAHOST = 1, 3  # DLPack device types whose memory the CPU reads


def from_dlpack(x: typing.Any, *, device: typing.Any = None, copy: bool | None = None) -> Tensor:
    """A tensor sharing memory with `x`, any object with ``__dlpack__`` (a numpy array, a torch
    or JAX CPU tensor, a bprop tensor) or a DLPack capsule.

    ``copy=None`` shares where possible and copies read-only or misaligned data; ``copy=False``
    raises instead of copying; ``copy=True`` always copies. The producer stays alive while the
    result's memory does."""
    if device is not None and str(device) != "cpu":
        raise ValueError(f"[from_dlpack] bprop tensors live on the CPU; got device={device!r}")
    if type(x).__name__ == "PyCapsule":
        return _core._from_dlpack_capsule(x, copy)
    if not hasattr(x, "__dlpack__"):
        raise TypeError(
            "[from_dlpack] expected an object with __dlpack__ (a numpy array, a torch or JAX "
            f"tensor, ...) or a DLPack capsule, got {type(x).__name__}"
        )
    if hasattr(x, "__dlpack_device__"):
        device_type, device_id = x.__dlpack_device__()
        if int(device_type) not in (_KDLCPU, _KDLCUDAHOST):
            raise BufferError(
                f"[from_dlpack] only CPU memory can be imported; got DLPack device "
                f"({int(device_type)}, {int(device_id)}): move the tensor to the CPU first"
            )
    try:
        capsule = x.__dlpack__(max_version=(1, 0))
    except TypeError:  # a producer older than DLPack 1.0 takes no keywords
        capsule = x.__dlpack__()
    return _core._from_dlpack_capsule(capsule, copy)


# ---- Python protocols ----


@method
def __dlpack__(
    self: Tensor,
    *,
    stream: typing.Any = None,
    max_version: tuple[int, int] | None = None,
    dl_device: tuple[int, int] | None = None,
    copy: bool | None = None,
) -> typing.Any:
    """A DLPack capsule viewing this tensor (a copy's if copy=True), for from_dlpack."""
    if stream is not None:
        raise BufferError("[__dlpack__] bprop tensors live on the CPU: stream must be None")
    if dl_device is not None and tuple(int(v) for v in dl_device) != (_KDLCPU, 0):
        raise BufferError(
            f"[__dlpack__] bprop tensors live on the CPU (device (1, 0)); got dl_device={dl_device}"
        )
    versioned = max_version is not None and int(max_version[0]) >= 1
    return _core._to_dlpack_capsule(self, versioned, bool(copy))


@method
def __dlpack_device__(self: Tensor) -> tuple[int, int]:
    """(kDLCPU, 0): bprop tensors live on the CPU."""
    return (_KDLCPU, 0)


@method
def __array__(self: Tensor, dtype: typing.Any = None, copy: bool | None = None) -> _NDArray:
    """numpy 2's protocol: copy=None shares where it can, True always copies, False never.
    Like numpy(), refuses a tensor that requires grad (detach() it first), as PyTorch does."""
    array = self.numpy()
    if dtype is not None and np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(
                f"[__array__] converting {self.dtype} to {np.dtype(dtype)} needs a copy, "
                "which copy=False forbids"
            )
        return array.astype(dtype)
    return array.copy() if copy else array


Tensor.__array_priority__ = 1000  # numpy defers to our reflected operators


@method
def __len__(self: Tensor) -> int:
    """The size of the first dimension."""
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


@method
def __iter__(self: Tensor) -> collections.abc.Iterator[Tensor]:
    """The subtensors along the first dimension."""
    return (self[i] for i in range(len(self)))


def _scalar_of(self: Tensor, op: str) -> Number:
    if self.numel() != 1:
        raise ValueError(
            f"[{op}] only one-element tensors can be converted to Python scalars, "
            f"got shape {self.shape}"
        )
    return self.item()


@method
def __float__(self: Tensor) -> float:
    """The value of a one-element tensor as a Python float."""
    return float(_scalar_of(self, "float"))


@method
def __int__(self: Tensor) -> int:
    """The value of a one-element tensor as a Python int."""
    return int(_scalar_of(self, "int"))


@method
def __bool__(self: Tensor) -> bool:
    """The truth of a one-element tensor; more elements are ambiguous."""
    if self.numel() != 1:
        raise RuntimeError(
            f"[bool] Boolean value of Tensor with {self.numel()} elements is ambiguous"
        )
    return bool(self.item())


@method
def __hash__(self: Tensor) -> int:
    """By identity, as PyTorch's tensors hash (== builds a tensor, not a bool)."""
    return object.__hash__(self)


_alias(tensor_repr, "__repr__")
_alias(tensor_repr, "__str__")


@method
def tolist(self: Tensor) -> typing.Any:
    """The values as (nested lists of) Python numbers."""
    return self.detach().numpy().tolist()


def _conversion(name: str, dtype: _core.dtype) -> None:
    def convert(self: Tensor) -> Tensor:
        return self.to(dtype)

    method(_named(name, f"self.to(bprop.{dtype.name}) (differentiable)", convert))


for _name, _dtype in [
    ("float", _core.dtype.float32),
    ("double", _core.dtype.float64),
    ("long", _core.dtype.int64),
    ("bool", _core.dtype.bool),
]:
    _conversion(_name, _dtype)


# ---- reductions: dim (int or tuple) with keepdim, or numpy's axis/keepdims ----


def _reduction(name: str, core_fn, default_dim, doc: str):
    def reduce(
        input: Tensor,
        dim: _Dims = default_dim,
        keepdim: bool = False,
        *,
        axis: _Dims = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        return core_fn(input, _dims(name, dim, axis), _keep(keepdim, keepdims))

    doc += " over dim (an int or tuple; all dims if omitted), keepdim to keep them"
    return function_and_method(_named(name, doc, reduce))


def _reduction_with_dtype(name: str, core_fn, doc: str):
    """sum, mean, prod: as _reduction, and dtype= converts the input first (PyTorch's
    keyword, e.g. sum(dtype=float64) of a float32 tensor accumulates in float64)."""

    def reduce(
        input: Tensor,
        dim: _Dims = None,
        keepdim: bool = False,
        *,
        dtype: _DType | None = None,
        axis: _Dims = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        if dtype is not None:
            input = input.to(dtype)
        return core_fn(input, _dims(name, dim, axis), _keep(keepdim, keepdims))

    doc += (
        " over dim (an int or tuple; all dims if omitted), keepdim to keep them; dtype= "
        "converts the input first"
    )
    return function_and_method(_named(name, doc, reduce))


sum = _reduction_with_dtype("sum", _core._sum, "The sum")  # noqa: A001
mean = _reduction_with_dtype("mean", _core._mean, "The mean")
prod = _reduction_with_dtype("prod", _core._prod, "The product")
amax = _reduction("amax", _core._amax, (), "The largest values (ties share the gradient)")
amin = _reduction("amin", _core._amin, (), "The smallest values (ties share the gradient)")


def _arg_reduction(name: str, core_fn, extreme: str):
    def arg_reduce(
        input: Tensor,
        dim: int | None = None,
        keepdim: bool = False,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        dim = dim if axis is None else axis
        dim = None if dim is None else as_int(name, "dim", 2, dim)
        return core_fn(input, dim, _keep(keepdim, keepdims))

    where = "along dim (the first occurrence), or in the flattened tensor if dim is None"
    return function_and_method(
        _named(name, f"The index of the {extreme} value {where}", arg_reduce)
    )


argmax = _arg_reduction("argmax", _core._argmax, "largest")
argmin = _arg_reduction("argmin", _core._argmin, "smallest")

_MaxResult = collections.namedtuple("max", ["values", "indices"])
_MinResult = collections.namedtuple("min", ["values", "indices"])


def _extreme(name: str, all_fn, dim_fn, result_type, pairwise):
    def extreme(
        input: Tensor,
        dim: int | Tensor | None = None,
        keepdim: bool = False,
        *,
        axis: int | None = None,
        keepdims: bool | None = None,
    ) -> typing.Any:
        if isinstance(dim, Tensor):  # max(a, b): elementwise, as torch.max(input, other)
            return pairwise(input, dim)
        dim = dim if axis is None else axis
        if dim is None:
            return all_fn(input)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"[{name}] dim must be an int (use amax/amin for several dims)")
        dim = as_int(name, "dim", 2, dim)
        return result_type(*dim_fn(input, dim, _keep(keepdim, keepdims)))

    word = "largest" if name == "max" else "smallest"
    doc = (
        f"The {word} value: {name}(input) -> 0-d tensor; {name}(input, dim) -> (values, "
        f"indices) along dim; {name}(input, other) -> {pairwise.__name__}"
    )
    return function_and_method(_named(name, doc, extreme))


max = _extreme("max", _core._max_all, _core._max_dim, _MaxResult, _core.maximum)  # noqa: A001
min = _extreme("min", _core._min_all, _core._min_dim, _MinResult, _core.minimum)  # noqa: A001


def _variance(name: str, core_fn, doc: str):
    def variance(
        input: Tensor,
        dim: _Dims | bool = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
        axis: _Dims = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        if isinstance(dim, bool):  # var(unbiased), the legacy form
            dim, unbiased = None, dim
        if correction is not None and unbiased is not None:
            raise TypeError(f"[{name}] give either correction or unbiased, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return core_fn(input, _dims(name, dim, axis), float(correction), _keep(keepdim, keepdims))

    doc = (
        f"The {doc} over dim, dividing by N - correction (1 by default: unbiased; "
        "unbiased=False means correction=0)"
    )
    return function_and_method(_named(name, doc, variance))


var = _variance("var", _core._var, "variance")
std = _variance("std", _core._std, "standard deviation")


@function_and_method
def logsumexp(input: Tensor, dim: _Dims, keepdim: bool = False) -> Tensor:
    """log(sum(exp(input))) over dim, computed without overflow."""
    return _core._logsumexp(input, _dims("logsumexp", dim, None), bool(keepdim))


# ---- shapes ----


def _with_shape(name: str, keyword: str, core_fn, doc: str, register):
    """An op taking PyTorch's sizes: `f(x, 2, 3)`, `f(x, (2, 3))`, or by keyword
    `f(x, shape=(2, 3))` (the keyword PyTorch documents for it: shape, dims or size)."""

    def shaped(input: Tensor, *sizes: _Shape, **by_keyword: _Shape) -> Tensor:
        if by_keyword:
            if sizes or set(by_keyword) != {keyword}:
                raise TypeError(
                    f"[{name}] takes the {keyword} as arguments or as {keyword}=..., "
                    f"got {len(sizes)} positional and keywords {sorted(by_keyword)}"
                )
            sizes = (by_keyword[keyword],)
        return core_fn(input, _size_args(name, sizes))

    return register(_named(name, doc, shaped))


reshape = _with_shape(
    "reshape",
    "shape",
    _core._reshape,
    "The same values in a new shape (2, 3) or 2, 3; one dim may be -1. A view where possible.",
    function_and_method,
)
view = _with_shape(
    "view",
    "size",
    _core._view,
    "A view with a new shape (the strides must allow it; else reshape).",
    method,
)
permute = _with_shape(
    "permute",
    "dims",
    _core._permute,
    "A view with the dims reordered: permute(x, (1, 0)) or x.permute(1, 0).",
    function_and_method,
)
expand = _with_shape(
    "expand",
    "size",
    _core._expand,
    "A broadcast view to a larger shape (-1 keeps a dim); no copy.",
    method,
)


def broadcast_to(input: Tensor, size: _Shape) -> Tensor:
    """input broadcast to shape size, as a view (Tensor.expand)."""
    return _core._expand(input, _size_args("broadcast_to", (size,)))


@method
def expand_as(self: Tensor, other: Tensor) -> Tensor:
    """self.expand(other.shape)."""
    if not isinstance(other, Tensor):
        raise argument_error("expand_as", "other", 1, "Tensor", other)
    return _core._expand(self, other.shape)


@method
def view_as(self: Tensor, other: Tensor) -> Tensor:
    """self.view(other.shape)."""
    if not isinstance(other, Tensor):
        raise argument_error("view_as", "other", 1, "Tensor", other)
    return _core._view(self, other.shape)


@method
def reshape_as(self: Tensor, other: Tensor) -> Tensor:
    """self.reshape(other.shape)."""
    if not isinstance(other, Tensor):
        raise argument_error("reshape_as", "other", 1, "Tensor", other)
    return _core._reshape(self, other.shape)


def _reversed_dims(self: Tensor) -> Tensor:
    """The dims in reverse order (a view): the transpose of a matrix."""
    return _core._permute(self, tuple(range(self.ndim - 1, -1, -1)))


Tensor.T = property(_reversed_dims)


@function_and_method
def flatten(input: Tensor, start_dim: int = 0, end_dim: int = -1) -> Tensor:
    """The dims start_dim..end_dim merged into one."""
    start_dim = as_int("flatten", "start_dim", 2, start_dim)
    return _core._flatten(input, start_dim, as_int("flatten", "end_dim", 3, end_dim))


@function_and_method
def squeeze(input: Tensor, dim: _Dims = None) -> Tensor:
    """Without the size-1 dims (all of them, or those in dim)."""
    if dim is None:
        return _core._squeeze(input, None)
    return _core._squeeze(input, tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))


@function_and_method
def unsqueeze(input: Tensor, dim: int) -> Tensor:
    """A view with a new size-1 dim at dim."""
    return _core._unsqueeze(input, as_int("unsqueeze", "dim", 2, dim))


def _tensor_list(op: str, tensors: typing.Any, items: bool = False) -> list:
    """tensors (argument 1 of op: a list, tuple or other iterable) as a list; PyTorch's
    TypeError naming op when it is not iterable, or, with items, when an item is not a
    Tensor."""
    if type(tensors) is list:
        values = tensors
    elif isinstance(tensors, (tuple, list)):
        values = list(tensors)
    else:
        try:
            iterator = iter(tensors)
        except TypeError:
            raise argument_error(op, "tensors", 1, "tuple of Tensors", tensors) from None
        values = list(iterator)
    if items:
        for i, item in enumerate(values):
            if not isinstance(item, Tensor):
                error = argument_error(op, "tensors", 1, "tuple of Tensors", tensors)
                raise TypeError(
                    f"{str(error).rsplit(', not ', 1)[0]}, but found element of type "
                    f"{type(item).__name__} at pos {i}"
                )
    return values


def cat(tensors: collections.abc.Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors joined along an existing dim."""
    return _core._cat(_tensor_list("cat", tensors), as_int("cat", "dim", 2, dim))


concat = concatenate = cat


def stack(tensors: collections.abc.Sequence[Tensor], dim: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new dim."""
    return _core._stack(_tensor_list("stack", tensors), as_int("stack", "dim", 2, dim))


# ---- indexing ----


def _index_key(key) -> tuple:
    """A tuple of what `_core._index` takes: ints, slices, None, Ellipsis and tensors."""
    if not isinstance(key, tuple):
        key = (key,)
    parts = []
    for part in key:
        if isinstance(part, bool) or isinstance(part, np.bool_):
            parts.append(tensor(bool(part)))
        elif isinstance(part, (list, np.ndarray)):
            parts.append(tensor(part))
        elif isinstance(part, np.integer):
            parts.append(int(part))
        elif isinstance(part, Tensor) and part.dtype not in (_core.dtype.int64, _core.dtype.bool):
            raise IndexError(
                f"[index] tensors used as indices must be int64 or bool, got {part.dtype!r}"
            )
        else:
            parts.append(part)
    return tuple(parts)


@method
def __getitem__(self: Tensor, key: typing.Any) -> Tensor:
    """numpy's indexing: ints, slices, None, ..., integer tensors or lists, boolean masks."""
    return _core._index(self, _index_key(key))


@method
def __setitem__(self: Tensor, key: typing.Any, value: Tensor | Number) -> None:
    """Assigns value (broadcast) to self[key] in place; a full-shape mask works too."""
    key = _index_key(key)
    if len(key) == 1 and isinstance(key[0], Tensor) and key[0].dtype == _core.dtype.bool:
        if tuple(key[0].shape) == tuple(self.shape):  # x[mask] = v, the common advanced form
            self.copy_(_core.where(key[0], _as_operand(value), self))
            return
    if key and all(isinstance(part, Tensor) for part in key):
        self.index_put_(key, value)  # x[idx] = v, x[rows, cols] = v (bprop/_extras.py)
        return
    if any(isinstance(part, Tensor) for part in key):
        raise IndexError(
            "[index] assignment mixing tensor indices with slices is not supported; use "
            "index_put_, index_add or where"
        )
    _core._copy_(_core._index(self, key), _as_operand(value))


# ---- clamp and in place: numbers become 0-d tensors; in-place methods return self ----


def _as_operand(value):
    """A Python number as the 0-d tensor PyTorch would make of it; tensors pass through."""
    return value if isinstance(value, Tensor) else _core._wrap_scalar(value)


def _optional_operand(value):
    return None if value is None else _as_operand(value)


@function_and_method
def clamp(
    input: Tensor, min: Tensor | Number | None = None, max: Tensor | Number | None = None
) -> Tensor:
    """input limited to [min, max] (either bound may be None, a number or a tensor)."""
    return _core._clamp(input, _optional_operand(min), _optional_operand(max))


clip = _alias(clamp, "clip")


@method
def clamp_(
    self: Tensor, min: Tensor | Number | None = None, max: Tensor | Number | None = None
) -> Tensor:
    """clamp, in place; returns self."""
    _core._clamp_(self, _optional_operand(min), _optional_operand(max))
    return self


def _inplace(name: str, core_fn, symbol: str) -> None:
    # `other: typing.Any`, as the C++ __add__ & co. take it: type checkers require the
    # in-place operators (__iadd__ is this function) to accept what the binary ones do.
    def update(self: Tensor, other: typing.Any, alpha: Number = 1) -> Tensor:
        core_fn(self, _as_operand(other), alpha)
        return self

    def update_no_alpha(self: Tensor, other: typing.Any) -> Tensor:
        core_fn(self, _as_operand(other))
        return self

    fn = update if symbol in "+-" else update_no_alpha
    scaled = " * alpha" if fn is update else ""
    method(_named(name, f"``self {symbol}= other{scaled}``, in place; returns self", fn))
    _alias(fn, "__i" + {"+": "add", "-": "sub", "*": "mul", "/": "truediv"}[symbol] + "__")


_inplace("add_", _core._add_, "+")
_inplace("sub_", _core._sub_, "-")
_inplace("mul_", _core._mul_, "*")
_inplace("div_", _core._div_, "/")


@method
def fill_(self: Tensor, value: Number) -> Tensor:
    """Every element := value, in place; returns self."""
    if self.dtype == _core.dtype.int64 and isinstance(value, float):
        _check_int64_fits("fill_", value)
    _core._fill_(self, value)
    return self


@method
def zero_(self: Tensor) -> Tensor:
    """Every element := 0, in place; returns self."""
    _core._zero_(self)
    return self


@method
def copy_(self: Tensor, src: Tensor | Number) -> Tensor:
    """self's values := src's (broadcast, converted to self's dtype), in place; returns self."""
    _core._copy_(self, _as_operand(src))
    return self


# ---- autograd hooks ----


class RemovableHandle:
    """What Tensor.register_post_accumulate_grad_hook returns (PyTorch's
    torch.utils.hooks.RemovableHandle): remove() takes the hook off; as a context manager,
    the hook is taken off on leaving the block."""

    def __init__(self, tensor: Tensor, handle: int) -> None:
        self._tensor, self._handle = tensor, handle

    def remove(self) -> None:
        _core._remove_post_accumulate_grad_hook(self._tensor, self._handle)

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


@method
def register_post_accumulate_grad_hook(
    self: Tensor, hook: collections.abc.Callable[[Tensor], None]
) -> _RemovableHandle:
    """Calls hook(tensor) each time backward() has added into this leaf's .grad, after the
    addition (PyTorch's name); bp.grad() calls none. Returns a RemovableHandle. A hook may run
    backward itself. Captured steps (bp.compile, the Trainer) call the hook on every replay;
    while recording it runs outside the recording, so it may read values, and it should change
    .grad in place (later recorded launches keep reading the .grad they recorded). The tensor
    keeps its hooks alive: a hook that holds the tensor itself (rather than using its
    argument) keeps both alive for good."""
    if not callable(hook):
        raise TypeError(
            f"[register_post_accumulate_grad_hook] hook must be callable, got {type(hook).__name__}"
        )
    return RemovableHandle(self, _core._register_post_accumulate_grad_hook(self, hook))


# pybind11's enum sets its own __repr__ after the class body, so it is replaced here.
_core.dtype.__repr__ = lambda self: f"bprop.{self.name}"

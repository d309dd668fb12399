"""Python-side pieces of Tensor: argument normalisation (PyTorch's *size varargs, dim/axis and
keepdim/keepdims aliases), numpy conversion, and repr. All computation happens in C++."""

from __future__ import annotations

import numpy as np

from . import _core
from ._core import Tensor
from ._format import tensor_repr

__all__ = ["Tensor", "tensor", "from_numpy"]

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
    if axis is not None:
        if dim is not None:
            raise TypeError(f"[{op}] got both dim and axis")
        dim = axis
    if dim is None:
        return ()
    if isinstance(dim, (tuple, list)):
        if len(dim) == 0:
            return ()
        return tuple(dim)
    return (dim,)


def _numpy_for(data, op: str) -> np.ndarray:
    """A numpy array holding `data` in a dtype bprop supports."""
    try:
        array = np.asarray(data)
    except ValueError as error:  # numpy refuses ragged nested sequences
        raise ValueError(f"[{op}] ragged nested sequence: {error}") from None
    if array.dtype == object:
        raise ValueError(f"[{op}] ragged nested sequence or unsupported element types: {data!r}")
    kind = array.dtype.kind
    if kind == "b":
        return array
    if kind in "iu":
        return array.astype(np.int64, copy=False)
    if kind == "f":
        if array.dtype.itemsize < 4:
            return array.astype(np.float32)
        return array
    raise TypeError(f"[{op}] can't make a tensor from data of numpy dtype {array.dtype}")


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested sequence, numpy array or Tensor).

    Python ints become int64, floats the default dtype (float32), bools bool; numpy arrays keep
    their dtype (other integer widths become int64)."""
    if isinstance(data, Tensor):
        result = data.detach().clone()
    else:
        from_python = not isinstance(data, np.ndarray)
        array = _numpy_for(data, "tensor")
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


from_numpy = _core.from_numpy


# ---- methods whose arguments Python normalises ----


def _sum(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    return _core._sum(self, _dims("sum", dim, axis), bool(keepdim))


def _mean(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    return _core._mean(self, _dims("mean", dim, axis), bool(keepdim))


def _reshape(self, *shape):
    return _core._reshape(self, _size_args("reshape", shape))


def _permute(self, *dims):
    return _core._permute(self, _size_args("permute", dims))


def _expand(self, *sizes):
    return _core._expand(self, _size_args("expand", sizes))


def _T(self):
    return _core._permute(self, tuple(range(self.ndim - 1, -1, -1)))


def _tolist(self):
    return self.detach().numpy().tolist()


def _array(self, dtype=None, copy=None):
    array = self.detach().numpy()
    if dtype is not None:
        return array.astype(dtype, copy=copy is not False)
    return array.copy() if copy else array


def _len(self):
    if self.ndim == 0:
        raise TypeError("len() of a 0-d tensor")
    return self.shape[0]


def _scalar_of(self, op: str):
    if self.numel() != 1:
        raise ValueError(
            f"[{op}] only one-element tensors can be converted to Python scalars, "
            f"got shape {self.shape}"
        )
    return self.item()


def _bool(self):
    if self.numel() != 1:
        raise RuntimeError(
            f"[bool] Boolean value of Tensor with {self.numel()} elements is ambiguous"
        )
    return bool(self.item())


def _install_methods() -> None:
    # pybind11's enum sets its own __repr__ after the class body, so it is replaced here.
    _core.dtype.__repr__ = lambda self: f"bprop.{self.name}"
    Tensor.sum = _sum
    Tensor.mean = _mean
    Tensor.reshape = _reshape
    Tensor.permute = _permute
    Tensor.expand = _expand
    Tensor.T = property(_T)
    Tensor.tolist = _tolist
    Tensor.__array__ = _array
    Tensor.__array_priority__ = 1000  # numpy defers to our reflected operators
    Tensor.__len__ = _len
    Tensor.__float__ = lambda self: float(_scalar_of(self, "float"))
    Tensor.__int__ = lambda self: int(_scalar_of(self, "int"))
    Tensor.__bool__ = _bool
    Tensor.__hash__ = object.__hash__
    Tensor.__repr__ = tensor_repr
    Tensor.__str__ = tensor_repr
    Tensor.float = lambda self: self.to(_core.dtype.float32)
    Tensor.double = lambda self: self.to(_core.dtype.float64)
    Tensor.long = lambda self: self.to(_core.dtype.int64)
    Tensor.bool = lambda self: self.to(_core.dtype.bool)


_install_methods()

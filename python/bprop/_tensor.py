"""Python-side pieces of Tensor: argument normalisation (PyTorch's *size varargs, dim/axis and
keepdim/keepdims aliases), numpy conversion, and repr. All computation happens in C++."""

from __future__ import annotations

import collections

import numpy as np

from . import _core
from ._core import Tensor
from ._format import tensor_repr

__all__ = ["Tensor", "tensor", "from_numpy", "from_dlpack"]

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


def _numpy_for(data, op: str) -> np.ndarray:
    """A numpy array holding `data` in a dtype bprop supports."""
    try:
        array = np.asarray(data)
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


def tensor(data, dtype=None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of `data` (a number, nested sequence, numpy array or Tensor).

    Python ints become int64, floats the default dtype (float32), bools bool; numpy arrays keep
    their dtype (other integer widths become int64)."""
    if isinstance(data, Tensor):
        result = data.detach().clone()
    else:
        # numpy arrays and numpy scalars keep their dtype; Python floats take the default.
        from_python = not isinstance(data, (np.ndarray, np.generic))
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

_KDLCPU, _KDLCUDAHOST = 1, 3  # DLPack device types whose memory the CPU reads


def from_dlpack(x, *, device=None, copy=None):
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


def _dlpack(self, *, stream=None, max_version=None, dl_device=None, copy=None):
    if stream is not None:
        raise BufferError("[__dlpack__] bprop tensors live on the CPU: stream must be None")
    if dl_device is not None and tuple(int(v) for v in dl_device) != (_KDLCPU, 0):
        raise BufferError(
            f"[__dlpack__] bprop tensors live on the CPU (device (1, 0)); got dl_device={dl_device}"
        )
    versioned = max_version is not None and int(max_version[0]) >= 1
    return _core._to_dlpack_capsule(self, versioned, bool(copy))


def _dlpack_device(self):
    return (_KDLCPU, 0)


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
    # numpy 2's protocol: copy=None shares where it can, True always copies, False never does.
    array = self.detach().numpy()
    if dtype is not None and np.dtype(dtype) != array.dtype:
        if copy is False:
            raise ValueError(
                f"[__array__] converting {self.dtype} to {np.dtype(dtype)} needs a copy, "
                "which copy=False forbids"
            )
        return array.astype(dtype)
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


# ---- issue 3: reductions, shape, indexing, in-place ----

_MaxResult = collections.namedtuple("max", ["values", "indices"])
_MinResult = collections.namedtuple("min", ["values", "indices"])


def _as_operand(value):
    """A Python number as the 0-d tensor PyTorch would make of it; tensors pass through."""
    return value if isinstance(value, Tensor) else _core._wrap_scalar(value)


def _prod(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    return _core._prod(self, _dims("prod", dim, axis), bool(keepdim))


def _extreme(op, all_fn, dim_fn, result_type, pairwise):
    def method(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
        if isinstance(dim, Tensor):  # max(a, b): elementwise, as torch.max(input, other)
            return pairwise(self, dim)
        keepdim = keepdim if keepdims is None else keepdims
        dim = dim if axis is None else axis
        if dim is None:
            return all_fn(self)
        if isinstance(dim, (tuple, list)):
            raise TypeError(f"[{op}] dim must be an int (use amax/amin for several dims)")
        return result_type(*dim_fn(self, int(dim), bool(keepdim)))

    method.__name__ = op
    return method


def _amax(self, dim=(), keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    return _core._amax(self, _dims("amax", dim, axis), bool(keepdim))


def _amin(self, dim=(), keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    return _core._amin(self, _dims("amin", dim, axis), bool(keepdim))


def _argmax(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    dim = dim if axis is None else axis
    return _core._argmax(self, None if dim is None else int(dim), bool(keepdim))


def _argmin(self, dim=None, keepdim=False, *, axis=None, keepdims=None):
    keepdim = keepdim if keepdims is None else keepdims
    dim = dim if axis is None else axis
    return _core._argmin(self, None if dim is None else int(dim), bool(keepdim))


def _variance(op, fn):
    def method(
        self, dim=None, unbiased=None, keepdim=False, *, correction=None, axis=None, keepdims=None
    ):
        if isinstance(dim, bool):  # var(unbiased), the legacy form
            dim, unbiased = None, dim
        keepdim = keepdim if keepdims is None else keepdims
        if correction is not None and unbiased is not None:
            raise TypeError(f"[{op}] give either correction or unbiased, not both")
        if correction is None:
            correction = 1 if unbiased is None or unbiased else 0
        return fn(self, _dims(op, dim, axis), float(correction), bool(keepdim))

    method.__name__ = op
    return method


def _logsumexp(self, dim, keepdim=False):
    return _core._logsumexp(self, _dims("logsumexp", dim, None), bool(keepdim))


def _view(self, *shape):
    return _core._view(self, _size_args("view", shape))


def _flatten(self, start_dim=0, end_dim=-1):
    return _core._flatten(self, int(start_dim), int(end_dim))


def _squeeze(self, dim=None):
    if dim is None:
        return _core._squeeze(self, None)
    return _core._squeeze(self, tuple(dim) if isinstance(dim, (tuple, list)) else (dim,))


def _unsqueeze(self, dim):
    return _core._unsqueeze(self, int(dim))


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


def _getitem(self, key):
    return _core._index(self, _index_key(key))


def _setitem(self, key, value):
    key = _index_key(key)
    if len(key) == 1 and isinstance(key[0], Tensor) and key[0].dtype == _core.dtype.bool:
        if tuple(key[0].shape) == tuple(self.shape):  # x[mask] = v, the common advanced form
            self.copy_(_core.where(key[0], _as_operand(value), self))
            return
    if any(isinstance(part, Tensor) for part in key):
        raise IndexError(
            "[index] assignment through integer-tensor indices or partial masks is not "
            "supported; use index_add or where"
        )
    _core._copy_(_core._index(self, key), _as_operand(value))


# In-place methods return self itself (`x.add_(y) is x`), as PyTorch's do.
def _inplace(core_fn, with_alpha=False):
    if with_alpha:

        def method(self, other, alpha=1):
            core_fn(self, _as_operand(other), alpha)
            return self

    else:

        def method(self, other):
            core_fn(self, _as_operand(other))
            return self

    return method


def _clamp(self, min=None, max=None):
    return _core._clamp(self, _optional_operand(min), _optional_operand(max))


def _clamp_(self, min=None, max=None):
    _core._clamp_(self, _optional_operand(min), _optional_operand(max))
    return self


def _fill_(self, value):
    _core._fill_(self, value)
    return self


def _zero_(self):
    _core._zero_(self)
    return self


def _copy_(self, src):
    _core._copy_(self, _as_operand(src))
    return self


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


def _register_post_accumulate_grad_hook(self, hook):
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


def _optional_operand(value):
    return None if value is None else _as_operand(value)


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
    Tensor.__dlpack__ = _dlpack
    Tensor.__dlpack_device__ = _dlpack_device
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
    Tensor.prod = _prod
    Tensor.max = _extreme("max", _core._max_all, _core._max_dim, _MaxResult, _core.maximum)
    Tensor.min = _extreme("min", _core._min_all, _core._min_dim, _MinResult, _core.minimum)
    Tensor.amax = _amax
    Tensor.amin = _amin
    Tensor.argmax = _argmax
    Tensor.argmin = _argmin
    Tensor.var = _variance("var", _core._var)
    Tensor.std = _variance("std", _core._std)
    Tensor.logsumexp = _logsumexp
    Tensor.view = _view
    Tensor.flatten = _flatten
    Tensor.squeeze = _squeeze
    Tensor.unsqueeze = _unsqueeze
    Tensor.expand_as = lambda self, other: _core._expand(self, other.shape)
    Tensor.view_as = lambda self, other: _core._view(self, other.shape)
    Tensor.reshape_as = lambda self, other: _core._reshape(self, other.shape)
    Tensor.gather = lambda self, dim, index: _core._gather(self, int(dim), index)
    Tensor.scatter_add = lambda self, dim, index, src: _core._scatter_add(self, dim, index, src)
    Tensor.index_select = lambda self, dim, index: _core._index_select(self, int(dim), index)
    Tensor.index_add = lambda self, dim, index, source: _core._index_add(self, dim, index, source)
    Tensor.nonzero = lambda self: _core.nonzero(self)
    Tensor.__getitem__ = _getitem
    Tensor.__setitem__ = _setitem
    Tensor.clamp = _clamp
    Tensor.clip = _clamp
    Tensor.clamp_ = _clamp_
    Tensor.add_ = _inplace(_core._add_, with_alpha=True)
    Tensor.sub_ = _inplace(_core._sub_, with_alpha=True)
    Tensor.mul_ = _inplace(_core._mul_)
    Tensor.div_ = _inplace(_core._div_)
    Tensor.fill_ = _fill_
    Tensor.zero_ = _zero_
    Tensor.copy_ = _copy_
    Tensor.__iadd__ = Tensor.add_
    Tensor.__isub__ = Tensor.sub_
    Tensor.__imul__ = Tensor.mul_
    Tensor.__itruediv__ = Tensor.div_
    Tensor.__iter__ = lambda self: (self[i] for i in range(len(self)))
    Tensor.register_post_accumulate_grad_hook = _register_post_accumulate_grad_hook


_install_methods()

"""Tensor's device plumbing, Python protocols and small PyTorch methods.

Device plumbing: ``Tensor.device`` (always the CPU), ``is_cuda``, ``to(...)`` in all of
PyTorch's forms, ``cpu()``, ``cuda()`` (an error: bprop runs on the CPU only). Protocols:
``format``/f-strings, ``__index__``, the legacy constructor ``Tensor(...)``, pickling,
``copy.copy``/``copy.deepcopy``, ``== None``. Small methods: ``type``, ``int``, ``half``,
``bfloat16``, ``nelement``, ``element_size`` and the ``new_*`` factories.
"""

from __future__ import annotations

import builtins
import collections.abc
import copy
import functools
import typing

import numpy as np

from . import _core
from . import _device as _devices
from ._core import Tensor
from ._creation import full, ones, zeros
from ._device import (
    _cpu_only,
    check_device,
    check_dtype,
    device,
    parse_to_args,
    unsupported_dtype_error,
)
from ._tensor import _named, _size_args, method, tensor

if typing.TYPE_CHECKING:
    from ._core import Number

__all__: list[str] = []

_CPU = device("cpu")


# ---- device plumbing ----


def _device(self: Tensor) -> typing.Any:
    """The device the tensor lives on: always bprop.device('cpu')."""
    return _CPU


_device.__name__ = _device.__qualname__ = "device"
Tensor.device = property(_device)  # type: ignore[assignment]


def is_cuda(self: Tensor) -> bool:
    """False: bprop's tensors live on the CPU."""
    return False


def is_cpu(self: Tensor) -> bool:
    """True: bprop's tensors live on the CPU."""
    return True


Tensor.is_cuda = property(is_cuda)  # type: ignore[assignment]
Tensor.is_cpu = property(is_cpu)  # type: ignore[assignment]


@method
def to(self: Tensor, *args: typing.Any, **kwargs: typing.Any) -> Tensor:
    """The tensor converted as PyTorch's ``to`` asks: ``to(dtype)``, ``to(device)``,
    ``to(device, dtype)``, ``to(other)`` (other's dtype), each optionally followed by
    ``non_blocking`` and ``copy``; keywords ``device=``, ``dtype=``, ``non_blocking=``,
    ``copy=``, ``memory_format=``.

    Returns self when nothing changes and copy is False, as PyTorch does; otherwise a new
    tensor (differentiable). Only the CPU is a valid device; non_blocking has no effect."""
    dtype, copy_ = parse_to_args("to", *args, **kwargs)
    if dtype is None or dtype == self.dtype:
        return self.clone() if copy_ else self
    return _core._to_dtype(self, dtype)


@method
def cpu(self: Tensor, memory_format: typing.Any = None) -> Tensor:
    """self: bprop's tensors already live on the CPU."""
    return self


@method
def cuda(
    self: Tensor,
    device: typing.Any = None,
    non_blocking: bool = False,
    memory_format: typing.Any = None,
) -> Tensor:
    """Raises RuntimeError: bprop runs on the CPU only (check bprop.cuda.is_available())."""
    if device is None:
        device = "cuda"
    elif _is_int(device):
        device = f"cuda:{device}"
    raise _cpu_only("cuda", device)


# ---- dtype conversions PyTorch has and bprop maps or refuses ----


def _int(self: Tensor, memory_format: typing.Any = None) -> Tensor:
    return self.to(_core.dtype.int64)


def _half(self: Tensor, memory_format: typing.Any = None) -> Tensor:
    raise unsupported_dtype_error("half", _devices.float16)


def _bfloat16(self: Tensor, memory_format: typing.Any = None) -> Tensor:
    raise unsupported_dtype_error("bfloat16", _devices.bfloat16)


# Named after the builtins they shadow as methods, so defined under private names here.
method(
    _named(
        "int",
        "self.to(bprop.int64): PyTorch gives int32, but bprop's one integer dtype is int64",
        _int,
    )
)
method(_named("half", "Raises TypeError: bprop has no float16 yet", _half))
method(_named("bfloat16", "Raises TypeError: bprop has no bfloat16 yet", _bfloat16))

# PyTorch's legacy type names, both as 'torch.X' (programs written for torch) and 'bprop.X'.
_TYPE_NAMES = {
    _core.dtype.float32: "FloatTensor",
    _core.dtype.float64: "DoubleTensor",
    _core.dtype.int64: "LongTensor",
    _core.dtype.bool: "BoolTensor",
}
_UNSUPPORTED_TYPE_NAMES = {"HalfTensor": "float16", "BFloat16Tensor": "bfloat16"}


def _dtype_of_type_name(name: str) -> typing.Any:
    prefix, _, short = name.rpartition(".")
    if prefix in ("torch", "bprop"):
        for dtype, type_name in _TYPE_NAMES.items():
            if type_name == short:
                return dtype
        if short in _UNSUPPORTED_TYPE_NAMES:
            return getattr(_devices, _UNSUPPORTED_TYPE_NAMES[short])
    raise ValueError(
        f"[type] invalid type: {name!r} (bprop has "
        + ", ".join(f"bprop.{n}" for n in _TYPE_NAMES.values())
        + ")"
    )


def _type(
    self: Tensor, dtype: typing.Any = None, non_blocking: bool = False, **kwargs: typing.Any
) -> typing.Any:
    if dtype is None:
        return "bprop." + _TYPE_NAMES[self.dtype]
    unknown = set(kwargs) - {"async"}
    if unknown:
        raise TypeError(f"[type] unexpected keyword argument {sorted(unknown)[0]!r}")
    if isinstance(dtype, str):
        dtype = _dtype_of_type_name(dtype)
    return self.to(check_dtype("type", dtype))


method(
    _named(
        "type",
        """With no dtype, the type name ('bprop.FloatTensor', 'bprop.LongTensor', ...); with a
dtype or a type name ('torch.DoubleTensor' or 'bprop.DoubleTensor'), self.to(that dtype).""",
        _type,
    )
)


@method
def nelement(self: Tensor) -> builtins.int:
    """The number of elements (numel())."""
    return self.numel()


@method
def element_size(self: Tensor) -> builtins.int:
    """The size of one element in bytes."""
    return self.dtype.itemsize


# ---- new_* factories: self's dtype unless dtype= says otherwise ----


def _new_options(op: str, self: Tensor, dtype, device_, pin_memory) -> _core.dtype:
    check_device(op, device_)
    if pin_memory:
        raise _pin_memory_error(op)
    return self.dtype if dtype is None else check_dtype(op, dtype)


def _pin_memory_error(op: str) -> RuntimeError:
    return RuntimeError(f"[{op}] pin_memory=True needs an accelerator; bprop runs on the CPU only")


@method
def new_zeros(
    self: Tensor,
    *size: builtins.int | collections.abc.Sequence[builtins.int],
    dtype: typing.Any = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    layout: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """Zeros of the given size, with self's dtype (unless dtype= is given)."""
    dtype = _new_options("new_zeros", self, dtype, device, pin_memory)
    return zeros(_size_args("new_zeros", size), dtype=dtype, requires_grad=requires_grad)


@method
def new_ones(
    self: Tensor,
    *size: builtins.int | collections.abc.Sequence[builtins.int],
    dtype: typing.Any = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    layout: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """Ones of the given size, with self's dtype (unless dtype= is given)."""
    dtype = _new_options("new_ones", self, dtype, device, pin_memory)
    return ones(_size_args("new_ones", size), dtype=dtype, requires_grad=requires_grad)


@method
def new_empty(
    self: Tensor,
    *size: builtins.int | collections.abc.Sequence[builtins.int],
    dtype: typing.Any = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    layout: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """A tensor of the given size with self's dtype (unless dtype= is given); bprop
    initialises its memory, to zeros."""
    dtype = _new_options("new_empty", self, dtype, device, pin_memory)
    return zeros(_size_args("new_empty", size), dtype=dtype, requires_grad=requires_grad)


@method
def new_full(
    self: Tensor,
    size: builtins.int | collections.abc.Sequence[builtins.int],
    fill_value: Number,
    *,
    dtype: typing.Any = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    layout: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """fill_value everywhere, with self's dtype (unless dtype= is given)."""
    dtype = _new_options("new_full", self, dtype, device, pin_memory)
    return full(
        _size_args("new_full", (size,)), fill_value, dtype=dtype, requires_grad=requires_grad
    )


@method
def new_tensor(
    self: Tensor,
    data: typing.Any,
    *,
    dtype: typing.Any = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    layout: typing.Any = None,
    pin_memory: bool = False,
) -> Tensor:
    """A copy of data (as bprop.tensor makes it) with self's dtype (unless dtype= is given)."""
    dtype = _new_options("new_tensor", self, dtype, device, pin_memory)
    return tensor(data, dtype=dtype, requires_grad=requires_grad)


# ---- Python protocols ----


@method
def __format__(self: Tensor, format_spec: str) -> str:
    """format(t, spec) and f-strings: a one-element tensor formats its value
    (``f"{loss:.4f}"``); a 0-d tensor with an empty spec shows its value as PyTorch does.
    Larger tensors take only the empty spec (str(t)). PyTorch formats 0-d tensors only; bprop
    also formats one-element tensors of any shape given a spec."""
    if self.ndim == 0 or (format_spec and self.numel() == 1):
        return format(self.item(), format_spec)
    if not format_spec:
        return str(self)
    raise TypeError(
        f"[format] unsupported format string {format_spec!r} passed to Tensor.__format__ "
        f"(a tensor of shape {self.shape}; only one-element tensors take a spec)"
    )


@method
def __index__(self: Tensor) -> builtins.int:
    """A one-element integer (or bool) tensor as an index: slices, range(), list and numpy
    indexing accept it."""
    if self.dtype not in (_core.dtype.int64, _core.dtype.bool) or self.numel() != 1:
        raise TypeError(
            "[__index__] only integer tensors of a single element can be converted to an "
            f"index, got dtype {self.dtype} and shape {self.shape}"
        )
    return builtins.int(self.item())


_core_eq = Tensor.__eq__
_core_ne = Tensor.__ne__


def _override_binding(fn: typing.Callable[..., typing.Any]) -> None:
    """Installs fn over the C++ binding of its name, as a functools.partialmethod rather than
    a plain function: scripts/stubs.py renders plain functions only, so the stub keeps the
    binding's one declaration of the name instead of declaring it twice."""
    setattr(Tensor, fn.__name__, functools.partialmethod(fn))


def __eq__(self: Tensor, other: typing.Any) -> typing.Any:
    """Elementwise ==, a bool tensor; ``t == None`` is False, as in PyTorch."""
    if other is None:
        return False
    return _core_eq(self, other)


def __ne__(self: Tensor, other: typing.Any) -> typing.Any:
    """Elementwise !=, a bool tensor; ``t != None`` is True, as in PyTorch."""
    if other is None:
        return True
    return _core_ne(self, other)


_override_binding(__eq__)
_override_binding(__ne__)


_core_init = Tensor.__init__


def _is_int(value: object) -> bool:
    return isinstance(value, (builtins.int, np.integer)) and not isinstance(value, bool)


def __init__(self: Tensor, *args: typing.Any, device: typing.Any = None) -> None:
    """PyTorch's legacy constructor: ``Tensor(data)`` copies a sequence or numpy array into the
    default float dtype, ``Tensor(2, 3)`` makes a (2, 3) tensor (of zeros: bprop initialises
    memory), ``Tensor()`` an empty one; ``Tensor(other)`` is a leaf sharing other's memory
    (subclasses such as nn.Parameter start here)."""
    check_device("Tensor", device)
    if len(args) == 1 and isinstance(args[0], Tensor):
        data = args[0]
    elif not args:
        data = zeros(0)
    elif all(_is_int(a) for a in args):
        data = zeros(_size_args("Tensor", args))
    elif (
        len(args) == 1
        and isinstance(args[0], (collections.abc.Sequence, np.ndarray))
        and not (isinstance(args[0], (str, bytes)))
    ):
        data = tensor(args[0], dtype=_core.get_default_dtype())
    else:
        raise TypeError(
            f"[Tensor] expected a tensor, a sequence, a numpy array or ints for the shape, "
            f"got {args!r}"
        )
    _core_init(self, data)


_override_binding(__init__)


# ---- pickle and copy ----


def _rebuild(cls: type, data: Tensor, requires_grad: bool, state: dict | None = None) -> Tensor:
    """A leaf of class cls (Tensor, nn.Parameter, ...) holding data, built without running the
    subclass's __init__, as pickle builds objects."""
    result = cls.__new__(cls)
    _core_init(result, data)
    if requires_grad:
        result.requires_grad_(True)
    if state:
        result.__dict__.update(state)
    return result


def _rebuild_from_numpy(
    cls: type, array: np.ndarray, requires_grad: bool, state: dict | None = None
) -> Tensor:
    return _rebuild(
        cls, _core._tensor_from_numpy(np.require(array, requirements="C")), requires_grad, state
    )


def _state(self: Tensor) -> dict | None:
    state = getattr(self, "__dict__", None)
    return dict(state) if state else None


@method
def __reduce_ex__(self: Tensor, protocol: typing.SupportsIndex) -> tuple[typing.Any, ...]:
    """Pickles the values, dtype, shape, requires_grad and class (nn.Parameter stays one);
    .grad and the graph are not pickled, as in PyTorch."""
    array = np.array(self.detach().numpy(), copy=True)
    return (_rebuild_from_numpy, (type(self), array, self.requires_grad, _state(self)))


@method
def __copy__(self: Tensor) -> Tensor:
    """copy.copy: a new leaf of the same class sharing self's memory, with its
    requires_grad (PyTorch's shallow copy)."""
    return _rebuild(type(self), self, self.requires_grad, _state(self))


@method
def __deepcopy__(self: Tensor, memo: dict[builtins.int, typing.Any]) -> Tensor:
    """copy.deepcopy: a leaf with its own copy of the values, requires_grad and .grad (not for
    nn.Parameter, whose grad PyTorch's Parameter.__deepcopy__ drops); the memo
    keeps one copy per tensor object, so tied parameters stay tied in a copied model.
    Only leaves can be deep-copied, as in PyTorch."""
    if not self.is_leaf:
        raise RuntimeError(
            "[deepcopy] Only Tensors created explicitly by the user (graph leaves) support the "
            "deepcopy protocol; detach() the tensor first"
        )
    if id(self) in memo:
        return memo[id(self)]
    result = _rebuild(type(self), self.detach().clone(), self.requires_grad)
    memo[id(self)] = result
    if self.grad is not None and getattr(type(self), "_deepcopy_grad", True):
        result.grad = copy.deepcopy(self.grad, memo)
    state = _state(self)
    if state:
        result.__dict__.update(copy.deepcopy(state, memo))
    return result

"""Factories with PyTorch's signatures (`zeros(2, 3)` or `zeros((2, 3))`, `dtype=`,
`device=`, `requires_grad=`); the C++ core does the work.

`device=` takes None, 'cpu' or bprop.device('cpu'); any other device raises a RuntimeError
(bprop runs on the CPU only). `pin_memory=True`, where PyTorch has it, raises as it does
on a machine without an accelerator."""

from __future__ import annotations

import math
import typing
from collections.abc import Sequence
from typing import TYPE_CHECKING, Union

from . import _core
from ._arguments import argument_error
from ._core import Tensor
from ._device import check_device, check_dtype
from ._tensor import _check_int64_fits, _size_args

if TYPE_CHECKING:
    from ._core import Number

# One size argument: `zeros(2, 3)` passes ints, `zeros((2, 3))` one sequence.
_Size = Union[int, Sequence[int]]

__all__ = [
    "zeros", "ones", "full", "empty", "zeros_like", "ones_like", "full_like",
    "arange", "linspace", "eye", "rand", "randn", "randint", "empty_like", "rand_like",
    "randn_like", "randint_like",
]  # fmt: skip


def _options(
    op: str, dtype: typing.Any, device: typing.Any, pin_memory: bool = False
) -> _core.dtype | None:
    """dtype, once dtype, device and pin_memory are checked ([op] errors)."""
    check_device(op, device)
    if pin_memory:
        raise RuntimeError(
            f"[{op}] pin_memory=True needs an accelerator's pinned-memory allocator; bprop runs "
            "on the CPU only"
        )
    return check_dtype(op, dtype)


def _like_options(op: str, input: typing.Any, dtype: typing.Any, device: typing.Any) -> _core.dtype:
    """The dtype of a *_like result (input's unless given), once input, dtype and device are
    checked."""
    if not isinstance(input, Tensor):
        raise argument_error(op, "input", 1, "Tensor", input)
    dtype = _options(op, dtype, device)
    return input.dtype if dtype is None else dtype


def _finish(result: Tensor, requires_grad: bool) -> Tensor:
    if requires_grad:
        result.requires_grad_(True)
    return result


def _default(dtype: _core.dtype | None) -> _core.dtype:
    return _core.get_default_dtype() if dtype is None else dtype


def _scalar_dtype(value: Number) -> _core.dtype:
    if isinstance(value, bool):
        return _core.dtype.bool
    if isinstance(value, int):
        return _core.dtype.int64
    return _core.get_default_dtype()


def _check_fill(op: str, fill_value: Number, dtype: _core.dtype) -> None:
    """A float fill value for an int64 tensor must fit (PyTorch's overflow RuntimeError)."""
    if dtype == _core.dtype.int64 and isinstance(fill_value, float):
        _check_int64_fits(op, fill_value)


def _check_arange_size(start: Number, end: Number, step: Number) -> None:
    """The element count ceil((end - start) / step), range-checked before C++ converts it to
    int64 (a huge float range would otherwise wrap to a negative dimension)."""
    if not all(isinstance(v, (int, float)) for v in (start, end, step)):
        return
    if not all(math.isfinite(v) for v in (start, end, step)) or step == 0:
        return  # the C++ core reports these ranges
    size = math.ceil((end - start) / step)
    if size >= 2**63:
        raise RuntimeError(
            f"[arange] invalid size {size} for the range {start} -> {end} with step {step}: "
            "it does not fit in int64 (possible overflow?)"
        )


def zeros(
    *size: _Size,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of zeros: zeros(2, 3) or zeros((2, 3))."""
    dtype = _options("zeros", dtype, device)
    return _finish(_core._zeros(_size_args("zeros", size), _default(dtype)), requires_grad)


def ones(
    *size: _Size,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of ones: ones(2, 3) or ones((2, 3))."""
    dtype = _options("ones", dtype, device)
    return _finish(_core._ones(_size_args("ones", size), _default(dtype)), requires_grad)


def empty(
    *size: _Size,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
    memory_format: typing.Any = None,
) -> Tensor:
    """Like zeros: bprop's storage is always initialised."""
    dtype = _options("empty", dtype, device, pin_memory)
    return _finish(_core._zeros(_size_args("empty", size), _default(dtype)), requires_grad)


def full(
    size: _Size,
    fill_value: Number,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor of shape size with every element fill_value (its dtype by default)."""
    dtype = _options("full", dtype, device)
    dtype = _scalar_dtype(fill_value) if dtype is None else dtype
    _check_fill("full", fill_value, dtype)
    return _finish(_core._full(_size_args("full", (size,)), fill_value, dtype), requires_grad)


def zeros_like(
    input: Tensor,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Zeros with input's shape (and dtype unless given)."""
    dtype = _like_options("zeros_like", input, dtype, device)
    return _finish(_core._zeros(input.shape, dtype), requires_grad)


def ones_like(
    input: Tensor,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Ones with input's shape (and dtype unless given)."""
    dtype = _like_options("ones_like", input, dtype, device)
    return _finish(_core._ones(input.shape, dtype), requires_grad)


def full_like(
    input: Tensor,
    fill_value: Number,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """fill_value everywhere, with input's shape (and dtype unless given)."""
    dtype = _like_options("full_like", input, dtype, device)
    _check_fill("full_like", fill_value, dtype)
    return _finish(_core._full(input.shape, fill_value, dtype), requires_grad)


def arange(
    start: Number,
    end: Number | None = None,
    step: Number = 1,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """`arange(end)` or `arange(start, end, step)`; int64 unless an argument is a float."""
    dtype = _options("arange", dtype, device)
    if end is None:
        start, end = 0, start
    if dtype is None:
        is_float = any(isinstance(v, float) for v in (start, end, step))
        dtype = _core.get_default_dtype() if is_float else _core.dtype.int64
    _check_arange_size(start, end, step)
    return _finish(_core._arange(start, end, step, dtype), requires_grad)


def linspace(
    start: float,
    end: float,
    steps: int,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """steps values evenly spaced from start to end, both included."""
    dtype = _options("linspace", dtype, device)
    return _finish(
        _core._linspace(float(start), float(end), int(steps), _default(dtype)), requires_grad
    )


def eye(
    n: int,
    m: int | None = None,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """The n x m identity matrix (m = n if omitted)."""
    dtype = _options("eye", dtype, device)
    return _finish(_core._eye(n, n if m is None else m, _default(dtype)), requires_grad)


def rand(
    *size: _Size,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> Tensor:
    """Uniform on [0, 1), from bprop's global generator or a bprop.Generator."""
    from ._sampling import uniform

    dtype = _options("rand", dtype, device, pin_memory)
    shape = _size_args("rand", size)
    return _finish(uniform("rand", generator, shape, _default(dtype)), requires_grad)


def randn(
    *size: _Size,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
    pin_memory: bool = False,
) -> Tensor:
    """Standard normal, from bprop's global generator or a bprop.Generator."""
    from ._sampling import normal

    dtype = _options("randn", dtype, device, pin_memory)
    shape = _size_args("randn", size)
    return _finish(normal("randn", generator, shape, _default(dtype)), requires_grad)


def randint(
    low: int,
    high: int | _Size | None = None,
    size: _Size | None = None,
    *,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
) -> Tensor:
    """`randint(high, size)` or `randint(low, high, size)`: integers in [low, high), from
    bprop's global generator or a bprop.Generator."""
    from ._sampling import integers

    dtype = _options("randint", dtype, device)
    if size is None:
        if high is None or not isinstance(high, (tuple, list)):
            raise TypeError("[randint] missing the size argument")
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    dtype = _core.dtype.int64 if dtype is None else dtype
    shape = _size_args("randint", (size,))
    return integers("randint", generator, int(low), int(high), shape, dtype)


def empty_like(
    input: Tensor,
    *,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """A tensor with input's shape (and dtype unless given); bprop fills it with zeros."""
    dtype = _like_options("empty_like", input, dtype, device)
    return _finish(_core._zeros(input.shape, dtype), requires_grad)


def rand_like(
    input: Tensor,
    *,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform on [0, 1) with input's shape (and dtype unless given)."""
    from ._sampling import uniform

    dtype = _like_options("rand_like", input, dtype, device)
    return _finish(uniform("rand_like", generator, tuple(input.shape), dtype), requires_grad)


def randn_like(
    input: Tensor,
    *,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal with input's shape (and dtype unless given)."""
    from ._sampling import normal

    dtype = _like_options("randn_like", input, dtype, device)
    return _finish(normal("randn_like", generator, tuple(input.shape), dtype), requires_grad)


def randint_like(
    input: Tensor,
    low: int,
    high: int | None = None,
    *,
    generator: typing.Any = None,
    dtype: _core.dtype | None = None,
    device: typing.Any = None,
) -> Tensor:
    """`randint_like(input, high)` or `randint_like(input, low, high)`: integers in
    [low, high) with input's shape, in input's dtype unless given."""
    from ._sampling import integers

    dtype = _like_options("randint_like", input, dtype, device)
    if high is None:
        low, high = 0, low
    return integers("randint_like", generator, int(low), int(high), tuple(input.shape), dtype)

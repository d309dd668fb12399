"""Shapes, masks, scans and sorting with PyTorch's signatures: tril/triu, masked_fill,
split/chunk/unbind/narrow, t, repeat, masked_select, index_fill, clamp_min/clamp_max, cumsum,
flip, roll, sort/argsort/topk.

Each op composes bprop's differentiable primitives (where, slicing, cat, expand, index_select,
gather), so its gradient, and the gradient of that gradient, come from theirs: masked_fill's
VJP is a `where`, split's a slice-backward per piece, cumsum's (written as a Hillis-Steele scan
of shifted adds) a cumulative sum taken in the reverse direction, sort's and topk's a scatter of
the gradient back to where each value came from. The one primitive that is not differentiable
is ``_core._argsort`` (a stable sort, NaN largest), which sort/argsort/topk build on.

None of these ops reads tensor values in Python (index_fill's indices are checked in C++ by
index_add), so they run inside ``bp.compile``; the exceptions are masked_select, whose result
size depends on the mask's values, and narrow given its start as a tensor.
"""

from __future__ import annotations

import collections
import collections.abc
import typing

import numpy as np

from . import _core
from ._arguments import argument_error
from ._core import Tensor
from ._device import check_dtype
from ._tensor import _as_operand, _size_args, function_and_method, method

if typing.TYPE_CHECKING:
    from ._core import Number, _DType, _Shape

__all__ = [
    "tril", "triu", "masked_fill", "split", "chunk", "unbind", "narrow", "t", "masked_select",
    "index_fill", "clamp_min", "clamp_max", "cumsum", "flip", "roll", "sort", "argsort", "topk",
]  # fmt: skip

_SortResult = collections.namedtuple("sort", ["values", "indices"])
_TopkResult = collections.namedtuple("topk", ["values", "indices"])


def _int(op: str, name: str, value: typing.Any) -> int:
    """value as a Python int: an int, a numpy integer or a one-element integer tensor."""
    if isinstance(value, Tensor) and value.numel() == 1 and value.dtype == _core.dtype.int64:
        return int(value.item())
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"[{op}] {name} must be an int, got {value!r}")
    return int(value)


def _dim(op: str, dim: typing.Any, ndim: int) -> int:
    """dim in [0, ndim) (a 0-d tensor takes 0 and -1); IndexError naming op otherwise."""
    dim = _int(op, "dim", dim)
    bound = ndim if ndim > 0 else 1
    if not -bound <= dim < bound:
        raise IndexError(
            f"[{op}] dimension {dim} is out of range for a tensor of {ndim} dimensions "
            f"(expected to be in range of [{-bound}, {bound - 1}])"
        )
    return dim % bound


def _slice(x: Tensor, dim: int, start: int, length: int) -> Tensor:
    """x[..., start:start + length, ...] along dim: a view, differentiable."""
    return _core._index(x, (slice(None),) * dim + (slice(start, start + length),))


def _arange(n: int) -> Tensor:
    return _core._arange(0, n, 1, _core.dtype.int64)


def _zero(dtype: _core.dtype) -> Tensor:
    return _core._zeros((), dtype)


def _require_bool_mask(op: str, mask: typing.Any) -> None:
    if not isinstance(mask, Tensor):
        raise TypeError(f"[{op}] mask must be a bool Tensor, got {type(mask).__name__}")
    if mask.dtype != _core.dtype.bool:
        raise RuntimeError(
            f"[{op}] only supports boolean masks, but got mask with dtype {mask.dtype.name}"
        )


def _fill_value(op: str, value: typing.Any, dtype: _core.dtype) -> Tensor:
    """A number or 0-d tensor as a 0-d tensor of dtype (a tensor keeps its gradient path)."""
    if isinstance(value, Tensor):
        if value.ndim != 0:
            raise RuntimeError(
                f"[{op}] only supports a 0-dimensional value tensor, but got one of shape "
                f"{tuple(value.shape)}"
            )
        return value if value.dtype == dtype else _core._to_dtype(value, dtype)
    if isinstance(value, (bool, int, float, np.number, np.bool_)):
        return _core._full((), value, dtype)
    raise TypeError(f"[{op}] value must be a number or a 0-d tensor, got {type(value).__name__}")


def _broadcast_shape(op: str, *shapes: tuple) -> tuple:
    try:
        return tuple(np.broadcast_shapes(*(tuple(s) for s in shapes)))
    except ValueError:
        raise RuntimeError(
            f"[{op}] shapes {' and '.join(str(tuple(s)) for s in shapes)} do not broadcast"
        ) from None


def _assign(op: str, self: Tensor, result: Tensor) -> Tensor:
    """The in-place form: self's values := result's, which must have self's shape."""
    if tuple(result.shape) != tuple(self.shape):
        raise RuntimeError(
            f"[{op}] output with shape {tuple(self.shape)} doesn't match the broadcast shape "
            f"{tuple(result.shape)}"
        )
    _core._copy_(self, result)
    return self


# ---- triangles and masks ----


def _triangle(input: Tensor, diagonal: int, lower: bool, op: str) -> Tensor:
    if input.ndim < 2:
        raise RuntimeError(
            f"[{op}] input tensor must have at least 2 dimensions, got shape {tuple(input.shape)}"
        )
    diagonal = _int(op, "diagonal", diagonal)
    rows, cols = input.shape[-2], input.shape[-1]
    offset = _arange(cols) - _arange(rows).unsqueeze(1)  # column - row
    keep = offset <= diagonal if lower else offset >= diagonal
    return _core.where(keep, input, _zero(input.dtype))


@function_and_method
def tril(input: Tensor, diagonal: int = 0) -> Tensor:
    """The lower triangle of the last two dims (a batch of matrices), zeros above it; the
    diagonal-th diagonal and those below it are kept (0: the main one, > 0 above it)."""
    if not isinstance(input, Tensor):
        raise argument_error("tril", "input", 1, "Tensor", input)
    return _triangle(input, diagonal, True, "tril")


@function_and_method
def triu(input: Tensor, diagonal: int = 0) -> Tensor:
    """The upper triangle of the last two dims (a batch of matrices), zeros below it; the
    diagonal-th diagonal and those above it are kept (0: the main one, < 0 below it)."""
    if not isinstance(input, Tensor):
        raise argument_error("triu", "input", 1, "Tensor", input)
    return _triangle(input, diagonal, False, "triu")


@function_and_method
def masked_fill(input: Tensor, mask: Tensor, value: Tensor | Number) -> Tensor:
    """input with value (a number, or a 0-d tensor, differentiable) where the bool mask
    (broadcast) is True; the gradient of input flows where mask is False."""
    _require_bool_mask("masked_fill", mask)
    _broadcast_shape("masked_fill", input.shape, mask.shape)
    return _core.where(mask, _fill_value("masked_fill", value, input.dtype), input)


@method
def masked_fill_(self: Tensor, mask: Tensor, value: Tensor | Number) -> Tensor:
    """masked_fill in place (mask must broadcast to self's shape); returns self."""
    _require_bool_mask("masked_fill_", mask)
    _broadcast_shape("masked_fill_", self.shape, mask.shape)
    result = _core.where(mask, _fill_value("masked_fill_", value, self.dtype), self)
    return _assign("masked_fill_", self, result)


@function_and_method
def masked_select(input: Tensor, mask: Tensor) -> Tensor:
    """The elements of input where the bool mask is True (both broadcast), as a 1-d tensor."""
    _require_bool_mask("masked_select", mask)
    shape = _broadcast_shape("masked_select", input.shape, mask.shape)
    return _core._index(_core._expand(input, shape), (_core._expand(mask, shape),))


def _index_fill(op: str, input: Tensor, dim: int, index: Tensor, value: typing.Any) -> Tensor:
    d = _dim(op, dim, input.ndim)
    if not isinstance(index, Tensor) or index.dtype != _core.dtype.int64:
        raise IndexError(
            f"[{op}] index must be an int64 tensor, got {getattr(index, 'dtype', index)!r}"
        )
    if index.ndim > 1:
        raise RuntimeError(
            f"[{op}] index has to be a vector or scalar, got shape {tuple(index.shape)}"
        )
    fill = _fill_value(op, value, input.dtype)
    size = input.shape[d] if input.ndim else 1
    index = index.reshape(-1)
    # Negative indices count from the end (as PyTorch's index_fill); index_add checks the rest.
    index = _core.where(index < 0, index + size, index)
    try:
        hits = _core.index_add(
            _core._zeros((size,), _core.dtype.int64),
            0,
            index,
            _core._ones(index.shape, _core.dtype.int64),
        )
    except (IndexError, ValueError, RuntimeError):
        raise IndexError(
            f"[{op}] index out of range for dimension {d} of size {size} "
            f"(shape {tuple(input.shape)})"
        ) from None
    shape = [1] * input.ndim
    if input.ndim:
        shape[d] = size
    return _core.where((hits > 0).reshape(tuple(shape)), fill, input)


@function_and_method
def index_fill(input: Tensor, dim: int, index: Tensor, value: Tensor | Number) -> Tensor:
    """input with value (a number or a 0-d tensor, differentiable) at the int64 indices along
    dim (negative ones count from the end)."""
    return _index_fill("index_fill", input, dim, index, value)


@method
def index_fill_(self: Tensor, dim: int, index: Tensor, value: Tensor | Number) -> Tensor:
    """index_fill in place; returns self."""
    return _assign("index_fill_", self, _index_fill("index_fill_", self, dim, index, value))


@function_and_method
def clamp_min(input: Tensor, min: Tensor | Number) -> Tensor:
    """input limited from below: clamp(input, min=min)."""
    return _core._clamp(input, _as_operand(min), None)


@function_and_method
def clamp_max(input: Tensor, max: Tensor | Number) -> Tensor:
    """input limited from above: clamp(input, max=max)."""
    return _core._clamp(input, None, _as_operand(max))


@method
def clamp_min_(self: Tensor, min: Tensor | Number) -> Tensor:
    """clamp_min in place; returns self."""
    _core._clamp_(self, _as_operand(min), None)
    return self


@method
def clamp_max_(self: Tensor, max: Tensor | Number) -> Tensor:
    """clamp_max in place; returns self."""
    _core._clamp_(self, None, _as_operand(max))
    return self


# ---- pieces ----


def _split_sizes(op: str, input: Tensor, split_size_or_sections: typing.Any, d: int) -> list:
    size = input.shape[d]
    if isinstance(split_size_or_sections, (list, tuple)):
        sizes = [_int(op, "split sizes", s) for s in split_size_or_sections]
        if any(s < 0 for s in sizes):
            raise RuntimeError(f"[{op}] split sizes must be non-negative, got {sizes}")
        if sum(sizes) != size:
            raise RuntimeError(
                f"[{op}] split sizes {sizes} sum to {sum(sizes)}, but dimension {d} of "
                f"the input (shape {tuple(input.shape)}) has size {size}"
            )
        return sizes
    step = _int(op, "split_size", split_size_or_sections)
    if step < 0 or (step == 0 and size != 0):
        raise RuntimeError(
            f"[{op}] split_size must be positive (0 only for an empty dimension), got {step} "
            f"for dimension {d} of size {size}"
        )
    if size == 0:
        return [0]
    return [min(step, size - start) for start in range(0, size, step)]


@function_and_method
def split(
    input: Tensor, split_size_or_sections: int | collections.abc.Sequence[int], dim: int = 0
) -> tuple[Tensor, ...]:
    """input cut along dim into pieces (views) of split_size (the last may be smaller), or of
    the sizes in a list, which must add up to the dim's size."""
    if input.ndim == 0:
        raise RuntimeError("[split] expects at least a 1-dimensional tensor, got a 0-d one")
    d = _dim("split", dim, input.ndim)
    pieces, start = [], 0
    for length in _split_sizes("split", input, split_size_or_sections, d):
        pieces.append(_slice(input, d, start, length))
        start += length
    return tuple(pieces)


@function_and_method
def chunk(input: Tensor, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
    """input cut along dim into at most chunks pieces (views) of equal size, rounded up; the
    last may be smaller, and there may be fewer (as PyTorch's chunk)."""
    chunks = _int("chunk", "chunks", chunks)
    if chunks <= 0:
        raise RuntimeError(f"[chunk] expects chunks to be greater than 0, got {chunks}")
    if input.ndim == 0:
        raise RuntimeError("[chunk] expects at least a 1-dimensional tensor, got a 0-d one")
    d = _dim("chunk", dim, input.ndim)
    size = input.shape[d]
    if size == 0:
        return tuple(_slice(input, d, 0, 0) for _ in range(chunks))
    return split(input, -(-size // chunks), d)


@function_and_method
def unbind(input: Tensor, dim: int = 0) -> tuple[Tensor, ...]:
    """The slices of input along dim (each without that dim), as a tuple of views."""
    if not isinstance(input, Tensor):
        raise argument_error("unbind", "input", 1, "Tensor", input)
    if input.ndim == 0:
        raise IndexError("[unbind] dimension specified as 0 but the tensor has no dimensions")
    d = _dim("unbind", dim, input.ndim)
    return tuple(_core._index(input, (slice(None),) * d + (i,)) for i in range(input.shape[d]))


@function_and_method
def narrow(input: Tensor, dim: int, start: int | Tensor, length: int) -> Tensor:
    """input[..., start:start + length, ...] along dim, as a view; start may be negative (from
    the end) or a 0-d int64 tensor."""
    if input.ndim == 0:
        raise RuntimeError("[narrow] cannot be applied to a 0-dim tensor")
    d = _dim("narrow", dim, input.ndim)
    start, length = _int("narrow", "start", start), _int("narrow", "length", length)
    size = input.shape[d]
    if not -size <= start <= size:
        raise IndexError(
            f"[narrow] start out of range (expected to be in range of [{-size}, {size}], "
            f"but got {start})"
        )
    if length < 0:
        raise RuntimeError(f"[narrow] length must be non-negative, got {length}")
    if start < 0:
        start += size
    if start + length > size:
        raise RuntimeError(
            f"[narrow] start ({start}) + length ({length}) exceeds dimension size ({size}) of "
            f"dimension {d} (shape {tuple(input.shape)})"
        )
    return _slice(input, d, start, length)


@function_and_method
def t(input: Tensor) -> Tensor:
    """The transpose of a matrix (a view); a 0-d or 1-d tensor is returned as it is."""
    if not isinstance(input, Tensor):
        raise argument_error("t", "input", 1, "Tensor", input)
    if input.ndim > 2:
        raise RuntimeError(
            f"[t] expects a tensor with <= 2 dimensions, but got shape {tuple(input.shape)}"
        )
    return _core._permute(input, (1, 0)) if input.ndim == 2 else _core._view(input, input.shape)


@method
def repeat(self: Tensor, *repeats: _Shape) -> Tensor:
    """self tiled repeats[i] times along dim i: x.repeat(2, 3) or x.repeat((2, 3)); extra
    leading repeats add dims (a copy, as PyTorch's repeat; numpy's tile)."""
    reps = _size_args("repeat", repeats)
    if len(reps) < self.ndim:
        raise RuntimeError(
            f"[repeat] the number of repeats ({len(reps)}) can not be smaller than the number "
            f"of dimensions of the tensor (shape {tuple(self.shape)})"
        )
    if any(r < 0 for r in reps):
        raise RuntimeError(f"[repeat] repeats must be non-negative, got {reps}")
    shape = (1,) * (len(reps) - self.ndim) + tuple(self.shape)
    interleaved, expanded, result = [], [], []
    for r, s in zip(reps, shape):
        interleaved += [1, s]
        expanded += [r, s]
        result.append(r * s)
    x = _core._reshape(self, tuple(interleaved))
    return _core._reshape(_core._expand(x, tuple(expanded)), tuple(result))


# ---- scans, reversal, rotation ----


@function_and_method
def cumsum(input: Tensor, dim: int, *, dtype: _DType | None = None) -> Tensor:
    """The running sums along dim (ints and bools sum in int64; dtype= converts first).

    A scan of log2(n) shifted adds, so its gradient is the cumulative sum of the incoming
    gradient taken from the end, itself made of the same differentiable ops."""
    d = _dim("cumsum", dim, input.ndim)
    dtype = check_dtype("cumsum", dtype)
    x = input
    if dtype is None and x.dtype in (_core.dtype.bool, _core.dtype.int64):
        dtype = _core.dtype.int64
    if dtype is not None and x.dtype != dtype:
        x = _core._to_dtype(x, dtype)
    size = x.shape[d] if x.ndim else 1
    shift = 1
    while shift < size:
        pad_shape = list(x.shape)
        pad_shape[d] = shift
        shifted = _core._cat(
            [_core._zeros(tuple(pad_shape), x.dtype), _slice(x, d, 0, size - shift)], d
        )
        x = x + shifted
        shift *= 2
    return x.clone() if x is input else x


def _flip_dims(input: Tensor, dims: tuple, op: str) -> Tensor:
    seen = set()
    x = input
    for dim in dims:
        d = _dim(op, dim, input.ndim)
        if d in seen:
            raise RuntimeError(f"[{op}] dim {d} appears multiple times in the list of dims {dims}")
        seen.add(d)
        if input.ndim and input.shape[d] > 1:
            size = input.shape[d]
            x = _core.index_select(x, d, _core._arange(size - 1, -1, -1, _core.dtype.int64))
    return x.clone() if x is input else x


@function_and_method
def flip(input: Tensor, *dims: _Shape, **by_keyword: _Shape) -> Tensor:
    """input reversed along the given dims (a copy): flip(x, (0, 1)), x.flip(0, 1) or
    flip(x, dims=[0])."""
    if not isinstance(input, Tensor):
        raise argument_error("flip", "input", 1, "Tensor", input)
    if by_keyword:
        if dims or set(by_keyword) != {"dims"}:
            raise TypeError(
                f"[flip] takes the dims as arguments or as dims=..., got {sorted(by_keyword)}"
            )
        dims = (by_keyword["dims"],)
    return _flip_dims(input, _size_args("flip", dims), "flip")


@function_and_method
def roll(
    input: Tensor,
    shifts: int | collections.abc.Sequence[int],
    dims: int | collections.abc.Sequence[int] | None = None,
) -> Tensor:
    """input rotated by shifts[i] places along dims[i] (elements leaving one end come back at
    the other); with dims=None, the flattened tensor is rotated and the shape restored."""
    shifts_t = tuple(shifts) if isinstance(shifts, (list, tuple)) else (shifts,)
    shifts_t = tuple(_int("roll", "shifts", s) for s in shifts_t)
    if dims is None:
        if len(shifts_t) != 1:
            raise RuntimeError(
                f"[roll] shifts and dimensions must align: {len(shifts_t)} shifts and no dims"
            )
        return _roll_dim(_core._reshape(input, (input.numel(),)), shifts_t[0], 0).reshape(
            input.shape
        )
    dims_t = tuple(dims) if isinstance(dims, (list, tuple)) else (dims,)
    if len(shifts_t) != len(dims_t):
        raise RuntimeError(
            f"[roll] shifts and dimensions must align: {len(shifts_t)} shifts and "
            f"{len(dims_t)} dims"
        )
    x = input
    for shift, dim in zip(shifts_t, dims_t):
        x = _roll_dim(x, shift, _dim("roll", dim, input.ndim))
    return x.clone() if x is input else x


def _roll_dim(x: Tensor, shift: int, d: int) -> Tensor:
    size = x.shape[d] if x.ndim else 1
    if size == 0 or shift % size == 0 or x.ndim == 0:
        return x
    shift %= size
    return _core._cat([_slice(x, d, size - shift, shift), _slice(x, d, 0, size - shift)], d)


# ---- sorting ----


def _argsort(op: str, input: Tensor, dim: int, descending: bool) -> tuple[int, Tensor]:
    d = _dim(op, dim, input.ndim)
    return d, _core._argsort(input, d, bool(descending))


def _take(input: Tensor, d: int, indices: Tensor) -> Tensor:
    if input.ndim == 0:
        return input.clone()
    return _core.gather(input, d, indices)


@function_and_method
def sort(
    input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False
) -> tuple[Tensor, Tensor]:
    """(values, indices): input sorted along dim, ascending unless descending, and where each
    value came from; values are differentiable. NaN counts as the largest value. The sort is
    always stable (equal values keep their order), so stable= changes nothing."""
    if not isinstance(input, Tensor):
        raise argument_error("sort", "input", 1, "Tensor", input)
    d, indices = _argsort("sort", input, dim, descending)
    return _SortResult(_take(input, d, indices), indices)


@function_and_method
def argsort(
    input: Tensor, dim: int = -1, descending: bool = False, *, stable: bool = False
) -> Tensor:
    """The indices (int64) that sort input along dim: sort(input, dim, descending).indices."""
    if not isinstance(input, Tensor):
        raise argument_error("argsort", "input", 1, "Tensor", input)
    return _argsort("argsort", input, dim, descending)[1]


@function_and_method
def topk(
    input: Tensor, k: int, dim: int | None = None, largest: bool = True, sorted: bool = True
) -> tuple[Tensor, Tensor]:
    """(values, indices) of the k largest (or, largest=False, smallest) elements along dim
    (the last if None), largest first (smallest first); values are differentiable. Ties go
    to the lower index. The result is always sorted."""
    k = _int("topk", "k", k)
    d, order = _argsort("topk", input, -1 if dim is None else dim, largest)
    size = input.shape[d] if input.ndim else 1
    if not 0 <= k <= size:
        raise RuntimeError(
            f"[topk] selected index k out of range: k={k} for dimension {d} of size {size} "
            f"(shape {tuple(input.shape)})"
        )
    indices = _slice(order, d, 0, k) if input.ndim else order
    return _TopkResult(_take(input, d, indices), indices)

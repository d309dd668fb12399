"""More of PyTorch's tensor API, composed of bprop's differentiable ops so that their gradients
(and the gradients of those) come from autograd:

* in place: exp_, log_, sqrt_, abs_, neg_, sigmoid_, tanh_, relu_, sin_, cos_, reciprocal_,
  square_, floor_, ceil_, round_, trunc_, expm1_, log1p_, erf_, sign_, rsqrt_, pow_,
  nan_to_num_, addcmul_, addcdiv_, index_add_, scatter_add_, index_copy_, masked_scatter_,
  fill_diagonal_, and the random fills bernoulli_, random_, exponential_. Each computes its
  result out of place from a clone of self and writes it with copy_, so a leaf that requires
  grad raises as in PyTorch, version counters move, and the gradient flows through the old
  value as PyTorch's in-place autograd does; a float result can't go into an integer tensor;
* shapes: movedim/moveaxis, swapaxes/swapdims, unflatten, tile, repeat_interleave,
  Tensor.broadcast_to, sum_to_size, mT/mH, diag, diagonal (a copy, not a view), diag_embed,
  trace, tril_indices/triu_indices, meshgrid, cartesian_prod, kron, cdist, rot90,
  take_along_dim, atleast_1d/2d/3d, block_diag;
* products: addcmul, addcdiv, addmm, addmv, baddbmm, addbmm;
* scans and reductions: cumprod (exact gradients through zeros: a product scan, no
  division), logcumsumexp, cummax/cummin, diff, aminmax, nansum/nanmean, median,
  quantile/nanquantile, mode, std_mean/var_mean;
* elementwise: isclose, nan_to_num, logit, erfc, sinh, cosh, tan, asinh, acosh, atanh, xlogy,
  sgn, signbit, heaviside, hypot, logaddexp, logaddexp2;
* counting and searching, computed in numpy on the values (not differentiable, and a step
  captured by bp.compile freezes their result): unique, unique_consecutive, bincount, histc,
  searchsorted, bucketize, argwhere. cummax/cummin and mode find their indices in numpy too,
  and masked_scatter_ and repeat_interleave with tensor repeats read the mask or the counts,
  so they are frozen in a captured step as well; their values are gathered with tensor ops
  and stay differentiable;
* legacy typed constructors FloatTensor/DoubleTensor/LongTensor/BoolTensor, the memory
  formats contiguous_format/preserve_format/channels_last (names only: bprop's tensors are
  row-major), set_default_device/get_default_device (the CPU only) and set_printoptions.
"""

from __future__ import annotations

import builtins
import collections
import collections.abc
import math
import typing

import numpy as np

from . import _core, _format
from ._arguments import argument_error, as_float, as_int
from ._core import Tensor
from ._device import check_device, check_dtype
from ._device import device as _device_type
from ._manipulation import _assign, _dim, _int, _slice
from ._math import bernoulli as _bernoulli
from ._math import ceil as _ceil
from ._math import floor as _floor
from ._math import floor_divide as _floor_divide
from ._math import isnan as _isnan
from ._math import remainder as _remainder
from ._math import round as _round
from ._math import trunc as _trunc
from ._tensor import (
    _as_operand,
    _dims,
    _named,
    _size_args,
    broadcast_to,
    function_and_method,
    method,
    tensor,
)
from .autograd import no_grad

if typing.TYPE_CHECKING:
    from ._core import Number, _Dims, _DType, _Shape

__all__ = [
    "movedim", "moveaxis", "swapaxes", "swapdims", "unflatten", "tile", "repeat_interleave",
    "diag", "diagonal", "diag_embed", "trace", "tril_indices", "triu_indices", "meshgrid",
    "cartesian_prod", "kron", "cdist", "cumprod", "logcumsumexp", "cummax", "cummin", "diff",
    "aminmax", "nansum", "nanmean", "median", "quantile", "nanquantile", "mode", "std_mean",
    "var_mean", "isclose", "nan_to_num", "logit", "erfc", "sinh", "cosh", "tan", "asinh",
    "acosh", "atanh", "xlogy", "sgn", "signbit", "heaviside", "hypot", "argwhere", "unique",
    "unique_consecutive", "bincount", "histc", "searchsorted", "bucketize", "index_copy",
    "FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor", "memory_format",
    "contiguous_format", "preserve_format", "channels_last", "set_default_device",
    "get_default_device", "set_printoptions", "addcmul", "addcdiv", "addmm", "addmv",
    "baddbmm", "addbmm", "logaddexp", "logaddexp2", "rot90", "take_along_dim", "atleast_1d",
    "atleast_2d", "atleast_3d", "block_diag", "ravel", "index_put", "masked_scatter",
    "diagflat", "cross", "trapezoid", "trapz", "cov", "corrcoef", "inner", "tensordot", "vdot",
    "nanmedian", "fmax", "fmin", "copysign", "deg2rad", "rad2deg", "float_power", "positive",
    "msort", "logspace", "greater", "greater_equal", "less", "less_equal", "not_equal",
    "absolute", "arcsinh", "arccosh", "arctanh", "fix",
]  # fmt: skip

_F32, _F64, _I64, _BOOL = (
    _core.dtype.float32,
    _core.dtype.float64,
    _core.dtype.int64,
    _core.dtype.bool,
)
_FLOATS = (_F32, _F64)


def _i64(values: typing.Any) -> Tensor:
    return _core._tensor_from_numpy(np.asarray(values, dtype=np.int64))


def _shape(t: Tensor) -> tuple:
    return tuple(t.shape)


def _float_input(op: str, input: Tensor) -> None:
    if input.dtype not in _FLOATS:
        raise RuntimeError(f"[{op}] expected a floating-point tensor, got {input.dtype.name}")


def _norm_dims(op: str, dims: typing.Any, ndim: int) -> tuple:
    dims = tuple(dims) if isinstance(dims, (tuple, list)) else (dims,)
    return tuple(_dim(op, d, ndim) for d in dims)


def _numpy(t: Tensor) -> np.ndarray:
    return t.detach().numpy()


# ---- in place: the result out of place, then copy_ into self ----


def _old(self: Tensor) -> Tensor:
    """self's value as an input of the new one: a clone where autograd records, so the
    gradient reaches self's old history after copy_ has overwritten self."""
    return self.clone() if self.requires_grad and _core.is_grad_enabled() else self


_KIND = {_BOOL: 0, _I64: 1, _F32: 2, _F64: 2}


def _write(op: str, self: Tensor, result: Tensor) -> Tensor:
    """_assign, refusing what PyTorch refuses: a result of a higher kind (float into an
    integer tensor, an integer into a bool one) can't be written in place."""
    if _KIND[result.dtype] > _KIND[self.dtype]:
        raise RuntimeError(
            f"[{op}] result type {result.dtype.name} can't be cast to the desired output type "
            f"{self.dtype.name}"
        )
    return _assign(op, self, result)


def _inplace_unary(name: str, fn: typing.Callable[[Tensor], Tensor]) -> None:
    def update(self: Tensor) -> Tensor:
        return _write(name, self, fn(_old(self)))

    method(_named(name, f"``{name[:-1]}``, in place; returns self", update))


for _name, _fn in [
    ("exp_", _core.exp),
    ("log_", _core.log),
    ("sqrt_", _core.sqrt),
    ("abs_", _core.abs),
    ("neg_", _core.neg),
    ("sigmoid_", _core.sigmoid),
    ("tanh_", _core.tanh),
    ("relu_", _core.relu),
    ("sin_", _core.sin),
    ("cos_", _core.cos),
    ("reciprocal_", lambda x: 1.0 / x),
    ("square_", lambda x: x * x),
    ("floor_", _floor),
    ("ceil_", _ceil),
    ("trunc_", _trunc),
    ("expm1_", _core.expm1),
    ("log1p_", _core.log1p),
    ("erf_", _core.erf),
    ("sign_", _core.sign),
    ("rsqrt_", lambda x: 1.0 / x.sqrt()),
]:
    _inplace_unary(_name, _fn)


@method
def round_(self: Tensor, *, decimals: int = 0) -> Tensor:
    """``round(decimals=)`` (half to even), in place; returns self."""
    return _write("round_", self, _round(_old(self), decimals=decimals))


@method
def pow_(self: Tensor, exponent: Tensor | Number) -> Tensor:
    """``self ** exponent``, in place; returns self."""
    return _write("pow_", self, _core.pow(_old(self), _as_operand(exponent)))


@method
def index_add_(
    self: Tensor, dim: int, index: Tensor, source: Tensor, *, alpha: Number = 1
) -> Tensor:
    """``self[..., index[i], ...] += alpha * source[..., i, ...]`` along dim, in place."""
    source = source if alpha == 1 else source * alpha
    return _write("index_add_", self, _core.index_add(_old(self), dim, index, source))


@method
def scatter_add_(self: Tensor, dim: int, index: Tensor, src: Tensor) -> Tensor:
    """scatter_add, in place: ``self[index[i][j]][j] += src[i][j]`` (for dim 0); returns self."""
    return _write("scatter_add_", self, _core.scatter_add(_old(self), dim, index, src))


def _index_copy(op: str, input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    d = _dim(op, dim, input.ndim)
    if not isinstance(index, Tensor) or index.dtype != _I64 or index.ndim > 1:
        raise IndexError(f"[{op}] index must be a 0-d or 1-d int64 tensor, got {index!r}")
    index = index.reshape(-1)
    size = input.shape[d] if input.ndim else 1
    source = source if source.ndim else source.reshape(1)
    x = input if input.ndim else input.reshape(1)
    # Which positions along dim are written (duplicates write once; PyTorch leaves the
    # order among duplicates undefined).
    hit = _core.index_add(
        _core._zeros((size,), _I64), 0, index, _core._ones((index.numel(),), _I64)
    )
    hit_shape = [1] * x.ndim
    hit_shape[d] = size
    written = _core.index_add(_core._zeros(_shape(x), x.dtype), d, index, source.to(x.dtype))
    result = _core.where((hit > 0).reshape(hit_shape), written, x)
    return result if input.ndim else result.reshape(())


@function_and_method
def index_copy(input: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """input with the slices at index along dim replaced by source's (differentiable in both)."""
    return _index_copy("index_copy", input, dim, index, source)


@method
def index_copy_(self: Tensor, dim: int, index: Tensor, source: Tensor) -> Tensor:
    """index_copy, in place; returns self."""
    return _write("index_copy_", self, _index_copy("index_copy_", _old(self), dim, index, source))


@method
def masked_scatter_(self: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """The elements of self where mask (broadcast) is True := source's first elements, in
    row-major order; in place, returns self. Differentiable in self and source."""
    if not isinstance(mask, Tensor) or mask.dtype != _BOOL:
        raise RuntimeError("[masked_scatter_] mask must be a bool tensor")
    full = _core._expand(mask, _shape(self)).reshape(-1)
    count = int(full.sum().item())
    if count > source.numel():
        raise RuntimeError(
            f"[masked_scatter_] the mask selects {count} elements but source has only "
            f"{source.numel()}"
        )
    position = (full.to(_I64).cumsum(0) - 1).clamp(min=0)
    taken = _core.index_select(source.reshape(-1).to(self.dtype), 0, position)
    result = _core.where(full, taken, _old(self).reshape(-1)).reshape(_shape(self))
    return _write("masked_scatter_", self, result)


@method
def fill_diagonal_(self: Tensor, fill_value: Number, wrap: bool = False) -> Tensor:
    """The main diagonal := fill_value, in place (all dims equal for more than 2 dims; a tall
    matrix's diagonal restarts every N + 1 rows with wrap=True)."""
    if self.ndim < 2:
        raise RuntimeError(f"[fill_diagonal_] dimensions must be larger than 1, got {self.ndim}")
    if self.ndim > 2 and len(set(self.shape)) != 1:
        raise RuntimeError(
            f"[fill_diagonal_] all dimensions of input must be of equal length, got {_shape(self)}"
        )
    numel = self.numel()
    if self.ndim == 2:
        rows, cols = self.shape
        step = cols + 1
        end = numel if wrap and rows > cols else min(rows, cols) * cols
    else:
        n = self.shape[0]
        step = sum(n**k for k in range(self.ndim))
        end = numel
    mask = np.zeros(numel, dtype=bool)
    mask[0:end:step] = True
    mask_t = _core._tensor_from_numpy(mask).reshape(_shape(self))
    value = _core._full((), fill_value, self.dtype)
    return _assign("fill_diagonal_", self, _core.where(mask_t, value, _old(self)))


@method
def bernoulli_(self: Tensor, p: Tensor | float = 0.5, *, generator: typing.Any = None) -> Tensor:
    """Every element := 1 with probability p (a number or a tensor broadcast to self), else 0;
    in place, returns self."""
    if not isinstance(p, Tensor):
        p = _core._full((), as_float("bernoulli_", "p", 1, p), _F64)
    probability = p
    probability = _core._expand(probability.detach().to(_F64), _shape(self))
    with no_grad():
        sample = _bernoulli(probability.contiguous(), generator=generator)
    return _assign("bernoulli_", self, sample.to(self.dtype))


@method
def random_(
    self: Tensor, from_: int = 0, to: int | None = None, *, generator: typing.Any = None
) -> Tensor:
    """Every element := an integer drawn uniformly from ``[from_, to - 1]``; random_(to) draws
    from [0, to - 1]; random_() from [0, 2**24] for float32, [0, 2**53] for float64 and
    [0, 2**63 - 1] for int64 (PyTorch's ranges). In place; returns self."""
    from ._creation import randint

    from_ = as_int("random_", "from", 1, from_)
    to = None if to is None else as_int("random_", "to", 2, to)
    if to is None:
        if from_ != 0:
            low, high = 0, int(from_)
        else:
            low = 0
            high = {_F32: 2**24 + 1, _F64: 2**53 + 1, _BOOL: 2}.get(self.dtype, 2**63 - 1)
    else:
        low, high = int(from_), int(to)
    if low >= high:
        raise RuntimeError(
            f"[random_] expects 'from' to be less than 'to', but got from={low} >= to={high}"
        )
    sample = randint(low, high, _shape(self), generator=generator)
    return _assign("random_", self, sample.to(self.dtype))


@method
def exponential_(self: Tensor, lambd: float = 1.0, *, generator: typing.Any = None) -> Tensor:
    """Every element := a draw from the exponential distribution of rate lambd; in place."""
    _float_input("exponential_", self)
    lambd = as_float("exponential_", "lambd", 1, lambd)
    if lambd <= 0:
        raise RuntimeError(f"[exponential_] expects lambda > 0.0, but found lambda={lambd}")
    with no_grad():
        u = _core._zeros(_shape(self), _F64).uniform_(generator=generator)
        sample = -(1.0 - u).log() / lambd
    return _assign("exponential_", self, sample.to(self.dtype))


# ---- shapes ----


@function_and_method
def movedim(
    input: Tensor,
    source: int | collections.abc.Sequence[int],
    destination: int | collections.abc.Sequence[int],
) -> Tensor:
    """input with the dims source moved to positions destination (a view); the other dims
    keep their order."""
    src = _norm_dims("movedim", source, input.ndim)
    dst = _norm_dims("movedim", destination, input.ndim)
    if len(src) != len(dst):
        raise RuntimeError(
            f"[movedim] Invalid source or destination dims: source ({list(src)} dims) should "
            f"contain the same number of dims as destination ({list(dst)} dims)"
        )
    if len(set(src)) != len(src) or len(set(dst)) != len(dst):
        raise RuntimeError(f"[movedim] repeated dim in source {src} or destination {dst}")
    order = [None] * input.ndim
    for s, d in zip(src, dst):
        order[d] = s
    rest = iter(d for d in range(input.ndim) if d not in src)
    order = [next(rest) if o is None else o for o in order]
    return _core._permute(input, tuple(order))


@function_and_method
def moveaxis(
    input: Tensor,
    source: int | collections.abc.Sequence[int],
    destination: int | collections.abc.Sequence[int],
) -> Tensor:
    """movedim under numpy's name."""
    return movedim(input, source, destination)


@function_and_method
def swapaxes(input: Tensor, axis0: int, axis1: int) -> Tensor:
    """transpose(input, axis0, axis1) under numpy's name (a view)."""
    return _core.transpose(input, axis0, axis1)


@function_and_method
def swapdims(input: Tensor, dim0: int, dim1: int) -> Tensor:
    """transpose(input, dim0, dim1) (a view)."""
    return _core.transpose(input, dim0, dim1)


@function_and_method
def unflatten(input: Tensor, dim: int, sizes: collections.abc.Sequence[int]) -> Tensor:
    """Dim dim split into the dims sizes (one may be -1), whose product must be its size."""
    d = _dim("unflatten", dim, input.ndim)
    sizes = _size_args("unflatten", (sizes,))
    if not sizes:
        raise RuntimeError("[unflatten] sizes must be non-empty")
    size = input.shape[d]
    if sizes.count(-1) > 1:
        raise RuntimeError(f"[unflatten] only one dimension can be inferred, got sizes {sizes}")
    known = math.prod(s for s in sizes if s != -1)
    if -1 in sizes:
        if known == 0 or size % known:
            raise RuntimeError(
                f"[unflatten] sizes {sizes} don't multiply up to the size of dim {d} ({size})"
            )
        sizes = tuple(size // known if s == -1 else s for s in sizes)
    elif known != size:
        raise RuntimeError(
            f"[unflatten] provided sizes {sizes} don't multiply up to the size of dim {d} "
            f"({size}) in the input tensor of shape {_shape(input)}"
        )
    shape = _shape(input)
    return input.reshape(shape[:d] + sizes + shape[d + 1 :])


@function_and_method
def tile(input: Tensor, dims: collections.abc.Sequence[int]) -> Tensor:
    """input repeated dims[i] times along each dim; fewer dims than input's are padded with
    ones at the front (numpy's tile)."""
    reps = _size_args("tile", (dims,))
    reps = (1,) * (input.ndim - len(reps)) + reps
    return input.repeat(*reps) if reps else input.clone()


@function_and_method
def repeat_interleave(
    input: Tensor,
    repeats: Tensor | int | None = None,
    dim: int | None = None,
    *,
    output_size: int | None = None,
) -> Tensor:
    """Each element (or slice along dim) repeated repeats times in place: repeats is an int or
    a tensor of one count per element; without dim the input is flattened.
    repeat_interleave(counts) alone gives arange(len(counts)) repeated by counts."""
    if not isinstance(input, Tensor):
        raise argument_error("repeat_interleave", "input", 1, "Tensor", input)
    if repeats is None:
        repeats, input = input, _core._arange(0, input.numel(), 1, _I64)
    x = input.reshape(-1) if dim is None else input
    d = 0 if dim is None else _dim("repeat_interleave", dim, x.ndim)
    if x.ndim == 0:
        x = x.reshape(1)
    size = x.shape[d]
    if isinstance(repeats, Tensor):
        if repeats.dtype != _I64 or repeats.ndim > 1:
            raise RuntimeError("[repeat_interleave] repeats must be a 0-d or 1-d int64 tensor")
        counts = _numpy(repeats).reshape(-1)
        if counts.size == 1:
            counts = np.full(size, int(counts[0]))
        if counts.size != size:
            raise RuntimeError(
                f"[repeat_interleave] repeats must have the same size as input along dim, but "
                f"got repeats.size(0) = {counts.size} and input.size({d}) = {size}"
            )
    else:
        counts = np.full(size, _int("repeat_interleave", "repeats", repeats))
    if (counts < 0).any():
        raise RuntimeError("[repeat_interleave] repeats can not be negative")
    index = np.repeat(np.arange(size), counts)
    if output_size is not None and output_size != index.size:
        raise RuntimeError(
            f"[repeat_interleave] output_size {output_size} does not match the {index.size} "
            "elements the repeats give"
        )
    return _core.index_select(x, d, _i64(index))


method(broadcast_to)


@method
def sum_to_size(self: Tensor, *size: _Shape) -> Tensor:
    """self summed down to size (to which self must be broadcastable): the reduction of a
    broadcast, as a gradient needs."""
    target = _size_args("sum_to_size", size)
    shape = _shape(self)
    lead = len(shape) - len(target)
    try:
        if lead < 0 or np.broadcast_shapes(target, shape) != shape:
            raise ValueError
    except ValueError:
        raise RuntimeError(
            f"[sum_to_size] size {target} is not expandable to size {shape}"
        ) from None
    x = self.sum(tuple(range(lead))) if lead else self
    dims = tuple(i for i, s in enumerate(target) if s == 1 and x.shape[i] != 1)
    return x.sum(dims, keepdim=True) if dims else (x.clone() if x is self else x)


def _matrix_transpose(self: Tensor) -> Tensor:
    """The last two dims swapped (a view); mH is the same for real tensors."""
    if self.ndim < 2:
        raise RuntimeError(
            "[mT] tensor.mT is only supported on matrices or batches of matrices. Got "
            f"{self.ndim}-D tensor."
        )
    return _core.transpose(self, -2, -1)


_matrix_transpose.__name__ = _matrix_transpose.__qualname__ = "mT"
Tensor.mT = property(_matrix_transpose)  # type: ignore[assignment]
Tensor.mH = property(_matrix_transpose)  # type: ignore[assignment]


def _diagonal_positions(rows: int, cols: int, offset: int) -> np.ndarray:
    """Flat row-major positions of the diagonal offset of a rows x cols matrix."""
    start_row, start_col = max(-offset, 0), max(offset, 0)
    length = max(min(rows - start_row, cols - start_col), 0)
    k = np.arange(length)
    return (start_row + k) * cols + start_col + k


@function_and_method
def diagonal(input: Tensor, offset: int = 0, dim1: int = 0, dim2: int = 1) -> Tensor:
    """The diagonal offset of the matrices in dims dim1 and dim2, as the last dim (a copy,
    where PyTorch returns a view)."""
    if not isinstance(input, Tensor):
        raise argument_error("diagonal", "input", 1, "Tensor", input)
    d1, d2 = _dim("diagonal", dim1, input.ndim), _dim("diagonal", dim2, input.ndim)
    if d1 == d2:
        raise RuntimeError(f"[diagonal] dim1 and dim2 cannot be identical, got {d1}")
    x = movedim(input, (d1, d2), (-2, -1))
    rows, cols = x.shape[-2], x.shape[-1]
    flat = x.reshape(_shape(x)[:-2] + (rows * cols,))
    return _core.index_select(flat, flat.ndim - 1, _i64(_diagonal_positions(rows, cols, offset)))


@function_and_method
def diag_embed(input: Tensor, offset: int = 0, dim1: int = -2, dim2: int = -1) -> Tensor:
    """Matrices whose diagonal offset holds input's last dim, placed in dims dim1, dim2 of
    the result."""
    if not isinstance(input, Tensor):
        raise argument_error("diag_embed", "input", 1, "Tensor", input)
    n = input.shape[-1] if input.ndim else 1
    x = input if input.ndim else input.reshape(1)
    size = n + abs(offset)
    out_ndim = x.ndim + 1
    d1, d2 = _dim("diag_embed", dim1, out_ndim), _dim("diag_embed", dim2, out_ndim)
    if d1 == d2:
        raise RuntimeError(f"[diag_embed] diagonal dimensions cannot be identical {dim1}, {dim2}")
    lead = _shape(x)[:-1]
    flat = _core.index_add(
        _core._zeros(lead + (size * size,), x.dtype),
        x.ndim - 1,
        _i64(_diagonal_positions(size, size, offset)),
        x,
    )
    return movedim(flat.reshape(lead + (size, size)), (-2, -1), (d1, d2))


@function_and_method
def diag(input: Tensor, diagonal: int = 0) -> Tensor:
    """A 1-d input as the diagonal (offset diagonal) of a square matrix; a 2-d input's
    diagonal as a 1-d tensor."""
    if not isinstance(input, Tensor):
        raise argument_error("diag", "input", 1, "Tensor", input)
    diagonal = _int("diag", "diagonal", diagonal)
    if input.ndim == 1:
        return diag_embed(input, diagonal)
    if input.ndim == 2:
        return globals()["diagonal"](input, diagonal)
    raise RuntimeError(f"[diag] matrix or a vector expected, got shape {_shape(input)}")


@function_and_method
def trace(input: Tensor) -> Tensor:
    """The sum of a matrix's main diagonal."""
    if not isinstance(input, Tensor):
        raise argument_error("trace", "input", 1, "Tensor", input)
    if input.ndim != 2:
        raise RuntimeError(f"[trace] expected a matrix, but got tensor with shape {_shape(input)}")
    return diagonal(input).sum()


def _triangle_indices(op: str, row: int, col: int, offset: int, dtype, dev, lower: bool):
    check_device(op, dev)
    dtype = check_dtype(op, dtype) or _I64
    if row < 0 or col < 0:
        raise RuntimeError(f"[{op}] row and col must be non-negative, got {row}, {col}")
    fn = np.tril_indices if lower else np.triu_indices
    rows, cols = fn(row, offset, col)
    return _i64(np.stack([rows, cols])).to(dtype)


def tril_indices(
    row: int,
    col: int,
    offset: int = 0,
    *,
    dtype: _DType | None = None,
    device: typing.Any = None,
    layout: typing.Any = None,
) -> Tensor:
    """The (2, N) row and column indices of the lower triangle (diagonals <= offset) of a
    row x col matrix, in row-major order."""
    return _triangle_indices("tril_indices", row, col, offset, dtype, device, True)


def triu_indices(
    row: int,
    col: int,
    offset: int = 0,
    *,
    dtype: _DType | None = None,
    device: typing.Any = None,
    layout: typing.Any = None,
) -> Tensor:
    """The (2, N) row and column indices of the upper triangle (diagonals >= offset) of a
    row x col matrix, in row-major order."""
    return _triangle_indices("triu_indices", row, col, offset, dtype, device, False)


def meshgrid(
    *tensors: Tensor | collections.abc.Sequence[Tensor], indexing: str | None = None
) -> tuple[Tensor, ...]:
    """Coordinate grids of 1-d tensors (broadcast views): with indexing='ij' (the default)
    grid i varies along dim i; 'xy' swaps the first two dims, as numpy's meshgrid."""
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
    indexing = "ij" if indexing is None else indexing
    if indexing not in ("ij", "xy"):
        raise RuntimeError(f"[meshgrid] indexing must be one of 'xy' or 'ij', got {indexing!r}")
    for t in tensors:
        if not isinstance(t, Tensor) or t.ndim > 1:
            raise RuntimeError("[meshgrid] expects all tensors to be 0-d or 1-d")
    flat = [t.reshape(-1) for t in tensors]
    if indexing == "xy" and len(flat) >= 2:
        flat[0], flat[1] = flat[1], flat[0]
    shape = tuple(t.shape[0] for t in flat)
    grids = []
    for i, t in enumerate(flat):
        view = [1] * len(flat)
        view[i] = shape[i]
        grids.append(_core._expand(t.reshape(tuple(view)), shape))
    if indexing == "xy" and len(grids) >= 2:
        grids[0], grids[1] = grids[1], grids[0]
    return tuple(grids)


def cartesian_prod(*tensors: Tensor) -> Tensor:
    """Every combination of one element from each 1-d tensor, as the rows of a (N, k) tensor
    (itertools.product's order); one tensor is returned as it is."""
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise argument_error("cartesian_prod", "tensors", i + 1, "Tensor", t)
    if len(tensors) == 1:
        return tensors[0]
    grids = meshgrid(*tensors, indexing="ij")
    return _core._stack([g.reshape(-1) for g in grids], 1)


@function_and_method
def kron(input: Tensor, other: Tensor) -> Tensor:
    """The Kronecker product: every element of input times the whole of other, in blocks."""
    if not isinstance(input, Tensor):
        raise argument_error("kron", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("kron", "other", 2, "Tensor", other)
    ndim = builtins.max(input.ndim, other.ndim)
    a_shape = (1,) * (ndim - input.ndim) + _shape(input)
    b_shape = (1,) * (ndim - other.ndim) + _shape(other)
    a_view, b_view = [], []
    for sa, sb in zip(a_shape, b_shape):
        a_view += [sa, 1]
        b_view += [1, sb]
    product = input.reshape(tuple(a_view)) * other.reshape(tuple(b_view))
    return product.reshape(tuple(sa * sb for sa, sb in zip(a_shape, b_shape)))


def cdist(
    x1: Tensor,
    x2: Tensor,
    p: float = 2.0,
    compute_mode: str = "use_mm_for_euclid_dist_if_necessary",
) -> Tensor:
    """The p-norm distances between each row of x1 (..., P, M) and each row of x2 (..., R, M),
    shape (..., P, R). p=0 counts differing coordinates, p=inf takes the largest; the
    gradient of a zero distance is zero, as PyTorch's."""
    if x1.ndim < 2 or x2.ndim < 2:
        raise RuntimeError(
            f"[cdist] only supports at least 2D tensors, X1 got: {x1.ndim}D, X2 got: {x2.ndim}D"
        )
    if x1.shape[-1] != x2.shape[-1]:
        raise RuntimeError(
            f"[cdist] X1 and X2 must have the same number of columns. X1: {x1.shape[-1]} X2: "
            f"{x2.shape[-1]}"
        )
    if p < 0:
        raise RuntimeError(f"[cdist] only supports non-negative p values, got {p}")
    difference = x1.unsqueeze(-2) - x2.unsqueeze(-3)
    if p == 0:
        # The count has gradient zero everywhere, as PyTorch's (which still records it).
        return (difference != 0).to(difference.dtype).sum(-1) + (difference * 0.0).sum(-1)
    magnitude = difference.abs()
    if math.isinf(p):
        return magnitude.amax(-1)
    if p == 1:
        return magnitude.sum(-1)
    total = (difference * difference).sum(-1) if p == 2 else (magnitude**p).sum(-1)
    positive = total > 0
    safe = _core.where(positive, total, _core._ones((), total.dtype))
    root = safe.sqrt() if p == 2 else safe ** (1.0 / p)
    return _core.where(positive, root, _core._zeros((), total.dtype))


# ---- scans ----


def _scan(input: Tensor, d: int, combine) -> Tensor:
    """The inclusive scan of combine along dim d: log2(n) rounds, each combining every element
    with the one `shift` places before it (Hillis-Steele), written with differentiable ops."""
    x = input
    size = x.shape[d] if x.ndim else 1
    shift = 1
    while shift < size:
        head = _slice(x, d, 0, shift)
        tail = combine(_slice(x, d, shift, size - shift), _slice(x, d, 0, size - shift))
        x = _core._cat([head, tail], d)
        shift *= 2
    return x.clone() if x is input else x


@function_and_method
def cumprod(input: Tensor, dim: int, *, dtype: _DType | None = None) -> Tensor:
    """The running products along dim (ints and bools multiply in int64). A product scan with
    no division, so the gradient through zeros is exact, as PyTorch's."""
    d = _dim("cumprod", dim, input.ndim)
    dtype = check_dtype("cumprod", dtype)
    x = input
    if dtype is None and x.dtype == _BOOL:
        dtype = _I64
    if dtype is not None and x.dtype != dtype:
        x = _core._to_dtype(x, dtype)
    return _scan(x, d, lambda a, b: a * b)


def _logaddexp(a: Tensor, b: Tensor) -> Tensor:
    top = _core.maximum(a, b).detach()
    top = _core.where(top.isinf(), _core._zeros((), top.dtype), top)  # -inf with -inf: 0
    return top + ((a - top).exp() + (b - top).exp()).log()


@function_and_method
def logcumsumexp(input: Tensor, dim: int) -> Tensor:
    """log(cumsum(exp(input))) along dim, without overflow."""
    _float_input("logcumsumexp", input)
    return _scan(input, _dim("logcumsumexp", dim, input.ndim), _logaddexp)


_CummaxResult = collections.namedtuple("cummax", ["values", "indices"])
_CumminResult = collections.namedtuple("cummin", ["values", "indices"])


def _cumulative_extreme(op: str, input: Tensor, dim: int, largest: bool):
    d = _dim(op, dim, input.ndim)
    if input.ndim == 0:
        return input.clone(), _core._zeros((), _I64)
    values = np.moveaxis(_numpy(input), d, -1)
    values = values.astype(np.float64) if values.dtype == bool else values
    running = (np.maximum if largest else np.minimum).accumulate(values, axis=-1)
    position = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    reaches = values == running
    if values.dtype.kind == "f":
        reaches |= np.isnan(values)
    indices = np.maximum.accumulate(np.where(reaches, position, 0), axis=-1)
    indices_t = _i64(np.ascontiguousarray(np.moveaxis(indices, -1, d)))
    return _core.gather(input, d, indices_t), indices_t


@function_and_method
def cummax(input: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """(values, indices): the running maximum along dim and where it was (the latest of equal
    values, as PyTorch); values are differentiable, their gradient goes to those indices."""
    return _CummaxResult(*_cumulative_extreme("cummax", input, dim, True))


@function_and_method
def cummin(input: Tensor, dim: int) -> tuple[Tensor, Tensor]:
    """(values, indices): the running minimum along dim and where it was (the latest of equal
    values, as PyTorch); values are differentiable, their gradient goes to those indices."""
    return _CumminResult(*_cumulative_extreme("cummin", input, dim, False))


@function_and_method
def diff(
    input: Tensor,
    n: int = 1,
    dim: int = -1,
    prepend: Tensor | None = None,
    append: Tensor | None = None,
) -> Tensor:
    """The n-th forward difference along dim (out[i] = in[i + 1] - in[i], n times), after
    joining prepend and append to input along dim."""
    if not isinstance(input, Tensor):
        raise argument_error("diff", "input", 1, "Tensor", input)
    if input.ndim == 0:
        raise RuntimeError("[diff] expects input to be at least one-dimensional")
    d = _dim("diff", dim, input.ndim)
    n = _int("diff", "n", n)
    if n < 0:
        raise RuntimeError(f"[diff] order must be non-negative but got {n}")
    parts = [t for t in (prepend, input, append) if t is not None]
    x = _core._cat(parts, d) if len(parts) > 1 else input
    for _ in range(n):
        size = x.shape[d]
        if size == 0:
            break
        after, before = _slice(x, d, 1, size - 1), _slice(x, d, 0, size - 1)
        x = after != before if x.dtype == _BOOL else after - before
    return x.clone() if x is input else x


# ---- reductions ----

_AminmaxResult = collections.namedtuple("aminmax", ["min", "max"])


@function_and_method
def aminmax(
    input: Tensor, *, dim: int | None = None, keepdim: bool = False
) -> tuple[Tensor, Tensor]:
    """(min, max) of input, over dim or all of it."""
    dims = () if dim is None else (int(dim),)
    return _AminmaxResult(
        _core._amin(input, dims, bool(keepdim)), _core._amax(input, dims, bool(keepdim))
    )


def _without_nan(input: Tensor) -> Tensor:
    if input.dtype not in _FLOATS:
        return input
    return _core.where(input.isnan(), _core._zeros((), input.dtype), input)


@function_and_method
def nansum(
    input: Tensor, dim: _Dims = None, keepdim: bool = False, *, dtype: _DType | None = None
) -> Tensor:
    """The sum over dim (all dims if None) with NaN counted as zero."""
    if not isinstance(input, Tensor):
        raise argument_error("nansum", "input", 1, "Tensor", input)
    x = _without_nan(input if dtype is None else input.to(dtype))
    return _core._sum(x, _dims("nansum", dim, None), bool(keepdim))


@function_and_method
def nanmean(
    input: Tensor, dim: _Dims = None, keepdim: bool = False, *, dtype: _DType | None = None
) -> Tensor:
    """The mean over dim (all dims if None) of the values that are not NaN."""
    if not isinstance(input, Tensor):
        raise argument_error("nanmean", "input", 1, "Tensor", input)
    x = input if dtype is None else input.to(dtype)
    _float_input("nanmean", x)
    dims = _dims("nanmean", dim, None)
    count = _core._sum((~x.isnan()).to(x.dtype), dims, bool(keepdim))
    return _core._sum(_without_nan(x), dims, bool(keepdim)) / count


_MedianResult = collections.namedtuple("median", ["values", "indices"])
_ModeResult = collections.namedtuple("mode", ["values", "indices"])


def _median_along(op: str, input: Tensor, d: int, keepdim: bool):
    """(values, indices) of the lower median along d; a row holding NaN gives its first NaN."""
    order = _core._argsort(input, d, False)  # stable, NaN last
    size = input.shape[d]
    if size == 0:
        raise IndexError(f"[{op}] cannot compute the median of an empty dim {d}")
    k_shape = list(input.shape)
    k_shape[d] = 1
    k = _core._full(tuple(k_shape), (size - 1) // 2, _I64)
    if input.dtype in _FLOATS:
        nan_count = input.isnan().to(_I64).sum(d, keepdim=True)
        k = _core.where(nan_count > 0, size - nan_count, k)
    indices = _core.gather(order, d, k)
    values = _core.gather(input, d, indices)
    if not keepdim:
        indices, values = indices.squeeze(d), values.squeeze(d)
    return values, indices


@function_and_method
def median(
    input: Tensor, dim: int | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """The lower median (the smaller middle value of an even count), NaN if any value is NaN:
    median(input) is a 0-d tensor; median(input, dim) is (values, indices). Differentiable:
    the gradient goes to the element chosen."""
    if not isinstance(input, Tensor):
        raise argument_error("median", "input", 1, "Tensor", input)
    if dim is None:
        if input.numel() == 0:  # PyTorch's median of nothing is NaN
            return _core._full((), math.nan, input.dtype)
        return _median_along("median", input.reshape(-1), 0, False)[0]
    d = _dim("median", dim, input.ndim)
    if input.ndim == 0:
        return _MedianResult(input.clone(), _core._zeros((), _I64))
    return _MedianResult(*_median_along("median", input, d, bool(keepdim)))


@function_and_method
def mode(input: Tensor, dim: int = -1, keepdim: bool = False) -> tuple[Tensor, Tensor]:
    """(values, indices): the most frequent value along dim (the smallest among equally
    frequent ones) and the last index where it occurs; values are differentiable."""
    if not isinstance(input, Tensor):
        raise argument_error("mode", "input", 1, "Tensor", input)
    d = _dim("mode", dim, input.ndim)
    if input.ndim == 0:
        return _ModeResult(input.clone(), _core._zeros((), _I64))
    rows = np.moveaxis(_numpy(input), d, -1)
    flat = rows.reshape(-1, rows.shape[-1])
    found = np.empty(flat.shape[0], dtype=np.int64)
    for r, row in enumerate(flat):
        values, counts = np.unique(row, return_counts=True)
        best = values[np.argmax(counts)]
        found[r] = np.nonzero(row == best)[0][-1]
    index_shape = list(input.shape)
    index_shape[d] = 1
    indices = _i64(np.moveaxis(found.reshape(rows.shape[:-1] + (1,)), -1, d)).reshape(index_shape)
    values = _core.gather(input, d, indices)
    if not keepdim:
        indices, values = indices.squeeze(d), values.squeeze(d)
    return _ModeResult(values, indices)


def _quantile(
    op: str, input: Tensor, q, dim, keepdim: bool, interpolation: str, ignore_nan: bool
) -> Tensor:
    _float_input(op, input)
    if interpolation not in ("linear", "lower", "higher", "midpoint", "nearest"):
        raise RuntimeError(
            f"[{op}] interpolation must be one of linear, lower, higher, midpoint or nearest. "
            f"Got {interpolation!r}"
        )
    scalar_q = not isinstance(q, Tensor)
    q_t = _core._full((), as_float(op, "q", 2, q), input.dtype) if scalar_q else q.to(input.dtype)
    if q_t.ndim > 1:
        raise RuntimeError(f"[{op}] q must be a scalar or 1D tensor, got shape {_shape(q_t)}")
    q_values = _numpy(q_t)
    if ((q_values < 0) | (q_values > 1)).any():
        raise RuntimeError(f"[{op}] q values must be in the range [0, 1]")
    if dim is None:
        x, d = input.reshape(-1), 0
    else:
        d = _dim(op, dim, input.ndim)
        x = input if input.ndim else input.reshape(1)
    size = x.shape[d]
    if size == 0:
        raise IndexError(f"[{op}] input tensor must be non-empty along dim {d}")
    ordered = _core.gather(x, d, _core._argsort(x, d, False))  # NaN last
    nans = x.isnan().to(x.dtype).sum(d, keepdim=True)
    count = (size - nans) if ignore_nan else _core._full((), float(size), x.dtype)
    qs = q_t.reshape(-1)  # (Q,)
    # ranks: (Q, ..., 1, ...): the fractional position of each quantile in each row.
    q_view = qs.reshape((qs.shape[0],) + (1,) * x.ndim)
    last = (count - 1).clamp(min=0)
    rank = q_view * last.unsqueeze(0)
    if interpolation == "lower":
        rank = _floor(rank)
    elif interpolation == "higher":
        rank = _ceil(rank)
    elif interpolation == "nearest":
        rank = _round(rank)
    low = _floor(rank)
    high = _ceil(rank)
    weight = rank - low
    if interpolation == "midpoint":
        weight = _core._full((), 0.5, x.dtype) * (high > low).to(x.dtype)
    expanded = ordered.unsqueeze(0).expand(qs.shape[0], *ordered.shape)

    def pick(position: Tensor) -> Tensor:
        index = position.to(_I64).expand(
            *(_shape(expanded)[: d + 1] + (1,) + _shape(expanded)[d + 2 :])
        )
        return _core.gather(expanded, d + 1, index)

    lower_value, upper_value = pick(low), pick(high)
    result = lower_value + weight * (upper_value - lower_value)
    nan = _core._full((), float("nan"), x.dtype)
    invalid = (count == 0) if ignore_nan else (nans > 0)
    result = _core.where(invalid.unsqueeze(0), nan, result)
    result = result.squeeze(d + 1) if not keepdim or dim is None else result
    if keepdim and dim is None:
        result = result.reshape((qs.shape[0],) + (1,) * input.ndim)
    return result.reshape(_shape(result)[1:]) if scalar_q or q_t.ndim == 0 else result


@function_and_method
def quantile(
    input: Tensor,
    q: Tensor | float,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """The q-th quantiles along dim (of the flattened input if None), interpolating between
    the sorted values (linear, lower, higher, midpoint or nearest); a 1-d q adds a leading
    dim. NaN if a row holds NaN. Differentiable in input."""
    return _quantile("quantile", input, q, dim, keepdim, interpolation, False)


@function_and_method
def nanquantile(
    input: Tensor,
    q: Tensor | float,
    dim: int | None = None,
    keepdim: bool = False,
    *,
    interpolation: str = "linear",
) -> Tensor:
    """quantile ignoring NaN values (NaN only for a row of nothing but NaN)."""
    return _quantile("nanquantile", input, q, dim, keepdim, interpolation, True)


def _moments(name: str, spread) -> typing.Callable[..., tuple[Tensor, Tensor]]:
    def moments(
        input: Tensor,
        dim: _Dims | bool = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> tuple[Tensor, Tensor]:
        value = spread(input, dim, unbiased, keepdim, correction=correction)
        if isinstance(dim, bool):
            dim = None
        return value, input.mean(dim, keepdim=keepdim)

    what = "standard deviation" if name == "std_mean" else "variance"
    doc = f"({what}, mean) over dim in one call; correction= and unbiased= as bprop.{name[:3]}"
    return _named(name, doc, moments)


std_mean = _moments("std_mean", lambda *a, **k: _core.Tensor.std(*a, **k))
var_mean = _moments("var_mean", lambda *a, **k: _core.Tensor.var(*a, **k))


# ---- elementwise ----


@function_and_method
def isclose(
    input: Tensor,
    other: Tensor | Number,
    rtol: float = 1e-05,
    atol: float = 1e-08,
    equal_nan: bool = False,
) -> Tensor:
    """Elementwise ``abs(input - other) <= atol + rtol * abs(other)`` (equal infinities are close;
    NaN equals NaN only with equal_nan), a bool tensor."""
    other = _as_operand(other)
    if input.dtype != other.dtype and other.ndim:
        raise RuntimeError(f"[isclose] {input.dtype.name} did not match {other.dtype.name}")
    if input.dtype not in _FLOATS:
        a, b = input.to(_F64), other.to(_F64)
    else:
        a, b = input, other
    close = (a == b) | ((a - b).abs() <= atol + rtol * b.abs())
    if a.dtype in _FLOATS:
        close = close & (a.isfinite() & b.isfinite() | (a == b))
        if equal_nan:
            close = close | (a.isnan() & b.isnan())
    return close.detach()


def _dtype_range(dtype) -> tuple[float, float]:
    info = np.finfo(np.float32 if dtype == _F32 else np.float64)
    return float(info.min), float(info.max)


def _nan_to_num(input: Tensor, nan: float, posinf: float | None, neginf: float | None) -> Tensor:
    if input.dtype not in _FLOATS:
        return input.clone()
    low, high = _dtype_range(input.dtype)
    x = _core.where(input.isnan(), _core._full((), nan, input.dtype), input)
    x = _core.where(
        input == math.inf, _core._full((), high if posinf is None else posinf, input.dtype), x
    )
    return _core.where(
        input == -math.inf, _core._full((), low if neginf is None else neginf, input.dtype), x
    )


@function_and_method
def nan_to_num(
    input: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """NaN, +inf and -inf replaced by nan, posinf and neginf (by default 0 and the dtype's
    largest and smallest finite values); differentiable where the value is kept."""
    if not isinstance(input, Tensor):
        raise argument_error("nan_to_num", "input", 1, "Tensor", input)
    return _nan_to_num(input, nan, posinf, neginf)


@method
def nan_to_num_(
    self: Tensor, nan: float = 0.0, posinf: float | None = None, neginf: float | None = None
) -> Tensor:
    """nan_to_num, in place; returns self."""
    return _write("nan_to_num_", self, _nan_to_num(_old(self), nan, posinf, neginf))


@function_and_method
def logit(input: Tensor, eps: float | None = None) -> Tensor:
    """log(p / (1 - p)), with p = input clamped to [eps, 1 - eps] when eps is given."""
    if not isinstance(input, Tensor):
        raise argument_error("logit", "input", 1, "Tensor", input)
    p = input if eps is None else input.clamp(eps, 1.0 - eps)
    return p.log() - (1.0 - p).log()


@function_and_method
def erfc(input: Tensor) -> Tensor:
    """1 - erf(input)."""
    return 1.0 - _core.erf(input)


@function_and_method
def sinh(input: Tensor) -> Tensor:
    """The hyperbolic sine, (exp(x) - exp(-x)) / 2."""
    if not isinstance(input, Tensor):
        raise argument_error("sinh", "input", 1, "Tensor", input)
    return (input.exp() - (-input).exp()) * 0.5


@function_and_method
def cosh(input: Tensor) -> Tensor:
    """The hyperbolic cosine, (exp(x) + exp(-x)) / 2."""
    if not isinstance(input, Tensor):
        raise argument_error("cosh", "input", 1, "Tensor", input)
    return (input.exp() + (-input).exp()) * 0.5


@function_and_method
def tan(input: Tensor) -> Tensor:
    """The tangent, sin(x) / cos(x)."""
    if not isinstance(input, Tensor):
        raise argument_error("tan", "input", 1, "Tensor", input)
    return input.sin() / input.cos()


def _asinh_nonnegative(x: Tensor) -> Tensor:
    return (x + (x * x + 1.0).sqrt()).log()


@function_and_method
def asinh(input: Tensor) -> Tensor:
    """The inverse hyperbolic sine, ``log(x + sqrt(x^2 + 1))`` (odd, computed on ``abs(x)``)."""
    if not isinstance(input, Tensor):
        raise argument_error("asinh", "input", 1, "Tensor", input)
    return _core.where(input < 0, -_asinh_nonnegative(-input), _asinh_nonnegative(input))


@function_and_method
def acosh(input: Tensor) -> Tensor:
    """The inverse hyperbolic cosine, log(x + sqrt(x^2 - 1)) (NaN below 1)."""
    return (input + (input * input - 1.0).sqrt()).log()


@function_and_method
def atanh(input: Tensor) -> Tensor:
    """The inverse hyperbolic tangent, (log1p(x) - log1p(-x)) / 2."""
    if not isinstance(input, Tensor):
        raise argument_error("atanh", "input", 1, "Tensor", input)
    return (input.log1p() - (-input).log1p()) * 0.5


@function_and_method
def xlogy(input: Tensor | Number, other: Tensor | Number) -> Tensor:
    """input * log(other), 0 where input is 0 (unless other is NaN)."""
    x, y = _as_operand(input), _as_operand(other)
    if x.dtype not in _FLOATS and y.dtype not in _FLOATS:
        x = x.to(_core.get_default_dtype())
    zero = (x == 0) & ~_isnan(y) if y.dtype in _FLOATS else (x == 0)
    one = _core._ones((), y.dtype if y.dtype in _FLOATS else x.dtype)
    safe = _core.where(zero, one, y)
    product = x * safe.log()
    return _core.where(zero, _core._zeros((), product.dtype), product)


@function_and_method
def sgn(input: Tensor) -> Tensor:
    """The sign (-1, 0 or 1) of each element (sign, for real tensors)."""
    return _core.sign(input)


@function_and_method
def signbit(input: Tensor) -> Tensor:
    """Whether each element's sign bit is set (True for -0.0), a bool tensor."""
    if not isinstance(input, Tensor):
        raise argument_error("signbit", "input", 1, "Tensor", input)
    if input.dtype in _FLOATS:
        return _core._tensor_from_numpy(np.ascontiguousarray(np.signbit(_numpy(input))))
    return input < 0


@function_and_method
def heaviside(input: Tensor, values: Tensor) -> Tensor:
    """The Heaviside step: 0 where input < 0, values where input == 0, 1 where input > 0
    (not differentiable, as PyTorch's)."""
    if not isinstance(values, Tensor):
        raise TypeError(f"[heaviside] values must be a Tensor, got {type(values).__name__}")
    if input.dtype != values.dtype:
        raise RuntimeError(
            f"[heaviside] is not yet implemented for tensors with different dtypes "
            f"({input.dtype.name} and {values.dtype.name})"
        )
    x, v = input.detach(), values.detach()
    step = (x > 0).to(x.dtype)
    return _core.where(x == 0, v, step)


@function_and_method
def hypot(input: Tensor, other: Tensor | Number) -> Tensor:
    """sqrt(input^2 + other^2), elementwise, broadcast."""
    other = _as_operand(other)
    return (input * input + other * other).sqrt()


@function_and_method
def argwhere(input: Tensor) -> Tensor:
    """The indices of the nonzero elements, one row each: an (N, input.ndim) int64 tensor."""
    return _core.nonzero(input)


@function_and_method
def addcmul(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """input + value * tensor1 * tensor2, broadcast."""
    return input + value * (tensor1 * tensor2)


@function_and_method
def addcdiv(input: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """input + value * tensor1 / tensor2, broadcast (floating point only)."""
    if tensor1.dtype not in _FLOATS and tensor2.dtype not in _FLOATS:
        raise RuntimeError(
            "[addcdiv] integer division of tensors using addcdiv is no longer supported; "
            "divide with a floating-point tensor"
        )
    return input + value * (tensor1 / tensor2)


@method
def addcmul_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """addcmul, in place (Adam's second moment: v.addcmul_(g, g, value=1 - beta2))."""
    return _write("addcmul_", self, addcmul(_old(self), tensor1, tensor2, value=value))


@method
def addcdiv_(self: Tensor, tensor1: Tensor, tensor2: Tensor, *, value: Number = 1) -> Tensor:
    """addcdiv, in place (Adam's step: p.addcdiv_(m, denom, value=-lr))."""
    return _write("addcdiv_", self, addcdiv(_old(self), tensor1, tensor2, value=value))


def _scaled_sum(input: Tensor, product: Tensor, beta: Number, alpha: Number) -> Tensor:
    # beta == 0 ignores input, NaN and inf included, as PyTorch documents.
    scaled = product if alpha == 1 else alpha * product
    if beta == 0:  # a where, not 0 * input: the gradient to input is zero, NaN or not
        return _core.where(_core._zeros((), _BOOL), input, scaled)
    return (input if beta == 1 else beta * input) + scaled


def _matrix(op: str, name: str, t: Tensor, ndim: int) -> None:
    if t.ndim != ndim:
        raise RuntimeError(f"[{op}] {name} must be a {ndim}-D tensor, got shape {_shape(t)}")


@function_and_method
def addmm(
    input: Tensor, mat1: Tensor, mat2: Tensor, *, beta: Number = 1, alpha: Number = 1
) -> Tensor:
    """beta * input + alpha * (mat1 @ mat2), input broadcast to the product's shape."""
    _matrix("addmm", "mat1", mat1, 2)
    _matrix("addmm", "mat2", mat2, 2)
    return _scaled_sum(input, _core.mm(mat1, mat2), beta, alpha)


@function_and_method
def addmv(
    input: Tensor, mat: Tensor, vec: Tensor, *, beta: Number = 1, alpha: Number = 1
) -> Tensor:
    """beta * input + alpha * (mat @ vec)."""
    _matrix("addmv", "mat", mat, 2)
    _matrix("addmv", "vec", vec, 1)
    return _scaled_sum(input, _core.matmul(mat, vec), beta, alpha)


@function_and_method
def baddbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Number = 1, alpha: Number = 1
) -> Tensor:
    """beta * input + alpha * (batch1 @ batch2), batched matrix products of 3-D tensors."""
    _matrix("baddbmm", "batch1", batch1, 3)
    _matrix("baddbmm", "batch2", batch2, 3)
    return _scaled_sum(input, _core.bmm(batch1, batch2), beta, alpha)


@function_and_method
def addbmm(
    input: Tensor, batch1: Tensor, batch2: Tensor, *, beta: Number = 1, alpha: Number = 1
) -> Tensor:
    """beta * input + alpha * the sum over the batch of batch1[i] @ batch2[i]."""
    _matrix("addbmm", "batch1", batch1, 3)
    _matrix("addbmm", "batch2", batch2, 3)
    return _scaled_sum(input, _core.bmm(batch1, batch2).sum(0), beta, alpha)


@function_and_method
def logaddexp(input: Tensor, other: Tensor) -> Tensor:
    """log(exp(input) + exp(other)), elementwise, without overflow."""
    return _logaddexp(input, other)


@function_and_method
def logaddexp2(input: Tensor, other: Tensor) -> Tensor:
    """log2(2**input + 2**other), elementwise, without overflow."""
    return _logaddexp(input * math.log(2.0), other * math.log(2.0)) / math.log(2.0)


@function_and_method
def rot90(input: Tensor, k: int = 1, dims: collections.abc.Sequence[int] = (0, 1)) -> Tensor:
    """input rotated by 90 degrees k times, from dims[0] towards dims[1] (numpy's rot90)."""
    if not isinstance(input, Tensor):
        raise argument_error("rot90", "input", 1, "Tensor", input)
    dims = tuple(dims)
    if len(dims) != 2:
        raise RuntimeError(f"[rot90] expected total rotation dims == 2, but got dims = {len(dims)}")
    if input.ndim < 2:
        raise RuntimeError(f"[rot90] expected total dims >= 2, but got total dims = {input.ndim}")
    d0, d1 = _dim("rot90", dims[0], input.ndim), _dim("rot90", dims[1], input.ndim)
    if d0 == d1:
        raise RuntimeError(f"[rot90] expected rotation dims to be different, got {d0} and {d1}")
    k = _int("rot90", "k", k) % 4
    if k == 1:
        return input.flip(d1).transpose(d0, d1)
    if k == 2:
        return input.flip(d0, d1)
    if k == 3:
        return input.flip(d0).transpose(d0, d1)
    return input.clone()


@function_and_method
def take_along_dim(input: Tensor, indices: Tensor, dim: int | None = None) -> Tensor:
    """The values of input at indices along dim (broadcast against each other, as numpy's
    take_along_axis); with dim=None, of the flattened input."""
    if not isinstance(input, Tensor):
        raise argument_error("take_along_dim", "input", 1, "Tensor", input)
    if not isinstance(indices, Tensor):
        raise argument_error("take_along_dim", "indices", 2, "Tensor", indices)
    if dim is None:
        return _core.gather(input.reshape(-1), 0, indices.reshape(-1))
    d = _dim("take_along_dim", dim, input.ndim)
    in_shape, ix_shape = list(input.shape), list(indices.shape)
    in_shape[d] = ix_shape[d] = 1
    shape = list(np.broadcast_shapes(tuple(in_shape), tuple(ix_shape)))
    x_shape, i_shape = list(shape), list(shape)
    x_shape[d], i_shape[d] = input.shape[d], indices.shape[d]
    return _core.gather(input.expand(*x_shape), d, indices.expand(*i_shape))


def _atleast(op: str, ndim: int, tensors: tuple) -> Tensor | tuple[Tensor, ...]:
    if len(tensors) == 1 and isinstance(tensors[0], (list, tuple)):
        tensors = tuple(tensors[0])
        single = False
    else:
        single = len(tensors) == 1
    results = []
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise argument_error(op, "tensors", i + 1, "Tensor", t)
        if t.ndim == 0:
            t = t.reshape((1,) * ndim)
        elif t.ndim == 1 and ndim >= 2:
            t = t.unsqueeze(0)
            if ndim == 3:
                t = t.unsqueeze(-1)
        elif t.ndim == 2 and ndim == 3:
            t = t.unsqueeze(-1)
        results.append(t)
    return results[0] if single else tuple(results)


def atleast_1d(*tensors: Tensor | collections.abc.Sequence[Tensor]) -> Tensor | tuple[Tensor, ...]:
    """Each tensor with at least 1 dim (a 0-d one becomes shape (1,)); one tensor in, one out."""
    return _atleast("atleast_1d", 1, tensors)


def atleast_2d(*tensors: Tensor | collections.abc.Sequence[Tensor]) -> Tensor | tuple[Tensor, ...]:
    """Each tensor with at least 2 dims (a 1-d one of size n becomes (1, n))."""
    return _atleast("atleast_2d", 2, tensors)


def atleast_3d(*tensors: Tensor | collections.abc.Sequence[Tensor]) -> Tensor | tuple[Tensor, ...]:
    """Each tensor with at least 3 dims ((n,) becomes (1, n, 1), (m, n) becomes (m, n, 1))."""
    return _atleast("atleast_3d", 3, tensors)


def block_diag(*tensors: Tensor) -> Tensor:
    """The tensors (0-d, 1-d as one row, or 2-d) as the blocks of a block-diagonal matrix."""
    blocks = []
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise argument_error("block_diag", "tensors", i + 1, "Tensor", t)
        if t.ndim > 2:
            raise RuntimeError(
                f"[block_diag] Input tensors must have 2 or fewer dimensions, got shape {_shape(t)}"
            )
        blocks.append(t.reshape(1, -1) if t.ndim < 2 else t)
    if not blocks:
        return _core._zeros((1, 0), _core.get_default_dtype())
    dtype = blocks[0].dtype
    for b in blocks[1:]:
        dtype = _core.result_type(_core._zeros((), dtype), b)
    width = builtins.sum(b.shape[1] for b in blocks)
    rows, left = [], 0
    for b in blocks:
        right = width - left - b.shape[1]
        parts = [
            _core._zeros((b.shape[0], left), dtype),
            b.to(dtype),
            _core._zeros((b.shape[0], right), dtype),
        ]
        rows.append(_core._cat(parts, 1))
        left += b.shape[1]
    return _core._cat(rows, 0)


# ---- more products, reductions and conversions ----


@method
def type_as(self: Tensor, other: Tensor) -> Tensor:
    """self converted to other's dtype (self itself if it already has it)."""
    if not isinstance(other, Tensor):
        raise argument_error("type_as", "other", 1, "Tensor", other)
    return self if self.dtype == other.dtype else self.to(other.dtype)


@method
def ndimension(self: Tensor) -> int:
    """The number of dims, as dim()."""
    return self.ndim


@function_and_method
def ravel(input: Tensor) -> Tensor:
    """input flattened to one dim (a view where possible)."""
    if not isinstance(input, Tensor):
        raise argument_error("ravel", "input", 1, "Tensor", input)
    return input.reshape(-1)


def _linear_index(op: str, self: Tensor, indices: tuple) -> tuple[Tensor, int]:
    """The row-major positions that indices (int64 tensors, or bool masks, broadcast against
    each other) select among the first len(indices) dims of self, and that count of dims."""
    parts = []
    for index in indices:
        if not isinstance(index, Tensor):
            raise TypeError(f"[{op}] indices must be tensors, got {type(index).__name__}")
        if index.dtype == _BOOL:
            parts.extend(_core.nonzero(index).unbind(1))
        elif index.dtype == _I64:
            parts.append(index)
        else:
            raise IndexError(
                f"[{op}] tensors used as indices must be long or bool, got {index.dtype.name}"
            )
    if len(parts) > self.ndim:
        raise IndexError(f"[{op}] too many indices for a tensor of dimension {self.ndim}")
    shape = np.broadcast_shapes(*(_shape(p) for p in parts)) if parts else ()
    position = _core._zeros(tuple(shape), _I64)
    for d, part in enumerate(parts):
        size = self.shape[d]
        values = _numpy(part)
        if values.size and (values.min() < -size or values.max() >= size):
            raise IndexError(
                f"[{op}] index out of range for dim {d} of size {size}: "
                f"{int(values.min())}..{int(values.max())}"
            )
        part = _core.where(part < 0, part + size, part)
        position = position * size + part
    return position, len(parts)


def _index_put(op: str, input: Tensor, indices, values, accumulate: bool) -> Tensor:
    position, k = _linear_index(op, input, tuple(indices))
    rest = _shape(input)[k:]
    flat = input.reshape((math.prod(_shape(input)[:k]),) + rest)
    values = _as_operand(values).to(input.dtype)
    values = _core._expand(values, _shape(position) + rest).reshape((-1,) + rest)
    position = position.reshape(-1)
    if accumulate:
        result = _core.index_add(flat, 0, position, values)
    else:
        # A repeated index is written once, with its last value (as PyTorch does on the CPU).
        where_at = _numpy(position)
        last = np.unique(where_at[::-1], return_index=True)[1]
        keep = _i64(np.sort(where_at.size - 1 - last))
        result = _index_copy(
            op, flat, 0, _core.index_select(position, 0, keep), _core.index_select(values, 0, keep)
        )
    return result.reshape(_shape(input))


@function_and_method
def index_put(
    input: Tensor,
    indices: collections.abc.Sequence[Tensor],
    values: Tensor | Number,
    accumulate: bool = False,
) -> Tensor:
    """input with input[indices] := values (or += values with accumulate=True, which adds
    every repeated index); indices is a tuple of int64 tensors or bool masks, as in x[idx]."""
    return _index_put("index_put", input, indices, values, accumulate)


@method
def index_put_(
    self: Tensor,
    indices: collections.abc.Sequence[Tensor],
    values: Tensor | Number,
    accumulate: bool = False,
) -> Tensor:
    """index_put, in place; returns self."""
    return _write(
        "index_put_", self, _index_put("index_put_", _old(self), indices, values, accumulate)
    )


def _masked_scatter(op: str, input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    if not isinstance(mask, Tensor) or mask.dtype != _BOOL:
        raise RuntimeError(f"[{op}] mask must be a bool tensor")
    shape = tuple(np.broadcast_shapes(_shape(input), _shape(mask)))
    full = _core._expand(mask, shape).reshape(-1)
    count = int(full.sum().item())
    if count > source.numel():
        raise RuntimeError(
            f"[{op}] the mask selects {count} elements but source has only {source.numel()}"
        )
    position = (full.to(_I64).cumsum(0) - 1).clamp(min=0)
    taken = _core.index_select(source.reshape(-1).to(input.dtype), 0, position)
    return _core.where(full, taken, _core._expand(input, shape).reshape(-1)).reshape(shape)


@function_and_method
def masked_scatter(input: Tensor, mask: Tensor, source: Tensor) -> Tensor:
    """input with the elements where mask (broadcast) is True taken from source's first
    elements in row-major order; differentiable in input and source."""
    return _masked_scatter("masked_scatter", input, mask, source)


@function_and_method
def diagflat(input: Tensor, offset: int = 0) -> Tensor:
    """The flattened input as the diagonal offset of a square matrix."""
    if not isinstance(input, Tensor):
        raise argument_error("diagflat", "input", 1, "Tensor", input)
    return diag_embed(input.reshape(-1), offset)


@function_and_method
def cross(input: Tensor, other: Tensor, dim: int | None = None) -> Tensor:
    """The cross product of 3-vectors along dim (the first dim of size 3 if None), broadcast."""
    if not isinstance(input, Tensor):
        raise argument_error("cross", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("cross", "other", 2, "Tensor", other)
    a, b = (
        (input, other)
        if _shape(input) == _shape(other)
        else (
            _core._expand(input, tuple(np.broadcast_shapes(_shape(input), _shape(other)))),
            _core._expand(other, tuple(np.broadcast_shapes(_shape(input), _shape(other)))),
        )
    )
    if dim is None:
        sizes = [i for i, s in enumerate(a.shape) if s == 3]
        if not sizes:
            raise RuntimeError(f"[cross] no dimension of size 3 in input of shape {_shape(a)}")
        d = sizes[0]
    else:
        d = _dim("cross", dim, a.ndim)
    if a.shape[d] != 3:
        raise RuntimeError(
            f"[cross] inputs dimension {d} must have length 3, got shape {_shape(a)}"
        )
    ax, ay, az = (_slice(a, d, i, 1) for i in range(3))
    bx, by, bz = (_slice(b, d, i, 1) for i in range(3))
    return _core._cat([ay * bz - az * by, az * bx - ax * bz, ax * by - ay * bx], d)


def trapezoid(
    y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1
) -> Tensor:
    """The integral of y along dim by the trapezoidal rule, at sample points x (a 1-d tensor or
    y's shape) or spaced dx apart (1 by default)."""
    if not isinstance(y, Tensor):
        raise argument_error("trapezoid", "y", 1, "Tensor", y)
    d = _dim("trapezoid", dim, y.ndim)
    size = y.shape[d]
    if size == 0:
        return y.sum(d)
    pairs = _slice(y, d, 1, size - 1) + _slice(y, d, 0, size - 1)
    if x is None:
        return pairs.sum(d) * (0.5 * (1.0 if dx is None else dx))
    if dx is not None:
        raise RuntimeError("[trapezoid] give either x or dx, not both")
    if x.ndim == 1:
        view = [1] * y.ndim
        view[d] = size
        x = x.reshape(tuple(view))
        spacing = _slice(x, d, 1, size - 1) - _slice(x, d, 0, size - 1)
    else:
        xd = _dim("trapezoid", dim, x.ndim)
        spacing = _slice(x, xd, 1, size - 1) - _slice(x, xd, 0, size - 1)
    return (spacing * pairs).sum(d) * 0.5


def trapz(y: Tensor, x: Tensor | None = None, *, dx: float | None = None, dim: int = -1) -> Tensor:
    """trapezoid under its older name."""
    if not isinstance(y, Tensor):
        raise argument_error("trapz", "y", 1, "Tensor", y)
    return trapezoid(y, x, dx=dx, dim=dim)


@function_and_method
def cov(
    input: Tensor,
    *,
    correction: int = 1,
    fweights: Tensor | None = None,
    aweights: Tensor | None = None,
) -> Tensor:
    """The covariance matrix of the variables in input's rows (observations in columns; a
    1-d input is one variable), with frequency and observation weights as numpy.cov."""
    if not isinstance(input, Tensor):
        raise argument_error("cov", "input", 1, "Tensor", input)
    if input.ndim > 2:
        raise RuntimeError(
            f"[cov] expected input to have two or fewer dimensions, got {input.ndim}"
        )
    x = input.reshape(1, -1) if input.ndim < 2 else input
    if x.dtype not in _FLOATS:
        x = x.to(_core.get_default_dtype())
    n = x.shape[1]
    weights = None
    if fweights is not None:
        weights = fweights.to(x.dtype)
    if aweights is not None:
        weights = aweights.to(x.dtype) if weights is None else weights * aweights.to(x.dtype)
    if weights is None:
        total = _core._full((), float(n), x.dtype)
        mean = x.mean(1, keepdim=True)
        norm = total - correction
        centered = x - mean
        result = centered.matmul(centered.t()) / norm
    else:
        total = weights.sum()
        mean = (x * weights).sum(1, keepdim=True) / total
        if aweights is None:
            norm = total - correction
        else:
            norm = total - correction * (weights * aweights.to(x.dtype)).sum() / total
        centered = x - mean
        result = (centered * weights).matmul(centered.t()) / norm
    return result.reshape(()) if input.ndim < 2 else result


@function_and_method
def corrcoef(input: Tensor) -> Tensor:
    """The Pearson correlation coefficients of the variables in input's rows (clipped to
    [-1, 1], as PyTorch)."""
    if not isinstance(input, Tensor):
        raise argument_error("corrcoef", "input", 1, "Tensor", input)
    c = cov(input)
    if c.ndim == 0:
        return c / c
    d = diagonal(c).sqrt()
    return (c / d.unsqueeze(1) / d.unsqueeze(0)).clamp(-1.0, 1.0)


@function_and_method
def inner(input: Tensor, other: Tensor) -> Tensor:
    """The inner product over the last dims: sum(input[..., None, ..., :] * other[..., :])
    (a product with a number if either is 0-d)."""
    if not isinstance(input, Tensor):
        raise argument_error("inner", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("inner", "other", 2, "Tensor", other)
    if input.ndim == 0 or other.ndim == 0:
        return input * other
    if input.shape[-1] != other.shape[-1]:
        raise RuntimeError(
            f"[inner] last dimensions of the inputs must match: {_shape(input)} and {_shape(other)}"
        )
    a = input.reshape(_shape(input)[:-1] + (1,) * (other.ndim - 1) + (input.shape[-1],))
    return (a * other).sum(-1)


def tensordot(
    a: Tensor,
    b: Tensor,
    dims: int | collections.abc.Sequence[typing.Any] = 2,
) -> Tensor:
    """The sum of products over dims of a and b: dims=n contracts a's last n with b's first n;
    dims=([a dims], [b dims]) contracts those pairs."""
    if isinstance(dims, Tensor):
        dims = dims.tolist()
    if isinstance(dims, (int, np.integer)):
        n = int(dims)
        if n < 0:
            raise RuntimeError(f"[tensordot] expects dims >= 0, but got dims={n}")
        dims_a, dims_b = list(range(a.ndim - n, a.ndim)), list(range(n))
    else:
        dims_a, dims_b = list(dims[0]), list(dims[1])
        if isinstance(dims[0], int):
            dims_a, dims_b = [dims[0]], [dims[1]]
    dims_a = [_dim("tensordot", d, a.ndim) for d in dims_a]
    dims_b = [_dim("tensordot", d, b.ndim) for d in dims_b]
    if len(dims_a) != len(dims_b):
        raise RuntimeError("[tensordot] both dimension lists should have same length")
    for da, db in zip(dims_a, dims_b):
        if a.shape[da] != b.shape[db]:
            raise RuntimeError(
                f"[tensordot] contracted dimensions need to match, but first has size "
                f"{a.shape[da]} in dim {da} and second has size {b.shape[db]} in dim {db}"
            )
    free_a = [d for d in range(a.ndim) if d not in dims_a]
    free_b = [d for d in range(b.ndim) if d not in dims_b]
    inner_size = math.prod(a.shape[d] for d in dims_a)
    left = a.permute(*(free_a + dims_a)).reshape(-1, inner_size)
    right = b.permute(*(dims_b + free_b)).reshape(inner_size, -1)
    shape = tuple(a.shape[d] for d in free_a) + tuple(b.shape[d] for d in free_b)
    return _core.mm(left, right).reshape(shape)


@function_and_method
def vdot(input: Tensor, other: Tensor) -> Tensor:
    """The dot product of two 1-d tensors (the conjugate of input's, for real ones input)."""
    if not isinstance(input, Tensor):
        raise argument_error("vdot", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("vdot", "other", 2, "Tensor", other)
    if input.ndim != 1 or other.ndim != 1:
        raise RuntimeError(
            f"[vdot] 1D tensors expected, but got {input.ndim}D and {other.ndim}D tensors"
        )
    if input.shape[0] != other.shape[0]:
        raise RuntimeError(
            f"[vdot] inconsistent tensor size, expected tensor [{input.shape[0]}] and src "
            f"[{other.shape[0]}] to have the same number of elements"
        )
    return (input * other).sum()


@function_and_method
def nanmedian(
    input: Tensor, dim: int | None = None, keepdim: bool = False
) -> Tensor | tuple[Tensor, Tensor]:
    """median ignoring NaN (the lower median of the other values; NaN only for a row of NaN):
    nanmedian(input) is a 0-d tensor, nanmedian(input, dim) is (values, indices)."""
    if not isinstance(input, Tensor):
        raise argument_error("nanmedian", "input", 1, "Tensor", input)

    def along(x: Tensor, d: int, keep: bool):
        order = _core._argsort(x, d, False)  # NaN last
        size = x.shape[d]
        valid = (~x.isnan()).to(_I64).sum(d, keepdim=True) if x.dtype in _FLOATS else None
        k = _floor_divide((valid - 1).clamp(min=0), 2) if valid is not None else None
        if k is None:
            shape = list(x.shape)
            shape[d] = 1
            k = _core._full(tuple(shape), (size - 1) // 2, _I64)
        indices = _core.gather(order, d, k)
        values = _core.gather(x, d, indices)
        if not keep:
            indices, values = indices.squeeze(d), values.squeeze(d)
        return values, indices

    if dim is None:
        if input.numel() == 0:
            return _core._full((), math.nan, input.dtype)
        return along(input.reshape(-1), 0, False)[0]
    d = _dim("nanmedian", dim, input.ndim)
    if input.ndim == 0:
        return _MedianResult(input.clone(), _core._zeros((), _I64))
    values, indices = along(input, d, bool(keepdim))
    return collections.namedtuple("nanmedian", ["values", "indices"])(values, indices)


@function_and_method
def fmax(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise maximum, taking the number where one side is NaN."""
    other = _as_operand(other)
    m = _core.maximum(input, other)
    if m.dtype not in _FLOATS:
        return m
    m = _core.where(input.isnan(), other.to(m.dtype) if other.dtype != m.dtype else other, m)
    return _core.where(other.isnan(), input if input.dtype == m.dtype else input.to(m.dtype), m)


@function_and_method
def fmin(input: Tensor, other: Tensor) -> Tensor:
    """The elementwise minimum, taking the number where one side is NaN."""
    other = _as_operand(other)
    m = _core.minimum(input, other)
    if m.dtype not in _FLOATS:
        return m
    m = _core.where(input.isnan(), other.to(m.dtype) if other.dtype != m.dtype else other, m)
    return _core.where(other.isnan(), input if input.dtype == m.dtype else input.to(m.dtype), m)


@function_and_method
def copysign(input: Tensor, other: Tensor | Number) -> Tensor:
    """``abs(input)`` with the sign of other (its sign bit: -0.0 counts as negative)."""
    x = input if input.dtype in _FLOATS else input.to(_core.get_default_dtype())
    negative = signbit(
        _as_operand(other)
        if isinstance(other, Tensor)
        else _core._full((), as_float("copysign", "other", 2, other), _F64)
    )
    magnitude = x.abs()
    return _core.where(negative, -magnitude, magnitude)


@function_and_method
def deg2rad(input: Tensor) -> Tensor:
    """Degrees to radians."""
    return input * (math.pi / 180.0)


@function_and_method
def rad2deg(input: Tensor) -> Tensor:
    """Radians to degrees."""
    return input * (180.0 / math.pi)


@function_and_method
def float_power(input: Tensor | Number, exponent: Tensor | Number) -> Tensor:
    """input ** exponent computed in float64 (the result is float64)."""
    base = _as_operand(input).to(_F64)
    if isinstance(exponent, Tensor):
        power = exponent.to(_F64)
    else:
        power = as_float("float_power", "exponent", 2, exponent)
    return base**power


@function_and_method
def positive(input: Tensor) -> Tensor:
    """input itself (unary plus); bool tensors are refused, as PyTorch."""
    if not isinstance(input, Tensor):
        raise argument_error("positive", "input", 1, "Tensor", input)
    if input.dtype == _BOOL:
        raise TypeError("[positive] The `+` operator, on a bool tensor is not supported.")
    return input


@function_and_method
def msort(input: Tensor) -> Tensor:
    """input sorted along its first dim (ascending)."""
    if not isinstance(input, Tensor):
        raise argument_error("msort", "input", 1, "Tensor", input)
    return input.sort(0).values


def logspace(
    start: float,
    end: float,
    steps: int,
    base: float = 10.0,
    *,
    dtype: _DType | None = None,
    device: typing.Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """steps values from base**start to base**end, evenly spaced in the exponent."""
    from ._creation import linspace

    check_device("logspace", device)
    dtype = check_dtype("logspace", dtype) or _core.get_default_dtype()
    exponents = linspace(start, end, steps, dtype=_F64)
    result = (float(base) ** exponents).to(dtype)
    if requires_grad:
        result.requires_grad_(True)
    return result


def _comparison_alias(name: str, fn, doc: str):
    def compare(input: Tensor, other: Tensor | Number) -> Tensor:
        return fn(input, _as_operand(other))

    return function_and_method(_named(name, doc, compare))


greater = _comparison_alias("greater", _core.gt, "input > other, elementwise (gt).")
greater_equal = _comparison_alias("greater_equal", _core.ge, "input >= other, elementwise (ge).")
less = _comparison_alias("less", _core.lt, "input < other, elementwise (lt).")
less_equal = _comparison_alias("less_equal", _core.le, "input <= other, elementwise (le).")
not_equal = _comparison_alias("not_equal", _core.ne, "input != other, elementwise (ne).")


def _unary_alias(name: str, fn, doc: str):
    def apply(input: Tensor) -> Tensor:
        if not isinstance(input, Tensor):
            raise argument_error(name, "input", 1, "Tensor", input)
        return fn(input)

    return function_and_method(_named(name, doc, apply))


absolute = _unary_alias("absolute", _core.abs, "``abs(input)``, elementwise (abs).")
arcsinh = _unary_alias("arcsinh", asinh, "The inverse hyperbolic sine (asinh).")
arccosh = _unary_alias("arccosh", acosh, "The inverse hyperbolic cosine (acosh).")
arctanh = _unary_alias("arctanh", atanh, "The inverse hyperbolic tangent (atanh).")
fix = _unary_alias("fix", _trunc, "input rounded towards zero (trunc).")


# ---- Python operators PyTorch's tensors have ----


@method
def __floordiv__(self: Tensor, other: typing.Any) -> Tensor:
    """self // other: floor_divide."""
    return _floor_divide(self, other)


@method
def __rfloordiv__(self: Tensor, other: typing.Any) -> Tensor:
    """other // self: floor_divide."""
    return _floor_divide(_as_operand(other), self)


@method
def __ifloordiv__(self: Tensor, other: typing.Any) -> Tensor:
    """self //= other, in place."""
    return _write("__ifloordiv__", self, _floor_divide(_old(self), other))


@method
def __mod__(self: Tensor, other: typing.Any) -> Tensor:
    """self % other: remainder (the sign of other, as Python's %)."""
    return _remainder(self, other)


@method
def __rmod__(self: Tensor, other: typing.Any) -> Tensor:
    """other % self: remainder."""
    return _remainder(_as_operand(other), self)


@method
def __imod__(self: Tensor, other: typing.Any) -> Tensor:
    """self %= other, in place."""
    return _write("__imod__", self, _remainder(_old(self), other))


@method
def __pos__(self: Tensor) -> Tensor:
    """+self: positive."""
    return positive(self)


@method
def __abs__(self: Tensor) -> Tensor:
    """abs(self)."""
    return _core.abs(self)


@method
def __rmatmul__(self: Tensor, other: typing.Any) -> Tensor:
    """other @ self (other a tensor or a numpy array)."""
    if isinstance(other, np.ndarray):
        other = tensor(other)
    return _core.matmul(_as_operand(other), self)


def _logical_inplace(name: str, symbol: str):
    def update(self: Tensor, other: Tensor | Number) -> Tensor:
        operand = _as_operand(other)
        result = {"&": Tensor.__and__, "|": Tensor.__or__, "^": Tensor.__xor__}[symbol](
            self, operand
        )
        return _write(name, self, result)

    return method(_named(name, f"self {symbol}= other, in place (bool tensors)", update))


_logical_inplace("__iand__", "&")
_logical_inplace("__ior__", "|")
_logical_inplace("__ixor__", "^")


@method
def __contains__(self: Tensor, element: typing.Any) -> bool:
    """Whether any element equals element (a number or a tensor)."""
    if not isinstance(element, (Tensor, bool, int, float, np.number)):
        raise RuntimeError(
            f"[__contains__] Tensor.__contains__ only supports Tensor or scalar, but you passed "
            f"in a {type(element).__name__}"
        )
    return bool((self == _as_operand(element)).any().item())


@method
def __reversed__(self: Tensor) -> Tensor:
    """self flipped along its first dim (a 0-d tensor as it is)."""
    return self.clone() if self.ndim == 0 else self.flip(0)


# ---- counting and searching, in numpy ----


def _unique_result(values, inverse, counts, return_inverse: bool, return_counts: bool):
    result = [tensor(np.ascontiguousarray(values))]
    if return_inverse:
        result.append(_i64(inverse))
    if return_counts:
        result.append(_i64(counts))
    return result[0] if len(result) == 1 else tuple(result)


@function_and_method
def unique(
    input: Tensor,
    sorted: bool = True,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """The distinct values (or, with dim, the distinct slices along dim), sorted; with
    return_inverse where each input element went, with return_counts how often each occurs.
    Computed in numpy from the values: not differentiable, and frozen in a captured step."""
    if not isinstance(input, Tensor):
        raise argument_error("unique", "input", 1, "Tensor", input)
    array = _numpy(input)
    if dim is None:
        values, inverse, counts = np.unique(array, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(array.shape)
    else:
        d = _dim("unique", dim, input.ndim)
        values, inverse, counts = np.unique(array, return_inverse=True, return_counts=True, axis=d)
        inverse = inverse.reshape(-1)
    return _unique_result(values, inverse, counts, return_inverse, return_counts)


@function_and_method
def unique_consecutive(
    input: Tensor,
    return_inverse: bool = False,
    return_counts: bool = False,
    dim: int | None = None,
) -> Tensor | tuple[Tensor, ...]:
    """input with each run of equal consecutive values (or slices along dim) kept once;
    return_inverse and return_counts as unique. Computed in numpy: not differentiable."""
    if not isinstance(input, Tensor):
        raise argument_error("unique_consecutive", "input", 1, "Tensor", input)
    array = _numpy(input)
    if dim is None:
        flat = array.reshape(-1)
        starts = np.ones(flat.shape[0], dtype=bool)
        starts[1:] = flat[1:] != flat[:-1]
        values = flat[starts]
        shape = array.shape
    else:
        d = _dim("unique_consecutive", dim, input.ndim)
        moved = np.moveaxis(array, d, 0)
        starts = np.ones(moved.shape[0], dtype=bool)
        if moved.shape[0] > 1:
            changed = (moved[1:] != moved[:-1]).reshape(moved.shape[0] - 1, -1).any(axis=1)
            starts[1:] = changed
        values = np.moveaxis(moved[starts], 0, d)
        shape = (moved.shape[0],)
    inverse = (np.cumsum(starts) - 1).reshape(shape)
    boundaries = np.append(np.nonzero(starts)[0], starts.shape[0])
    return _unique_result(values, inverse, np.diff(boundaries), return_inverse, return_counts)


@function_and_method
def bincount(input: Tensor, weights: Tensor | None = None, minlength: int = 0) -> Tensor:
    """How often each value 0, 1, ... occurs in the 1-d non-negative int64 input (the sum of
    weights at those places, if given), at least minlength long. Computed in numpy."""
    if not isinstance(input, Tensor):
        raise argument_error("bincount", "input", 1, "Tensor", input)
    if input.dtype != _I64 or input.ndim != 1:
        raise RuntimeError(
            f"[bincount] only supports 1-d non-negative integral inputs, got a "
            f"{input.ndim}-d {input.dtype.name} tensor"
        )
    array = _numpy(input)
    if array.size and array.min() < 0:
        raise RuntimeError("[bincount] input must be non-negative")
    if minlength < 0:
        raise RuntimeError(f"[bincount] minlength should be >= 0, got {minlength}")
    if weights is None:
        return _i64(np.bincount(array, minlength=minlength))
    if _shape(weights) != _shape(input):
        raise RuntimeError("[bincount] weights should be 1-d and have the same length as input")
    counts = np.bincount(array, weights=_numpy(weights).astype(np.float64), minlength=minlength)
    return tensor(counts).to(weights.dtype if weights.dtype in _FLOATS else _F64)


@function_and_method
def histc(input: Tensor, bins: int = 100, min: float = 0, max: float = 0) -> Tensor:  # noqa: A002
    """A histogram of bins equal-width bins between min and max (the data's range if both are
    equal); elements outside are ignored, max falls in the last bin. Computed in numpy."""
    if not isinstance(input, Tensor):
        raise argument_error("histc", "input", 1, "Tensor", input)
    _float_input("histc", input)
    bins = as_int("histc", "bins", 2, bins)
    low = as_float("histc", "min", 3, min)
    high = as_float("histc", "max", 4, max)
    if bins <= 0:
        raise RuntimeError(f"[histc] bins must be > 0, got {bins}")
    array = _numpy(input).astype(np.float64).reshape(-1)
    if low == high and array.size:
        low, high = float(array.min()), float(array.max())
    if low == high:
        low, high = low - 1, high + 1
    if low > high:
        raise RuntimeError(f"[histc] max must be larger than min, got min={min} max={max}")
    inside = array[(array >= low) & (array <= high)]
    index = np.minimum(((inside - low) * bins / (high - low)).astype(np.int64), bins - 1)
    return tensor(np.bincount(index, minlength=bins).astype(np.float64)).to(input.dtype)


def searchsorted(
    sorted_sequence: Tensor,
    input: Tensor | Number,
    *,
    out_int32: bool = False,
    right: bool = False,
    side: str | None = None,
    sorter: Tensor | None = None,
) -> Tensor:
    """For each value, the index at which it would be inserted in sorted_sequence's innermost
    dim to keep it sorted: the first such index, or with right=True (side='right') the last.
    sorted_sequence is 1-d or has input's leading dims. Computed in numpy."""
    if side is not None:
        if side not in ("left", "right"):
            raise RuntimeError(f"[searchsorted] side can only be 'left' or 'right', got {side!r}")
        if right and side == "left":
            raise RuntimeError("[searchsorted] side and right can't be set to opposites")
        right = side == "right"
    if out_int32:
        raise RuntimeError("[searchsorted] out_int32=True: bprop has no int32 dtype")
    sequence = _numpy(sorted_sequence)
    if sorter is not None:
        sequence = np.take_along_axis(sequence, _numpy(sorter), axis=-1)
    scalar = not isinstance(input, Tensor)
    values = np.asarray(input) if scalar else _numpy(input)
    which = "right" if right else "left"
    if sequence.ndim == 1:
        found = np.searchsorted(sequence, values, side=which)
    else:
        if values.ndim != sequence.ndim or values.shape[:-1] != sequence.shape[:-1]:
            raise RuntimeError(
                f"[searchsorted] boundaries tensor should be 1 dimension or the first N-1 "
                f"dimensions of boundaries tensor and input value tensor must match, but we "
                f"got boundaries tensor {list(sequence.shape)} and input value tensor "
                f"{list(values.shape)}"
            )
        rows_s = sequence.reshape(-1, sequence.shape[-1])
        rows_v = values.reshape(-1, values.shape[-1])
        found = np.stack([np.searchsorted(s, v, side=which) for s, v in zip(rows_s, rows_v)])
        found = found.reshape(values.shape)
    return _i64(found)


def bucketize(
    input: Tensor | Number, boundaries: Tensor, *, out_int32: bool = False, right: bool = False
) -> Tensor:
    """The index of the bucket of 1-d boundaries each value falls in: boundaries[i-1] < x <=
    boundaries[i], or with right=True boundaries[i-1] <= x < boundaries[i]."""
    if boundaries.ndim != 1:
        raise RuntimeError(
            f"[bucketize] boundaries tensor must be 1 dimension, but got dim({boundaries.ndim})"
        )
    return searchsorted(boundaries, input, out_int32=out_int32, right=right)


# ---- legacy typed constructors ----


class _TypedTensorMeta(type):
    _dtype: typing.Any

    def __instancecheck__(cls, instance: object) -> bool:
        return isinstance(instance, Tensor) and instance.dtype == cls._dtype


def _typed_constructor(name: str, dtype) -> type:
    def construct(cls, *args: typing.Any, device: typing.Any = None) -> Tensor:
        check_device(name, device)
        if not args:
            return _core._zeros((0,), dtype)
        if builtins.all(isinstance(a, (int, np.integer)) and not isinstance(a, bool) for a in args):
            return _core._zeros(tuple(int(a) for a in args), dtype)
        if len(args) == 1 and isinstance(args[0], (tuple, list)) and not args[0]:
            return _core._zeros((0,), dtype)
        if len(args) == 1:
            data = args[0]
            if isinstance(data, Tensor):
                if data.dtype != dtype:
                    raise TypeError(
                        f"[{name}] expected a {dtype.name} tensor, got {data.dtype.name}"
                    )
                return data
            return tensor(data, dtype=dtype)
        raise TypeError(f"[{name}] takes sizes (ints) or one sequence of data, got {args!r}")

    doc = (
        f"PyTorch's legacy constructor of {dtype.name} tensors: {name}(2, 3) is a zero-filled "
        f"tensor of that shape, {name}(data) a tensor holding data, {name}() an empty one; "
        f"isinstance(t, bprop.{name}) is True for {dtype.name} tensors."
    )
    return _TypedTensorMeta(name, (), {"_dtype": dtype, "__new__": construct, "__doc__": doc})


FloatTensor = _typed_constructor("FloatTensor", _F32)
DoubleTensor = _typed_constructor("DoubleTensor", _F64)
LongTensor = _typed_constructor("LongTensor", _I64)
BoolTensor = _typed_constructor("BoolTensor", _BOOL)


# ---- memory formats ----


class memory_format:  # noqa: N801  (PyTorch's name)
    """A memory layout, as torch.memory_format (contiguous_format, preserve_format,
    channels_last), for code that names them: bprop's tensors are always row-major."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return f"bprop.{self._name}"

    def __reduce__(self) -> str:
        return self._name


contiguous_format = memory_format("contiguous_format")
preserve_format = memory_format("preserve_format")
channels_last = memory_format("channels_last")
# ---- defaults ----


def set_default_device(device: typing.Any) -> None:
    """Sets the device factories use by default: only the CPU (or None) is accepted, as
    bprop runs on the CPU only."""
    check_device("set_default_device", device)


def get_default_device() -> _device_type:
    """The device factories use by default: always the CPU."""
    return _device_type("cpu")


_PROFILES = {
    "default": {"precision": 4, "threshold": 1000, "edgeitems": 3, "linewidth": 80},
    "short": {"precision": 2, "threshold": 1000, "edgeitems": 2, "linewidth": 80},
    "full": {"precision": 4, "threshold": math.inf, "edgeitems": 3, "linewidth": 80},
}


def set_printoptions(
    precision: int | None = None,
    threshold: float | None = None,
    edgeitems: int | None = None,
    linewidth: int | None = None,
    profile: str | None = None,
    sci_mode: bool | None = None,
) -> None:
    """How tensors print, as torch.set_printoptions: precision (digits after the point),
    threshold (more elements are summarised), edgeitems (shown at each end when summarised),
    linewidth, profile ('default', 'short' or 'full' sets the four), sci_mode (True or False
    forces scientific notation on or off; None chooses as PyTorch does)."""
    # Every argument is checked before any option changes.
    op = "set_printoptions"
    if precision is not None:
        precision = as_int(op, "precision", 1, precision)
    if threshold is not None and not isinstance(threshold, int):
        threshold = as_float(op, "threshold", 2, threshold)
    if edgeitems is not None:
        edgeitems = as_int(op, "edgeitems", 3, edgeitems)
    if linewidth is not None:
        linewidth = as_int(op, "linewidth", 4, linewidth)
    if profile is not None:
        if profile not in _PROFILES:
            raise ValueError(f"[set_printoptions] unknown profile {profile!r}")
        options = _PROFILES[profile]
        _format._PRECISION = options["precision"]
        _format._THRESHOLD = options["threshold"]
        _format._EDGE_ITEMS = options["edgeitems"]
        _format._LINE_WIDTH = options["linewidth"]
    if precision is not None:
        _format._PRECISION = precision
    if threshold is not None:
        _format._THRESHOLD = threshold
    if edgeitems is not None:
        _format._EDGE_ITEMS = edgeitems
    if linewidth is not None:
        _format._LINE_WIDTH = linewidth
    _format._SCI_MODE = sci_mode

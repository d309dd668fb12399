"""More of PyTorch's math on tensors, composed of bprop's differentiable ops (so their
gradients are written with bprop ops and differentiate again): softmax and log_softmax as
functions and methods, square/rsqrt/reciprocal/exp2/log2/log10, norm, dot/outer/mv,
scatter, the float tests isnan/isinf/isfinite, allclose/equal, count_nonzero, the in-place
random fills uniform_/normal_, bernoulli (from bprop's generator or a bp.Generator), and bp.Size."""

from __future__ import annotations

import math
import typing
from typing import TYPE_CHECKING

import numpy as np

from . import _core, _sampling
from ._arguments import argument_error, as_float
from ._core import Tensor
from ._tensor import _dims, _tensor_list, function_and_method, method
from .autograd import no_grad

if TYPE_CHECKING:
    from ._core import Number, _Dims, _DType

__all__ = [
    "Size", "softmax", "log_softmax", "square", "rsqrt", "reciprocal", "exp2", "log2", "log10",
    "norm", "dot", "outer", "mv", "scatter", "isnan", "isinf", "isfinite", "allclose", "equal",
    "count_nonzero", "bernoulli", "einsum", "trunc", "floor", "ceil", "round", "frac",
    "floor_divide", "remainder", "fmod", "lerp", "is_tensor", "is_floating_point",
    "as_tensor", "hstack", "vstack",
]  # fmt: skip

_FLOATS = (_core.dtype.float32, _core.dtype.float64)


class Size(tuple):  # type: ignore[type-arg]
    """A shape, as torch.Size: a tuple of ints with numel()."""

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __repr__(self) -> str:
        return f"bprop.Size({list(self)})"


def _converted(input: Tensor, dtype: _DType | None) -> Tensor:
    return input if dtype is None else input.to(dtype)


@function_and_method
def softmax(input: Tensor, dim: int, dtype: _DType | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (after converting to dtype, if given); an empty input
    gives an empty result of its shape, as PyTorch."""
    return _core._softmax(_converted(input, dtype), dim)


@function_and_method
def log_softmax(input: Tensor, dim: int, dtype: _DType | None = None) -> Tensor:
    """x - logsumexp(x) along dim (after converting to dtype, if given); an empty input
    gives an empty result of its shape, as PyTorch."""
    return _core._log_softmax(_converted(input, dtype), dim)


@function_and_method
def square(input: Tensor) -> Tensor:
    """input * input."""
    return input * input


@function_and_method
def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(input)."""
    if not isinstance(input, Tensor):
        raise argument_error("rsqrt", "input", 1, "Tensor", input)
    return 1.0 / input.sqrt()


@function_and_method
def reciprocal(input: Tensor) -> Tensor:
    """1 / input (a float tensor for integer input, as PyTorch)."""
    return 1.0 / input


@function_and_method
def exp2(input: Tensor) -> Tensor:
    """2 ** input."""
    return (input * math.log(2.0)).exp()


@function_and_method
def log2(input: Tensor) -> Tensor:
    """The base-2 logarithm."""
    if not isinstance(input, Tensor):
        raise argument_error("log2", "input", 1, "Tensor", input)
    return input.log() * (1.0 / math.log(2.0))


@function_and_method
def log10(input: Tensor) -> Tensor:
    """The base-10 logarithm."""
    if not isinstance(input, Tensor):
        raise argument_error("log10", "input", 1, "Tensor", input)
    return input.log() * (1.0 / math.log(10.0))


@function_and_method
def norm(
    input: Tensor,
    p: float | str | None = "fro",
    dim: _Dims = None,
    keepdim: bool = False,
    dtype: _DType | None = None,
) -> Tensor:
    """The vector p-norm over dim (all elements if None): 'fro' and 2 are the Euclidean norm,
    inf the largest ``abs(x)``, -inf the smallest, 0 the count of nonzeros, others
    ``sum(abs(x)**p) ** (1/p)``."""
    if not isinstance(input, Tensor):
        raise argument_error("norm", "input", 1, "Tensor", input)
    x = _converted(input, dtype)
    if x.dtype not in _FLOATS:
        raise TypeError(f"[norm] needs a float tensor, got {x.dtype.name}")
    dims = _dims("norm", dim, None)
    if p in (None, "fro"):
        p = 2.0
    if isinstance(p, str):
        raise ValueError(f"[norm] p must be a number or 'fro', got {p!r} (no nuclear norm yet)")
    p = as_float("norm", "p", 2, p)
    if p == math.inf:
        return _core._amax(x.abs(), dims, keepdim)
    if p == -math.inf:
        return _core._amin(x.abs(), dims, keepdim)
    if p == 0.0:
        return _core._sum((x != 0).to(x.dtype), dims, keepdim)
    if p == 2.0:
        return _core._sum(x * x, dims, keepdim).sqrt()
    if p == 1.0:
        return _core._sum(x.abs(), dims, keepdim)
    return _core._sum(x.abs() ** p, dims, keepdim) ** (1.0 / p)


def _vector(op: str, name: str, t: Tensor) -> None:
    if t.ndim != 1:
        raise RuntimeError(f"[{op}] {name} must be 1-d, got shape {tuple(t.shape)}")


@function_and_method
def dot(input: Tensor, tensor: Tensor) -> Tensor:
    """The inner product of two 1-d tensors of the same length."""
    _vector("dot", "input", input)
    _vector("dot", "tensor", tensor)
    if input.shape != tensor.shape:
        raise RuntimeError(
            f"[dot] inconsistent sizes: input {tuple(input.shape)}, tensor {tuple(tensor.shape)}"
        )
    return (input * tensor).sum()


@function_and_method
def outer(input: Tensor, vec2: Tensor) -> Tensor:
    """The outer product of two 1-d tensors: out[i, j] = input[i] * vec2[j]."""
    _vector("outer", "input", input)
    _vector("outer", "vec2", vec2)
    return input.unsqueeze(1) * vec2.unsqueeze(0)


@function_and_method
def mv(input: Tensor, vec: Tensor) -> Tensor:
    """The product of a matrix and a vector."""
    if not isinstance(input, Tensor):
        raise argument_error("mv", "input", 1, "Tensor", input)
    if not isinstance(vec, Tensor):
        raise argument_error("mv", "vec", 2, "Tensor", vec)
    if input.ndim != 2:
        raise RuntimeError(f"[mv] input must be 2-d, got shape {tuple(input.shape)}")
    _vector("mv", "vec", vec)
    return _core.matmul(input, vec)


def _scattered(
    op: str, input: Tensor, dim: int, index: Tensor, src: Tensor | Number, reduce: str | None
) -> Tensor:
    if not isinstance(src, Tensor):
        src = _core._full(tuple(index.shape), src, input.dtype)
    elif src.dtype != input.dtype:
        raise RuntimeError(
            f"[{op}] src dtype {src.dtype.name} differs from input dtype {input.dtype.name}"
        )
    if tuple(src.shape) != tuple(index.shape):
        # PyTorch reads src at index's positions; bprop's scatter_add takes src of index's shape.
        src = src[tuple(slice(0, n) for n in index.shape)]
    if reduce == "add":
        return _core.scatter_add(input, dim, index, src)
    if reduce is not None:
        raise NotImplementedError(f"[{op}] reduce must be None or 'add', got {reduce!r}")
    zeros = _core._zeros(tuple(input.shape), input.dtype)
    ones = _core._ones(tuple(src.shape), input.dtype)
    written = _core.scatter_add(zeros, dim, index, ones) > 0
    return _core.where(written, _core.scatter_add(zeros, dim, index, src), input)


@function_and_method
def scatter(
    input: Tensor, dim: int, index: Tensor, src: Tensor | Number, *, reduce: str | None = None
) -> Tensor:
    """A copy of input with src (a tensor, or one value) written at index along dim:
    out[i][index[i][j]] = src[i][j] for dim 1. An index written twice receives the sum of
    its values (PyTorch leaves the choice unspecified). reduce='add' adds instead of
    writing (scatter_add)."""
    return _scattered("scatter", input, dim, index, src, reduce)


@method
def scatter_(
    self: Tensor, dim: int, index: Tensor, src: Tensor | Number, *, reduce: str | None = None
) -> Tensor:
    """In-place scatter (see bprop.scatter)."""
    return self.copy_(_scattered("scatter_", self, dim, index, src, reduce))


@function_and_method
def isnan(input: Tensor) -> Tensor:
    """Where input is NaN (bool; never for integer and bool tensors)."""
    if not isinstance(input, Tensor):
        raise argument_error("isnan", "input", 1, "Tensor", input)
    return input != input


@function_and_method
def isinf(input: Tensor) -> Tensor:
    """Where input is +inf or -inf (bool)."""
    if not isinstance(input, Tensor):
        raise argument_error("isinf", "input", 1, "Tensor", input)
    if input.dtype not in _FLOATS:
        return _core._zeros(tuple(input.shape), _core.dtype.bool)
    return input.abs() == math.inf


@function_and_method
def isfinite(input: Tensor) -> Tensor:
    """Where input is neither NaN nor infinite (bool)."""
    if not isinstance(input, Tensor):
        raise argument_error("isfinite", "input", 1, "Tensor", input)
    if input.dtype not in _FLOATS:
        return _core._ones(tuple(input.shape), _core.dtype.bool)
    return input.abs() < math.inf


@function_and_method
def allclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether ``abs(input - other) <= atol + rtol * abs(other)`` everywhere (broadcast)."""
    if not isinstance(input, Tensor):
        raise argument_error("allclose", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("allclose", "other", 2, "Tensor", other)
    a, b = input.detach().numpy(), other.detach().numpy()
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


@function_and_method
def equal(input: Tensor, other: Tensor) -> bool:
    """Whether the two tensors have the same shape and the same values."""
    if not isinstance(input, Tensor):
        raise argument_error("equal", "input", 1, "Tensor", input)
    if not isinstance(other, Tensor):
        raise argument_error("equal", "other", 2, "Tensor", other)
    if tuple(input.shape) != tuple(other.shape):
        return False
    return bool((input.detach() == other.detach()).all())


@function_and_method
def count_nonzero(input: Tensor, dim: _Dims = None) -> Tensor:
    """The number of nonzero values over dim (all if None), int64."""
    return _core._sum(input != 0, _dims("count_nonzero", dim, None), False)


@method
def uniform_(
    self: Tensor, from_: float = 0.0, to: float = 1.0, *, generator: typing.Any = None
) -> Tensor:
    """Fills self with ``U(from_, to)`` from bprop's generator or a bp.Generator (in place,
    not recorded by autograd)."""
    draws = _sampling.uniform("uniform_", generator, tuple(self.shape), self.dtype)
    with no_grad():
        return self.copy_(draws * (to - from_) + from_)


@method
def normal_(
    self: Tensor, mean: float = 0.0, std: float = 1.0, *, generator: typing.Any = None
) -> Tensor:
    """Fills self with N(mean, std^2) from bprop's generator (in place, not recorded)."""
    draws = _sampling.normal("normal_", generator, tuple(self.shape), self.dtype)
    with no_grad():
        return self.copy_(draws * std + mean)


@function_and_method
def bernoulli(input: Tensor, *, generator: typing.Any = None) -> Tensor:
    """0/1 draws with the probabilities in input (same shape and dtype)."""
    if not isinstance(input, Tensor):
        raise argument_error("bernoulli", "input", 1, "Tensor", input)
    if input.dtype not in _FLOATS:
        raise TypeError(f"[bernoulli] needs float probabilities, got {input.dtype.name}")
    p = input.detach()
    if bool(((p < 0) | (p > 1) | (p != p)).any()):
        raise RuntimeError("[bernoulli] probabilities must be in [0, 1]")
    return (_sampling.uniform("bernoulli", generator, tuple(p.shape), p.dtype) < p).to(p.dtype)


# ---- einsum: pairwise contractions as batched matrix products ----


def _einsum_subscripts(equation: str, operands: tuple[Tensor, ...]) -> tuple[list[str], str]:
    """The subscripts of each operand and of the output, with '...' spelled out as letters
    not used elsewhere (the implicit output: the letters used once, sorted, after '...')."""
    equation = equation.replace(" ", "")
    inputs, arrow, output = equation.partition("->")
    terms = inputs.split(",")
    if len(terms) != len(operands):
        raise ValueError(
            f"[einsum] equation {equation!r} has {len(terms)} operands, got {len(operands)} tensors"
        )
    spare = iter(c for c in "ZYXWVUTSRQPONMLKJIHGFEDCBA" if c not in equation)
    ellipsis_letters = ""
    ellipsis_rank = 0
    for term, t in zip(terms, operands):
        if "..." in term:
            ellipsis_rank = max(ellipsis_rank, t.ndim - (len(term) - 3))
    ellipsis_letters = "".join(next(spare) for _ in range(ellipsis_rank))
    spelled = []
    for term, t in zip(terms, operands):
        if not all(c.isalpha() for c in term.replace("...", "")):
            raise ValueError(f"[einsum] subscripts must be letters, got {term!r}")
        if "..." in term:
            rank = t.ndim - (len(term) - 3)
            term = term.replace("...", ellipsis_letters[len(ellipsis_letters) - rank :])
        if len(term) != t.ndim:
            raise ValueError(
                f"[einsum] subscripts {term!r} name {len(term)} dims of a tensor of shape "
                f"{tuple(t.shape)}"
            )
        if len(set(term)) != len(term):
            raise NotImplementedError(
                f"[einsum] a repeated subscript within one operand ({term!r}, a diagonal) is "
                "not supported yet"
            )
        spelled.append(term)
    if arrow:
        output = output.replace("...", ellipsis_letters)
    else:
        counts = {c: "".join(spelled).count(c) for c in "".join(spelled)}
        output = ellipsis_letters + "".join(
            sorted(c for c, n in counts.items() if n == 1 and c not in ellipsis_letters)
        )
    for c in output:
        if not any(c in term for term in spelled):
            raise ValueError(f"[einsum] output subscript {c!r} appears in no operand")
    return spelled, output


def _einsum_sizes(terms: list[str], operands: tuple[Tensor, ...]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for term, t in zip(terms, operands):
        for c, n in zip(term, t.shape):
            if sizes.get(c, 1) != 1 and n != 1 and sizes[c] != n:
                raise ValueError(f"[einsum] subscript {c!r} has sizes {sizes[c]} and {n}")
            sizes[c] = n if sizes.get(c, 1) == 1 else sizes[c]
    return sizes


def _sum_out(t: Tensor, term: str, keep: str) -> tuple[Tensor, str]:
    """Sums the dims of t whose letters are not in keep."""
    gone = tuple(i for i, c in enumerate(term) if c not in keep)
    if gone:
        t = _core._sum(t, gone, False)
        term = "".join(c for c in term if c in keep)
    return t, term


def _contract(a: Tensor, ta: str, b: Tensor, tb: str, keep: str, sizes: dict[str, int]):
    """a[ta] * b[tb] summed over the letters in both and not in keep, as one bmm."""
    batch = [c for c in ta if c in tb and c in keep]
    summed = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]

    def arranged(t: Tensor, term: str, order: list[str]) -> Tensor:
        t = t.permute(*[term.index(c) for c in order]) if order else t
        return t.expand(*[sizes[c] for c in order]) if order else t

    a = arranged(a, ta, batch + left + summed)
    b = arranged(b, tb, batch + summed + right)
    nb, nl, ns, nr = (math.prod(sizes[c] for c in g) for g in (batch, left, summed, right))
    product = _core.bmm(a.reshape(nb, nl, ns), b.reshape(nb, ns, nr))
    term = "".join(batch + left + right)
    return product.reshape(*[sizes[c] for c in term]) if term else product.reshape(()), term


def einsum(equation: str, *operands: Tensor | list[Tensor] | tuple[Tensor, ...]) -> Tensor:
    """Einstein summation, as torch.einsum: `einsum('bij,bjk->bik', a, b)`; '...' stands for
    leading dims, the implicit output (no '->') is the letters used once, in order. Operands
    are contracted left to right, each pair as one batched matrix product (differentiable).
    A subscript repeated within one operand (a diagonal) is not supported yet."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    tensors = tuple(operands)
    for i, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"[einsum] operand {i} is {type(t).__name__}, not a Tensor")
    if not tensors:
        raise ValueError("[einsum] needs at least one operand")
    terms, output = _einsum_subscripts(equation, tensors)
    sizes = _einsum_sizes(terms, tensors)
    later = ["".join(terms[i + 1 :]) + output for i in range(len(terms))]
    result, term = _sum_out(tensors[0], terms[0], later[0])
    for i in range(1, len(tensors)):
        t, ti = _sum_out(tensors[i], terms[i], term + later[i])
        result, term = _contract(result, term, t, ti, later[i], sizes)
    result, term = _sum_out(result, term, output)
    if term != output:
        result = result.permute(*[term.index(c) for c in output])
    return result


# ---- rounding: exact for every float, composed of comparisons and an int64 conversion ----

_EXACT = 2.0**52  # floats at least this large are integers already


def _integral(input: Tensor, op: str, adjust) -> Tensor:
    """Rounds the floats of input whose magnitude is below 2^52 (larger ones, infinities and
    NaN are integers or stay as they are). The result has no gradient path (its derivative
    is zero almost everywhere, as PyTorch's)."""
    if input.dtype not in _FLOATS:
        return input.clone() if input.dtype == _core.dtype.int64 else input.to(_core.dtype.int64)
    x = input.detach()
    small = x.abs() < _EXACT
    safe = _core.where(small, x, _core._zeros((), x.dtype))
    truncated = safe.to(_core.dtype.int64).to(x.dtype)
    return _core.where(small, adjust(safe, truncated), x)


@function_and_method
def trunc(input: Tensor) -> Tensor:
    """Rounds toward zero."""
    if not isinstance(input, Tensor):
        raise argument_error("trunc", "input", 1, "Tensor", input)
    return _integral(input, "trunc", lambda x, t: t)


@function_and_method
def floor(input: Tensor) -> Tensor:
    """Rounds toward -inf."""
    if not isinstance(input, Tensor):
        raise argument_error("floor", "input", 1, "Tensor", input)
    return _integral(input, "floor", lambda x, t: t - (x < t).to(x.dtype))


@function_and_method
def ceil(input: Tensor) -> Tensor:
    """Rounds toward +inf."""
    if not isinstance(input, Tensor):
        raise argument_error("ceil", "input", 1, "Tensor", input)
    return _integral(input, "ceil", lambda x, t: t + (x > t).to(x.dtype))


def _round_half_even(x: Tensor, t: Tensor) -> Tensor:
    below = t - (x < t).to(x.dtype)  # floor
    fraction = x - below
    up = (fraction > 0.5) | ((fraction == 0.5) & ((below * 0.5).to(_core.dtype.int64) * 2 != below))
    return below + up.to(x.dtype)


@function_and_method
def round(input: Tensor, *, decimals: int = 0) -> Tensor:  # noqa: A001  (PyTorch's name)
    """Rounds to the nearest integer, halves to even (as PyTorch and numpy); with decimals,
    to that many decimal places."""
    if not isinstance(input, Tensor):
        raise argument_error("round", "input", 1, "Tensor", input)
    if decimals:
        scale = 10.0**decimals
        return _integral(input * scale, "round", _round_half_even) / scale
    return _integral(input, "round", _round_half_even)


@function_and_method
def frac(input: Tensor) -> Tensor:
    """input - trunc(input) (differentiable: its derivative is 1)."""
    if not isinstance(input, Tensor):
        raise argument_error("frac", "input", 1, "Tensor", input)
    return input - trunc(input)


@function_and_method
def floor_divide(input: Tensor, other: Tensor | Number) -> Tensor:
    """floor(input / other), as Python's // (and PyTorch's)."""
    if input.dtype == _core.dtype.int64 and not (
        isinstance(other, float) or (isinstance(other, Tensor) and other.dtype in _FLOATS)
    ):
        quotient = input.to(_core.dtype.float64) / other
        return floor(quotient).to(_core.dtype.int64)
    return floor(input / other)


@function_and_method
def remainder(input: Tensor, other: Tensor | Number) -> Tensor:
    """input - floor(input / other) * other: the sign of other, as Python's %."""
    return input - floor_divide(input, other) * other


@function_and_method
def fmod(input: Tensor, other: Tensor | Number) -> Tensor:
    """input - trunc(input / other) * other: the sign of input, as C's fmod."""
    if input.dtype == _core.dtype.int64 and not isinstance(other, float):
        quotient = trunc(input.to(_core.dtype.float64) / other).to(_core.dtype.int64)
        return input - quotient * other
    return input - trunc(input / other) * other


@function_and_method
def lerp(input: Tensor, end: Tensor, weight: Tensor | Number) -> Tensor:
    """input + weight * (end - input): linear interpolation (differentiable in all three)."""
    return input + weight * (end - input)


@method
def lerp_(self: Tensor, end: Tensor, weight: Tensor | Number) -> Tensor:
    """In-place lerp: the exponential moving average `ema.lerp_(p, 1 - decay)`."""
    return self.copy_(lerp(self, end, weight))


# ---- small torch-namespace functions ----


def is_tensor(obj: object) -> bool:
    """Whether obj is a bprop Tensor (or a Parameter)."""
    return isinstance(obj, Tensor)


@function_and_method
def is_floating_point(input: Tensor) -> bool:
    """Whether input's dtype is a float type."""
    if not isinstance(input, Tensor):
        raise argument_error("is_floating_point", "input", 1, "Tensor", input)
    return input.dtype in _FLOATS


def as_tensor(data: typing.Any, dtype: _DType | None = None, device: typing.Any = None) -> Tensor:
    """data as a tensor, without a copy where data already is one of that dtype (as PyTorch's);
    numpy arrays and sequences are copied."""
    from ._tensor import tensor

    if isinstance(data, Tensor):
        from ._device import check_device

        check_device("as_tensor", device)
        return data if dtype is None or data.dtype == dtype else data.to(dtype)
    return tensor(data, dtype=dtype, device=device)


def hstack(tensors: typing.Sequence[Tensor]) -> Tensor:
    """Concatenates along dim 1 (dim 0 for 1-d tensors), as numpy.hstack."""
    tensors = _tensor_list("hstack", tensors, items=True)
    if not tensors:
        raise RuntimeError("[hstack] expects a non-empty sequence of tensors")
    from ._tensor import cat

    return cat(tensors, 0 if all(t.ndim == 1 for t in tensors) else 1)


def vstack(tensors: typing.Sequence[Tensor]) -> Tensor:
    """Concatenates along dim 0, 1-d tensors becoming rows, as numpy.vstack."""
    tensors = [
        t.unsqueeze(0) if t.ndim == 1 else t for t in _tensor_list("vstack", tensors, items=True)
    ]
    if not tensors:
        raise RuntimeError("[vstack] expects a non-empty sequence of tensors")
    from ._tensor import cat

    return cat(tensors, 0)

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
from ._core import Tensor
from ._tensor import _dims, function_and_method, method
from .autograd import no_grad

if TYPE_CHECKING:
    from ._core import Number, _Dims

__all__ = [
    "Size", "softmax", "log_softmax", "square", "rsqrt", "reciprocal", "exp2", "log2", "log10",
    "norm", "dot", "outer", "mv", "scatter", "isnan", "isinf", "isfinite", "allclose", "equal",
    "count_nonzero", "bernoulli",
]  # fmt: skip

_FLOATS = (_core.dtype.float32, _core.dtype.float64)


class Size(tuple):  # type: ignore[type-arg]
    """A shape, as torch.Size: a tuple of ints with numel()."""

    def numel(self) -> int:
        """The number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __repr__(self) -> str:
        return f"bprop.Size({list(self)})"


def _converted(input: Tensor, dtype: _core.dtype | None) -> Tensor:
    return input if dtype is None else input.to(dtype)


@function_and_method
def softmax(input: Tensor, dim: int, dtype: _core.dtype | None = None) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (after converting to dtype, if given)."""
    return _core._softmax(_converted(input, dtype), dim)


@function_and_method
def log_softmax(input: Tensor, dim: int, dtype: _core.dtype | None = None) -> Tensor:
    """x - logsumexp(x) along dim (after converting to dtype, if given)."""
    return _core._log_softmax(_converted(input, dtype), dim)


@function_and_method
def square(input: Tensor) -> Tensor:
    """input * input."""
    return input * input


@function_and_method
def rsqrt(input: Tensor) -> Tensor:
    """1 / sqrt(input)."""
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
    return input.log() * (1.0 / math.log(2.0))


@function_and_method
def log10(input: Tensor) -> Tensor:
    """The base-10 logarithm."""
    return input.log() * (1.0 / math.log(10.0))


@function_and_method
def norm(
    input: Tensor,
    p: float | str | None = "fro",
    dim: _Dims = None,
    keepdim: bool = False,
    dtype: _core.dtype | None = None,
) -> Tensor:
    """The vector p-norm over dim (all elements if None): 'fro' and 2 are the Euclidean norm,
    inf the largest |x|, -inf the smallest, 0 the count of nonzeros, others sum(|x|^p)^(1/p)."""
    x = _converted(input, dtype)
    if x.dtype not in _FLOATS:
        raise TypeError(f"[norm] needs a float tensor, got {x.dtype.name}")
    dims = _dims("norm", dim, None)
    if p in (None, "fro"):
        p = 2.0
    if isinstance(p, str):
        raise ValueError(f"[norm] p must be a number or 'fro', got {p!r} (no nuclear norm yet)")
    p = float(p)
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
    if input.ndim != 2:
        raise RuntimeError(f"[mv] input must be 2-d, got shape {tuple(input.shape)}")
    _vector("mv", "vec", vec)
    return _core.matmul(input, vec)


def _scattered(op: str, input: Tensor, dim: int, index: Tensor, src: Tensor | Number) -> Tensor:
    if not isinstance(src, Tensor):
        src = _core._full(tuple(index.shape), src, input.dtype)
    elif src.dtype != input.dtype:
        raise RuntimeError(
            f"[{op}] src dtype {src.dtype.name} differs from input dtype {input.dtype.name}"
        )
    if tuple(src.shape) != tuple(index.shape):
        # PyTorch reads src at index's positions; bprop's scatter_add takes src of index's shape.
        src = src[tuple(slice(0, n) for n in index.shape)]
    zeros = _core._zeros(tuple(input.shape), input.dtype)
    ones = _core._ones(tuple(src.shape), input.dtype)
    written = _core.scatter_add(zeros, dim, index, ones) > 0
    return _core.where(written, _core.scatter_add(zeros, dim, index, src), input)


@function_and_method
def scatter(input: Tensor, dim: int, index: Tensor, src: Tensor | Number) -> Tensor:
    """A copy of input with src (a tensor, or one value) written at index along dim:
    out[i][index[i][j]] = src[i][j] for dim 1. An index written twice receives the sum of
    its values (PyTorch leaves the choice unspecified)."""
    return _scattered("scatter", input, dim, index, src)


@method
def scatter_(self: Tensor, dim: int, index: Tensor, src: Tensor | Number) -> Tensor:
    """In-place scatter (see bprop.scatter)."""
    return self.copy_(_scattered("scatter_", self, dim, index, src))


@function_and_method
def isnan(input: Tensor) -> Tensor:
    """Where input is NaN (bool; never for integer and bool tensors)."""
    return input != input


@function_and_method
def isinf(input: Tensor) -> Tensor:
    """Where input is +inf or -inf (bool)."""
    if input.dtype not in _FLOATS:
        return _core._zeros(tuple(input.shape), _core.dtype.bool)
    return input.abs() == math.inf


@function_and_method
def isfinite(input: Tensor) -> Tensor:
    """Where input is neither NaN nor infinite (bool)."""
    if input.dtype not in _FLOATS:
        return _core._ones(tuple(input.shape), _core.dtype.bool)
    return input.abs() < math.inf


@function_and_method
def allclose(
    input: Tensor, other: Tensor, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False
) -> bool:
    """Whether |input - other| <= atol + rtol |other| everywhere (broadcast)."""
    a, b = input.detach().numpy(), other.detach().numpy()
    return bool(np.allclose(a, b, rtol=rtol, atol=atol, equal_nan=equal_nan))


@function_and_method
def equal(input: Tensor, other: Tensor) -> bool:
    """Whether the two tensors have the same shape and the same values."""
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
    """Fills self with U(from_, to) from bprop's generator (in place, not recorded by autograd)."""
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
    if input.dtype not in _FLOATS:
        raise TypeError(f"[bernoulli] needs float probabilities, got {input.dtype.name}")
    p = input.detach()
    if bool(((p < 0) | (p > 1) | (p != p)).any()):
        raise RuntimeError("[bernoulli] probabilities must be in [0, 1]")
    return (_sampling.uniform("bernoulli", generator, tuple(p.shape), p.dtype) < p).to(p.dtype)

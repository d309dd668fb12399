"""bprop: reverse-mode automatic differentiation with a C++ core.

import bprop as bp
w = bp.randn(3, 1, requires_grad=True)
loss = ((bp.tensor([[1.0, 2.0, 3.0]]) @ w - 2.0) ** 2).sum()
loss.backward()          # w.grad == 2 (y_hat - y) x
"""

from __future__ import annotations

from . import _core, autograd, nn, optim, testing, viz
from . import _tensor as _t
from ._core import (
    Tensor,
    abs,
    add,
    cos,
    div,
    dtype,
    eq,
    erf,
    exp,
    ge,
    get_default_dtype,
    get_num_threads,
    gt,
    is_grad_enabled,
    le,
    log,
    log1p,
    lt,
    matmul,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    nonzero,
    pow,
    relu,
    result_type,
    set_default_dtype,
    set_num_threads,
    sigmoid,
    sign,
    sin,
    sqrt,
    sub,
    tanh,
    transpose,
    where,
)
from ._creation import (
    arange,
    empty,
    eye,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    zeros,
    zeros_like,
)
from ._native import cmake_dir, include_dir
from ._tensor import _expand, _mean, _permute, _reshape, _sum, from_dlpack, from_numpy, tensor
from .autograd import detect_anomaly, enable_grad, grad, no_grad, set_grad_enabled
from .compile import compile
from .serialization import load, save
from .trainer import History, Trainer

float32 = dtype.float32
float64 = dtype.float64
int64 = dtype.int64
bool = dtype.bool  # noqa: A001  (PyTorch's name)
float = float32  # noqa: A001
double = float64
long = int64

true_divide = div
divide = div
multiply = mul
subtract = sub
negative = neg


def sum(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    return _sum(input, dim, keepdim, axis=axis, keepdims=keepdims)


def mean(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return _mean(input, dim, keepdim, axis=axis, keepdims=keepdims)


def reshape(input, shape):
    return _reshape(input, shape)


def permute(input, dims):
    return _permute(input, dims)


def broadcast_to(input, size):
    return _expand(input, size)


def clamp(input, min=None, max=None):  # noqa: A002
    return _t._clamp(input, min, max)


clip = clamp


def prod(input, dim=None, keepdim=False, *, axis=None, keepdims=None):
    return _t._prod(input, dim, keepdim, axis=axis, keepdims=keepdims)


def max(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The largest value: max(input) -> 0-d tensor; max(input, dim) -> (values, indices);
    max(a, b) -> maximum."""
    return Tensor.max(input, dim, keepdim, axis=axis, keepdims=keepdims)


def min(input, dim=None, keepdim=False, *, axis=None, keepdims=None):  # noqa: A001
    """The smallest value: min(input) -> 0-d tensor; min(input, dim) -> (values, indices);
    min(a, b) -> minimum."""
    return Tensor.min(input, dim, keepdim, axis=axis, keepdims=keepdims)


def amax(input, dim=(), keepdim=False):
    return _t._amax(input, dim, keepdim)


def amin(input, dim=(), keepdim=False):
    return _t._amin(input, dim, keepdim)


def argmax(input, dim=None, keepdim=False):
    return _t._argmax(input, dim, keepdim)


def argmin(input, dim=None, keepdim=False):
    return _t._argmin(input, dim, keepdim)


def var(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return Tensor.var(input, dim, unbiased, keepdim, correction=correction)


def std(input, dim=None, unbiased=None, keepdim=False, *, correction=None):
    return Tensor.std(input, dim, unbiased, keepdim, correction=correction)


def logsumexp(input, dim, keepdim=False):
    return _t._logsumexp(input, dim, keepdim)


def flatten(input, start_dim=0, end_dim=-1):
    return _t._flatten(input, start_dim, end_dim)


def squeeze(input, dim=None):
    return _t._squeeze(input, dim)


def unsqueeze(input, dim):
    return _t._unsqueeze(input, dim)


def cat(tensors, dim=0):
    return _core._cat(list(tensors), int(dim))


concat = concatenate = cat


def stack(tensors, dim=0):
    return _core._stack(list(tensors), int(dim))


def gather(input, dim, index):
    return _core._gather(input, int(dim), index)


def scatter_add(input, dim, index, src):
    return _core._scatter_add(input, int(dim), index, src)


def index_select(input, dim, index):
    return _core._index_select(input, int(dim), index)


def mm(input, mat2):
    return _core._mm(input, mat2)


def bmm(input, mat2):
    return _core._bmm(input, mat2)


__version__ = "0.1.0"

__all__ = [
    "cmake_dir", "include_dir",
    "Tensor", "dtype", "float32", "float64", "int64", "bool", "float", "double", "long",
    "tensor", "from_numpy", "from_dlpack", "zeros", "ones", "full", "empty", "zeros_like",
    "ones_like", "full_like", "arange", "linspace", "eye", "rand", "randn", "randint",
    "manual_seed", "get_default_dtype", "set_default_dtype", "result_type", "set_num_threads",
    "get_num_threads",
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu",
    "where", "eq", "ne", "lt", "le", "gt", "ge", "matmul", "transpose", "permute", "reshape",
    "broadcast_to", "sum", "mean", "true_divide", "divide", "multiply", "subtract", "negative",
    "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "autograd", "optim", "nn", "testing", "detect_anomaly",
    "abs", "sign", "sqrt", "sin", "cos", "log1p", "erf", "maximum", "minimum", "clamp", "clip",
    "prod", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "logsumexp",
    "flatten", "squeeze", "unsqueeze", "cat", "concat", "concatenate", "stack", "gather",
    "scatter_add", "index_select", "nonzero", "mm", "bmm", "save", "load", "compile",
    "Trainer", "History", "viz",
]  # fmt: skip

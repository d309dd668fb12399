"""bprop: reverse-mode automatic differentiation with a C++ core.

import bprop as bp
w = bp.randn(3, 1, requires_grad=True)
loss = ((bp.tensor([[1.0, 2.0, 3.0]]) @ w - 2.0) ** 2).sum()
loss.backward()          # w.grad == 2 (y_hat - y) x
"""

from __future__ import annotations

from . import autograd, optim
from ._core import (
    Tensor,
    add,
    div,
    dtype,
    eq,
    exp,
    ge,
    get_default_dtype,
    gt,
    is_grad_enabled,
    le,
    log,
    lt,
    matmul,
    mul,
    ne,
    neg,
    pow,
    relu,
    result_type,
    set_default_dtype,
    sigmoid,
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
from ._tensor import _expand, _mean, _permute, _reshape, _sum, from_numpy, tensor
from .autograd import enable_grad, grad, no_grad, set_grad_enabled

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


__version__ = "0.1.0"

__all__ = [
    "Tensor", "dtype", "float32", "float64", "int64", "bool", "float", "double", "long",
    "tensor", "from_numpy", "zeros", "ones", "full", "empty", "zeros_like", "ones_like",
    "full_like", "arange", "linspace", "eye", "rand", "randn", "randint", "manual_seed",
    "get_default_dtype", "set_default_dtype", "result_type",
    "add", "sub", "mul", "div", "pow", "neg", "exp", "log", "tanh", "sigmoid", "relu",
    "where", "eq", "ne", "lt", "le", "gt", "ge", "matmul", "transpose", "permute", "reshape",
    "broadcast_to", "sum", "mean", "true_divide", "divide", "multiply", "subtract", "negative",
    "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled",
    "autograd", "optim",
]  # fmt: skip

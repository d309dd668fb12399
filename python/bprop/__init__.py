"""bprop: reverse-mode automatic differentiation with a C++ core.

import bprop as bp
w = bp.randn(3, 1, requires_grad=True)
loss = ((bp.tensor([[1.0, 2.0, 3.0]]) @ w - 2.0) ** 2).sum()
loss.backward()          # w.grad == 2 (y_hat - y) x
"""

from __future__ import annotations

from . import _core, autograd, nn, optim, testing, viz
from ._core import (
    Tensor,
    abs,
    add,
    bmm,
    cos,
    div,
    dtype,
    eq,
    erf,
    exp,
    gather,
    ge,
    get_default_dtype,
    get_num_threads,
    gt,
    index_add,
    index_select,
    is_grad_enabled,
    le,
    log,
    log1p,
    lt,
    matmul,
    maximum,
    minimum,
    mm,
    mul,
    ne,
    neg,
    nonzero,
    pow,
    relu,
    result_type,
    scatter_add,
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
from ._tensor import (
    amax,
    amin,
    argmax,
    argmin,
    broadcast_to,
    cat,
    clamp,
    clip,
    concat,
    concatenate,
    flatten,
    from_dlpack,
    from_numpy,
    logsumexp,
    max,
    mean,
    min,
    permute,
    prod,
    reshape,
    squeeze,
    stack,
    std,
    sum,
    tensor,
    unsqueeze,
    var,
)
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

# PyTorch's aliases.
true_divide = divide = div
multiply = mul
subtract = sub
negative = neg

__version__ = _core.__version__

# The public names above and the subpackages users reach through bprop (a static list, as
# type checkers need; tests/test_api.py checks it names exactly the public names here).
__all__ = [
    "abs", "add", "amax", "amin", "arange", "argmax", "argmin", "bmm", "bool", "broadcast_to",
    "cat", "clamp", "clip", "cmake_dir", "compile", "concat", "concatenate", "cos",
    "detect_anomaly", "div", "divide", "double", "dtype", "empty", "enable_grad", "eq", "erf",
    "exp", "eye", "flatten", "float", "float32", "float64", "from_dlpack", "from_numpy", "full",
    "full_like", "gather", "ge", "get_default_dtype", "get_num_threads", "grad", "gt", "History",
    "include_dir", "index_add", "index_select", "int64", "is_grad_enabled", "le", "linspace",
    "load", "log", "log1p", "logsumexp", "long", "lt", "manual_seed", "matmul", "max", "maximum",
    "mean", "min", "minimum", "mm", "mul", "multiply", "ne", "neg", "negative", "no_grad",
    "nonzero", "ones", "ones_like", "permute", "pow", "prod", "rand", "randint", "randn", "relu",
    "reshape", "result_type", "save", "scatter_add", "set_default_dtype", "set_grad_enabled",
    "set_num_threads", "sigmoid", "sign", "sin", "sqrt", "squeeze", "stack", "std", "sub",
    "subtract", "sum", "tanh", "Tensor", "tensor", "Trainer", "transpose", "true_divide",
    "unsqueeze", "var", "where", "zeros", "zeros_like", "autograd", "nn", "optim", "testing", "viz",
]  # fmt: skip

"""bprop: reverse-mode automatic differentiation with a C++ core.

import bprop as bp
w = bp.randn(3, 1, requires_grad=True)
loss = ((bp.tensor([[1.0, 2.0, 3.0]]) @ w - 2.0) ** 2).sum()
loss.backward()          # w.grad == 2 (y_hat - y) x
"""

from __future__ import annotations

import types as _types

from . import _core, autograd, nn, optim, testing, viz
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
    mm,
    bmm,
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
    gather,
    index_select,
    logsumexp,
    max,
    mean,
    min,
    permute,
    prod,
    reshape,
    scatter_add,
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

# Every public name above but the modules (the subpackages users reach are added by name).
__all__ = [
    name
    for name, value in list(globals().items())
    if not name.startswith("_") and name != "annotations" and not isinstance(value, _types.ModuleType)
] + ["autograd", "nn", "optim", "testing", "viz"]

"""bprop: reverse-mode automatic differentiation with a C++ core.

import bprop as bp
w = bp.randn(3, 1, requires_grad=True)
loss = ((bp.tensor([[1.0, 2.0, 3.0]]) @ w - 2.0) ** 2).sum()
loss.backward()          # w.grad == 2 (y_hat - y) x
"""

from __future__ import annotations

from . import (  # noqa: F401  (_protocols installs Tensor methods)
    _core,
    _protocols,
    accelerator,
    amp,
    autograd,
    backends,
    cuda,
    distributed,
    nn,
    onnx,
    optim,
    random,
    testing,
    utils,
    viz,
)

# The API bound in C++: the names its bindings export (bprop._core.__all__).
from ._core import *  # noqa: F403
from ._core import div, dtype, mul, neg, sub
from ._creation import (
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randint_like,
    randn,
    randn_like,
    zeros,
    zeros_like,
)
from ._device import bfloat16, device, float16, half
from ._extras import (
    BoolTensor,
    DoubleTensor,
    FloatTensor,
    LongTensor,
    acosh,
    addbmm,
    addcdiv,
    addcmul,
    addmm,
    addmv,
    aminmax,
    argwhere,
    asinh,
    atanh,
    atleast_1d,
    atleast_2d,
    atleast_3d,
    baddbmm,
    bincount,
    block_diag,
    bucketize,
    cartesian_prod,
    cdist,
    channels_last,
    contiguous_format,
    cosh,
    cummax,
    cummin,
    cumprod,
    diag,
    diag_embed,
    diagonal,
    diff,
    erfc,
    get_default_device,
    heaviside,
    histc,
    hypot,
    index_copy,
    isclose,
    kron,
    logaddexp,
    logaddexp2,
    logcumsumexp,
    logit,
    median,
    memory_format,
    meshgrid,
    mode,
    moveaxis,
    movedim,
    nan_to_num,
    nanmean,
    nanquantile,
    nansum,
    preserve_format,
    quantile,
    repeat_interleave,
    rot90,
    searchsorted,
    set_default_device,
    set_printoptions,
    sgn,
    signbit,
    sinh,
    std_mean,
    swapaxes,
    swapdims,
    take_along_dim,
    tan,
    tile,
    trace,
    tril_indices,
    triu_indices,
    unflatten,
    unique,
    unique_consecutive,
    var_mean,
    xlogy,
)
from ._logical import all, any, logical_and, logical_not, logical_or, logical_xor
from ._manipulation import (
    argsort,
    chunk,
    clamp_max,
    clamp_min,
    cumsum,
    flip,
    index_fill,
    masked_fill,
    masked_select,
    narrow,
    roll,
    sort,
    split,
    t,
    topk,
    tril,
    triu,
    unbind,
)
from ._math import (
    Size,
    allclose,
    as_tensor,
    bernoulli,
    ceil,
    count_nonzero,
    dot,
    einsum,
    equal,
    exp2,
    floor,
    floor_divide,
    fmod,
    frac,
    hstack,
    is_floating_point,
    is_tensor,
    isfinite,
    isinf,
    isnan,
    lerp,
    log2,
    log10,
    log_softmax,
    mv,
    norm,
    outer,
    reciprocal,
    remainder,
    round,
    rsqrt,
    scatter,
    softmax,
    square,
    trunc,
    vstack,
)
from ._native import cmake_dir, include_dir
from ._sampling import Generator, multinomial, randperm
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
from .amp import autocast
from .autograd import (
    detect_anomaly,
    enable_grad,
    grad,
    inference_mode,
    is_inference_mode_enabled,
    no_grad,
    set_grad_enabled,
)
from .backends import get_float32_matmul_precision, set_float32_matmul_precision
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

# The names defined in Python above, the subpackages users reach through bprop, and the API
# bound in C++ (static lists, as type checkers need them; tests/test_api.py checks that they
# name exactly the public names here).
__all__ = [
    "amax", "amin", "arange", "argmax", "argmin", "bool", "broadcast_to", "cat", "clamp", "clip",
    "cmake_dir", "compile", "concat", "concatenate", "detect_anomaly", "divide", "double", "empty",
    "enable_grad", "eye", "flatten", "float", "float32", "float64", "from_dlpack", "full",
    "full_like", "grad", "History", "include_dir", "int64", "linspace", "load", "logsumexp",
    "long", "max", "mean", "min", "multiply", "negative", "no_grad", "ones", "ones_like",
    "permute", "prod", "rand", "randint", "randn", "reshape", "save", "set_grad_enabled",
    "squeeze", "stack", "std", "subtract", "sum", "tensor", "Trainer", "true_divide", "unsqueeze",
    "var", "zeros", "zeros_like",
    "autocast", "bfloat16", "device", "float16", "half", "inference_mode",
    "is_inference_mode_enabled", "get_float32_matmul_precision", "set_float32_matmul_precision",
    "all", "any", "logical_and", "logical_not", "logical_or", "logical_xor",
    "Size", "allclose", "bernoulli", "count_nonzero", "dot", "equal", "exp2", "isfinite", "isinf",
    "isnan", "log2", "log10", "log_softmax", "mv", "norm", "outer", "reciprocal", "rsqrt",
    "scatter", "softmax", "square", "as_tensor", "ceil", "einsum", "floor", "floor_divide",
    "fmod", "frac", "hstack", "is_floating_point", "is_tensor", "lerp", "remainder",
    "round", "trunc", "vstack", "empty_like", "rand_like", "randint_like", "randn_like",
    "argsort", "chunk", "clamp_max", "clamp_min", "cumsum", "flip", "index_fill", "masked_fill",
    "masked_select", "narrow", "roll", "sort", "split", "t", "topk", "tril", "triu", "unbind",
    "Generator", "multinomial", "randperm",
    "movedim", "moveaxis", "swapaxes", "swapdims", "unflatten", "tile", "repeat_interleave",
    "diag", "diagonal", "diag_embed", "trace", "tril_indices", "triu_indices", "meshgrid",
    "cartesian_prod", "kron", "cdist", "cumprod", "logcumsumexp", "cummax", "cummin", "diff",
    "aminmax", "nansum", "nanmean", "median", "quantile", "nanquantile", "mode", "std_mean",
    "var_mean", "isclose", "nan_to_num", "logit", "erfc", "sinh", "cosh", "tan", "asinh", "acosh",
    "atanh", "xlogy", "sgn", "signbit", "heaviside", "hypot", "argwhere", "unique",
    "unique_consecutive", "bincount", "histc", "searchsorted", "bucketize", "index_copy",
    "FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor", "memory_format",
    "contiguous_format", "preserve_format", "channels_last", "set_default_device",
    "get_default_device", "set_printoptions",
    "addcmul", "addcdiv", "addmm", "addmv", "baddbmm", "addbmm", "logaddexp", "logaddexp2",
    "rot90", "take_along_dim", "atleast_1d", "atleast_2d", "atleast_3d", "block_diag",
    "accelerator", "amp", "backends", "cuda", "onnx",
    "autograd", "nn", "optim", "random", "testing", "viz",
    "distributed", "utils",
]  # fmt: skip
__all__ += _core.__all__

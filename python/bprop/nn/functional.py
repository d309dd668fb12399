"""bprop.nn.functional, with torch.nn.functional's names and arguments. The work happens in
the C++ core (cpp/src/ops/nn.cpp); this module parses PyTorch's argument forms."""

from __future__ import annotations

import math
import operator
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from .. import _core, _math
from .._arguments import argument_error, as_float, as_int
from .._core import Tensor
from ..autograd import no_grad as _no_grad

__all__ = [
    "relu", "leaky_relu", "gelu", "softplus", "tanh", "sigmoid", "softmax", "log_softmax",
    "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "linear",
    "conv2d", "max_pool2d", "avg_pool2d", "dropout", "unfold", "fold",
    "l1_loss", "smooth_l1_loss", "binary_cross_entropy", "one_hot", "pad", "normalize",
    "conv1d", "conv_transpose2d", "batch_norm", "max_pool1d", "avg_pool1d",
    "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool2d",
    "embedding", "layer_norm", "rms_norm", "group_norm", "silu", "scaled_dot_product_attention",
    "elu", "celu", "selu", "hardtanh", "relu6", "hardsigmoid", "hardswish", "mish", "softsign",
    "tanhshrink", "logsigmoid", "softmin", "glu", "threshold", "prelu", "rrelu", "hardshrink",
    "softshrink", "cosine_similarity", "pairwise_distance", "pdist", "dropout1d", "dropout2d",
    "dropout3d", "alpha_dropout", "feature_alpha_dropout", "interpolate", "upsample",
    "pixel_shuffle", "pixel_unshuffle", "instance_norm", "bilinear", "kl_div", "huber_loss",
    "soft_margin_loss", "margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
    "triplet_margin_loss", "poisson_nll_loss", "gaussian_nll_loss", "multilabel_soft_margin_loss",
    "multi_margin_loss", "relu_", "leaky_relu_", "elu_", "celu_", "selu_", "hardtanh_", "rrelu_",
    "threshold_", "channel_shuffle", "triplet_margin_with_distance_loss", "multilabel_margin_loss",
    "gumbel_softmax", "affine_grid", "grid_sample", "ctc_loss", "local_response_norm",
]  # fmt: skip

_REDUCTIONS = {
    "none": _core.Reduction.none,
    "mean": _core.Reduction.mean,
    "sum": _core.Reduction.sum,
}


def _reduction(op: str, reduction: str):
    try:
        return _REDUCTIONS[reduction]
    except (KeyError, TypeError):
        raise ValueError(
            f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}"
        ) from None


def _int_items(op: str, name: str, position: int | None, values) -> list[int]:
    """The items of a tuple or list argument as ints; PyTorch's TypeError naming op, the
    argument and the first item that is not an int."""
    out = []
    for i, item in enumerate(values):
        if type(item) is not int:
            try:
                item = operator.index(item)
            except TypeError:
                error = argument_error(op, name, position, "tuple of ints", values)
                raise TypeError(
                    f"{str(error).rsplit(', not ', 1)[0]}, but found element of type "
                    f"{type(item).__name__} at pos {i}"
                ) from None
        out.append(item)
    return out


def _pair(op: str, name: str, position: int | None, value) -> tuple:
    """An int or a pair of ints (argument `name`, at `position`, of op) as a pair."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"[{op}] {name} must be an int or a pair of ints, got {value!r}")
        return tuple(_int_items(op, name, position, value))
    if type(value) is not int:
        try:
            value = operator.index(value)
        except TypeError:
            raise argument_error(op, name, position, "tuple of ints", value) from None
    return value, value


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.clamp_(min=0) if inplace else _core.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = _core._leaky_relu(input, as_float("leaky_relu", "negative_slope", 2, negative_slope))
    return input.copy_(out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")
    return _core._gelu(input, approximate == "tanh")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    beta = as_float("softplus", "beta", 2, beta)
    return _core._softplus(input, beta, as_float("softplus", "threshold", 3, threshold))


def tanh(input: Tensor) -> Tensor:
    return _core.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return _core.sigmoid(input)


def _softmax_dim(op: str, input: Tensor, dim: int | None) -> int:
    """dim, or PyTorch's legacy choice when it is None (0 for 0-, 1- and 3-d input, else 1),
    with PyTorch's deprecation warning."""
    if not isinstance(input, Tensor):
        raise argument_error(op, "input", 1, "Tensor", input)
    if dim is not None:
        return as_int(op, "dim", 2, dim)
    warnings.warn(
        f"Implicit dimension choice for {op} has been deprecated. Change the call to include "
        "dim=X as an argument.",
        UserWarning,
        stacklevel=3,
    )
    return 0 if input.ndim in (0, 1, 3) else 1


def softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: _core.dtype | None = None
) -> Tensor:
    """exp(x) / sum(exp(x)) along dim (after converting to dtype, if given)."""
    return _math.softmax(input, _softmax_dim("softmax", input, dim), dtype)


def log_softmax(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: _core.dtype | None = None
) -> Tensor:
    """x - logsumexp(x) along dim (after converting to dtype, if given)."""
    return _math.log_softmax(input, _softmax_dim("log_softmax", input, dim), dtype)


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
) -> Tensor:
    return _core._nll_loss(
        input, target, weight, _reduction("nll_loss", reduction), int(ignore_index)
    )


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    return _core._cross_entropy(
        input,
        target,
        weight,
        _reduction("cross_entropy", reduction),
        int(ignore_index),
        float(label_smoothing),
    )


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """The squared error (input - target)^2, each term scaled by weight when given, reduced
    by mean (over the elements), sum, or none."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _elementwise_pair("mse_loss", input, target)
    if weight is None:
        return _core._mse_loss(input, target, _reduction("mse_loss", reduction))
    terms = _core._mse_loss(input, target, _reduction("mse_loss", "none")) * weight
    if reduction == "none":
        return terms
    return terms.sum() if reduction == "sum" else terms.mean()


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction="mean", pos_weight=None
) -> Tensor:
    op = "binary_cross_entropy_with_logits"
    if isinstance(input, Tensor) and isinstance(target, Tensor) and target.shape != input.shape:
        raise ValueError(
            f"[{op}] Target size ({tuple(target.shape)}) must be the same as input size "
            f"({tuple(input.shape)})"
        )
    return _core._binary_cross_entropy_with_logits(
        input, target, weight, _reduction(op, reduction), pos_weight
    )


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    return _core._linear(input, weight, bias)


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1) -> Tensor:
    return _core._conv2d(
        input,
        weight,
        bias,
        _pair("conv2d", "stride", 4, stride),
        _pair("conv2d", "padding", 5, padding),
        _pair("conv2d", "dilation", 6, dilation),
        int(groups),
    )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    kernel = _pair("max_pool2d", "kernel_size", 2, kernel_size)
    stride = kernel if stride is None else _pair("max_pool2d", "stride", 3, stride)
    return _core._max_pool2d(
        input,
        kernel,
        stride,
        _pair("max_pool2d", "padding", 4, padding),
        _pair("max_pool2d", "dilation", 5, dilation),
    )


def avg_pool2d(input, kernel_size, stride=None, padding=0) -> Tensor:
    kernel = _pair("avg_pool2d", "kernel_size", 2, kernel_size)
    stride = kernel if stride is None else _pair("avg_pool2d", "stride", 3, stride)
    return _core._avg_pool2d(input, kernel, stride, _pair("avg_pool2d", "padding", 4, padding))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: (N, C, H, W) -> (N, C * kh * kw, L), as torch.nn.functional.unfold."""
    return _core._unfold2d(
        input,
        _pair("unfold", "kernel_size", 2, kernel_size),
        _pair("unfold", "stride", 5, stride),
        _pair("unfold", "padding", 4, padding),
        _pair("unfold", "dilation", 3, dilation),
        0.0,
    )


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of unfold, for a (N, C * kh * kw, L) input."""
    kernel = _pair("fold", "kernel_size", 3, kernel_size)
    height, width = _pair("fold", "output_size", 2, output_size)
    n, ckk = input.shape[0], input.shape[1]
    channels = ckk // (kernel[0] * kernel[1])
    return _core._fold2d(
        input,
        (n, channels, height, width),
        kernel,
        _pair("fold", "stride", 6, stride),
        _pair("fold", "padding", 5, padding),
        _pair("fold", "dilation", 4, dilation),
    )


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    out = _core._dropout(input, as_float("dropout", "p", 2, p), bool(training))
    return input.copy_(out) if inplace else out


# ---- convolutions, batch norm, losses, padding (composed from the ops above) ----


def _legacy_reduction(size_average: bool | None, reduce: bool | None, reduction: str) -> str:
    """PyTorch's deprecated size_average/reduce pair, mapped onto reduction as torch maps it."""
    if size_average is None and reduce is None:
        return reduction
    warnings.warn(
        "size_average and reduce args will be deprecated, please use reduction="
        f"'{'none' if reduce is False else 'mean' if size_average is not False else 'sum'}' "
        "instead.",
        UserWarning,
        stacklevel=3,
    )
    if reduce is False:
        return "none"
    return "sum" if size_average is False else "mean"


def _reduce(op: str, loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"[{op}] reduction must be 'mean', 'sum' or 'none', got {reduction!r}")


def _elementwise_pair(op: str, input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """input and target, once both are checked to be tensors; warns, as PyTorch does, when
    their shapes differ (they broadcast)."""
    if not isinstance(input, Tensor):
        raise argument_error(op, "input", 1, "Tensor", input)
    if not isinstance(target, Tensor):
        raise argument_error(op, "target", 2, "Tensor", target)
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"[{op}] Using a target size ({tuple(target.shape)}) that is different to the "
            f"input size ({tuple(input.shape)}). This will likely lead to incorrect results "
            "due to broadcasting. Please ensure they have the same size.",
            UserWarning,
            stacklevel=3,
        )
    return input, target


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Mean absolute error ``|input - target|``, reduced as `reduction` says; with `weight`
    (input's shape) the errors are weighted and 'mean' divides by the sum of the weights."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _elementwise_pair("l1_loss", input, target)
    _reduction("l1_loss", reduction)
    errors = (input - target).abs()
    if weight is None:
        return _reduce("l1_loss", errors, reduction)
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError(
            f"[l1_loss] weight and input must have the same size, got {tuple(weight.shape)} "
            f"and {tuple(input.shape)}"
        )
    errors = errors * weight
    if reduction == "mean":
        return errors.sum() / weight.sum()
    return _reduce("l1_loss", errors, reduction)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """Huber-like loss: ``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta``
    (the L1 loss when beta is 0)."""
    reduction = _legacy_reduction(size_average, reduce, reduction)
    input, target = _elementwise_pair("smooth_l1_loss", input, target)
    _reduction("smooth_l1_loss", reduction)
    beta = float(beta)
    if beta < 0:
        raise RuntimeError(f"[smooth_l1_loss] beta must be non-negative, got {beta}")
    d = (input - target).abs()
    if beta == 0.0:
        return _reduce("smooth_l1_loss", d, reduction)
    loss = _core.where(d < beta, d * d * (0.5 / beta), d - 0.5 * beta)
    return _reduce("smooth_l1_loss", loss, reduction)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``-(t log p + (1 - t) log(1 - p))`` for probabilities p in [0, 1], each log clamped
    at -100 as PyTorch does."""
    if not isinstance(input, Tensor):
        raise argument_error("binary_cross_entropy", "input", 1, "Tensor", input)
    if not isinstance(target, Tensor):
        raise argument_error("binary_cross_entropy", "target", 2, "Tensor", target)
    reduction = _legacy_reduction(size_average, reduce, reduction)
    _reduction("binary_cross_entropy", reduction)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"[binary_cross_entropy] Using a target size ({tuple(target.shape)}) that is "
            f"different to the input size ({tuple(input.shape)}) is deprecated. Please "
            "ensure they have the same size."
        )
    log_p = input.log().clamp(min=-100.0)
    log_q = (1.0 - input).log().clamp(min=-100.0)
    loss = -(target * log_p + (1.0 - target) * log_q)
    if weight is not None:
        loss = loss * weight
    return _reduce("binary_cross_entropy", loss, reduction)


def one_hot(tensor: Tensor, num_classes: int = -1) -> Tensor:
    """int64 tensor of shape ``(*tensor.shape, num_classes)``: 1 where the last index equals
    the value, 0 elsewhere. num_classes=-1 takes the largest value + 1."""
    if not isinstance(tensor, Tensor):
        raise argument_error("one_hot", "tensor", 1, "Tensor", tensor)
    if tensor.dtype != _core.dtype.int64:
        raise RuntimeError(
            f"[one_hot] one_hot is only applicable to index tensor of type int64, "
            f"got {tensor.dtype}"
        )
    num_classes = int(num_classes)
    if tensor.numel() == 0:
        if num_classes <= 0:
            raise RuntimeError("[one_hot] Can not infer total number of classes from empty tensor.")
    else:
        if int(tensor.min()) < 0:
            raise RuntimeError("[one_hot] Class values must be non-negative.")
        largest = int(tensor.max())
        if num_classes == -1:
            num_classes = largest + 1
        elif largest >= num_classes:
            raise RuntimeError(
                f"[one_hot] Class values must be smaller than num_classes ({num_classes}), "
                f"got {largest}."
            )
    if num_classes < 0:
        raise RuntimeError(f"[one_hot] num_classes must be -1 or non-negative, got {num_classes}")
    classes = _core._arange(0.0, float(num_classes), 1.0, _core.dtype.int64)
    return _core.eq(tensor.unsqueeze(-1), classes).to(_core.dtype.int64)


def _pad_indices(size: int, before: int, after: int, mode: str) -> Tensor:
    """Source positions of a padded dim of `size` entries (reflect: pads < size; circular:
    pads <= size), made by tensor ops so that bp.compile can record them."""
    i = _core._arange(-before, size + after, 1, _core.dtype.int64)
    if mode == "reflect":
        last = size - 1
        return (i.abs() - last).abs().neg() + last  # last - |last - |i||
    if mode == "replicate":
        return i.clamp(0, size - 1)
    return _core.where(i < 0, i + size, _core.where(i >= size, i - size, i))


def pad(
    input: Tensor, pad: Sequence[int], mode: str = "constant", value: float | None = None
) -> Tensor:
    """Pads (or, with negative amounts, crops) the last ``len(pad) // 2`` dims:
    ``pad = (last_before, last_after, second_last_before, ...)``. mode 'constant' fills with
    `value` (0 by default) on any number of dims; 'reflect', 'replicate' and 'circular' pad
    the last one or two dims of a batched or unbatched input, as PyTorch's 1-d and 2-d modes."""
    if not isinstance(pad, (tuple, list)):
        raise argument_error("pad", "pad", 2, "tuple of ints", pad)
    pad = _int_items("pad", "pad", 2, pad)
    if len(pad) % 2 or len(pad) // 2 > input.ndim:
        raise ValueError(
            f"[pad] padding length must be even and at most twice the input's dims "
            f"({input.ndim}), got {len(pad)}"
        )
    if mode == "constant":
        fill = 0.0 if value is None else float(value)
        out = input
        for k in range(len(pad) // 2):
            dim = input.ndim - 1 - k
            before, after = pad[2 * k], pad[2 * k + 1]
            size = out.shape[dim]
            if size + before + after < 0 or (before < 0 and after < 0 and -before - after > size):
                raise RuntimeError(
                    f"[pad] the padded size of dim {dim} ({size} + {before} + {after}) is negative"
                )
            if before < 0 or after < 0:
                index = [slice(None)] * out.ndim
                index[dim] = slice(max(-before, 0), size - max(-after, 0))
                out = out[tuple(index)]
            parts = []
            for amount in (before, after):
                if amount > 0:
                    shape = list(out.shape)
                    shape[dim] = amount
                    parts.append(_core._full(tuple(shape), fill, out.dtype))
                else:
                    parts.append(None)
            if parts[0] is not None or parts[1] is not None:
                pieces = [p for p in (parts[0], out, parts[1]) if p is not None]
                out = _core._cat(pieces, dim)
        return out
    if mode not in ("reflect", "replicate", "circular"):
        raise NotImplementedError(
            f"[pad] mode must be 'constant', 'reflect', 'replicate' or 'circular', got {mode!r}"
        )
    if value is not None and value != 0:
        raise ValueError(f"[pad] padding mode {mode!r} doesn't take in value argument")
    dims = len(pad) // 2
    if dims > 3 or input.ndim not in (dims + 1, dims + 2):
        raise NotImplementedError(
            f"[pad] mode {mode!r} pads the last 1, 2 or 3 dims of a 2-d/3-d, 3-d/4-d or 4-d/5-d "
            "input; "
            f"got pad of length {len(pad)} for a {input.ndim}-d input"
        )
    out = input
    for k in range(dims):
        dim = input.ndim - 1 - k
        before, after = pad[2 * k], pad[2 * k + 1]
        size = input.shape[dim]
        if mode == "reflect" and (before >= size or after >= size):
            raise RuntimeError(
                f"[pad] reflect padding ({before}, {after}) must be smaller than the input "
                f"size {size} of dim {dim}"
            )
        if mode == "circular" and (before > size or after > size):
            raise RuntimeError(
                f"[pad] circular padding ({before}, {after}) must be at most the input "
                f"size {size} of dim {dim}"
            )
        if size == 0:
            raise RuntimeError(f"[pad] cannot {mode}-pad dim {dim} of size 0")
        out = _core.index_select(out, dim, _pad_indices(size, before, after, mode))
    return out


def normalize(
    input: Tensor, p: float = 2.0, dim: int = 1, eps: float = 1e-12, out: Tensor | None = None
) -> Tensor:
    """``input / max(||input||_p, eps)`` along `dim`."""
    if out is not None:
        raise TypeError("[normalize] out= is not supported")
    p = as_float("normalize", "p", 2, p)
    dim = as_int("normalize", "dim", 3, dim)
    eps = as_float("normalize", "eps", 4, eps)
    if p == 2.0:
        norm = (input * input).sum(dim=dim, keepdim=True).sqrt()
    elif p == 1.0:
        norm = input.abs().sum(dim=dim, keepdim=True)
    elif p == float("inf"):
        norm = input.abs().amax(dim=dim, keepdim=True)
    else:
        norm = input.abs().pow(p).sum(dim=dim, keepdim=True).pow(1.0 / p)
    return input / norm.clamp(min=float(eps)).expand_as(input)


def _single(op: str, name: str, position: int | None, value: int | Sequence[int]) -> int:
    """An int or a 1-tuple of one (argument `name`, at `position`, of op) as an int."""
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"[{op}] {name} must be an int or a 1-tuple, got {value!r}")
        return _int_items(op, name, position, value)[0]
    if type(value) is not int:
        try:
            value = operator.index(value)
        except TypeError:
            raise argument_error(op, name, position, "tuple of ints", value) from None
    return value


def _same_padding(op: str, kernel: Sequence[int], dilation: Sequence[int], stride: Sequence[int]):
    """(before, after) per dim for padding='same' (stride 1 only), as PyTorch splits it."""
    if any(s != 1 for s in stride):
        raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
    out = []
    for k, d in zip(kernel, dilation):
        total = d * (k - 1)
        out.append((total // 2, total - total // 2))
    return out


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: str | int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> Tensor:
    """1-d convolution of a (N, C_in, L) or unbatched (C_in, L) input with a
    (C_out, C_in / groups, K) weight: conv2d over a height of 1."""
    if not isinstance(input, Tensor):
        raise argument_error("conv1d", "input", 1, "Tensor", input)
    if not isinstance(weight, Tensor):
        raise argument_error("conv1d", "weight", 2, "Tensor", weight)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"[conv1d] expected a 2-d (unbatched) or 3-d (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    if weight.ndim != 3:
        raise RuntimeError(
            f"[conv1d] weight must be 3-d (out_channels, in_channels / groups, kernel), got "
            f"shape {tuple(weight.shape)}"
        )
    stride_ = _single("conv1d", "stride", 4, stride)
    dilation_ = _single("conv1d", "dilation", 6, dilation)
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    if isinstance(padding, str):
        if padding == "valid":
            padding_ = 0
        elif padding == "same":
            ((before, after),) = _same_padding(
                "conv1d", (weight.shape[2],), (dilation_,), (stride_,)
            )
            padding_ = before
            if before != after:
                x = pad(x, (0, after - before))
        else:
            raise ValueError(f"[conv1d] padding must be 'valid', 'same' or an int, got {padding!r}")
    else:
        padding_ = _single("conv1d", "padding", 5, padding)
    out = conv2d(
        x.unsqueeze(2),
        weight.unsqueeze(2),
        bias,
        (1, stride_),
        (0, padding_),
        (1, dilation_),
        groups,
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out


def conv_transpose2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0,
    groups: int = 1,
    dilation: int | Sequence[int] = 1,
) -> Tensor:
    """The transposed 2-d convolution (the gradient of conv2d with respect to its input) of a
    (N, C_in, H, W) or unbatched (C_in, H, W) input with a (C_in, C_out / groups, kh, kw)
    weight: each group's weight^T @ input gives the columns that fold (col2im) scatters."""
    op = "conv_transpose2d"
    if input.ndim not in (3, 4):
        raise RuntimeError(
            f"[{op}] expected a 3-d (unbatched) or 4-d (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    if weight.ndim != 4:
        raise RuntimeError(
            f"[{op}] weight must be 4-d (in_channels, out_channels / groups, kh, kw), got "
            f"shape {tuple(weight.shape)}"
        )
    groups = int(groups)
    stride_ = _pair(op, "stride", 4, stride)
    padding_ = _pair(op, "padding", 5, padding)
    out_pad = _pair(op, "output_padding", 6, output_padding)
    dilation_ = _pair(op, "dilation", 8, dilation)
    unbatched = input.ndim == 3
    x = input.unsqueeze(0) if unbatched else input
    n, c_in, h, w = x.shape
    c_in_w, c_out_g, kh, kw = weight.shape
    if groups <= 0 or c_in % groups:
        raise RuntimeError(
            f"[{op}] groups must be positive and divide in_channels ({c_in}), got {groups}"
        )
    if c_in_w != c_in:
        raise RuntimeError(
            f"[{op}] input has {c_in} channels but weight {tuple(weight.shape)} expects {c_in_w}"
        )
    for s, d, o in zip(stride_, dilation_, out_pad):
        if s <= 0 or d <= 0 or min(padding_) < 0 or o < 0 or not (o < s or o < d):
            raise RuntimeError(
                f"[{op}] stride {stride_} and dilation {dilation_} must be positive, padding "
                f"{padding_} non-negative, and output_padding {out_pad} smaller than either "
                "stride or dilation"
            )
    c_out = c_out_g * groups
    full = [
        (size - 1) * s + d * (k - 1) + 1
        for size, s, d, k in zip((h, w), stride_, dilation_, (kh, kw))
    ]
    out_size = [f - 2 * p + o for f, p, o in zip(full, padding_, out_pad)]
    if min(out_size) <= 0:
        raise RuntimeError(f"[{op}] the output size {tuple(out_size)} is too small")
    xg = x.reshape(n, groups, c_in // groups, h * w)
    wg = weight.reshape(groups, c_in // groups, c_out_g * kh * kw).transpose(1, 2)
    cols = (wg @ xg).reshape(n, c_out * kh * kw, h * w)
    out = _core._fold2d(cols, (n, c_out, full[0], full[1]), (kh, kw), stride_, (0, 0), dilation_)
    if any(padding_) or any(out_pad):
        # crop the padding off both ends; output_padding past the scattered extent is zeros
        out = pad(
            out,
            (-padding_[1], out_pad[1] - padding_[1], -padding_[0], out_pad[0] - padding_[0]),
        )
    if bias is not None:
        out = out + bias.reshape(1, c_out, 1, 1)
    return out.squeeze(0) if unbatched else out


def _batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None,
    bias: Tensor | None,
    training: bool,
    momentum: float | Tensor,
    eps: float,
) -> Tensor:
    """batch_norm with a momentum that may be a 0-d tensor, so that BatchNorm's cumulative
    average (factor 1 / num_batches_tracked) is computed by tensor ops and stays capturable."""
    op = "batch_norm"
    if input.ndim < 2:
        raise ValueError(
            f"[{op}] expected an input of 2 or more dims, got shape {tuple(input.shape)}"
        )
    channels = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and tuple(t.shape) != (channels,):
            raise RuntimeError(
                f"[{op}] {name} should contain {channels} elements, got shape {tuple(t.shape)}"
            )
    if eps < 0 or (training and eps == 0):
        raise ValueError(
            f"[{op}] eps must be positive during training and non-negative otherwise, got {eps}"
        )
    dims = (0, *range(2, input.ndim))
    shape = (1, channels) + (1,) * (input.ndim - 2)
    if training:
        count = input.numel() // max(channels, 1)
        if count <= 1:
            raise ValueError(
                f"[{op}] Expected more than 1 value per channel when training, got input size "
                f"{tuple(input.shape)}"
            )
        mean = input.mean(dim=dims, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(dim=dims, keepdim=True)
        out = centred / (var + eps).sqrt()
        if running_mean is not None or running_var is not None:
            with _no_grad():
                keep = 1.0 - momentum
                if running_mean is not None:
                    running_mean.mul_(keep).add_(mean.detach().reshape(channels) * momentum)
                if running_var is not None:
                    unbiased = var.detach().reshape(channels) * (count / (count - 1))
                    running_var.mul_(keep).add_(unbiased * momentum)
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(
                f"[{op}] running_mean and running_var must be defined in evaluation mode"
            )
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalises each channel (dim 1) of input. training=True: by the batch's mean and biased
    variance, updating the running statistics in place (when given) as
    ``running = (1 - momentum) * running + momentum * batch`` with the unbiased variance;
    training=False: by running_mean and running_var. Then scales by weight, shifts by bias."""
    return _batch_norm(
        input, running_mean, running_var, weight, bias, bool(training), float(momentum), float(eps)
    )


def _unsupported(op: str, **flags: bool) -> None:
    for name, value in flags.items():
        if value:
            raise NotImplementedError(f"[{op}] {name}=True is not supported")


def _pool1d_input(op: str, input: Tensor) -> tuple[Tensor, bool]:
    """(N, C, 1, L) for 2-d pooling, and whether input was unbatched (C, L)."""
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"[{op}] expected a 2-d (unbatched) or 3-d (batched) input, got shape "
            f"{tuple(input.shape)}"
        )
    unbatched = input.ndim == 2
    x = input.unsqueeze(0) if unbatched else input
    return x.unsqueeze(2), unbatched


def max_pool1d(
    input: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Tensor:
    """Largest value of each window along the last dim of (N, C, L) or (C, L) input."""
    _unsupported("max_pool1d", ceil_mode=ceil_mode, return_indices=return_indices)
    x, unbatched = _pool1d_input("max_pool1d", input)
    kernel = _single("max_pool1d", "kernel_size", 2, kernel_size)
    step = kernel if stride is None else _single("max_pool1d", "stride", 3, stride)
    out = max_pool2d(
        x,
        (1, kernel),
        (1, step),
        (0, _single("max_pool1d", "padding", 4, padding)),
        (1, _single("max_pool1d", "dilation", 5, dilation)),
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out


def avg_pool1d(
    input: Tensor,
    kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """Mean of each window along the last dim of (N, C, L) or (C, L) input (zero padding
    counted in the mean, PyTorch's default)."""
    _unsupported("avg_pool1d", ceil_mode=ceil_mode, count_include_pad=not count_include_pad)
    x, unbatched = _pool1d_input("avg_pool1d", input)
    kernel = _single("avg_pool1d", "kernel_size", 2, kernel_size)
    step = kernel if stride is None else _single("avg_pool1d", "stride", 3, stride)
    out = avg_pool2d(
        x, (1, kernel), (1, step), (0, _single("avg_pool1d", "padding", 4, padding))
    ).squeeze(2)
    return out.squeeze(0) if unbatched else out


def _adaptive(x: Tensor, dim: int, out: int, reduce: str) -> Tensor:
    """Pools dim down to `out` bins, bin i covering [floor(i n / out), ceil((i + 1) n / out))."""
    size = x.shape[dim]
    if out == size:
        return x
    if size % out == 0:
        split = x.reshape(*x.shape[:dim], out, size // out, *x.shape[dim + 1 :])
        return split.mean(dim=dim + 1) if reduce == "mean" else split.amax(dim=dim + 1)
    parts = []
    for i in range(out):
        start, end = (i * size) // out, -((-(i + 1) * size) // out)
        index = [slice(None)] * x.ndim
        index[dim] = slice(start, end)
        window = x[tuple(index)]
        if reduce == "mean":
            parts.append(window.mean(dim=dim, keepdim=True))
        else:
            parts.append(window.amax(dim=dim, keepdim=True))
    return _core._cat(parts, dim)


def _adaptive_pool(op: str, input: Tensor, output_size: object, dims: int, reduce: str) -> Tensor:
    if input.ndim not in (dims + 1, dims + 2):
        raise RuntimeError(
            f"[{op}] expected a {dims + 1}-d (unbatched) or {dims + 2}-d (batched) input, got "
            f"shape {tuple(input.shape)}"
        )
    if isinstance(output_size, (tuple, list)):
        sizes = list(output_size)
    elif output_size is None or type(output_size) is int or hasattr(output_size, "__index__"):
        sizes = [output_size] * dims
    else:
        raise argument_error(op, "output_size", 2, "tuple of ints", output_size)
    for i, size in enumerate(sizes):
        if size is not None and type(size) is not int:
            sizes[i] = _int_items(op, "output_size", 2, [size])[0]
    if len(sizes) != dims:
        raise ValueError(f"[{op}] output_size must have {dims} elements, got {output_size!r}")
    out = input
    for k, size in enumerate(sizes):
        dim = input.ndim - dims + k
        size = input.shape[dim] if size is None else int(size)
        if size <= 0 or input.shape[dim] == 0:
            raise RuntimeError(
                f"[{op}] output_size {output_size!r} must be positive, for an input of non-empty "
                f"dims {tuple(input.shape)}"
            )
        out = _adaptive(out, dim, size, reduce)
    return out


def adaptive_avg_pool1d(input: Tensor, output_size: int | Sequence[int]) -> Tensor:
    """Means over `output_size` near-equal bins of the last dim of (N, C, L) or (C, L) input."""
    return _adaptive_pool("adaptive_avg_pool1d", input, output_size, 1, "mean")


def adaptive_avg_pool2d(input: Tensor, output_size: int | None | Sequence[int | None]) -> Tensor:
    """Means over near-equal bins of the last two dims of (N, C, H, W) or (C, H, W) input;
    None in output_size keeps that dim's size."""
    return _adaptive_pool("adaptive_avg_pool2d", input, output_size, 2, "mean")


def adaptive_max_pool2d(
    input: Tensor, output_size: int | None | Sequence[int | None], return_indices: bool = False
) -> Tensor:
    """Largest values over near-equal bins of the last two dims of (N, C, H, W) or (C, H, W)
    input; None in output_size keeps that dim's size."""
    _unsupported("adaptive_max_pool2d", return_indices=return_indices)
    return _adaptive_pool("adaptive_max_pool2d", input, output_size, 2, "max")


# ---- embeddings, normalisation, attention (composed of bprop ops: autograd gives the VJPs) ----


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of weight picked by the int64 indices in input (any shape): the result has shape
    input.shape + (embedding_dim,). The padding_idx row gets no gradient. max_norm,
    scale_grad_by_freq and sparse are not supported yet (NotImplementedError)."""
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError(
            "[embedding] max_norm, scale_grad_by_freq and sparse are not supported yet"
        )
    if input.dtype != _core.dtype.int64:
        raise RuntimeError(f"[embedding] indices must be an int64 tensor, got {input.dtype}")
    if weight.ndim != 2:
        raise RuntimeError(f"[embedding] weight must be 2-D, got shape {tuple(weight.shape)}")
    rows = weight.shape[0]
    try:
        out = weight.index_select(0, input.reshape(-1))
    except IndexError as error:
        message = str(error).replace("[index_select] ", "", 1)
        raise IndexError(f"[embedding] {message} (num_embeddings)") from None
    out = out.reshape(*input.shape, weight.shape[1])
    if padding_idx is not None:
        padding_idx = _padding_index(padding_idx, rows)
        # Forward unchanged; the gradient reaching the padding row is cut.
        out = _core.where((input == padding_idx).unsqueeze(-1), out.detach(), out)
    return out


def _padding_index(padding_idx: int, rows: int) -> int:
    if not -rows <= padding_idx < rows:
        raise ValueError(
            f"[embedding] padding_idx {padding_idx} must be within num_embeddings ({rows})"
        )
    return padding_idx + rows if padding_idx < 0 else padding_idx


def _normalized_dims(op: str, input: Tensor, normalized_shape: int | Sequence[int]) -> tuple:
    if isinstance(normalized_shape, int):
        shape = (normalized_shape,)
    elif isinstance(normalized_shape, (tuple, list)) or hasattr(normalized_shape, "__iter__"):
        shape = tuple(_int_items(op, "normalized_shape", 2, list(normalized_shape)))
    else:
        raise argument_error(op, "normalized_shape", 2, "tuple of ints", normalized_shape)
    if input.ndim < len(shape) or not shape or tuple(input.shape[-len(shape) :]) != shape:
        raise RuntimeError(
            f"[{op}] normalized_shape={list(shape)} does not match the trailing dimensions of "
            f"an input of shape {tuple(input.shape)}"
        )
    return tuple(range(-len(shape), 0))


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """(x - mean) / sqrt(var + eps) over the trailing normalized_shape dimensions (biased
    variance), then * weight + bias where given, as torch.nn.functional.layer_norm."""
    dims = _normalized_dims("layer_norm", input, normalized_shape)
    return _core._layer_norm(input, len(dims), weight, bias, as_float("layer_norm", "eps", 5, eps))


def rms_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    eps: float | None = None,
) -> Tensor:
    """x / sqrt(mean(x^2) + eps) over the trailing normalized_shape dimensions, then * weight;
    eps=None is the machine epsilon of input's dtype (as torch.nn.functional.rms_norm)."""
    dims = _normalized_dims("rms_norm", input, normalized_shape)
    if eps is None:
        eps = float(np.finfo(np.float64 if input.dtype == _core.dtype.float64 else np.float32).eps)
    return _core._rms_norm(input, len(dims), weight, as_float("rms_norm", "eps", 4, eps))


def group_norm(
    input: Tensor,
    num_groups: int,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalises each of num_groups channel groups of an ``(N, C, *)`` input over its
    channels and positions, then ``* weight + bias`` per channel, as
    torch.nn.functional.group_norm."""
    if input.ndim < 2:
        raise RuntimeError(
            f"[group_norm] expected an input of at least 2 dimensions (N, C, *), got shape "
            f"{tuple(input.shape)}"
        )
    num_groups = as_int("group_norm", "num_groups", 2, num_groups)
    n, channels = input.shape[0], input.shape[1]
    if num_groups <= 0 or channels % num_groups:
        raise RuntimeError(
            f"[group_norm] expected the number of channels ({channels}) to be divisible by "
            f"num_groups ({num_groups})"
        )
    grouped = input.reshape(n, num_groups, -1)
    centered = grouped - grouped.mean(dim=-1, keepdim=True)
    variance = (centered * centered).mean(dim=-1, keepdim=True)
    out = (centered / (variance + float(eps)).sqrt()).reshape(*input.shape)
    per_channel = (channels,) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(*per_channel)
    if bias is not None:
        out = out + bias.reshape(*per_channel)
    return out


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """x * sigmoid(x) (the swish), as torch.nn.functional.silu."""
    out = input * _core.sigmoid(input)
    return input.copy_(out) if inplace else out


def _causal_mask(query_len: int, key_len: int) -> Tensor:
    """(L, S) bool, True on and below the diagonal (torch's ones(L, S).tril())."""
    rows = _core._arange(0, query_len, 1, _core.dtype.int64).unsqueeze(-1)
    return rows >= _core._arange(0, key_len, 1, _core.dtype.int64)


def _repeat_heads(t: Tensor, repeats: int) -> Tensor:
    """(..., H, S, E) -> (..., H * repeats, S, E), each head repeated (repeat_interleave)."""
    if repeats == 1:
        return t
    *batch, heads, length, width = t.shape
    expanded = t.unsqueeze(-3).expand(*batch, heads, repeats, length, width)
    return expanded.reshape(*batch, heads * repeats, length, width)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """softmax(Q K^T * scale + mask) V over the last two dimensions (..., L, E) x (..., S, E),
    as torch.nn.functional.scaled_dot_product_attention: scale defaults to 1/sqrt(E); a bool
    attn_mask is True where attention is allowed, a float one is added to the scores;
    is_causal masks the positions above the diagonal; dropout_p drops attention weights;
    enable_gqa lets key and value have fewer heads (dimension -3) than query."""
    op = "scaled_dot_product_attention"
    if query.ndim < 2 or key.ndim < 2 or value.ndim < 2:
        raise RuntimeError(f"[{op}] query, key and value need at least 2 dimensions")
    if query.shape[-1] != key.shape[-1] or key.shape[-2] != value.shape[-2]:
        raise RuntimeError(
            f"[{op}] shapes query {tuple(query.shape)}, key {tuple(key.shape)}, value "
            f"{tuple(value.shape)} do not fit (..., L, E), (..., S, E), (..., S, Ev)"
        )
    if is_causal and attn_mask is not None:
        raise RuntimeError(f"[{op}] an explicit attn_mask should not be set when is_causal=True")
    if enable_gqa and key.ndim >= 3 and key.shape[-3] != query.shape[-3]:
        heads_q, heads_kv = query.shape[-3], key.shape[-3]
        if heads_q % heads_kv:
            raise RuntimeError(
                f"[{op}] with enable_gqa the query heads ({heads_q}) must be a multiple of "
                f"the key/value heads ({heads_kv})"
            )
        key = _repeat_heads(key, heads_q // heads_kv)
        value = _repeat_heads(value, heads_q // heads_kv)
    if scale is None:
        scale = 1.0 / math.sqrt(query.shape[-1])
    if (
        attn_mask is None
        and dropout_p == 0.0
        and query.shape[:-2] == key.shape[:-2] == value.shape[:-2]
        and query.dtype == key.dtype == value.dtype
        and query.dtype in (_core.dtype.float32, _core.dtype.float64)
    ):
        # The fused, tiled kernel (no mask tensor, no dropout, no broadcasting between q, k, v).
        return _core._scaled_dot_product_attention(query, key, value, bool(is_causal), float(scale))
    scores = (query * float(scale)).matmul(key.transpose(-2, -1))
    if is_causal:
        attn_mask = _causal_mask(query.shape[-2], key.shape[-2])
    masked_rows = None
    if attn_mask is not None:
        if attn_mask.dtype == _core.dtype.bool:
            scores = _core.where(attn_mask, scores, -math.inf)
        else:
            scores = scores + attn_mask
        if not is_causal:
            # A query that may attend to nothing gets zeros, as PyTorch's kernels give (not a
            # softmax of -inf's NaN); its scores become zeros first so no NaN reaches backward.
            attends = scores.detach().amax(-1, keepdim=True) > -math.inf
            scores = _core.where(attends, scores, 0.0)
            masked_rows = attends
    weights = _core._softmax(scores, -1)
    if masked_rows is not None:
        weights = _core.where(masked_rows, weights, 0.0)
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p)
    return weights.matmul(value)


# ---- activations, distances, channel dropout, resampling, instance norm, bilinear and the
# other losses of torch.nn.functional (composed of bprop ops: autograd gives the VJPs) ----


def _inplace(input: Tensor, out: Tensor, inplace: bool) -> Tensor:
    return input.copy_(out) if inplace else out


def _log1p_exp(x: Tensor) -> Tensor:
    """log(1 + exp(x)) without overflow or a threshold: x + log1p(exp(-x)) above 0, else
    log1p(exp(x)); each branch sees only its own half of x so no gradient is inf * 0."""
    positive = x.clamp(min=0.0)
    negative = x.clamp(max=0.0)
    return _core.where(x > 0, positive + (-positive).exp().log1p(), negative.exp().log1p())


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x) - 1)."""
    alpha = as_float("elu", "alpha", 2, alpha)
    out = _core.where(input > 0, input, input.clamp(max=0.0).expm1() * alpha)
    return _inplace(input, out, inplace)


def celu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """x where x > 0, else alpha * (exp(x / alpha) - 1)."""
    alpha = as_float("celu", "alpha", 2, alpha)
    if alpha == 0.0:
        raise RuntimeError("[celu] ZeroDivisionError: alpha must not be 0")
    out = _core.where(input > 0, input, (input.clamp(max=0.0) / alpha).expm1() * alpha)
    return _inplace(input, out, inplace)


_SELU_ALPHA = 1.6732632423543772848170429916717
_SELU_SCALE = 1.0507009873554804934193349852946


def selu(input: Tensor, inplace: bool = False) -> Tensor:
    """scale * elu(x, alpha) with the self-normalising constants of Klambauer et al."""
    out = elu(input, _SELU_ALPHA) * _SELU_SCALE
    return _inplace(input, out, inplace)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """x clamped to [min_val, max_val]."""
    if not isinstance(input, Tensor):
        raise argument_error("hardtanh", "input", 1, "Tensor", input)
    min_val = as_float("hardtanh", "min_val", 2, min_val)
    max_val = as_float("hardtanh", "max_val", 3, max_val)
    if min_val > max_val:
        raise ValueError(
            f"[hardtanh] min_val cannot be greater than max_val, got {min_val} > {max_val}"
        )
    out = input.clamp(min_val, max_val)
    return _inplace(input, out, inplace)


def relu6(input: Tensor, inplace: bool = False) -> Tensor:
    """min(max(x, 0), 6)."""
    if not isinstance(input, Tensor):
        raise argument_error("relu6", "input", 1, "Tensor", input)
    return hardtanh(input, 0.0, 6.0, inplace)


def hardsigmoid(input: Tensor, inplace: bool = False) -> Tensor:
    """relu6(x + 3) / 6: 0 below -3, 1 above 3, linear between."""
    out = (input + 3.0).clamp(0.0, 6.0) / 6.0
    return _inplace(input, out, inplace)


def hardswish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * relu6(x + 3) / 6."""
    out = input * ((input + 3.0).clamp(0.0, 6.0) / 6.0)
    return _inplace(input, out, inplace)


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """x * tanh(softplus(x))."""
    out = input * _core.tanh(softplus(input))
    return _inplace(input, out, inplace)


def softsign(input: Tensor) -> Tensor:
    """``x / (1 + abs(x))``."""
    if not isinstance(input, Tensor):
        raise argument_error("softsign", "input", 1, "Tensor", input)
    return input / (input.abs() + 1.0)


def tanhshrink(input: Tensor) -> Tensor:
    """x - tanh(x)."""
    return input - _core.tanh(input)


def logsigmoid(input: Tensor) -> Tensor:
    """log(sigmoid(x)) = -log(1 + exp(-x)), computed without overflow."""
    return -_log1p_exp(-input)


def softmin(
    input: Tensor, dim: int | None = None, _stacklevel: int = 3, dtype: _core.dtype | None = None
) -> Tensor:
    """softmax(-x) along dim (cast to dtype first when given)."""
    dim = _softmax_dim("softmin", input, dim)
    x = input if dtype is None else input.to(dtype)
    return _core._softmax(-x, dim)


def glu(input: Tensor, dim: int = -1) -> Tensor:
    """a * sigmoid(b) for the two halves a, b of input along dim."""
    if not isinstance(input, Tensor):
        raise argument_error("glu", "input", 1, "Tensor", input)
    if input.ndim == 0:
        raise RuntimeError("[glu] glu does not support scalars because halving size must be even")
    dim = as_int("glu", "dim", 2, dim)
    size = input.shape[dim]
    if size % 2:
        raise RuntimeError(
            f"[glu] Halving dimension must be even, but dimension {dim} is size {size}"
        )
    a, b = input.split(size // 2, dim)
    return a * _core.sigmoid(b)


def threshold(input: Tensor, threshold: float, value: float, inplace: bool = False) -> Tensor:
    """x where x > threshold, else value."""
    out = _core.where(input > float(threshold), input, float(value))
    return _inplace(input, out, inplace)


def prelu(input: Tensor, weight: Tensor) -> Tensor:
    """x where x >= 0, else weight * x; weight holds one slope, or one per channel (dim 1;
    an input of fewer than 2 dims has one channel)."""
    if not isinstance(input, Tensor):
        raise argument_error("prelu", "input", 1, "Tensor", input)
    if not isinstance(weight, Tensor):
        raise argument_error("prelu", "weight", 2, "Tensor", weight)
    count = weight.numel()
    if weight.ndim > 1:
        raise RuntimeError(f"[prelu] weight must be 0-d or 1-d, got shape {tuple(weight.shape)}")
    if count != 1:
        if input.ndim == 0:
            raise RuntimeError(
                f"[prelu] Not allow zero-dim input tensor with {count} weights (one expected)"
            )
        channels = input.shape[1] if input.ndim >= 2 else 1
        if count != channels:
            raise RuntimeError(
                f"[prelu] Mismatch of parameter numbers and input channel size. Found parameter "
                f"numbers = {count} and channel size = {channels}."
            )
        if input.ndim >= 2:
            weight = weight.reshape(channels, *([1] * (input.ndim - 2)))
    elif weight.ndim == 1:
        weight = weight.reshape(())
    return _core.where(input >= 0, input, input * weight)


def rrelu(
    input: Tensor,
    lower: float = 1.0 / 8,
    upper: float = 1.0 / 3,
    training: bool = False,
    inplace: bool = False,
) -> Tensor:
    """Leaky ReLU whose negative slope is drawn uniformly from [lower, upper] per element
    while training (bprop's generator), and is (lower + upper) / 2 in evaluation."""
    lower = as_float("rrelu", "lower", 2, lower)
    upper = as_float("rrelu", "upper", 3, upper)
    if not training:
        return leaky_relu(input, (lower + upper) / 2, inplace)
    from .._sampling import uniform

    slope = uniform("rrelu", None, tuple(input.shape), input.dtype) * (upper - lower) + lower
    out = _core.where(input >= 0, input, input * slope)
    return _inplace(input, out, inplace)


def hardshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x where ``abs(x) > lambd``, else 0."""
    if not isinstance(input, Tensor):
        raise argument_error("hardshrink", "input", 1, "Tensor", input)
    return _core.where(input.abs() > as_float("hardshrink", "lambd", 2, lambd), input, 0.0)


def softshrink(input: Tensor, lambd: float = 0.5) -> Tensor:
    """x - lambd above lambd, x + lambd below -lambd, else 0."""
    lambd = as_float("softshrink", "lambd", 2, lambd)
    if lambd < 0:
        raise RuntimeError(
            f"[softshrink] lambda must be greater or equal to 0, but found to be {lambd}."
        )
    inner = _core.where(input < -lambd, input + lambd, 0.0)
    return _core.where(input > lambd, input - lambd, inner)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """sum(x1 * x2) / (max(||x1||, eps) * max(||x2||, eps)) along dim (inputs broadcast)."""
    eps = float(eps)
    n1 = (x1 * x1).sum(dim=dim, keepdim=True).sqrt().clamp(min=eps)
    n2 = (x2 * x2).sum(dim=dim, keepdim=True).sqrt().clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim=dim)


def _p_norm(x: Tensor, p: float, dim: int, keepdim: bool) -> Tensor:
    if p == 2.0:
        return (x * x).sum(dim=dim, keepdim=keepdim).sqrt()
    if p == 1.0:
        return x.abs().sum(dim=dim, keepdim=keepdim)
    if p == math.inf:
        return x.abs().amax(dim=dim, keepdim=keepdim)
    if p == 0.0:
        return (x != 0).to(x.dtype).sum(dim=dim, keepdim=keepdim)
    return x.abs().pow(p).sum(dim=dim, keepdim=keepdim).pow(1.0 / p)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """||x1 - x2 + eps||_p along the last dim (inputs broadcast)."""
    if not isinstance(x1, Tensor):
        raise argument_error("pairwise_distance", "x1", 1, "Tensor", x1)
    if not isinstance(x2, Tensor):
        raise argument_error("pairwise_distance", "x2", 2, "Tensor", x2)
    p = float(p)
    ndim = max(x1.ndim, x2.ndim)
    if ndim == 0:
        raise RuntimeError("[pairwise_distance] inputs must have at least one dimension")
    return _p_norm(x1 - x2 + float(eps), p, ndim - 1, bool(keepdim))


def pdist(input: Tensor, p: float = 2.0) -> Tensor:
    """p-norm distances between the rows of a 2-d (N, M) input, for every pair i < j in
    row-major order: N (N - 1) / 2 values."""
    if not isinstance(input, Tensor):
        raise argument_error("pdist", "input", 1, "Tensor", input)
    if input.ndim != 2:
        raise RuntimeError(
            f"[pdist] pdist only supports 2D tensors, got: {input.ndim}D of shape "
            f"{tuple(input.shape)}"
        )
    p = as_float("pdist", "p", 2, p)
    if p < 0:
        raise RuntimeError(f"[pdist] pdist only supports non-negative p values, got {p}")
    n, int64 = input.shape[0], _core.dtype.int64
    if n < 2:
        i = j = _core._zeros((0,), int64)
    else:  # the pairs (i, j > i) in row-major order, by tensor ops (bp.compile records them)
        i = _core._cat([_core._full((n - 1 - r,), float(r), int64) for r in range(n - 1)], 0)
        j = _core._cat([_core._arange(r + 1, n, 1, int64) for r in range(n - 1)], 0)
    diff = input.index_select(0, i) - input.index_select(0, j)
    return _p_norm(diff, p, 1, False)


def _check_probability(op: str, p: float) -> float:
    """p, a probability (argument 2 of op), as a float; ValueError outside [0, 1]."""
    p = as_float(op, "p", 2, p)
    if p < 0.0 or p > 1.0:
        raise ValueError(f"[dropout] dropout probability has to be between 0 and 1, but got {p}")
    return p


def _feature_mask(op: str, x: Tensor, p: float) -> Tensor:
    """1 / (1 - p) or 0 per (N, C) entry of x, broadcast over the remaining dims."""
    from .._sampling import uniform

    shape = tuple(x.shape[:2]) + (1,) * (x.ndim - 2)
    if p == 1.0:
        return _core._zeros(shape, x.dtype)
    keep = uniform(op, None, shape, x.dtype) >= p
    return keep.to(x.dtype) * (1.0 / (1.0 - p))


def _feature_dropout(op: str, input: Tensor, p: float, training: bool, inplace: bool) -> Tensor:
    if not training or p == 0.0:
        return input
    return _inplace(input, input * _feature_mask(op, input, p), inplace)


def dropout1d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zeroes whole channels of a (N, C, L) or (C, L) input with probability p while
    training, scaling the kept ones by 1 / (1 - p)."""
    if not isinstance(input, Tensor):
        raise argument_error("dropout1d", "input", 1, "Tensor", input)
    p = _check_probability("dropout1d", p)
    if input.ndim not in (2, 3):
        raise RuntimeError(
            f"[dropout1d] Expected 2D or 3D input, but received a {input.ndim}D input. Note that "
            "dropout1d exists to provide channel-wise dropout on inputs with 1 spatial "
            "dimension, a channel dimension, and an optional batch dimension (i.e. 2D or 3D "
            "inputs)."
        )
    if input.ndim == 2:
        if not training or p == 0.0:
            return input
        mask = _feature_mask("dropout1d", input.unsqueeze(0), p).squeeze(0)
        return _inplace(input, input * mask, inplace)
    return _feature_dropout("dropout1d", input, p, bool(training), inplace)


def dropout2d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zeroes whole channels (dim 1) of a (N, C, H, W) input with probability p while
    training, scaling the kept ones by 1 / (1 - p). As PyTorch, a 3-d input is taken as
    (N, C, L) with a warning."""
    if not isinstance(input, Tensor):
        raise argument_error("dropout2d", "input", 1, "Tensor", input)
    p = _check_probability("dropout2d", p)
    if input.ndim not in (3, 4):
        warnings.warn(
            f"dropout2d: Received a {input.ndim}-D input to dropout2d, which is deprecated and "
            "will result in an error in a future release. To retain the behavior and silence "
            "this warning, please use dropout instead. Note that dropout2d exists to provide "
            "channel-wise dropout on inputs with 2 spatial dimensions, a channel dimension, and "
            "an optional batch dimension (i.e. 3D or 4D inputs).",
            stacklevel=2,
        )
    if input.ndim == 3:
        warnings.warn(
            "dropout2d: Received a 3D input to dropout2d and assuming that channel-wise 1D "
            "dropout behavior is desired - input is interpreted as shape (N, C, L), where C is "
            "the channel dim. This behavior will change in a future release to interpret the "
            "input as one without a batch dimension, i.e. shape (C, H, W). To maintain the 1D "
            "channel-wise dropout behavior, please switch to using dropout1d instead.",
            stacklevel=2,
        )
    return _feature_dropout("dropout2d", input, p, bool(training), inplace)


def dropout3d(
    input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False
) -> Tensor:
    """Zeroes whole channels of a (N, C, D, H, W) or (C, D, H, W) input with probability p
    while training, scaling the kept ones by 1 / (1 - p)."""
    if not isinstance(input, Tensor):
        raise argument_error("dropout3d", "input", 1, "Tensor", input)
    p = _check_probability("dropout3d", p)
    if input.ndim not in (4, 5):
        warnings.warn(
            f"dropout3d: Received a {input.ndim}-D input to dropout3d, which is deprecated and "
            "will result in an error in a future release. To retain the behavior and silence "
            "this warning, please use dropout instead. Note that dropout3d exists to provide "
            "channel-wise dropout on inputs with 3 spatial dimensions, a channel dimension, and "
            "an optional batch dimension (i.e. 4D or 5D inputs).",
            stacklevel=2,
        )
    if input.ndim == 4:
        if not training or p == 0.0:
            return input
        mask = _feature_mask("dropout3d", input.unsqueeze(0), p).squeeze(0)
        return _inplace(input, input * mask, inplace)
    return _feature_dropout("dropout3d", input, p, bool(training), inplace)


_ALPHA_PRIME = _SELU_ALPHA * _SELU_SCALE


def _alpha_dropout(
    op: str, input: Tensor, p: float, training: bool, inplace: bool, feature: bool
) -> Tensor:
    if not isinstance(input, Tensor):
        raise argument_error(op, "input", 1, "Tensor", input)
    p = _check_probability(op, p)
    if not training or p == 0.0:
        return input
    if p == 1.0:
        return _inplace(input, input * 0.0, inplace)
    from .._sampling import uniform

    shape = tuple(input.shape[:2]) + (1,) * (input.ndim - 2) if feature else tuple(input.shape)
    keep = (uniform(op, None, shape, input.dtype) >= p).to(input.dtype)
    a = 1.0 / math.sqrt((_ALPHA_PRIME * _ALPHA_PRIME * p + 1.0) * (1.0 - p))
    b = (keep - 1.0) * (_ALPHA_PRIME * a) + _ALPHA_PRIME * a * p
    return _inplace(input, input * (keep * a) + b, inplace)


def alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """Dropout for SELU networks: dropped elements take SELU's negative saturation value and
    the result is rescaled to keep zero mean and unit variance."""
    return _alpha_dropout("alpha_dropout", input, p, bool(training), inplace, False)


def feature_alpha_dropout(
    input: Tensor, p: float = 0.5, training: bool = False, inplace: bool = False
) -> Tensor:
    """alpha_dropout of whole channels (dim 1)."""
    return _alpha_dropout("feature_alpha_dropout", input, p, bool(training), inplace, True)


_INTERPOLATE_MODES = (
    "nearest", "nearest-exact", "linear", "bilinear", "bicubic", "trilinear", "area",
)  # fmt: skip
_CUBIC_A = -0.75  # PyTorch's (and OpenCV's) cubic convolution coefficient


def _resample_dim(
    x: Tensor, dim: int, out: int, mode: str, align_corners: bool, scale: float | None
) -> Tensor:
    """x resampled along dim to `out` entries, as PyTorch's upsample kernels index it: source
    positions in the input's floating-point precision, made by tensor ops (not numpy data) so
    that bp.compile can record them."""
    size = x.shape[dim]
    real = np.float64 if x.dtype == _core.dtype.float64 else np.float32
    int64 = _core.dtype.int64
    dst = _core._arange(0, out, 1, x.dtype)
    # PyTorch's scale, rounded to the compute precision (exact as a Python float)
    ratio = float(real(1.0 / scale) if scale is not None and scale > 0 else real(size) / real(out))
    if mode in ("nearest", "nearest-exact"):
        if out == size:
            return x
        offset = 0.5 if mode == "nearest-exact" else 0.0
        index = ((dst + offset) * ratio).floor().to(int64).clamp(max=size - 1)
        return x.index_select(dim, index)
    if out == size:
        return x
    if align_corners:
        ratio = float(real(size - 1) / real(out - 1)) if out > 1 else 0.0
        source = dst * ratio
    else:
        source = (dst + 0.5) * ratio - 0.5
        if mode != "bicubic":
            source = source.clamp(min=0.0)
    shape = [1] * x.ndim
    shape[dim] = out
    if mode == "bicubic":
        # Keys' cubic convolution over the neighbours floor(s) - 1 .. floor(s) + 2 (clamped)
        floor = source.floor()
        base = floor.to(int64)
        t = source - floor
        a = _CUBIC_A
        one = 1.0 - t
        weights = (
            (((t + 1.0) * a - 5 * a) * (t + 1.0) + 8 * a) * (t + 1.0) - 4 * a,
            ((t * (a + 2) - (a + 3)) * t) * t + 1.0,
            ((one * (a + 2) - (a + 3)) * one) * one + 1.0,
            (((one + 1.0) * a - 5 * a) * (one + 1.0) + 8 * a) * (one + 1.0) - 4 * a,
        )
        result = None
        for k, w in enumerate(weights):
            index = (base + (k - 1)).clamp(0, size - 1)
            term = x.index_select(dim, index) * w.reshape(shape)
            result = term if result is None else result + term
        return result
    low = source.to(int64).clamp(max=size - 1)  # truncation: source >= 0
    lam = (source - low.to(x.dtype)).clamp(0.0, 1.0)
    high = (low + 1).clamp(max=size - 1)
    lam = lam.reshape(shape)
    a = x.index_select(dim, low)
    b = x.index_select(dim, high)
    return a * (1.0 - lam) + b * lam


def interpolate(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
    recompute_scale_factor: bool | None = None,
    antialias: bool = False,
) -> Tensor:
    """Resizes the spatial dims of a ``(N, C, *spatial)`` input to `size`, or scales them by
    `scale_factor`: mode 'nearest' / 'nearest-exact' (3-5 d), 'linear' (3-d), 'bilinear' and
    'bicubic' (4-d), 'trilinear' (5-d), with align_corners as PyTorch, or 'area' (adaptive
    average pooling). antialias is not supported (NotImplementedError)."""
    if not isinstance(input, Tensor):
        raise argument_error("interpolate", "input", 1, "Tensor", input)
    op = "interpolate"
    if mode in ("nearest", "area", "nearest-exact"):
        if align_corners is not None:
            raise ValueError(
                f"[{op}] align_corners option can only be set with the interpolating modes: "
                "linear | bilinear | bicubic | trilinear"
            )
    elif align_corners is None:
        align_corners = False
    dims = input.ndim - 2
    if size is not None and scale_factor is not None:
        raise ValueError(f"[{op}] only one of size or scale_factor should be defined")
    scales: list[float | None] = [None] * max(dims, 0)
    if size is not None:
        if isinstance(size, (list, tuple)):
            if len(size) != dims:
                raise ValueError(
                    f"[{op}] Input and output must have the same number of spatial dimensions, "
                    f"but got input with spatial dimensions of {list(input.shape[2:])} and "
                    f"output size of {size}."
                )
            out_size = _int_items(op, "size", 2, size)
        else:
            out_size = [as_int(op, "size", 2, size)] * dims
    elif scale_factor is not None:
        if isinstance(scale_factor, (list, tuple)):
            if len(scale_factor) != dims:
                raise ValueError(
                    f"[{op}] Input and scale_factor must have the same number of spatial "
                    f"dimensions, but got input with spatial dimensions of "
                    f"{list(input.shape[2:])} and scale_factor of shape {scale_factor}."
                )
            factors = [as_float(op, "scale_factor", 3, s) for s in scale_factor]
        else:
            factors = [as_float(op, "scale_factor", 3, scale_factor)] * dims
        out_size = [int(math.floor(input.shape[2 + k] * factors[k])) for k in range(dims)]
        if not recompute_scale_factor and mode != "area":
            scales = list(factors)
    else:
        raise ValueError(f"[{op}] either size or scale_factor should be defined")
    if recompute_scale_factor and size is not None:
        raise ValueError(f"[{op}] recompute_scale_factor is not meaningful with an explicit size.")
    if antialias:
        raise NotImplementedError(f"[{op}] antialias=True is not supported")
    if mode not in _INTERPOLATE_MODES or input.ndim not in (3, 4, 5):
        raise NotImplementedError(
            f"[{op}] Input Error: Only 3D, 4D and 5D input Tensors supported (got "
            f"{input.ndim}D) for the modes: nearest | linear | bilinear | bicubic | trilinear | "
            f"area | nearest-exact (got {mode})"
        )
    needed = {"linear": 3, "bilinear": 4, "bicubic": 4, "trilinear": 5}.get(mode)
    if needed is not None and input.ndim != needed:
        raise NotImplementedError(
            f"[{op}] Got {input.ndim}D input, but {mode} mode needs {needed}D input"
        )
    if any(s <= 0 for s in out_size) or any(s == 0 for s in input.shape[2:]):
        raise RuntimeError(
            f"[{op}] Input and output sizes should be greater than 0, but got input "
            f"({tuple(input.shape[2:])}) and output ({tuple(out_size)})"
        )
    if mode == "area":
        if dims == 1:
            return adaptive_avg_pool1d(input, out_size)
        if dims == 2:
            return adaptive_avg_pool2d(input, out_size)
        out = input
        for k in range(dims):
            out = _adaptive(out, 2 + k, out_size[k], "mean")
        return out
    out = input
    for k in range(dims):
        out = _resample_dim(out, 2 + k, out_size[k], mode, bool(align_corners), scales[k])
    return out


def upsample(
    input: Tensor,
    size: int | Sequence[int] | None = None,
    scale_factor: float | Sequence[float] | None = None,
    mode: str = "nearest",
    align_corners: bool | None = None,
) -> Tensor:
    """interpolate, under its deprecated name."""
    if not isinstance(input, Tensor):
        raise argument_error("upsample", "input", 1, "Tensor", input)
    warnings.warn(
        "`nn.functional.upsample` is deprecated. Use `nn.functional.interpolate` instead.",
        stacklevel=2,
    )
    return interpolate(input, size, scale_factor, mode, align_corners)


def pixel_shuffle(input: Tensor, upscale_factor: int) -> Tensor:
    """(*, C r^2, H, W) -> (*, C, H r, W r)."""
    r = as_int("pixel_shuffle", "upscale_factor", 2, upscale_factor)
    if input.ndim < 3:
        raise RuntimeError(
            f"[pixel_shuffle] expects input to have at least 3 dimensions, but got input with "
            f"{input.ndim} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(f"[pixel_shuffle] upscale_factor must be greater than 0, but got {r}")
    *batch, channels, h, w = input.shape
    if channels % (r * r):
        raise RuntimeError(
            "[pixel_shuffle] expects its input's 'channel' dimension to be divisible by the "
            f"square of upscale_factor, but input.size(-3)={channels} is not divisible by {r * r}"
        )
    c = channels // (r * r)
    lead = len(batch)
    x = input.reshape(*batch, c, r, r, h, w)
    order = (*range(lead), lead, lead + 3, lead + 1, lead + 4, lead + 2)
    return x.permute(*order).reshape(*batch, c, h * r, w * r)


def pixel_unshuffle(input: Tensor, downscale_factor: int) -> Tensor:
    """(*, C, H r, W r) -> (*, C r^2, H, W), the inverse of pixel_shuffle."""
    r = as_int("pixel_unshuffle", "downscale_factor", 2, downscale_factor)
    if input.ndim < 3:
        raise RuntimeError(
            f"[pixel_unshuffle] expects input to have at least 3 dimensions, but got input "
            f"with {input.ndim} dimension(s)"
        )
    if r <= 0:
        raise RuntimeError(
            f"[pixel_unshuffle] downscale_factor must be greater than 0, but got {r}"
        )
    *batch, c, hr, wr = input.shape
    if hr % r or wr % r:
        raise RuntimeError(
            f"[pixel_unshuffle] expects height ({hr}) and width ({wr}) to be divisible by "
            f"downscale_factor ({r})"
        )
    h, w = hr // r, wr // r
    lead = len(batch)
    x = input.reshape(*batch, c, h, r, w, r)
    order = (*range(lead), lead, lead + 2, lead + 4, lead + 1, lead + 3)
    return x.permute(*order).reshape(*batch, c * r * r, h, w)


def instance_norm(
    input: Tensor,
    running_mean: Tensor | None = None,
    running_var: Tensor | None = None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    use_input_stats: bool = True,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalises each channel of each sample of a ``(N, C, *)`` input over its positions
    (biased variance), then ``* weight + bias`` per channel. With use_input_stats, given running
    statistics are updated in place by the batch's per-instance statistics averaged over N
    (unbiased variance); without, running_mean and running_var normalise."""
    if not isinstance(input, Tensor):
        raise argument_error("instance_norm", "input", 1, "Tensor", input)
    op = "instance_norm"
    if input.ndim < 3:
        raise ValueError(
            f"[{op}] expected an input of 3 or more dims (N, C, *), got shape {tuple(input.shape)}"
        )
    channels = input.shape[1]
    for name, t in (
        ("running_mean", running_mean),
        ("running_var", running_var),
        ("weight", weight),
        ("bias", bias),
    ):
        if t is not None and tuple(t.shape) != (channels,):
            raise RuntimeError(
                f"[{op}] {name} should contain {channels} elements, got shape {tuple(t.shape)}"
            )
    dims = tuple(range(2, input.ndim))
    shape = (1, channels) + (1,) * (input.ndim - 2)
    eps = float(eps)
    if use_input_stats:
        count = input.numel() // max(input.shape[0] * channels, 1)
        if count <= 1:
            raise ValueError(
                f"[{op}] Expected more than 1 spatial element when training, got input size "
                f"{tuple(input.shape)}"
            )
        mean = input.mean(dim=dims, keepdim=True)
        centred = input - mean
        var = (centred * centred).mean(dim=dims, keepdim=True)
        out = centred / (var + eps).sqrt()
        with _no_grad():
            keep = 1.0 - float(momentum)
            if running_mean is not None:
                batch_mean = mean.detach().reshape(-1, channels).mean(dim=0)
                running_mean.mul_(keep).add_(batch_mean * float(momentum))
            if running_var is not None:
                unbiased = var.detach().reshape(-1, channels).mean(dim=0) * (count / (count - 1))
                running_var.mul_(keep).add_(unbiased * float(momentum))
    else:
        if running_mean is None or running_var is None:
            raise RuntimeError(
                f"[{op}] Expected running_mean and running_var to be defined when "
                "use_input_stats is false"
            )
        out = (input - running_mean.reshape(shape)) / (running_var.reshape(shape) + eps).sqrt()
    if weight is not None:
        out = out * weight.reshape(shape)
    if bias is not None:
        out = out + bias.reshape(shape)
    return out


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """y_k = x1^T A_k x2 + b_k for (*, in1) and (*, in2) inputs and a (out, in1, in2) weight."""
    op = "bilinear"
    if weight.ndim != 3:
        raise RuntimeError(f"[{op}] weight must be 3-d (out, in1, in2), got {tuple(weight.shape)}")
    out_f, in1, in2 = weight.shape
    if input1.ndim == 0 or input2.ndim == 0 or input1.shape[-1] != in1 or input2.shape[-1] != in2:
        raise RuntimeError(
            f"[{op}] input1 {tuple(input1.shape)} and input2 {tuple(input2.shape)} must end in "
            f"weight's in1_features ({in1}) and in2_features ({in2})"
        )
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(
            f"[{op}] input1 {tuple(input1.shape)} and input2 {tuple(input2.shape)} must have "
            "the same leading dims"
        )
    lead = tuple(input1.shape[:-1])
    x1 = input1.reshape(-1, in1)
    x2 = input2.reshape(-1, 1, in2)
    projected = x1.matmul(weight.permute(1, 0, 2).reshape(in1, out_f * in2))
    out = (projected.reshape(-1, out_f, in2) * x2).sum(dim=-1)
    if bias is not None:
        out = out + bias
    return out.reshape(*lead, out_f)


def _loss_reduction(op: str, size_average, reduce, reduction: str, extra=()) -> str:
    reduction = _legacy_reduction(size_average, reduce, reduction)
    if reduction not in ("none", "mean", "sum", *extra):
        raise ValueError(f"[{op}] {reduction} is not a valid value for reduction")
    return reduction


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """target * (log(target) - input) pointwise (0 where target is 0), or with log_target
    exp(target) * (target - input); 'batchmean' divides the sum by the batch size."""
    op = "kl_div"
    if size_average is None and reduce is None and reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    reduction = _loss_reduction(op, size_average, reduce, reduction, ("batchmean",))
    if log_target:
        loss = target.exp() * (target - input)
    else:
        positive = target > 0
        safe = _core.where(positive, target, 1.0)
        loss = _core.where(positive, target * safe.log(), 0.0) - target * input
    if reduction == "batchmean":
        total = loss.sum()
        return total / input.shape[0] if input.ndim else total
    return _reduce(op, loss, reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``0.5 d^2`` where ``abs(d) < delta``, else ``delta (abs(d) - 0.5 delta)``, for
    ``d = input - target``; weight (input's shape) scales each term."""
    op = "huber_loss"
    input, target = _elementwise_pair(op, input, target)
    _reduction(op, reduction)
    delta = float(delta)
    if delta <= 0:
        raise RuntimeError(f"[{op}] huber_loss does not support non-positive values for delta.")
    d = (input - target).abs()
    loss = _core.where(d < delta, d * d * 0.5, (d - 0.5 * delta) * delta)
    if weight is not None:
        if tuple(weight.shape) != tuple(input.shape):
            raise ValueError(f"[{op}] Weights and input must have the same size.")
        loss = loss * weight
    return _reduce(op, loss, reduction)


def soft_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """log(1 + exp(-target * input)) for targets in {1, -1}."""
    reduction = _loss_reduction("soft_margin_loss", size_average, reduce, reduction)
    return _reduce("soft_margin_loss", _log1p_exp(-target * input), reduction)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, -target * (input1 - input2) + margin)."""
    op = "margin_ranking_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if input1.ndim != input2.ndim or input1.ndim != target.ndim:
        raise RuntimeError(
            f"[{op}] All input tensors should have same dimension but got sizes: input1: "
            f"{tuple(input1.shape)}, input2: {tuple(input2.shape)}, target: {tuple(target.shape)}"
        )
    loss = (-target * (input1 - input2) + float(margin)).clamp(min=0.0)
    return _reduce(op, loss, reduction)


def hinge_embedding_loss(
    input: Tensor,
    target: Tensor,
    margin: float = 1.0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """input where target is 1, max(0, margin - input) where target is -1."""
    op = "hinge_embedding_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    margin_part = _core.where(target != 1, (float(margin) - input).clamp(min=0.0), 0.0)
    self_part = _core.where(target != -1, input, 0.0)
    return _reduce(op, margin_part + self_part, reduction)


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """1 - cos(input1, input2) where target is 1, max(0, cos - margin) where target is -1, for
    (N, D) inputs with (N,) targets or (D,) inputs with a 0-d target."""
    op = "cosine_embedding_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if target.ndim not in (0, 1):
        raise RuntimeError(f"[{op}] 0D or 1D target tensor expected, multi-target not supported")
    if input1.ndim != input2.ndim or input1.ndim != target.ndim + 1:
        raise RuntimeError(
            f"[{op}] {target.ndim}D target tensor expects {target.ndim + 1}D input tensors, but "
            f"found inputs with sizes {tuple(input1.shape)} and {tuple(input2.shape)}."
        )
    dim = input1.ndim - 1
    product = (input1 * input2).sum(dim=dim)
    square1 = (input1 * input1).sum(dim=dim) + 1e-12
    square2 = (input2 * input2).sum(dim=dim) + 1e-12
    cos = product / (square1 * square2).sqrt()
    positive = _core.where(target == 1, 1.0 - cos, 0.0)
    negative = _core.where(target == -1, (cos - float(margin)).clamp(min=0.0), 0.0)
    return _reduce(op, positive + negative, reduction)


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2,
    eps: float = 1e-6,
    swap: bool = False,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(anchor, positive) - d(anchor, negative) + margin) with d the pairwise p-norm
    distance; swap uses min(d(a, n), d(p, n)) as the negative distance."""
    op = "triplet_margin_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if margin <= 0:
        raise ValueError(f"[{op}] margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(
            f"[{op}] The anchor, positive, and negative tensors are expected to have the same "
            f"number of dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, "
            f"and negative {negative.ndim}D inputs"
        )
    d_pos = pairwise_distance(anchor, positive, p, eps)
    d_neg = pairwise_distance(anchor, negative, p, eps)
    if swap:
        d_neg = _core.minimum(d_neg, pairwise_distance(positive, negative, p, eps))
    loss = (d_pos - d_neg + float(margin)).clamp(min=0.0)
    return _reduce(op, loss, reduction)


def poisson_nll_loss(
    input: Tensor,
    target: Tensor,
    log_input: bool = True,
    full: bool = False,
    size_average: bool | None = None,
    eps: float = 1e-8,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """exp(input) - target * input (log_input), else input - target * log(input + eps); full
    adds Stirling's term target log target - target + 0.5 log(2 pi target) where target > 1."""
    if not isinstance(input, Tensor):
        raise argument_error("poisson_nll_loss", "input", 1, "Tensor", input)
    if not isinstance(target, Tensor):
        raise argument_error("poisson_nll_loss", "target", 2, "Tensor", target)
    op = "poisson_nll_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if log_input:
        loss = input.exp() - target * input
    else:
        loss = input - target * (input + float(eps)).log()
    if full:
        big = target > 1
        safe = _core.where(big, target, 2.0)
        stirling = safe * safe.log() - safe + 0.5 * (2.0 * math.pi * safe).log()
        loss = loss + _core.where(big, stirling, 0.0)
    return _reduce(op, loss, reduction)


def gaussian_nll_loss(
    input: Tensor,
    target: Tensor,
    var: Tensor | float,
    full: bool = False,
    eps: float = 1e-6,
    reduction: str = "mean",
) -> Tensor:
    """0.5 (log(var) + (input - target)^2 / var) (+ 0.5 log(2 pi) when full), with var clamped
    below at eps (the clamp passes gradients through, as PyTorch's); var may have input's
    shape, or one dim fewer or one dim of size 1 (homoscedastic)."""
    op = "gaussian_nll_loss"
    if isinstance(var, (int, float)):
        if var < 0:
            raise ValueError(f"[{op}] var has negative entry/entries")
        var = _core._full(tuple(input.shape), float(var), input.dtype)
    elif bool((var < 0).any()):
        raise ValueError(f"[{op}] var has negative entry/entries")
    if tuple(var.shape) != tuple(input.shape):
        if tuple(input.shape[:-1]) == tuple(var.shape):
            var = var.unsqueeze(-1)
        elif input.ndim == var.ndim and (
            sum(v for i, v in zip(input.shape, var.shape) if i != v) == 1
        ):
            pass
        else:
            raise ValueError(f"[{op}] var is of incorrect size")
    if reduction not in ("none", "mean", "sum"):
        raise ValueError(f"[{op}] {reduction} is not valid")
    var = var + (var.detach().clamp(min=float(eps)) - var.detach())
    diff = input - target
    loss = (var.log() + diff * diff / var) * 0.5
    if full:
        loss = loss + 0.5 * math.log(2 * math.pi)
    return _reduce(op, loss, reduction)


def multilabel_soft_margin_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """-(target log sigmoid(input) + (1 - target) log sigmoid(-input)), weighted per class,
    averaged over the classes (last dim)."""
    op = "multilabel_soft_margin_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    loss = -(target * logsigmoid(input) + (1.0 - target) * logsigmoid(-input))
    if weight is not None:
        loss = loss * weight
    class_dim = input.ndim - 1
    loss = loss.sum(dim=class_dim) / input.shape[class_dim]
    return _reduce(op, loss, reduction)


def multi_margin_loss(
    input: Tensor,
    target: Tensor,
    p: int = 1,
    margin: float = 1.0,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-class hinge loss: sum over classes i != y of max(0, margin - x[y] + x[i])^p / C
    (times weight[y]), for (N, C) input and (N,) class indices, or (C,) and a 0-d index."""
    if not isinstance(input, Tensor):
        raise argument_error("multi_margin_loss", "input", 1, "Tensor", input)
    if not isinstance(target, Tensor):
        raise argument_error("multi_margin_loss", "target", 2, "Tensor", target)
    op = "multi_margin_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if p not in (1, 2):
        raise ValueError(f"[{op}] only p == 1 and p == 2 supported")
    if weight is not None and weight.ndim != 1:
        raise ValueError(f"[{op}] weight must be one-dimensional")
    if input.ndim > 2:
        raise RuntimeError(
            f"[{op}] Expected non-empty vector or matrix with optional 0-dim batch size, but "
            f"got: {tuple(input.shape)}"
        )
    x = input.reshape(1, -1) if input.ndim < 2 else input
    n, classes = x.shape
    if target.dtype != _core.dtype.int64:
        raise RuntimeError(f"[{op}] target must be an int64 tensor, got {target.dtype}")
    y = target.reshape(-1)
    if y.numel() != n:
        raise RuntimeError(
            f"[{op}] inconsistent target size, expected {n} but got {tuple(target.shape)}"
        )
    try:
        picked = x.gather(1, y.unsqueeze(1))
    except IndexError:
        raise RuntimeError(f"[{op}] target out of range: classes are 0 to {classes - 1}") from None
    terms = (x - picked + float(margin)).clamp(min=0.0)
    if p == 2:
        terms = terms * terms
    if weight is not None:
        terms = terms * weight.index_select(0, y).unsqueeze(1)
    classes_range = _core._arange(0, classes, 1, _core.dtype.int64)
    terms = _core.where(classes_range == y.unsqueeze(1), 0.0, terms)
    loss = terms.sum(dim=1) / classes
    if input.ndim < 2:
        loss = loss.reshape(tuple(target.shape))
    return _reduce(op, loss, reduction)


def relu_(input: Tensor) -> Tensor:
    """relu, in place."""
    if not isinstance(input, Tensor):
        raise argument_error("relu_", "input", 1, "Tensor", input)
    return relu(input, inplace=True)


def leaky_relu_(input: Tensor, negative_slope: float = 0.01) -> Tensor:
    """leaky_relu, in place."""
    negative_slope = as_float("leaky_relu_", "negative_slope", 2, negative_slope)
    return leaky_relu(input, negative_slope, inplace=True)


def elu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """elu, in place."""
    return elu(input, as_float("elu_", "alpha", 2, alpha), inplace=True)


def celu_(input: Tensor, alpha: float = 1.0) -> Tensor:
    """celu, in place."""
    return celu(input, as_float("celu_", "alpha", 2, alpha), inplace=True)


def selu_(input: Tensor) -> Tensor:
    """selu, in place."""
    return selu(input, inplace=True)


def hardtanh_(input: Tensor, min_val: float = -1.0, max_val: float = 1.0) -> Tensor:
    """hardtanh, in place."""
    if not isinstance(input, Tensor):
        raise argument_error("hardtanh_", "input", 1, "Tensor", input)
    min_val = as_float("hardtanh_", "min_val", 2, min_val)
    max_val = as_float("hardtanh_", "max_val", 3, max_val)
    return hardtanh(input, min_val, max_val, inplace=True)


def rrelu_(
    input: Tensor, lower: float = 1.0 / 8, upper: float = 1.0 / 3, training: bool = False
) -> Tensor:
    """rrelu, in place."""
    lower = as_float("rrelu_", "lower", 2, lower)
    upper = as_float("rrelu_", "upper", 3, upper)
    return rrelu(input, lower, upper, training, inplace=True)


def threshold_(input: Tensor, threshold: float, value: float) -> Tensor:
    """threshold, in place."""
    return input.copy_(_core.where(input > float(threshold), input, float(value)))


def channel_shuffle(input: Tensor, groups: int) -> Tensor:
    """``(N, C, *)`` -> the channels split into `groups` groups and interleaved: channel
    g * (C / groups) + k moves to k * groups + g."""
    groups = as_int("channel_shuffle", "groups", 2, groups)
    if input.ndim < 3:
        raise RuntimeError(
            f"[channel_shuffle] expects input to have at least 3 dimensions, but got input "
            f"with {input.ndim} dimension(s)"
        )
    if groups <= 0:
        raise RuntimeError(f"[channel_shuffle] Number of groups to divide channels in must be "
                           f"positive. Value of groups:{groups}")  # fmt: skip
    n, channels, *rest = input.shape
    if channels % groups:
        raise RuntimeError(
            f"[channel_shuffle] Number of channels must be divisible by groups. Got {channels} "
            f"channels and {groups} groups."
        )
    x = input.reshape(n, groups, channels // groups, *rest)
    return x.transpose(1, 2).reshape(*input.shape)


def triplet_margin_with_distance_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    *,
    distance_function: Callable[[Tensor, Tensor], Tensor] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> Tensor:
    """max(0, d(anchor, positive) - d(anchor, negative) + margin) for any distance function
    (pairwise_distance by default); swap uses min(d(a, n), d(p, n))."""
    op = "triplet_margin_with_distance_loss"
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"[{op}] {reduction} is not a valid value for reduction")
    if margin <= 0:
        raise ValueError(f"[{op}] margin must be greater than 0, got {margin}")
    if not anchor.ndim == positive.ndim == negative.ndim:
        raise RuntimeError(
            f"[{op}] The anchor, positive, and negative tensors are expected to have the same "
            f"number of dimensions, but got: anchor {anchor.ndim}D, positive {positive.ndim}D, "
            f"and negative {negative.ndim}D inputs"
        )
    distance = pairwise_distance if distance_function is None else distance_function
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = _core.minimum(d_neg, distance(positive, negative))
    loss = (d_pos - d_neg + float(margin)).clamp(min=0.0)
    return _reduce(op, loss, reduction)


def multilabel_margin_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Multi-label hinge loss: for each sample, the sum over its target classes j (the
    leading entries of target, up to the first -1) and its other classes i of
    max(0, 1 - (x[j] - x[i])), divided by the number of classes."""
    if not isinstance(input, Tensor):
        raise argument_error("multilabel_margin_loss", "input", 1, "Tensor", input)
    if not isinstance(target, Tensor):
        raise argument_error("multilabel_margin_loss", "target", 2, "Tensor", target)
    op = "multilabel_margin_loss"
    reduction = _loss_reduction(op, size_average, reduce, reduction)
    if input.ndim > 2 or tuple(target.shape) != tuple(input.shape):
        raise RuntimeError(
            f"[{op}] expected input of 0-2 dims and a target of the same shape, got input "
            f"{tuple(input.shape)} and target {tuple(target.shape)}"
        )
    if target.dtype != _core.dtype.int64:
        raise RuntimeError(f"[{op}] target must be an int64 tensor, got {target.dtype}")
    x = input.reshape(1, -1) if input.ndim < 2 else input
    y = target.reshape(1, -1) if input.ndim < 2 else target
    classes = x.shape[1]
    if y.numel() and (int(y.min()) < -1 or int(y.max()) >= classes):
        raise RuntimeError(f"[{op}] target values must be in [-1, {classes - 1}]")
    valid = (y == -1).to(_core.dtype.int64).cumsum(1) == 0  # before the first -1
    labels = _core._arange(0, classes, 1, _core.dtype.int64)
    hits = (y.unsqueeze(-1) == labels) & valid.unsqueeze(-1)  # (N, j, i)
    is_target = hits.any(dim=1)  # (N, i)
    picked = x.gather(1, y.clamp(min=0))  # x[y_j]: (N, j)
    terms = (1.0 - picked.unsqueeze(-1) + x.unsqueeze(1)).clamp(min=0.0)  # (N, j, i)
    keep = valid.unsqueeze(-1) & is_target.logical_not().unsqueeze(1)
    loss = _core.where(keep, terms, 0.0).sum(dim=(1, 2)) / classes
    if input.ndim < 2:
        loss = loss.reshape(())
    return _reduce(op, loss, reduction)


def gumbel_softmax(
    logits: Tensor, tau: float = 1, hard: bool = False, eps: float = 1e-10, dim: int = -1
) -> Tensor:
    """softmax((logits + g) / tau) along dim with Gumbel(0, 1) noise g from bprop's
    generator; hard=True returns the one-hot of its argmax with the soft sample's gradient
    (straight through)."""
    if not isinstance(logits, Tensor):
        raise argument_error("gumbel_softmax", "logits", 1, "Tensor", logits)
    tau = as_float("gumbel_softmax", "tau", 2, tau)
    dim = as_int("gumbel_softmax", "dim", 5, dim)
    from .._sampling import uniform

    if eps != 1e-10:
        warnings.warn("`eps` parameter is deprecated and has no effect.", stacklevel=2)
    u = uniform("gumbel_softmax", None, tuple(logits.shape), logits.dtype)
    gumbels = -(-(1.0 - u).log()).log()  # -log(Exp(1)), Exp(1) = -log(1 - U) with 1 - U in (0, 1]
    y_soft = _core._softmax((logits + gumbels) / tau, dim)
    if not hard:
        return y_soft
    index = y_soft.argmax(dim=dim, keepdim=True)
    y_hard = _core._zeros(tuple(logits.shape), logits.dtype).scatter(dim, index, 1.0)
    return y_hard - y_soft.detach() + y_soft


def _grid_axis(size: int, align_corners: bool, dtype: _core.dtype) -> Tensor:
    """PyTorch's affine_grid base coordinates along one axis: linspace(-1, 1, size), scaled
    by (size - 1) / size without align_corners; 0 for a single point."""
    if size <= 1:
        return _core._zeros((max(size, 0),), dtype)
    steps = _core._arange(0, size, 1, dtype) * 2.0 - float(size - 1)
    return steps / float(size - 1 if align_corners else size)


def affine_grid(theta: Tensor, size: Sequence[int], align_corners: bool | None = None) -> Tensor:
    """The (N, H, W, 2) sampling grid of the 2-d affine transforms theta (N, 2, 3) for an
    output of size (N, C, H, W), or the (N, D, H, W, 3) grid of theta (N, 3, 4) for a 5-d
    size, in grid_sample's normalised [-1, 1] coordinates (x first)."""
    op = "affine_grid"
    if align_corners is None:
        warnings.warn(
            "Default grid_sample and affine_grid behavior has changed to align_corners=False "
            "since 1.3.0. Please specify align_corners=True if the old behavior is desired. "
            "See the documentation of grid_sample for details.",
            stacklevel=2,
        )
        align_corners = False
    if not theta.dtype.is_floating_point:
        raise ValueError(
            f"[{op}] Expected theta to have floating point type, but got {theta.dtype}"
        )
    size = [int(s) for s in size]
    if len(size) not in (4, 5):
        raise NotImplementedError(
            f"[{op}] affine_grid only supports 4D and 5D sizes, for 2D and 3D affine "
            f"transforms, respectively. Got size {size}."
        )
    dims = len(size) - 2
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (dims, dims + 1):
        raise ValueError(
            f"[{op}] Expected a batch of {dims}D affine matrices of shape Nx{dims}x{dims + 1} "
            f"for size {size}. Got {tuple(theta.shape)}."
        )
    spatial = size[2:]
    if align_corners and min(spatial) == 1:
        warnings.warn(
            "Since version 1.3.0, affine_grid behavior has changed for unit-size grids when "
            "align_corners=True. This is not an intended use case of affine_grid. See the "
            "documentation of affine_grid for details.",
            stacklevel=2,
        )
    elif min(size) <= 0:
        raise ValueError(f"[{op}] Expected non-zero, positive output size. Got {size}")
    n = size[0]
    axes = [_grid_axis(s, bool(align_corners), theta.dtype) for s in reversed(spatial)]  # x, y, z
    points = 1
    for s in spatial:
        points *= s
    columns = []
    for k, axis in enumerate(axes):  # axis k varies along spatial dim (dims - 1 - k)
        shape = [1] * dims
        shape[dims - 1 - k] = spatial[dims - 1 - k]
        columns.append(axis.reshape(*shape).expand(*spatial).reshape(points, 1))
    columns.append(_core._ones((points, 1), theta.dtype))
    base = _core._cat(columns, 1)  # (points, dims + 1): x, y[, z], 1
    grid = base.unsqueeze(0).matmul(theta.transpose(1, 2))  # (N, points, dims)
    return grid.reshape(n, *spatial, dims)


def _grid_source(coord: Tensor, size: int, padding_mode: str, align_corners: bool) -> Tensor:
    """grid_sample's pixel coordinate of a normalised one, after border / reflection padding."""
    if align_corners:
        x = (coord + 1.0) * (0.5 * (size - 1))
    else:
        x = ((coord + 1.0) * size - 1.0) * 0.5
    if padding_mode == "zeros":
        return x
    if padding_mode == "reflection":
        low, high = (0.0, 2.0 * (size - 1)) if align_corners else (-1.0, 2.0 * size - 1.0)
        if low == high:
            return x * 0.0
        start, span = low / 2, (high - low) / 2
        distance = (x - start).abs()
        extra = distance.fmod(span)
        flips = (distance.detach() / span).floor()
        even = flips.fmod(2.0) == 0
        x = _core.where(even, extra + start, (span + start) - extra)
    return x.clamp(0.0, float(size - 1))


def grid_sample(
    input: Tensor,
    grid: Tensor,
    mode: str = "bilinear",
    padding_mode: str = "zeros",
    align_corners: bool | None = None,
) -> Tensor:
    """Samples the (N, C, H, W) input at the (N, Ho, Wo, 2) grid of normalised (x, y)
    positions in [-1, 1], as torch.nn.functional.grid_sample: mode 'bilinear' or 'nearest',
    padding_mode 'zeros', 'border' or 'reflection'; differentiable with respect to input and
    grid. 5-d input and mode 'bicubic' are not supported (NotImplementedError)."""
    if not isinstance(input, Tensor):
        raise argument_error("grid_sample", "input", 1, "Tensor", input)
    if not isinstance(grid, Tensor):
        raise argument_error("grid_sample", "grid", 2, "Tensor", grid)
    op = "grid_sample"
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(
            f"[{op}] nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or "
            f"'bicubic', but got: '{mode}'"
        )
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError(
            f"[{op}] nn.functional.grid_sample(): expected padding_mode to be 'zeros', "
            f"'border', or 'reflection', but got: '{padding_mode}'"
        )
    if align_corners is None:
        warnings.warn(
            "Default grid_sample and affine_grid behavior has changed to align_corners=False "
            "since 1.3.0. Please specify align_corners=True if the old behavior is desired. "
            "See the documentation of grid_sample for details.",
            stacklevel=2,
        )
        align_corners = False
    if input.ndim != grid.ndim or input.ndim not in (4, 5):
        raise RuntimeError(
            f"[{op}] grid_sampler(): expected 4D or 5D input and grid with same number of "
            f"dimensions, but got input with sizes {tuple(input.shape)} and grid with sizes "
            f"{tuple(grid.shape)}"
        )
    if input.ndim == 5 or mode == "bicubic":
        raise NotImplementedError(f"[{op}] 5-d input and mode 'bicubic' are not supported")
    n, c, h, w = input.shape
    if grid.shape[0] != n or grid.shape[-1] != 2:
        raise RuntimeError(
            f"[{op}] grid_sampler(): expected grid of shape (N, H_out, W_out, 2) with the "
            f"input's batch size {n}, but got grid with sizes {tuple(grid.shape)}"
        )
    _, out_h, out_w, _ = grid.shape
    length = out_h * out_w
    grid = grid.to(input.dtype)
    ix = _grid_source(grid[..., 0], w, padding_mode, bool(align_corners)).reshape(n, 1, length)
    iy = _grid_source(grid[..., 1], h, padding_mode, bool(align_corners)).reshape(n, 1, length)
    flat = input.reshape(n, c, h * w)
    int64 = _core.dtype.int64

    def pick(x: Tensor, y: Tensor) -> Tensor:
        """input at the integer-valued positions (x, y), 0 outside."""
        inside = (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)
        xi = x.clamp(0, w - 1).to(int64)
        yi = y.clamp(0, h - 1).to(int64)
        values = flat.gather(2, (yi * w + xi).expand(n, c, length))
        return _core.where(inside, values, 0.0)

    if mode == "nearest":
        out = pick(ix.detach().round(), iy.detach().round())
    else:
        x0, y0 = ix.detach().floor(), iy.detach().floor()
        x1, y1 = x0 + 1.0, y0 + 1.0
        out = (
            pick(x0, y0) * ((x1 - ix) * (y1 - iy))
            + pick(x1, y0) * ((ix - x0) * (y1 - iy))
            + pick(x0, y1) * ((x1 - ix) * (iy - y0))
            + pick(x1, y1) * ((ix - x0) * (iy - y0))
        )
    return out.reshape(n, c, out_h, out_w)


def _lengths(op: str, name: str, lengths: Tensor | Sequence[int], batch: int) -> list[int]:
    values = lengths.tolist() if isinstance(lengths, Tensor) else list(lengths)
    values = [int(v) for v in (values if isinstance(values, list) else [values])]
    if len(values) != batch:
        raise RuntimeError(
            f"[{op}] {name} must have {batch} entries (one per sample), got {values}"
        )
    return values


def ctc_loss(
    log_probs: Tensor,
    targets: Tensor,
    input_lengths: Tensor | Sequence[int],
    target_lengths: Tensor | Sequence[int],
    blank: int = 0,
    reduction: str = "mean",
    zero_infinity: bool = False,
) -> Tensor:
    """Connectionist temporal classification loss: -log of the total probability of every
    alignment of each target to its input frames, by the forward (alpha) recursion in log
    space over the (T, N, C) or unbatched (T, C) log_probs. targets are (N, S) padded or the
    targets concatenated (1-d); 'mean' divides each loss by its target length, then averages.
    Impossible alignments give inf (0 with zero_infinity, with no gradient)."""
    op = "ctc_loss"
    _reduction(op, reduction)
    if log_probs.ndim not in (2, 3):
        raise RuntimeError(
            f"[{op}] log_probs must be (T, N, C) or unbatched (T, C), got shape "
            f"{tuple(log_probs.shape)}"
        )
    unbatched = log_probs.ndim == 2
    lp = log_probs.unsqueeze(1) if unbatched else log_probs
    steps, batch, classes = lp.shape
    if not 0 <= blank < classes:
        raise RuntimeError(f"[{op}] blank must be in label range [0, {classes}), got {blank}")
    in_lengths = _lengths(op, "input_lengths", input_lengths, batch)
    tg_lengths = _lengths(op, "target_lengths", target_lengths, batch)
    for length in in_lengths:
        if not 0 <= length <= steps:
            raise RuntimeError(
                f"[{op}] Expected input_lengths to have value at most {steps}, but got value "
                f"{length}"
            )
    int64 = _core.dtype.int64
    longest = max(tg_lengths + [0])
    if unbatched or targets.ndim == 2:
        padded = targets.reshape(1, -1) if unbatched else targets
        if padded.shape[1] < longest:
            raise RuntimeError(
                f"[{op}] Expected tensor to have size at least {longest} at dimension 1, but got "
                f"size {padded.shape[1]} for argument #2 'targets'"
            )
        padded = padded[:, :longest].to(int64)
    else:  # concatenated 1-d targets
        flat, rows, offset = targets.reshape(-1).to(int64), [], 0
        for length in tg_lengths:
            piece = flat[offset : offset + length]
            if length < longest:
                filler = _core._full((longest - length,), float(blank), int64)
                piece = _core._cat([piece, filler], 0)
            rows.append(piece.unsqueeze(0))
            offset += length
        if offset > flat.shape[0]:
            raise RuntimeError(
                f"[{op}] targets has {flat.shape[0]} entries, target_lengths sum to {offset}"
            )
        padded = _core._cat(rows, 0) if rows else _core._zeros((0, longest), int64)
    labels = 2 * longest + 1
    # extended labels: blank, y1, blank, y2, ..., blank
    blanks = _core._full((batch, longest), float(blank), int64)
    ext = _core._stack([blanks, padded], -1).reshape(batch, 2 * longest)
    ext = _core._cat([ext, _core._full((batch, 1), float(blank), int64)], 1)
    position = _core._arange(0, labels, 1, int64)
    shifted = _core._cat([_core._full((batch, 2), float(blank), int64), ext[:, :-2]], 1)
    skip = (position >= 2) & (ext != blank) & (ext != shifted)
    try:
        emit = lp.gather(2, ext.unsqueeze(0).expand(steps, batch, labels))  # (T, N, L)
    except IndexError:
        raise IndexError(f"[{op}] target labels must be in [0, {classes})") from None
    neg = -1e30  # a finite log(0): its gradients stay finite where -inf would give nan
    tl = _core._tensor_from_numpy(np.array(tg_lengths, dtype=np.int64)).unsqueeze(1)
    il = _core._tensor_from_numpy(np.array(in_lengths, dtype=np.int64)).unsqueeze(1)
    start = (position < 2) & ((position == 0) | (tl > 0))
    alpha = _core.where(start, emit[0], neg)
    pad1 = _core._full((batch, 1), neg, lp.dtype)
    pad2 = _core._full((batch, 2), neg, lp.dtype)
    for t in range(1, steps):
        one = _core._cat([pad1, alpha[:, :-1]], 1)
        two = _core.where(skip, _core._cat([pad2, alpha[:, :-2]], 1), neg)
        step = _core._stack([alpha, one, two], 0).logsumexp(dim=0) + emit[t]
        alpha = _core.where(il > t, step, alpha)
    last = alpha.gather(1, 2 * tl)
    before = _core.where(tl > 0, alpha.gather(1, (2 * tl - 1).clamp(min=0)), neg)
    loss = -_core._stack([last, before], 0).logsumexp(dim=0).reshape(batch)
    loss = _core.where(il.reshape(batch) > 0, loss, _core.where(tl.reshape(batch) > 0, -neg, 0.0))
    impossible = loss > -neg / 2
    loss = _core.where(impossible, 0.0 if zero_infinity else math.inf, loss)
    if unbatched:
        loss = loss.reshape(())
    if reduction == "mean":
        return (loss / tl.reshape(loss.shape).clamp(min=1).to(loss.dtype)).mean()
    return _reduce(op, loss, reduction)


def local_response_norm(
    input: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0
) -> Tensor:
    """x / (k + alpha * mean of x^2 over `size` neighbouring channels)^beta, the window
    zero-padded as PyTorch's (size // 2 channels before, (size - 1) // 2 after)."""
    if input.ndim < 3:
        raise ValueError(
            f"[local_response_norm] Expected 3D or higher dimensionality input (got {input.ndim} "
            "dimensions)"
        )
    if input.numel() == 0:
        return input
    size = int(size)
    squares = input * input
    channels = input.shape[1]
    pieces = []
    for amount in (size // 2, (size - 1) // 2):
        shape = list(input.shape)
        shape[1] = amount
        pieces.append(_core._zeros(tuple(shape), input.dtype) if amount > 0 else None)
    padded = _core._cat([p for p in (pieces[0], squares, pieces[1]) if p is not None], 1)
    window = padded[:, 0:channels]
    for offset in range(1, size):
        window = window + padded[:, offset : offset + channels]
    scale = (window * (float(alpha) / size) + float(k)).pow(float(beta))
    return input / scale

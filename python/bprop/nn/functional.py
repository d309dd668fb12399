"""bprop.nn.functional, with torch.nn.functional's names and arguments. The work happens in
the C++ core (cpp/src/ops/nn.cpp); this module parses PyTorch's argument forms."""

from __future__ import annotations

from .. import _core
from .._core import Tensor

__all__ = [
    "relu", "leaky_relu", "gelu", "softplus", "tanh", "sigmoid", "softmax", "log_softmax",
    "cross_entropy", "nll_loss", "mse_loss", "binary_cross_entropy_with_logits", "linear",
    "conv2d", "max_pool2d", "avg_pool2d", "dropout", "unfold", "fold",
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


def _pair(op: str, name: str, value) -> tuple:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"[{op}] {name} must be an int or a pair of ints, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    return input.clamp_(min=0) if inplace else _core.relu(input)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    out = _core._leaky_relu(input, float(negative_slope))
    return input.copy_(out) if inplace else out


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    if approximate not in ("none", "tanh"):
        raise ValueError(f"[gelu] approximate must be 'none' or 'tanh', got {approximate!r}")
    return _core._gelu(input, approximate == "tanh")


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    return _core._softplus(input, float(beta), float(threshold))


def tanh(input: Tensor) -> Tensor:
    return _core.tanh(input)


def sigmoid(input: Tensor) -> Tensor:
    return _core.sigmoid(input)


def softmax(input: Tensor, dim: int) -> Tensor:
    return _core._softmax(input, int(dim))


def log_softmax(input: Tensor, dim: int) -> Tensor:
    return _core._log_softmax(input, int(dim))


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


def mse_loss(input: Tensor, target: Tensor, reduction: str = "mean") -> Tensor:
    return _core._mse_loss(input, target, _reduction("mse_loss", reduction))


def binary_cross_entropy_with_logits(
    input, target, weight=None, reduction="mean", pos_weight=None
) -> Tensor:
    op = "binary_cross_entropy_with_logits"
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
        _pair("conv2d", "stride", stride),
        _pair("conv2d", "padding", padding),
        _pair("conv2d", "dilation", dilation),
        int(groups),
    )


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1) -> Tensor:
    kernel = _pair("max_pool2d", "kernel_size", kernel_size)
    stride = kernel if stride is None else _pair("max_pool2d", "stride", stride)
    return _core._max_pool2d(
        input,
        kernel,
        stride,
        _pair("max_pool2d", "padding", padding),
        _pair("max_pool2d", "dilation", dilation),
    )


def avg_pool2d(input, kernel_size, stride=None, padding=0) -> Tensor:
    kernel = _pair("avg_pool2d", "kernel_size", kernel_size)
    stride = kernel if stride is None else _pair("avg_pool2d", "stride", stride)
    return _core._avg_pool2d(input, kernel, stride, _pair("avg_pool2d", "padding", padding))


def unfold(input, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """im2col: (N, C, H, W) -> (N, C * kh * kw, L), as torch.nn.functional.unfold."""
    return _core._unfold2d(
        input,
        _pair("unfold", "kernel_size", kernel_size),
        _pair("unfold", "stride", stride),
        _pair("unfold", "padding", padding),
        _pair("unfold", "dilation", dilation),
        0.0,
    )


def fold(input, output_size, kernel_size, dilation=1, padding=0, stride=1) -> Tensor:
    """col2im, the adjoint of unfold, for a (N, C * kh * kw, L) input."""
    kernel = _pair("fold", "kernel_size", kernel_size)
    height, width = _pair("fold", "output_size", output_size)
    n, ckk = input.shape[0], input.shape[1]
    channels = ckk // (kernel[0] * kernel[1])
    return _core._fold2d(
        input,
        (n, channels, height, width),
        kernel,
        _pair("fold", "stride", stride),
        _pair("fold", "padding", padding),
        _pair("fold", "dilation", dilation),
    )


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False):
    out = _core._dropout(input, float(p), bool(training))
    return input.copy_(out) if inplace else out

"""bprop.nn.init: in-place initialisers with torch.nn.init's names and formulas. Random ones
draw from bprop's generator, so bp.manual_seed makes them reproducible."""

from __future__ import annotations

import math

import numpy as np

from .. import _core
from .._arguments import argument_error
from .._core import Tensor
from ..autograd import no_grad

__all__ = [
    "calculate_gain", "uniform_", "normal_", "constant_", "zeros_", "ones_",
    "xavier_uniform_", "xavier_normal_", "kaiming_uniform_", "kaiming_normal_", "trunc_normal_",
    "orthogonal_", "eye_",
]  # fmt: skip


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended gain for a nonlinearity, as torch.nn.init.calculate_gain."""
    linear = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
              "conv_transpose3d", "sigmoid")  # fmt: skip
    if nonlinearity in linear:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else float(param)
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"[calculate_gain] unsupported nonlinearity {nonlinearity!r}")


def _fans(tensor: Tensor) -> tuple[int, int]:
    if tensor.ndim < 2:
        raise ValueError(
            f"[init] fan in and fan out need a tensor of 2 or more dimensions, got {tensor.shape}"
        )
    receptive = 1
    for size in tensor.shape[2:]:
        receptive *= size
    return tensor.shape[1] * receptive, tensor.shape[0] * receptive


def _fill(tensor: Tensor, values: Tensor) -> Tensor:
    with no_grad():
        tensor.copy_(values)
    return tensor


def uniform_(tensor: Tensor, a: float = 0.0, b: float = 1.0) -> Tensor:
    """Fills tensor with U(a, b)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("uniform_", "tensor", 1, "Tensor", tensor)
    return _fill(tensor, _core._rand(tensor.shape, tensor.dtype) * (b - a) + a)


def normal_(tensor: Tensor, mean: float = 0.0, std: float = 1.0) -> Tensor:
    """Fills tensor with N(mean, std^2)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("normal_", "tensor", 1, "Tensor", tensor)
    return _fill(tensor, _core._randn(tensor.shape, tensor.dtype) * std + mean)


def constant_(tensor: Tensor, val: float) -> Tensor:
    """Fills tensor with val."""
    with no_grad():
        tensor.fill_(val)
    return tensor


def zeros_(tensor: Tensor) -> Tensor:
    """Fills tensor with 0."""
    if not isinstance(tensor, Tensor):
        raise argument_error("zeros_", "tensor", 1, "Tensor", tensor)
    return constant_(tensor, 0.0)


def ones_(tensor: Tensor) -> Tensor:
    """Fills tensor with 1."""
    if not isinstance(tensor, Tensor):
        raise argument_error("ones_", "tensor", 1, "Tensor", tensor)
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot uniform: U(-b, b), b = gain sqrt(6 / (fan_in + fan_out))."""
    if not isinstance(tensor, Tensor):
        raise argument_error("xavier_uniform_", "tensor", 1, "Tensor", tensor)
    fan_in, fan_out = _fans(tensor)
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound)


def xavier_normal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """Glorot normal: N(0, gain^2 2 / (fan_in + fan_out))."""
    if not isinstance(tensor, Tensor):
        raise argument_error("xavier_normal_", "tensor", 1, "Tensor", tensor)
    fan_in, fan_out = _fans(tensor)
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _kaiming_std(tensor: Tensor, a: float, mode: str, nonlinearity: str) -> float:
    fan_in, fan_out = _fans(tensor)
    if mode not in ("fan_in", "fan_out"):
        raise ValueError(f"[kaiming] mode must be 'fan_in' or 'fan_out', got {mode!r}")
    fan = fan_in if mode == "fan_in" else fan_out
    return calculate_gain(nonlinearity, a) / math.sqrt(fan)


def kaiming_uniform_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                     nonlinearity: str = "leaky_relu") -> Tensor:  # fmt: skip
    """He uniform: U(-b, b), b = gain sqrt(3 / fan)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("kaiming_uniform_", "tensor", 1, "Tensor", tensor)
    bound = math.sqrt(3.0) * _kaiming_std(tensor, a, mode, nonlinearity)
    return uniform_(tensor, -bound, bound)


def kaiming_normal_(tensor: Tensor, a: float = 0.0, mode: str = "fan_in",
                    nonlinearity: str = "leaky_relu") -> Tensor:  # fmt: skip
    """He normal: N(0, gain^2 / fan)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("kaiming_normal_", "tensor", 1, "Tensor", tensor)
    return normal_(tensor, 0.0, _kaiming_std(tensor, a, mode, nonlinearity))


def trunc_normal_(
    tensor: Tensor, mean: float = 0.0, std: float = 1.0, a: float = -2.0, b: float = 2.0
) -> Tensor:
    """N(mean, std^2) truncated to [a, b]: values outside are drawn again (from bprop's
    generator, so bp.manual_seed makes it reproducible)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("trunc_normal_", "tensor", 1, "Tensor", tensor)
    if not a < b:
        raise ValueError(f"[trunc_normal_] needs a < b, got a={a}, b={b}")
    values = _core._randn(tensor.shape, tensor.dtype) * std + mean
    for _ in range(1000):
        outside = (values < a) | (values > b)
        if not bool(outside.any()):
            break
        fresh = _core._randn(tensor.shape, tensor.dtype) * std + mean
        values = _core.where(outside, fresh, values)
    else:
        raise ValueError(f"[trunc_normal_] [{a}, {b}] holds almost no mass of N({mean}, {std}^2)")
    return _fill(tensor, values)


def orthogonal_(tensor: Tensor, gain: float = 1.0) -> Tensor:
    """A (semi-)orthogonal matrix, scaled by gain (Saxe et al.), from the QR decomposition of
    a normal matrix drawn from bprop's generator; dims after the first are flattened."""
    if not isinstance(tensor, Tensor):
        raise argument_error("orthogonal_", "tensor", 1, "Tensor", tensor)
    if tensor.ndim < 2:
        raise ValueError(
            f"[orthogonal_] needs a tensor of 2 or more dimensions, got {tensor.shape}"
        )
    rows = tensor.shape[0]
    cols = tensor.numel() // rows if rows else 0
    flat = _core._randn((rows, cols), _core.dtype.float64).numpy()
    if rows < cols:
        flat = flat.T
    q, r = np.linalg.qr(flat)
    q = q * np.sign(np.diag(r))  # makes the decomposition unique, as PyTorch does
    if rows < cols:
        q = q.T
    values = _core._tensor_from_numpy(np.ascontiguousarray(q * gain)).reshape(tensor.shape)
    return _fill(tensor, values.to(tensor.dtype))


def eye_(tensor: Tensor) -> Tensor:
    """The identity matrix (ones on the diagonal of a 2-d tensor)."""
    if not isinstance(tensor, Tensor):
        raise argument_error("eye_", "tensor", 1, "Tensor", tensor)
    if tensor.ndim != 2:
        raise ValueError(f"[eye_] needs a 2-d tensor, got {tensor.shape}")
    return _fill(tensor, _core._eye(tensor.shape[0], tensor.shape[1], tensor.dtype))

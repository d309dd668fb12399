"""Identity and Linear, as torch.nn's."""

from __future__ import annotations

import math
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from ...autograd import no_grad as _no_grad
from .. import functional as F
from .module import Module, Parameter, _uniform

__all__ = ["Identity", "Linear", "NonDynamicallyQuantizableLinear", "Bilinear"]


class Identity(Module):
    """Returns its input; constructor arguments are accepted and ignored (as PyTorch's)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Any) -> Any:
        return input


class Linear(Module):
    """y = x W^T + b, with PyTorch's initialisation: U(-1/sqrt(in), 1/sqrt(in))."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        check_device("Linear", device)
        if in_features < 0 or out_features < 0:
            raise ValueError(
                f"[Linear] sizes must be non-negative, got ({in_features}, {out_features})"
            )
        self.in_features, self.out_features = in_features, out_features
        dtype = check_dtype("Linear", dtype) or _core.get_default_dtype()
        bound = 1.0 / math.sqrt(in_features) if in_features > 0 else 0.0
        self.weight = Parameter(_uniform((out_features, in_features), bound, dtype))
        if bias:
            self.bias = Parameter(_uniform((out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Draws weight and bias again from U(-1/sqrt(in_features), 1/sqrt(in_features))."""
        bound = 1.0 / math.sqrt(self.in_features) if self.in_features > 0 else 0.0
        with _no_grad():
            for p in (self.weight, self.bias):
                if p is not None:
                    p.copy_(_uniform(tuple(p.shape), bound, p.dtype))

    def forward(self, input: Tensor) -> Tensor:
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )


class NonDynamicallyQuantizableLinear(Linear):
    """Linear under the name PyTorch gives MultiheadAttention.out_proj (a marker for its
    quantization tools); it computes exactly what Linear does."""


class Bilinear(Module):
    """y = x1^T A x2 + b for a (out_features, in1_features, in2_features) weight A, with
    PyTorch's initialisation U(-1/sqrt(in1_features), 1/sqrt(in1_features))."""

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        check_device("Bilinear", device)
        dtype = check_dtype("Bilinear", dtype) or _core.get_default_dtype()
        if in1_features <= 0:
            raise ValueError(
                f"[Bilinear] in1_features must be > 0, but got (in1_features={in1_features})"
            )
        self.in1_features, self.in2_features = in1_features, in2_features
        self.out_features = out_features
        bound = 1.0 / math.sqrt(in1_features)
        shape = (out_features, in1_features, in2_features)
        self.weight = Parameter(_uniform(shape, bound, dtype))
        if bias:
            self.bias = Parameter(_uniform((out_features,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def reset_parameters(self) -> None:
        """Draws weight and bias again from U(-1/sqrt(in1_features), 1/sqrt(in1_features))."""
        bound = 1.0 / math.sqrt(self.in1_features)
        with _no_grad():
            for p in (self.weight, self.bias):
                if p is not None:
                    p.copy_(_uniform(tuple(p.shape), bound, p.dtype))

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )

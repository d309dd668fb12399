"""Normalisation layers, as torch.nn's: LayerNorm, GroupNorm, RMSNorm."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from .. import functional as F
from .module import Module, Parameter

__all__ = ["LayerNorm", "GroupNorm", "RMSNorm"]


def _shape(normalized_shape: int | Sequence[int]) -> tuple[int, ...]:
    if isinstance(normalized_shape, int):
        return (normalized_shape,)
    return tuple(int(s) for s in normalized_shape)


def _dtype(op: str, device: Any, dtype: _core.dtype | None) -> _core.dtype:
    check_device(op, device)
    return check_dtype(op, dtype) or _core.get_default_dtype()


class LayerNorm(Module):
    """Normalises over the trailing normalized_shape dimensions, then (elementwise_affine)
    scales by weight (ones at first) and shifts by bias (zeros; none if bias=False)."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        bias: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = _dtype("LayerNorm", device, dtype)
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_core._ones(self.normalized_shape, dtype))
            bias_value = Parameter(_core._zeros(self.normalized_shape, dtype)) if bias else None
            self.register_parameter("bias", bias_value)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, "
            f"elementwise_affine={self.elementwise_affine}, bias={self.bias is not None}"
        )


class GroupNorm(Module):
    """Normalises num_groups groups of the channels of an ``(N, C, *)`` input, then (affine)
    scales and (unless bias=False) shifts per channel."""

    def __init__(
        self,
        num_groups: int,
        num_channels: int,
        eps: float = 1e-5,
        affine: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        dtype = _dtype("GroupNorm", device, dtype)
        if num_groups <= 0 or num_channels % num_groups:
            raise ValueError(
                f"[GroupNorm] num_channels ({num_channels}) must be divisible by num_groups "
                f"({num_groups})"
            )
        self.num_groups, self.num_channels = num_groups, num_channels
        self.eps, self.affine = eps, affine
        if affine:
            self.weight = Parameter(_core._ones((num_channels,), dtype))
            bias_value = Parameter(_core._zeros((num_channels,), dtype)) if bias else None
            self.register_parameter("bias", bias_value)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}, "
            f"bias={self.bias is not None}"
        )


class RMSNorm(Module):
    """x / sqrt(mean(x^2) + eps) over the trailing normalized_shape dimensions, then
    (elementwise_affine) scaled by weight (ones at first); eps=None is the dtype's epsilon."""

    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float | None = None,
        elementwise_affine: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        dtype = _dtype("RMSNorm", device, dtype)
        self.normalized_shape = _shape(normalized_shape)
        self.eps, self.elementwise_affine = eps, elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(_core._ones(self.normalized_shape, dtype))
        else:
            self.register_parameter("weight", None)

    def forward(self, input: Tensor) -> Tensor:
        return F.rms_norm(input, self.normalized_shape, self.weight, self.eps)

    def extra_repr(self) -> str:
        return (
            f"{self.normalized_shape}, eps={self.eps}, elementwise_affine={self.elementwise_affine}"
        )

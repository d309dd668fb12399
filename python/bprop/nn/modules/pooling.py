"""Pooling modules, as torch.nn's: max and average pooling over 1-d and 2-d windows, and the
adaptive poolings that reduce to a requested output size."""

from __future__ import annotations

from ..._core import Tensor
from .. import functional as F
from .module import Module

__all__ = [
    "MaxPool1d", "MaxPool2d", "AvgPool1d", "AvgPool2d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveMaxPool2d",
]  # fmt: skip


class MaxPool1d(Module):
    """Largest value of each window along the last dim, as F.max_pool1d."""

    def __init__(
        self,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] | None = None,
        padding: int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        F._unsupported("MaxPool1d", ceil_mode=ceil_mode, return_indices=return_indices)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        """input pooled."""
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool2d(Module):
    """Largest value of each 2-d window, as F.max_pool2d."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        F._unsupported("MaxPool2d", ceil_mode=ceil_mode, return_indices=return_indices)
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.dilation = padding, dilation
        self.return_indices, self.ceil_mode = return_indices, ceil_mode

    def forward(self, input: Tensor) -> Tensor:
        """input pooled."""
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation)

    def extra_repr(self) -> str:
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class AvgPool1d(Module):
    """Mean of each window along the last dim, as F.avg_pool1d."""

    def __init__(
        self,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] | None = None,
        padding: int | tuple[int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        F._unsupported("AvgPool1d", ceil_mode=ceil_mode, count_include_pad=not count_include_pad)
        # PyTorch keeps 1-tuples here (and prints them)
        self.kernel_size = (F._single("AvgPool1d", "kernel_size", 1, kernel_size),)
        step = kernel_size if stride is None else stride
        self.stride = (F._single("AvgPool1d", "stride", 2, step),)
        self.padding = (F._single("AvgPool1d", "padding", 3, padding),)
        self.ceil_mode, self.count_include_pad = ceil_mode, count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        """input pooled."""
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(Module):
    """Mean of each 2-d window, as F.avg_pool2d."""

    def __init__(
        self,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] | None = None,
        padding: int | tuple[int, int] = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__()
        F._unsupported("AvgPool2d", ceil_mode=ceil_mode, count_include_pad=not count_include_pad,
                       divisor_override=divisor_override is not None)  # fmt: skip
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding, self.ceil_mode, self.count_include_pad = padding, ceil_mode, count_include_pad
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """input pooled."""
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class _AdaptivePool(Module):
    def __init__(self, output_size: int | None | tuple[int | None, ...]) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Means over output_size near-equal bins of the last dim, as F.adaptive_avg_pool1d."""

    def forward(self, input: Tensor) -> Tensor:
        """input pooled to output_size."""
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Means over near-equal bins of the last two dims, as F.adaptive_avg_pool2d."""

    def forward(self, input: Tensor) -> Tensor:
        """input pooled to output_size."""
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool2d(_AdaptivePool):
    """Largest values over near-equal bins of the last two dims, as F.adaptive_max_pool2d."""

    def __init__(
        self, output_size: int | None | tuple[int | None, ...], return_indices: bool = False
    ) -> None:
        super().__init__(output_size)
        F._unsupported("AdaptiveMaxPool2d", return_indices=return_indices)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Tensor:
        """input pooled to output_size."""
        return F.adaptive_max_pool2d(input, self.output_size)

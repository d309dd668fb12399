"""Convolution modules, as torch.nn's: Conv1d, Conv2d and ConvTranspose2d, with PyTorch's
arguments, parameter shapes and default initialisation (U(-1/sqrt(fan_in), 1/sqrt(fan_in))
for weight and bias, fan_in from the weight's dim 1 and kernel, as kaiming_uniform_(a=sqrt(5))
works out)."""

from __future__ import annotations

import math
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from .. import functional as F
from .module import Module, Parameter, _uniform

__all__ = ["Conv1d", "Conv2d", "ConvTranspose2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _ntuple(op: str, name: str, value: Any, n: int) -> tuple[int, ...]:
    if isinstance(value, (tuple, list)):
        if len(value) != n:
            raise ValueError(f"[{op}] {name} must be an int or a {n}-tuple, got {value!r}")
        return tuple(int(v) for v in value)
    return (int(value),) * n


class _ConvNd(Module):
    """The arguments, checks and parameters every convolution module shares."""

    _op = "Conv"

    def __init__(
        self,
        n: int,
        transposed: bool,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any,
        padding: Any,
        dilation: Any,
        output_padding: Any,
        groups: int,
        bias: bool,
        padding_mode: str,
        device: Any,
        dtype: Any,
    ) -> None:
        super().__init__()
        op = self._op
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
        if groups <= 0:
            raise ValueError(f"[{op}] groups must be a positive integer, got {groups}")
        if in_channels % groups:
            raise ValueError(f"[{op}] in_channels ({in_channels}) must be divisible by groups")
        if out_channels % groups:
            raise ValueError(f"[{op}] out_channels ({out_channels}) must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"[{op}] padding_mode must be one of {_PADDING_MODES}, got {padding_mode!r}"
            )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = _ntuple(op, "kernel_size", kernel_size, n)
        self.stride = _ntuple(op, "stride", stride, n)
        self.dilation = _ntuple(op, "dilation", dilation, n)
        self.output_padding = _ntuple(op, "output_padding", output_padding, n)
        if isinstance(padding, str):
            if padding not in ("valid", "same"):
                raise ValueError(f"[{op}] padding must be 'valid', 'same' or ints, got {padding!r}")
            if padding == "same" and any(s != 1 for s in self.stride):
                raise ValueError(f"[{op}] padding='same' is not supported for strided convolutions")
            self.padding: Any = padding
        else:
            self.padding = _ntuple(op, "padding", padding, n)
        self.transposed, self.groups, self.padding_mode = transposed, groups, padding_mode
        if transposed:
            shape = (in_channels, out_channels // groups, *self.kernel_size)
        else:
            shape = (out_channels, in_channels // groups, *self.kernel_size)
        fan_in = shape[1] * math.prod(self.kernel_size)
        bound = 1.0 / math.sqrt(fan_in) if fan_in > 0 else 0.0
        self.weight = Parameter(_uniform(shape, bound, dtype))
        if bias:
            self.bias = Parameter(_uniform((out_channels,), bound, dtype))
        else:
            self.register_parameter("bias", None)

    def _pad_amounts(self) -> list[int]:
        """F.pad's list (last dim first) for this module's padding, 'same' split as PyTorch."""
        if self.padding == "valid":
            return [0, 0] * len(self.kernel_size)
        if self.padding == "same":
            amounts = []
            for k, d in zip(reversed(self.kernel_size), reversed(self.dilation)):
                total = d * (k - 1)
                amounts += [total // 2, total - total // 2]
            return amounts
        return [p for p in reversed(self.padding) for _ in range(2)]

    def _prepare(self, input: Tensor) -> tuple[Tensor, tuple[int, ...]]:
        """The input padded as padding_mode says, and the zero padding left to the kernel."""
        amounts = self._pad_amounts()
        if self.padding_mode != "zeros":
            return F.pad(input, amounts, mode=self.padding_mode), (0,) * len(self.kernel_size)
        before, after = amounts[0::2][::-1], amounts[1::2][::-1]
        if before == after:
            return input, tuple(before)
        # asymmetric 'same': the kernel pads the smaller side, F.pad adds the rest
        extra = [a - b for b, a in zip(reversed(before), reversed(after))]
        return F.pad(input, [v for e in extra for v in (0, e)]), tuple(before)

    def extra_repr(self) -> str:
        s = f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}"
        s += f", stride={self.stride}"
        n = len(self.kernel_size)
        if self.padding != (0,) * n:
            s += f", padding={self.padding!r}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.output_padding != (0,) * n:
            s += f", output_padding={self.output_padding}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-d convolution over (N, C_in, L) or unbatched (C_in, L) input; weight
    (out_channels, in_channels / groups, kernel_size)."""

    _op = "Conv1d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int],
        stride: int | tuple[int] = 1,
        padding: str | int | tuple[int] = 0,
        dilation: int | tuple[int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__(1, False, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, 0, groups, bias, padding_mode, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of input, as F.conv1d with this module's weight and arguments."""
        x, padding = self._prepare(input)
        return F.conv1d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)  # fmt: skip


class Conv2d(_ConvNd):
    """2-d convolution over (N, C_in, H, W) input; weight
    (out_channels, in_channels / groups, kh, kw)."""

    _op = "Conv2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: str | int | tuple[int, int] = 0,
        dilation: int | tuple[int, int] = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__(2, False, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, 0, groups, bias, padding_mode, device, dtype)  # fmt: skip

    def forward(self, input: Tensor) -> Tensor:
        """The convolution of input, as F.conv2d with this module's weight and arguments."""
        x, padding = self._prepare(input)
        return F.conv2d(x, self.weight, self.bias, self.stride, padding, self.dilation,
                        self.groups)  # fmt: skip


class ConvTranspose2d(_ConvNd):
    """Transposed 2-d convolution (the gradient of Conv2d with respect to its input) over
    (N, C_in, H, W) or unbatched (C_in, H, W) input; weight
    (in_channels, out_channels / groups, kh, kw)."""

    _op = "ConvTranspose2d"

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int | tuple[int, int] = 1,
        padding: int | tuple[int, int] = 0,
        output_padding: int | tuple[int, int] = 0,
        groups: int = 1,
        bias: bool = True,
        dilation: int | tuple[int, int] = 1,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        if padding_mode != "zeros":
            raise ValueError(
                f'[ConvTranspose2d] Only "zeros" padding mode is supported, got {padding_mode!r}'
            )
        if isinstance(padding, str):
            raise ValueError(f"[ConvTranspose2d] padding must be ints, got {padding!r}")
        super().__init__(2, True, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, output_padding, groups, bias, padding_mode, device,
                         dtype)  # fmt: skip

    def _output_padding(self, input: Tensor, output_size: Any) -> tuple[int, ...]:
        """output_padding from a requested output_size (as PyTorch's), else the module's."""
        if output_size is None:
            return self.output_padding
        size = [int(s) for s in output_size]
        if len(size) == input.ndim:
            size = size[2:] if input.ndim == 4 else size[1:]
        if len(size) != 2:
            raise ValueError(
                f"[ConvTranspose2d] output_size must have 2 or {input.ndim} elements, "
                f"got {list(output_size)}"
            )
        result = []
        for d in range(2):
            extent = input.shape[input.ndim - 2 + d]
            smallest = ((extent - 1) * self.stride[d] - 2 * self.padding[d]
                        + self.dilation[d] * (self.kernel_size[d] - 1) + 1)  # fmt: skip
            largest = smallest + self.stride[d] - 1
            if not smallest <= size[d] <= largest:
                raise ValueError(
                    f"[ConvTranspose2d] requested an output size of {size}, but valid sizes "
                    f"range from {smallest} to {largest} (for an input of "
                    f"{tuple(input.shape[-2:])})"
                )
            result.append(size[d] - smallest)
        return tuple(result)

    def forward(self, input: Tensor, output_size: list[int] | None = None) -> Tensor:
        """The transposed convolution of input; output_size picks among the sizes a strided
        convolution maps to the input's size."""
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self._output_padding(input, output_size), self.groups,
                                  self.dilation)  # fmt: skip

"""Padding modules, as torch.nn's: each holds its padding (an int for every side, or PyTorch's
tuple, last dim first) and calls F.pad with its mode."""

from __future__ import annotations

from ..._core import Tensor
from .. import functional as F
from .module import Module

__all__ = [
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d",
    "CircularPad1d", "CircularPad2d",
]  # fmt: skip


class _PadNd(Module):
    _dims = 1
    _mode = "constant"

    def __init__(self, padding: int | tuple[int, ...], value: float = 0.0) -> None:
        super().__init__()
        sides = 2 * self._dims
        if isinstance(padding, (tuple, list)):
            if len(padding) != sides:
                raise ValueError(
                    f"[{type(self).__name__}] padding must be an int or a {sides}-tuple, "
                    f"got {padding!r}"
                )
            self.padding: tuple[int, ...] = tuple(int(p) for p in padding)
        else:
            self.padding = (int(padding),) * sides
        self.value = float(value)

    def forward(self, input: Tensor) -> Tensor:
        """input padded by this module's padding."""
        if self._mode == "constant":
            return F.pad(input, self.padding, "constant", self.value)
        return F.pad(input, self.padding, self._mode)

    def extra_repr(self) -> str:
        if self._mode == "constant" and not type(self).__name__.startswith("Zero"):
            return f"padding={self.padding}, value={self.value}"
        return f"{self.padding}"


class ConstantPad1d(_PadNd):
    """Pads the last dim with a constant value."""

    def __init__(self, padding: int | tuple[int, int], value: float) -> None:
        super().__init__(padding, value)


class ConstantPad2d(_PadNd):
    """Pads the last two dims with a constant value."""

    _dims = 2

    def __init__(self, padding: int | tuple[int, int, int, int], value: float) -> None:
        super().__init__(padding, value)


class ConstantPad3d(_PadNd):
    """Pads the last three dims with a constant value."""

    _dims = 3

    def __init__(self, padding: int | tuple[int, ...], value: float) -> None:
        super().__init__(padding, value)


class ZeroPad1d(_PadNd):
    """Pads the last dim with zeros."""

    def __init__(self, padding: int | tuple[int, int]) -> None:
        super().__init__(padding)


class ZeroPad2d(_PadNd):
    """Pads the last two dims with zeros."""

    _dims = 2

    def __init__(self, padding: int | tuple[int, int, int, int]) -> None:
        super().__init__(padding)


class ZeroPad3d(_PadNd):
    """Pads the last three dims with zeros."""

    _dims = 3

    def __init__(self, padding: int | tuple[int, ...]) -> None:
        super().__init__(padding)


class _ModePad(_PadNd):
    def __init__(self, padding: int | tuple[int, ...]) -> None:
        super().__init__(padding)


class ReflectionPad1d(_ModePad):
    """Pads the last dim with its reflection (the edge not repeated)."""

    _mode = "reflect"


class ReflectionPad2d(_ModePad):
    """Pads the last two dims with their reflection (the edge not repeated)."""

    _dims, _mode = 2, "reflect"


class ReplicationPad1d(_ModePad):
    """Pads the last dim by repeating its edge value."""

    _mode = "replicate"


class ReplicationPad2d(_ModePad):
    """Pads the last two dims by repeating their edge values."""

    _dims, _mode = 2, "replicate"


class CircularPad1d(_ModePad):
    """Pads the last dim by wrapping around."""

    _mode = "circular"


class CircularPad2d(_ModePad):
    """Pads the last two dims by wrapping around."""

    _dims, _mode = 2, "circular"

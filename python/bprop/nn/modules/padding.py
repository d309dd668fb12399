"""Padding modules, as torch.nn's: each holds its padding (an int for every side, or PyTorch's
tuple, last dim first) and calls F.pad with its mode."""

from __future__ import annotations

from ..._core import Tensor
from .. import functional as F
from .module import Module

__all__ = [
    "ConstantPad1d", "ConstantPad2d", "ConstantPad3d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d",
    "ReflectionPad1d", "ReflectionPad2d", "ReplicationPad1d", "ReplicationPad2d",
    "CircularPad1d", "CircularPad2d", "ReflectionPad3d", "ReplicationPad3d", "CircularPad3d",
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


class _ModePad3d(_ModePad):
    """The three-dim reflect / replicate / circular pads of (N, C, D, H, W) or (C, D, H, W)
    input, gathered per dim as F.pad gathers its one- and two-dim ones."""

    _dims = 3

    def forward(self, input: Tensor) -> Tensor:
        """input padded by this module's padding."""
        op = type(self).__name__
        if input.ndim not in (4, 5):
            raise NotImplementedError(
                f"[{op}] expected a 4-d (unbatched) or 5-d (batched) input, got shape "
                f"{tuple(input.shape)}"
            )
        out = input
        for k in range(3):
            dim = input.ndim - 1 - k
            before, after = self.padding[2 * k], self.padding[2 * k + 1]
            size = input.shape[dim]
            if size == 0:
                raise RuntimeError(f"[{op}] cannot pad dim {dim} of size 0")
            if self._mode == "reflect" and (before >= size or after >= size):
                raise RuntimeError(
                    f"[{op}] reflect padding ({before}, {after}) must be smaller than the input "
                    f"size {size} of dim {dim}"
                )
            if self._mode == "circular" and (before > size or after > size):
                raise RuntimeError(
                    f"[{op}] circular padding ({before}, {after}) must be at most the input "
                    f"size {size} of dim {dim}"
                )
            out = out.index_select(dim, F._pad_indices(size, before, after, self._mode))
        return out


class ReflectionPad3d(_ModePad3d):
    """Pads the last three dims with their reflection (the edge not repeated)."""

    _mode = "reflect"


class ReplicationPad3d(_ModePad3d):
    """Pads the last three dims by repeating their edge values."""

    _mode = "replicate"


class CircularPad3d(_ModePad3d):
    """Pads the last three dims by wrapping around."""

    _mode = "circular"

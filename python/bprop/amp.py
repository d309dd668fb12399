"""bprop.amp: PyTorch's mixed-precision API, for programs that use it on a machine without CUDA.

bprop computes every op in its tensors' own dtype (float32 or float64), so there is nothing
to autocast and no gradient to scale. ``GradScaler`` is PyTorch's scaler as it behaves when
disabled: ``scale(loss)`` returns the loss, ``step(optimizer)`` calls ``optimizer.step()``.
``autocast(..., enabled=False)`` does nothing; ``autocast('cuda')`` warns and disables itself,
as PyTorch's does without CUDA; autocasting on the CPU (``enabled=True``) is not supported
yet and raises.
"""

from __future__ import annotations

import functools
import typing
import warnings
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

from ._core import Tensor
from ._device import device

__all__ = ["GradScaler", "autocast", "is_autocast_available"]

_F = TypeVar("_F", bound=Callable[..., Any])


def is_autocast_available(device_type: str) -> bool:
    """False: bprop has no autocast, for any device type."""
    device(device_type)  # a RuntimeError for a name PyTorch does not know either
    return False


class autocast:  # noqa: N801  (PyTorch's name)
    """PyTorch's ``torch.autocast(device_type, dtype=None, enabled=True, cache_enabled=None)``:
    a context manager and a decorator.

    ``enabled=False`` does nothing. ``device_type='cuda'`` warns and disables itself, as
    PyTorch does where CUDA is not available. Any other device type with ``enabled=True``
    raises NotImplementedError: bprop computes in each tensor's own dtype and has no autocast
    yet."""

    def __init__(
        self,
        device_type: str,
        dtype: Any = None,
        enabled: bool = True,
        cache_enabled: bool | None = None,
    ) -> None:
        if not isinstance(device_type, str):
            raise ValueError(
                f"[autocast] expected device_type to be a str, got {type(device_type).__name__}"
            )
        try:
            kind = device(device_type).type
        except RuntimeError as error:
            raise RuntimeError("[autocast] " + str(error).removeprefix("[device] ")) from None
        self.device_type = device_type
        self.fast_dtype = dtype
        self._cache_enabled = cache_enabled
        if enabled and kind == "cuda":
            warnings.warn(
                "[autocast] CUDA is not available (bprop runs on the CPU only). Disabling "
                "autocast.",
                UserWarning,
                stacklevel=2,
            )
            enabled = False
        if enabled:
            raise NotImplementedError(
                f"[autocast] autocast on {device_type!r} is not supported yet: bprop computes "
                "each op in its tensors' own dtype (float32 or float64); pass enabled=False"
            )
        self._enabled = False

    def __enter__(self) -> autocast:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        return False

    def __call__(self, fn: _F) -> _F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self:
                return fn(*args, **kwargs)

        return typing.cast(_F, wrapper)


class GradScaler:
    """PyTorch's gradient scaler, always disabled: bprop has no float16 to underflow.

    ``enabled=True`` (the default) warns, as PyTorch's scaler does on a machine without
    CUDA, and disables itself. Disabled, every method passes through: ``scale(outputs)``
    returns outputs, ``step(optimizer, ...)`` returns ``optimizer.step(...)``, ``unscale_`` and
    ``update`` do nothing, ``get_scale()`` is 1.0 and ``state_dict()`` is empty."""

    def __init__(
        self,
        device: str = "cuda",
        init_scale: float = 65536.0,
        growth_factor: float = 2.0,
        backoff_factor: float = 0.5,
        growth_interval: int = 2000,
        enabled: bool = True,
    ) -> None:
        self._device = device
        self._init_scale = init_scale
        self._growth_factor = growth_factor
        self._backoff_factor = backoff_factor
        self._growth_interval = growth_interval
        if enabled:
            warnings.warn(
                f"[GradScaler] {type(self).__module__}.GradScaler is enabled, but bprop runs on "
                "the CPU only and computes in float32/float64, so there is nothing to scale. "
                "Disabling.",
                UserWarning,
                stacklevel=2,
            )
        self._enabled = False

    def scale(self, outputs: Tensor | Iterable[Tensor]) -> Tensor | Iterable[Tensor]:
        """outputs, unchanged (the scaler is disabled)."""
        return outputs

    def unscale_(self, optimizer: Any) -> None:
        """Nothing to unscale: the gradients were never scaled."""

    def step(self, optimizer: Any, *args: Any, **kwargs: Any) -> Any:
        """``optimizer.step(*args, **kwargs)``, and its return value."""
        return optimizer.step(*args, **kwargs)

    def update(self, new_scale: float | Tensor | None = None) -> None:
        """Nothing to update: the scale stays 1.0."""

    def get_scale(self) -> float:
        """1.0: the scaler is disabled."""
        return 1.0

    def is_enabled(self) -> bool:
        """False: the scaler is always disabled in bprop."""
        return self._enabled

    def state_dict(self) -> dict[str, Any]:
        """{}: a disabled scaler has no state, as in PyTorch."""
        return {}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Accepts (and ignores) a scaler state, as a disabled PyTorch scaler does."""
        if not isinstance(state_dict, dict):
            raise TypeError(
                f"[GradScaler.load_state_dict] expected a dict, got {type(state_dict).__name__}"
            )

    def get_growth_factor(self) -> float:
        """The growth factor given to the constructor (unused while disabled)."""
        return self._growth_factor

    def set_growth_factor(self, new_factor: float) -> None:
        """Sets the growth factor (unused while disabled)."""
        self._growth_factor = new_factor

    def get_backoff_factor(self) -> float:
        """The backoff factor given to the constructor (unused while disabled)."""
        return self._backoff_factor

    def set_backoff_factor(self, new_factor: float) -> None:
        """Sets the backoff factor (unused while disabled)."""
        self._backoff_factor = new_factor

    def get_growth_interval(self) -> int:
        """The growth interval given to the constructor (unused while disabled)."""
        return self._growth_interval

    def set_growth_interval(self, new_interval: int) -> None:
        """Sets the growth interval (unused while disabled)."""
        self._growth_interval = new_interval

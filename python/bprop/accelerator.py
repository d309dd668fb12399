"""bprop.accelerator: PyTorch's device-agnostic accelerator queries. bprop runs on the CPU,
which PyTorch does not count as an accelerator: none is available."""

from __future__ import annotations

from ._device import device

__all__ = ["current_accelerator", "device_count", "is_available"]


def is_available() -> bool:
    """False: bprop runs on the CPU only."""
    return False


def device_count() -> int:
    """0: no accelerator."""
    return 0


def current_accelerator(check_available: bool = False) -> device | None:
    """None: no accelerator."""
    return None

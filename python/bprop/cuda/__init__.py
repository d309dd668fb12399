"""bprop.cuda: what PyTorch programs ask of CUDA, answered for a library that runs on the CPU.

``is_available()`` is False and ``device_count()`` 0, so the usual
``device = 'cuda' if torch.cuda.is_available() else 'cpu'`` picks the CPU. The seeding,
synchronising and cache calls are no-ops (there is no CUDA generator, stream or cache: seed
bprop's one generator with ``bprop.manual_seed``); calls that need a CUDA device raise a
RuntimeError.
"""

from __future__ import annotations

from typing import Any, NoReturn

from .._device import _cpu_only
from . import amp

__all__ = [
    "amp", "current_device", "device_count", "empty_cache", "get_device_name", "is_available",
    "is_bf16_supported", "manual_seed", "manual_seed_all", "seed", "seed_all", "set_device",
    "synchronize",
]  # fmt: skip


def is_available() -> bool:
    """False: bprop runs on the CPU only."""
    return False


def device_count() -> int:
    """0: bprop sees no CUDA device."""
    return 0


def is_bf16_supported(including_emulation: bool = True) -> bool:
    """False: no CUDA device (and bprop has no bfloat16 yet)."""
    return False


def manual_seed(seed: int) -> None:
    """A no-op: there is no CUDA generator (bprop.manual_seed seeds bprop's generator)."""


def manual_seed_all(seed: int) -> None:
    """A no-op: there is no CUDA generator (bprop.manual_seed seeds bprop's generator)."""


def seed() -> None:
    """A no-op: there is no CUDA generator."""


def seed_all() -> None:
    """A no-op: there is no CUDA generator."""


def synchronize(device: Any = None) -> None:
    """A no-op: bprop's ops have finished when they return."""


def empty_cache() -> None:
    """A no-op: bprop keeps no device memory cache."""


def _no_cuda(op: str) -> NoReturn:
    raise _cpu_only(op, "cuda")


def current_device() -> int:
    """Raises RuntimeError: there is no CUDA device."""
    _no_cuda("cuda.current_device")


def set_device(device: Any) -> None:
    """Raises RuntimeError: there is no CUDA device."""
    _no_cuda("cuda.set_device")


def get_device_name(device: Any = None) -> str:
    """Raises RuntimeError: there is no CUDA device."""
    _no_cuda("cuda.get_device_name")

"""bprop.backends.cudnn: PyTorch's cuDNN switches, settable, without effect (no cuDNN).

``enabled``, ``benchmark``, ``deterministic`` and ``allow_tf32`` start at PyTorch's defaults."""

from __future__ import annotations

__all__ = ["allow_tf32", "benchmark", "deterministic", "enabled", "is_available", "version"]

enabled = True
benchmark = False
deterministic = False
allow_tf32 = True


def is_available() -> bool:
    """False: bprop does not use cuDNN."""
    return False


def version() -> int | None:
    """None: no cuDNN."""
    return None

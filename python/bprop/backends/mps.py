"""bprop.backends.mps: Apple's Metal backend, which bprop does not have."""

from __future__ import annotations

__all__ = ["is_available", "is_built"]


def is_available() -> bool:
    """False: bprop runs on the CPU only."""
    return False


def is_built() -> bool:
    """False: bprop is built without MPS."""
    return False

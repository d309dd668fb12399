"""bprop.nn: neural-network building blocks. `bprop.nn.functional` holds the functions."""

from . import functional

__all__ = ["functional"]

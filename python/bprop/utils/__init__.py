"""bprop.utils, as torch.utils: `bprop.utils.data` (datasets, samplers, DataLoader)."""

from . import data

__all__ = ["data"]

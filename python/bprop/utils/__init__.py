"""bprop.utils, as torch.utils: `bprop.utils.data` (datasets, samplers, DataLoader) and
`bprop.utils.checkpoint` (checkpoint, checkpoint_sequential)."""

from . import checkpoint, data

__all__ = ["checkpoint", "data"]

"""Helpers of bprop.utils.data, laid out as torch.utils.data._utils: collate and worker."""

from . import collate, worker

__all__ = ["collate", "worker"]

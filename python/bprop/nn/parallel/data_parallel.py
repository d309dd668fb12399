"""DataParallel, as torch.nn.DataParallel on a machine without GPUs: the model runs in this
process, unchanged (PyTorch does the same when no device is available)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ..modules.module import Module

__all__ = ["DataParallel"]


class DataParallel(Module):
    """Wraps a module as its child `module` (state_dict keys get the ``module.`` prefix, as
    in PyTorch); calling it calls the module. device_ids and output_device must be None:
    bprop runs on the CPU."""

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
    ) -> None:
        if device_ids or output_device is not None:
            raise ValueError(
                "[DataParallel] device_ids and output_device need GPUs; bprop runs on the CPU: "
                f"leave them out (got device_ids {device_ids}, output_device {output_device})"
            )
        super().__init__()
        self.module = module
        self.dim = dim
        self.device_ids: list[Any] = []

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Calls the wrapped module."""
        return self.module(*inputs, **kwargs)

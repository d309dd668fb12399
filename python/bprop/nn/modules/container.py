"""Containers of modules, as torch.nn's: Sequential."""

from __future__ import annotations

from typing import Any

from .module import Module

__all__ = ["Sequential"]


class Sequential(Module):
    """Calls its modules in order, each on the previous one's output."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"[Sequential] argument {i} is not a Module: {module!r}")
            setattr(self, str(i), module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __len__(self) -> int:
        return len(self._modules)

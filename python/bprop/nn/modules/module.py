"""Module and Parameter: the base class of every layer, as torch.nn.Module.

A Module registers the Parameters and Modules assigned to its attributes; parameters()
walks them depth first, in assignment order, as PyTorch does."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from ... import _core
from ..._core import Tensor
from ...autograd import no_grad as _no_grad

__all__ = ["Parameter", "Module"]


class Parameter(Tensor):
    """A tensor that is a module's parameter: a leaf that requires grad by default."""

    def __init__(self, data: Tensor, requires_grad: bool = True) -> None:
        super().__init__(data)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)


class Module:
    """Base class of layers and models: override forward(), call the module."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call in {type(self).__name__}"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")  # pragma: no cover

    # Any: what a module returns is up to its forward().
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def named_parameters(
        self, prefix: str = "", recurse: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        seen: set[int] = set()
        for module_prefix, module in self.named_modules(prefix) if recurse else [(prefix, self)]:
            for name, p in module._parameters.items():
                if id(p) in seen:
                    continue
                seen.add(id(p))
                yield (f"{module_prefix}.{name}" if module_prefix else name), p

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def children(self) -> Iterator[Module]:
        yield from self._modules.values()

    def train(self, mode: bool = True) -> Module:
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> Module:
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        _core._zero_grad(list(self.parameters()), set_to_none)  # the optimizers' rule

    def state_dict(self) -> OrderedDict[str, Tensor]:
        """Every parameter by its dotted name (the tensors themselves, detached)."""
        return OrderedDict((name, p.detach()) for name, p in self.named_parameters())

    def load_state_dict(
        self, state_dict: Mapping[str, Tensor], strict: bool = True
    ) -> tuple[list[str], list[str]]:
        """Copies values into the parameters. Every check runs before the first copy, so a
        failed load changes nothing. Returns (missing_keys, unexpected_keys)."""
        own = dict(self.named_parameters())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise KeyError(
                f"[load_state_dict] missing keys {missing}, unexpected keys {unexpected}"
            )
        for name, value in state_dict.items():
            if name in own and tuple(value.shape) != tuple(own[name].shape):
                raise ValueError(
                    f"[load_state_dict] size mismatch for {name}: checkpoint "
                    f"{tuple(value.shape)}, model {tuple(own[name].shape)}"
                )
        with _no_grad():
            for name, value in state_dict.items():
                if name in own:
                    own[name].copy_(value)
        return missing, unexpected

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__}({self.extra_repr()}"]
        if self._modules:
            for name, child in self._modules.items():
                child_repr = repr(child).replace("\n", "\n  ")
                lines.append(f"  ({name}): {child_repr}")
            return "\n".join(lines) + "\n)"
        return lines[0] + ")"


def _uniform(shape: tuple[int, ...], bound: float, dtype: _core.dtype) -> Tensor:
    """U(-bound, bound): PyTorch's default for Linear and Conv2d (kaiming_uniform_ with
    a = sqrt(5) works out to bound = 1 / sqrt(fan_in), and the same for the bias)."""
    return _core._rand(tuple(shape), dtype) * (2 * bound) - bound

"""Containers, as torch.nn's: Sequential, ModuleList, ModuleDict, ParameterList and
ParameterDict. Each registers what it holds under the string keys PyTorch uses ('0', '1', ...
for the lists), so state dicts interchange."""

from __future__ import annotations

import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from ..._core import Tensor
from .module import Module, Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


def _index(op: str, index: int, length: int) -> int:
    """A non-negative position for index into length items; IndexError when outside."""
    index = operator.index(index)
    if not -length <= index < length:
        raise IndexError(f"[{op}] index {index} is out of range for length {length}")
    return index + length if index < 0 else index


class Sequential(Module):
    """Calls its modules in order, each on the previous one's output. Built from modules
    (named '0', '1', ...) or from one OrderedDict of name -> module."""

    def __init__(self, *args: Module) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for name, module in args[0].items():
                self.add_module(name, module)
            return
        for i, module in enumerate(args):
            if not isinstance(module, Module):
                raise TypeError(f"[Sequential] argument {i} is not a Module: {module!r}")
            self.add_module(str(i), module)

    def forward(self, input: Any) -> Any:
        for module in self._modules.values():
            input = module(input)
        return input

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return type(self)(OrderedDict(list(self._modules.items())[index]))
        items = list(self._modules.values())
        return items[_index("Sequential", index, len(items))]

    def __setitem__(self, index: int, module: Module) -> None:
        keys = list(self._modules)
        setattr(self, keys[_index("Sequential", index, len(keys))], module)

    def __delitem__(self, index: int | slice) -> None:
        """Deletes, then renumbers the rest '0', '1', ... (as PyTorch does)."""
        items = list(self._modules.values())
        if isinstance(index, slice):
            del items[index]
        else:
            del items[_index("Sequential", index, len(items))]
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(items):
            self.add_module(str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def append(self, module: Module) -> Sequential:
        """Adds module at the end (named by its position); returns self."""
        if not isinstance(module, Module):
            raise TypeError(f"[Sequential.append] {type(module).__name__} is not a Module")
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> Sequential:
        """Appends every module of an iterable; returns self."""
        for module in modules:
            self.append(module)
        return self


class ModuleList(Module):
    """A list of modules, registered as '0', '1', ...: their parameters belong to the owner.
    Supports indexing (negative, slices), assignment, deletion, len, iteration, append,
    extend, insert and +=."""

    def __init__(self, modules: Iterable[Module] | None = None) -> None:
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _renumber(self, modules: list[Module]) -> None:
        for key in list(self._modules):
            delattr(self, key)
        for i, module in enumerate(modules):
            self.add_module(str(i), module)

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._modules.values())
        if isinstance(index, slice):
            return type(self)(items[index])
        return items[_index("ModuleList", index, len(items))]

    def __setitem__(self, index: int, module: Module) -> None:
        position = _index("ModuleList", index, len(self))
        self.add_module(str(position), module)

    def __delitem__(self, index: int | slice) -> None:
        items = list(self._modules.values())
        if isinstance(index, slice):
            del items[index]
        else:
            del items[_index("ModuleList", index, len(items))]
        self._renumber(items)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[Module]:
        return iter(list(self._modules.values()))

    def __repr__(self) -> str:
        """As PyTorch's: runs of equal entries print once, as "(0-2): 3 x Linear(...)"."""
        reprs = [repr(module) for module in self]
        if not reprs:
            return "ModuleList()"
        runs: list[list] = []  # [first index, last index, repr]
        for i, text in enumerate(reprs):
            if runs and runs[-1][2] == text:
                runs[-1][1] = i
            else:
                runs.append([i, i, text])
        lines = []
        for first, last, text in runs:
            label = f"({first}): " if first == last else f"({first}-{last}): {last - first + 1} x "
            lines.append((label + text).replace("\n", "\n  "))
        return type(self).__name__ + "(\n  " + "\n  ".join(lines) + "\n)"

    def __iadd__(self, modules: Iterable[Module]) -> ModuleList:
        return self.extend(modules)

    def __add__(self, other: Iterable[Module]) -> ModuleList:
        return type(self)([*self, *other])

    def append(self, module: Module) -> ModuleList:
        """Adds module at the end; returns self."""
        self.add_module(str(len(self)), module)
        return self

    def extend(self, modules: Iterable[Module]) -> ModuleList:
        """Appends every module of an iterable; returns self."""
        if isinstance(modules, (Module, Tensor)) or not isinstance(modules, Iterable):
            raise TypeError(
                "[ModuleList.extend] should be called with an iterable, but got "
                + type(modules).__name__
            )
        for module in modules:
            self.append(module)
        return self

    def insert(self, index: int, module: Module) -> None:
        """Inserts module before index (as list.insert)."""
        items = list(self._modules.values())
        items.insert(operator.index(index), module)
        self._renumber(items)


class ModuleDict(Module):
    """An ordered dict of modules, registered under their keys."""

    def __init__(
        self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]] | None = None
    ) -> None:
        super().__init__()
        if modules is not None:
            self.update(modules)

    def __getitem__(self, key: str) -> Module:
        return self._modules[key]

    def __setitem__(self, key: str, module: Module) -> None:
        self.add_module(key, module)

    def __delitem__(self, key: str) -> None:
        if key not in self._modules:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._modules)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._modules))

    def __contains__(self, key: object) -> bool:
        return key in self._modules

    def clear(self) -> None:
        """Removes every module."""
        for key in list(self._modules):
            delattr(self, key)

    def pop(self, key: str) -> Module:
        """Removes key and returns its module."""
        module = self[key]
        del self[key]
        return module

    def keys(self) -> Iterable[str]:
        return self._modules.keys()

    def values(self) -> Iterable[Module]:
        return self._modules.values()

    def items(self) -> Iterable[tuple[str, Module]]:
        return self._modules.items()

    def update(self, modules: Mapping[str, Module] | Iterable[tuple[str, Module]]) -> None:
        """Adds (or replaces) the modules of a mapping or of an iterable of (key, module)."""
        if isinstance(modules, Mapping):
            pairs = list(modules.items())
        elif isinstance(modules, Iterable) and not isinstance(modules, (str, Module)):
            pairs = []
            for j, pair in enumerate(modules):
                if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                    raise ValueError(
                        f"[ModuleDict.update] element #{j} should be a (key, module) pair"
                    )
                pairs.append(tuple(pair))
        else:
            raise TypeError(
                "[ModuleDict.update] expected a mapping or an iterable of (key, module) pairs, "
                f"got {type(modules).__name__}"
            )
        for key, module in pairs:
            self[key] = module


class ParameterList(Module):
    """A list of parameters, registered as '0', '1', ...; tensors become Parameters."""

    def __init__(self, values: Iterable[Tensor] | None = None) -> None:
        super().__init__()
        if values is not None:
            self.extend(values)

    @staticmethod
    def _as_parameter(value: Any) -> Any:
        if isinstance(value, Tensor) and not isinstance(value, Parameter):
            return Parameter(value)
        return value

    def __getitem__(self, index: int | slice) -> Any:
        items = list(self._parameters.values())
        if isinstance(index, slice):
            return type(self)(items[index])
        return items[_index("ParameterList", index, len(items))]

    def __setitem__(self, index: int, value: Tensor) -> None:
        position = _index("ParameterList", index, len(self))
        setattr(self, str(position), self._as_parameter(value))

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[Parameter]:
        return iter(list(self._parameters.values()))

    def __iadd__(self, values: Iterable[Tensor]) -> ParameterList:
        return self.extend(values)

    def append(self, value: Tensor) -> ParameterList:
        """Adds value (made a Parameter if it is a plain tensor) at the end; returns self."""
        value = self._as_parameter(value)
        if not isinstance(value, Parameter):
            raise TypeError(
                f"[ParameterList.append] expected a Tensor or Parameter, got {type(value).__name__}"
            )
        self.register_parameter(str(len(self)), value)
        return self

    def extend(self, values: Iterable[Tensor]) -> ParameterList:
        """Appends every tensor of an iterable; returns self."""
        if isinstance(values, Tensor) or not isinstance(values, Iterable):
            raise TypeError(
                "[ParameterList.extend] should be called with an iterable, but got "
                + type(values).__name__
            )
        for value in values:
            self.append(value)
        return self

    def extra_repr(self) -> str:
        return "\n".join(
            f"({i}): Parameter containing: [{p.dtype} of size {'x'.join(map(str, p.shape))}]"
            for i, p in enumerate(self)
        )


class ParameterDict(Module):
    """An ordered dict of parameters, registered under their keys; tensors become
    Parameters."""

    def __init__(
        self, parameters: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]] | None = None
    ) -> None:
        super().__init__()
        if parameters is not None:
            self.update(parameters)

    def __getitem__(self, key: str) -> Parameter:
        return self._parameters[key]

    def __setitem__(self, key: str, value: Tensor) -> None:
        if not isinstance(value, Tensor):
            raise TypeError(
                f"[ParameterDict] expected a Tensor or Parameter for {key!r}, "
                f"got {type(value).__name__}"
            )
        value = value if isinstance(value, Parameter) else Parameter(value)
        if key in self._parameters:
            delattr(self, key)
        self.register_parameter(key, value)

    def __delitem__(self, key: str) -> None:
        if key not in self._parameters:
            raise KeyError(key)
        delattr(self, key)

    def __len__(self) -> int:
        return len(self._parameters)

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._parameters))

    def __contains__(self, key: object) -> bool:
        return key in self._parameters

    def pop(self, key: str) -> Parameter:
        """Removes key and returns its parameter."""
        value = self[key]
        del self[key]
        return value

    def keys(self) -> Iterable[str]:
        return self._parameters.keys()

    def values(self) -> Iterable[Parameter]:
        return self._parameters.values()

    def items(self) -> Iterable[tuple[str, Parameter]]:
        return self._parameters.items()

    def update(self, parameters: Mapping[str, Tensor] | Iterable[tuple[str, Tensor]]) -> None:
        """Adds (or replaces) the parameters of a mapping or an iterable of (key, tensor)."""
        pairs = parameters.items() if isinstance(parameters, Mapping) else parameters
        for key, value in list(pairs):
            self[key] = value

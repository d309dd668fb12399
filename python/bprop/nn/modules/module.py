"""Module and Parameter: the base class of every layer, as torch.nn.Module.

A Module registers the Parameters, buffers and Modules assigned to its attributes (in
``_parameters``, ``_buffers`` and ``_modules``, PyTorch's names); parameters() walks them depth
first, in assignment order, as PyTorch does. Registered values also live in the instance's
``__dict__``, so attribute reads need no ``__getattr__``: ``__setattr__`` and ``__delattr__``
keep the two in step.

state_dict() lists, per module and depth first, its parameters then its persistent buffers:
PyTorch's key order, so checkpoints interchange."""

from __future__ import annotations

import itertools
import weakref
from collections import OrderedDict, namedtuple
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

from ... import _core
from ..._core import Tensor
from ..._device import (
    bfloat16,
    check_device,
    check_dtype,
    float16,
    parse_to_args,
    unsupported_dtype_error,
)
from ..._tensor import RemovableHandle, cat
from ...autograd import no_grad as _no_grad

__all__ = ["Parameter", "Module"]

# Methods that return self are typed to return the caller's own class, as torch.nn.Module's.
_M = TypeVar("_M", bound="Module")


class Parameter(Tensor):
    """A tensor that is a module's parameter: a leaf that requires grad by default."""

    _deepcopy_grad = False  # copy.deepcopy leaves .grad None, as PyTorch's Parameter

    def __new__(cls, data: Tensor | None = None, requires_grad: bool = True) -> Parameter:
        # Parameter.__new__(Parameter) alone (as pickle and copy libraries call it) is an
        # empty parameter that requires grad, as in PyTorch; __init__ then sets the values.
        self = super().__new__(cls)
        if requires_grad:
            self.requires_grad_(True)
        return self

    def __init__(self, data: Tensor | None = None, requires_grad: bool = True) -> None:
        if data is None:
            data = _core._zeros((0,), _core.get_default_dtype())
        super().__init__(data)
        self.requires_grad_(requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + Tensor.__repr__(self)


class _ModuleHookHandle(RemovableHandle):
    """The RemovableHandle of a module hook (torch.utils.hooks.RemovableHandle): remove()
    takes the hook out of the module's hook tables; it holds them weakly."""

    _ids = itertools.count()

    def __init__(self, *tables: OrderedDict) -> None:
        self.id = next(_ModuleHookHandle._ids)
        self._tables = [weakref.ref(table) for table in tables]

    def remove(self) -> None:
        """Takes the hook off (nothing happens if it already is)."""
        for ref in self._tables:
            table = ref()
            if table is not None:
                table.pop(self.id, None)


def _pack(tensors: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
    """One tensor that all of tensors flow through (so that one tensor hook sees all their
    gradients at once), and their replacements computed from it."""
    if len(tensors) == 1:
        packed = tensors[0].view_as(tensors[0])
        return packed, [packed]
    if len({t.dtype for t in tensors}) != 1:
        raise RuntimeError(
            "[register_full_backward_hook] the tensors requiring grad in a module's inputs "
            "(or outputs) must share one dtype, got " + ", ".join(str(t.dtype) for t in tensors)
        )
    packed = cat([t.reshape(-1) for t in tensors])
    parts = packed.split([t.numel() for t in tensors])
    return packed, [part.view(t.shape) for part, t in zip(parts, tensors)]


def _unpack(grad: Tensor, tensors: list[Tensor]) -> list[Tensor]:
    """The gradient of each of tensors from the gradient of their _pack."""
    if len(tensors) == 1:
        return [grad]
    parts = grad.split([t.numel() for t in tensors])
    return [part.view(t.shape) for part, t in zip(parts, tensors)]


def _repack(op: str, grads: Any, n: int, index: list[int], like: list[Tensor]) -> Tensor:
    """The gradient of a _pack from a hook's tuple of n gradients (None: zeros)."""
    if not isinstance(grads, (tuple, list)) or len(grads) != n:
        raise RuntimeError(
            f"[{op}] the hook must return None or a tuple of {n} gradients, got {grads!r}"
        )
    chosen = []
    for i, t in zip(index, like):
        g = grads[i]
        if g is None:
            g = _core._zeros(tuple(t.shape), t.dtype)
        elif not isinstance(g, Tensor) or tuple(g.shape) != tuple(t.shape):
            raise RuntimeError(
                f"[{op}] the hook returned a gradient of shape "
                f"{tuple(getattr(g, 'shape', ()))} for a tensor of shape {tuple(t.shape)}"
            )
        chosen.append(g)
    return chosen[0] if len(chosen) == 1 else cat([g.reshape(-1) for g in chosen])


class _BackwardHook:
    """One call's full backward hooks, as torch.utils.hooks.BackwardHook: the module's tensor
    inputs and outputs that require grad are passed through one identity each (_pack), whose
    tensor hooks see grad_output (backward pre-hooks may replace it) and then grad_input
    (backward hooks are called with both and may replace grad_input)."""

    def __init__(self, module: Module) -> None:
        self.module = module
        self.n_inputs = 0
        self.input_index: list[int] = []
        self.inputs: list[Tensor] = []
        self.grad_outputs: tuple | None = None

    def setup_inputs(self, args: tuple) -> tuple:
        self.n_inputs = len(args)
        if not _core.is_grad_enabled():
            return args
        self.input_index = [
            i for i, a in enumerate(args) if isinstance(a, Tensor) and a.requires_grad
        ]
        if not self.input_index:
            return args
        self.inputs = [args[i] for i in self.input_index]
        packed, parts = _pack(self.inputs)
        packed.register_hook(self._on_grad_input)
        new_args = list(args)
        for i, part in zip(self.input_index, parts):
            new_args[i] = part
        return tuple(new_args)

    def setup_outputs(self, result: Any) -> Any:
        single = isinstance(result, Tensor)
        outputs = [result] if single else list(result) if isinstance(result, tuple) else None
        if outputs is None or not _core.is_grad_enabled():
            return result
        index = [i for i, o in enumerate(outputs) if isinstance(o, Tensor) and o.requires_grad]
        if not index:
            return result
        like = [outputs[i] for i in index]
        packed, parts = _pack(like)
        n = len(outputs)

        def on_grad_output(grad: Tensor) -> Tensor | None:
            grads: list[Tensor | None] = [None] * n
            for i, g in zip(index, _unpack(grad, like)):
                grads[i] = g
            replaced = None
            for hook in list(self.module.__dict__.get("_backward_pre_hooks", {}).values()):
                new = hook(self.module, tuple(grads))
                if new is not None:
                    if not isinstance(new, tuple):
                        new = (new,)
                    replaced = _repack("register_full_backward_pre_hook", new, n, index, like)
                    grads = list(new)
            self.grad_outputs = tuple(grads)
            if not self.input_index:  # no gradient for the inputs will come: call them now
                self._call_hooks((None,) * self.n_inputs)
            return replaced

        packed.register_hook(on_grad_output)
        for i, part in zip(index, parts):
            outputs[i] = part
        return outputs[0] if single else tuple(outputs)

    def _call_hooks(self, grad_input: tuple) -> tuple | None:
        replaced = None
        for hook in list(self.module.__dict__.get("_backward_hooks", {}).values()):
            new = hook(self.module, grad_input, self.grad_outputs)
            if new is not None:
                if not isinstance(new, tuple):
                    new = (new,)
                replaced = grad_input = new
        return replaced

    def _on_grad_input(self, grad: Tensor) -> Tensor | None:
        grads: list[Tensor | None] = [None] * self.n_inputs
        for i, g in zip(self.input_index, _unpack(grad, self.inputs)):
            grads[i] = g
        new = self._call_hooks(tuple(grads))
        if new is None:
            return None
        return _repack(
            "register_full_backward_hook", new, self.n_inputs, self.input_index, self.inputs
        )


_IncompatibleKeys = namedtuple("_IncompatibleKeys", ["missing_keys", "unexpected_keys"])


class StateDictKeyError(RuntimeError, KeyError):
    """load_state_dict(strict=True) with missing or unexpected keys: a RuntimeError, as
    PyTorch raises, and a KeyError."""

    __str__ = BaseException.__str__  # KeyError's would quote the message


class StateDictSizeError(RuntimeError, ValueError):
    """load_state_dict with a tensor whose shape differs from the model's: a RuntimeError, as
    PyTorch raises, and a ValueError."""


def _check_name(op: str, kind: str, module: Module, name: object, registry: dict) -> None:
    if not isinstance(name, str):
        raise TypeError(f"[{op}] {kind} name should be a string, got {type(name).__name__}")
    if name == "":
        raise KeyError(f'[{op}] {kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'[{op}] {kind} name can\'t contain ".", got {name!r}')
    if name in module.__dict__ and name not in registry:
        raise KeyError(f"[{op}] attribute {name!r} already exists")


class Module:
    """Base class of layers and models: override forward(), call the module."""

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "training", True)
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent_buffers_set", set())
        object.__setattr__(self, "_modules", OrderedDict())

    # ---- registration -------------------------------------------------------------------

    def __setattr__(self, name: str, value: Any) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"cannot assign {name!r} before Module.__init__() call in {type(self).__name__}"
            )
        params, buffers, modules = self._parameters, self._buffers, self._modules
        if isinstance(value, Parameter):
            self._forget(name)
            self.register_parameter(name, value)
        elif name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter {name!r} "
                    "(bprop.nn.Parameter or None expected)"
                )
            self.register_parameter(name, None)
        elif isinstance(value, Module):
            self._forget(name)
            self.add_module(name, value)
        elif name in modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module {name!r} "
                    "(bprop.nn.Module or None expected)"
                )
            self.add_module(name, None)
        elif name in buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer {name!r} "
                    "(bprop.Tensor or None expected)"
                )
            buffers[name] = value
            object.__setattr__(self, name, value)
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name: str) -> None:
        """Drops name from every registry and the instance dict (before re-registering it)."""
        self.__dict__.pop(name, None)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._non_persistent_buffers_set.discard(name)

    def __delattr__(self, name: str) -> None:
        registered = name in self._parameters or name in self._buffers or name in self._modules
        if registered:
            self._forget(name)
        else:
            object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Adds a parameter (or None, a declared but absent one) under name."""
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name("register_parameter", "parameter", self, name, self._parameters)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"[register_parameter] cannot assign '{type(param).__name__}' object to "
                f"parameter {name!r} (bprop.nn.Parameter or None required)"
            )
        self._parameters[name] = param
        object.__setattr__(self, name, param)

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Adds a buffer: a tensor that is state but not a parameter (running statistics, a
        causal mask). Persistent buffers are part of state_dict(); all of them follow .to()."""
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name("register_buffer", "buffer", self, name, self._buffers)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"[register_buffer] cannot assign '{type(tensor).__name__}' object to buffer "
                f"{name!r} (bprop.Tensor or None required)"
            )
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers_set.discard(name)
        else:
            self._non_persistent_buffers_set.add(name)
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: Module | None) -> None:
        """Adds a child module (or None) under name."""
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"[add_module] {type(module).__name__} is not a Module subclass")
        _check_name("add_module", "module", self, name, self._modules)
        self._modules[name] = module
        object.__setattr__(self, name, module)

    def register_module(self, name: str, module: Module | None) -> None:
        """Alias for add_module."""
        self.add_module(name, module)

    def get_submodule(self, target: str) -> Module:
        """The module at a dotted path ('' is self); AttributeError if there is none."""
        module = self
        if target == "":
            return module
        for item in target.split("."):
            child = module._modules.get(item)
            if not isinstance(child, Module):
                raise AttributeError(f"{type(module).__name__} has no submodule `{item}`")
            module = child
        return module

    def get_parameter(self, target: str) -> Parameter:
        """The parameter at a dotted path ('block.0.weight')."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._parameters or module._parameters[name] is None:
            raise AttributeError(f"{type(module).__name__} has no parameter `{name}`")
        return module._parameters[name]

    def get_buffer(self, target: str) -> Tensor:
        """The buffer at a dotted path ('norm.running_mean')."""
        module_path, _, name = target.rpartition(".")
        module = self.get_submodule(module_path)
        if name not in module._buffers or module._buffers[name] is None:
            raise AttributeError(f"{type(module).__name__} has no buffer `{name}`")
        return module._buffers[name]

    # ---- calling --------------------------------------------------------------------------

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} has no forward()")  # pragma: no cover

    # Any: what a module returns is up to its forward().
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        d = self.__dict__
        if not (
            d.get("_forward_pre_hooks")
            or d.get("_forward_hooks")
            or d.get("_backward_hooks")
            or d.get("_backward_pre_hooks")
        ):
            return self.forward(*args, **kwargs)
        return self._call_with_hooks(args, kwargs)

    def _call_with_hooks(self, args: tuple, kwargs: dict) -> Any:
        """forward with the module's hooks around it, in torch.nn.Module._call_impl's order."""
        d = self.__dict__
        with_kwargs = d.get("_forward_pre_hooks_with_kwargs", {})
        for hook_id, hook in list(d.get("_forward_pre_hooks", {}).items()):
            if hook_id in with_kwargs:
                result = hook(self, args, kwargs)
                if result is not None:
                    if not (isinstance(result, tuple) and len(result) == 2):
                        raise RuntimeError(
                            "[register_forward_pre_hook] forward pre-hook must return None or "
                            f"a tuple of (new_args, new_kwargs), but got {result}."
                        )
                    args, kwargs = result
            else:
                result = hook(self, args)
                if result is not None:
                    args = result if isinstance(result, tuple) else (result,)
        backward_hook = None
        if d.get("_backward_hooks") or d.get("_backward_pre_hooks"):
            backward_hook = _BackwardHook(self)
            args = backward_hook.setup_inputs(args)
        forward_hooks = list(d.get("_forward_hooks", {}).items())
        with_kwargs = d.get("_forward_hooks_with_kwargs", {})
        try:
            result = self.forward(*args, **kwargs)
        except Exception:
            for hook_id, hook in forward_hooks:
                if hook_id in d.get("_forward_hooks_always_called", {}):
                    try:
                        if hook_id in with_kwargs:
                            hook(self, args, kwargs, None)
                        else:
                            hook(self, args, None)
                    except Exception:
                        pass  # forward's own error is the one to report, as torch does
            raise
        for hook_id, hook in forward_hooks:
            if hook_id in with_kwargs:
                new = hook(self, args, kwargs, result)
            else:
                new = hook(self, args, result)
            if new is not None:
                result = new
        if backward_hook is not None:
            result = backward_hook.setup_outputs(result)
        return result

    def _hook_table(self, name: str) -> OrderedDict:
        """The module's OrderedDict of hooks `name` (handle id -> hook), made on first use."""
        table = self.__dict__.get(name)
        if table is None:
            table = OrderedDict()
            object.__setattr__(self, name, table)
        return table

    def _add_hook(self, name: str, hook: Callable[..., Any], prepend: bool, *flags: str) -> Any:
        if not callable(hook):
            raise TypeError(f"[{name}] hook must be callable, got {type(hook).__name__}")
        table = self._hook_table(name)
        flag_tables = [self._hook_table(flag) for flag in flags]
        handle = _ModuleHookHandle(table, *flag_tables)
        table[handle.id] = hook
        if prepend:
            table.move_to_end(handle.id, last=False)
        for flag_table in flag_tables:
            flag_table[handle.id] = True
        return handle

    def register_forward_pre_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
    ) -> RemovableHandle:
        """Calls hook(module, args) before each forward (hook(module, args, kwargs) with
        with_kwargs=True); it may return new args (a non-tuple is wrapped into a 1-tuple), or
        with with_kwargs a tuple (new_args, new_kwargs). prepend=True puts it first. Returns
        a RemovableHandle."""
        flags = ("_forward_pre_hooks_with_kwargs",) if with_kwargs else ()
        return self._add_hook("_forward_pre_hooks", hook, prepend, *flags)

    def register_forward_hook(
        self,
        hook: Callable[..., Any],
        *,
        prepend: bool = False,
        with_kwargs: bool = False,
        always_call: bool = False,
    ) -> RemovableHandle:
        """Calls hook(module, args, output) after each forward (hook(module, args, kwargs,
        output) with with_kwargs=True); a result other than None replaces the output.
        prepend=True puts it first; always_call=True calls it (with output None) even when
        forward raises. Returns a RemovableHandle."""
        flags = ("_forward_hooks_with_kwargs",) if with_kwargs else ()
        flags += ("_forward_hooks_always_called",) if always_call else ()
        return self._add_hook("_forward_hooks", hook, prepend, *flags)

    def register_full_backward_pre_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Calls hook(module, grad_output) when the gradients with respect to the module's
        outputs are computed (one entry per output, None where an output needs none); it may
        return a replacement grad_output. Returns a RemovableHandle."""
        return self._add_hook("_backward_pre_hooks", hook, prepend)

    def register_full_backward_hook(
        self, hook: Callable[..., Any], prepend: bool = False
    ) -> RemovableHandle:
        """Calls hook(module, grad_input, grad_output) when the gradients with respect to the
        module's positional inputs are computed (one entry per input, None for one that is not
        a tensor requiring grad); it may return a replacement grad_input. Tensor inputs (and
        outputs) requiring grad must share one dtype. As in PyTorch, a module's inputs and
        outputs then pass through an identity; its outputs should not be modified in place.
        Returns a RemovableHandle."""
        return self._add_hook("_backward_hooks", hook, prepend)

    # ---- walking --------------------------------------------------------------------------

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """(dotted name, module) for self and every descendant, depth first; a module
        reachable twice is listed once unless remove_duplicate=False."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, child in self._modules.items():
            if child is None:
                continue
            yield from child.named_modules(
                memo, f"{prefix}.{name}" if prefix else name, remove_duplicate
            )

    def modules(self) -> Iterator[Module]:
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        seen: set[int] = set()
        for name, child in self._modules.items():
            if child is not None and id(child) not in seen:
                seen.add(id(child))
                yield name, child

    def children(self) -> Iterator[Module]:
        for _, child in self.named_children():
            yield child

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        modules = (
            self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate)
            if recurse
            else [(prefix, self)]
        )
        for module_prefix, module in modules:
            for name, value in getattr(module, registry).items():
                if value is None:
                    continue
                if remove_duplicate:
                    if id(value) in seen:
                        continue
                    seen.add(id(value))
                yield (f"{module_prefix}.{name}" if module_prefix else name), value

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """(dotted name, parameter), depth first in registration order; a shared parameter
        is listed once."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """(dotted name, buffer), persistent or not, depth first in registration order."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self: _M, fn: Callable[[Module], Any]) -> _M:
        """Calls fn on every child (recursively), then on self; returns self
        (``model.apply(init_weights)``)."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients --------------------------------------------------------------

    def train(self: _M, mode: bool = True) -> _M:
        if not isinstance(mode, bool):
            raise ValueError("[train] training mode is expected to be boolean")
        object.__setattr__(self, "training", mode)
        for child in self.children():
            child.train(mode)
        return self

    def eval(self: _M) -> _M:
        return self.train(False)

    def requires_grad_(self: _M, requires_grad: bool = True) -> _M:
        """Sets requires_grad on every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        _core._zero_grad(list(self.parameters()), set_to_none)  # the optimizers' rule

    # ---- devices and dtypes ---------------------------------------------------------------

    def _convert(self, convert: Callable[[Tensor], Tensor | None]) -> Module:
        """Applies convert (a tensor -> converted tensor, or None for unchanged) to every
        parameter, its gradient and every buffer, as torch.nn.Module._apply does: a parameter
        (and its .grad) is converted in place through the ``.data`` setter, so it stays the
        same object (an optimizer holding it trains the converted values; tied parameters
        stay tied); a buffer is replaced by its converted copy. Nothing changes if a
        conversion is refused (an integer dtype for a parameter that requires grad)."""
        done: set[int] = set()
        # (tensor, its new data, the parameter whose .grad the tensor is, or None)
        updates: list[tuple[Tensor, Tensor, Tensor | None]] = []
        with _no_grad():
            for module in self.modules():
                for p in module._parameters.values():
                    if p is None or id(p) in done:
                        continue
                    done.add(id(p))
                    data = convert(p)
                    if data is not None:
                        if p.requires_grad and not data.dtype.is_floating_point:
                            raise RuntimeError(
                                "[Module._apply] data set to a tensor that requires gradients "
                                f"must be floating point, got {data.dtype}"
                            )
                        updates.append((p, data.detach(), None))
                    grad = None if p.grad is None else convert(p.grad)
                    if grad is not None:
                        updates.append((p.grad, grad.detach(), p))
            for tensor, data, owner in updates:
                if owner is not None and tensor.grad_fn is not None:
                    owner.grad = data  # a create_graph gradient: its graph fixes its dtype
                else:
                    tensor.data = data
            for module in self.modules():
                for name, b in list(module._buffers.items()):
                    if b is not None:
                        data = convert(b)
                        if data is not None:
                            module._buffers[name] = data
                            object.__setattr__(module, name, data)
        return self

    def _cast_floating(self, dtype: _core.dtype) -> Module:
        def convert(t: Tensor) -> Tensor | None:
            if t.dtype.is_floating_point and t.dtype != dtype:
                return t.detach().to(dtype)
            return None

        return self._convert(convert)

    def to(self: _M, *args: Any, **kwargs: Any) -> _M:
        """As torch.nn.Module.to: ``to(device)``, ``to(dtype)``, ``to(device, dtype)``,
        ``to(tensor)``, with ``non_blocking=``. The device must be the CPU (bprop computes
        there; 'cuda' and others raise a RuntimeError); a dtype converts the floating-point
        parameters and buffers. Returns self."""
        dtype, _ = parse_to_args("Module.to", *args, **kwargs)
        if dtype is not None:
            if not dtype.is_floating_point:
                raise TypeError(
                    f"[Module.to] nn.Module.to only accepts floating point dtypes, got {dtype}"
                )
            self._cast_floating(dtype)
        return self

    def cpu(self: _M) -> _M:
        """Returns self: bprop's tensors live on the CPU."""
        return self

    def cuda(self: _M, device: Any = None) -> _M:
        """Raises a RuntimeError: bprop runs on the CPU only."""
        check_device("Module.cuda", "cuda" if device is None else device)
        raise RuntimeError(f"[Module.cuda] device {device!r} is not CUDA; bprop runs on the CPU")

    def float(self: _M) -> _M:
        """Floating-point parameters and buffers to float32; returns self."""
        return self._cast_floating(_core.dtype.float32)

    def double(self: _M) -> _M:
        """Floating-point parameters and buffers to float64; returns self."""
        return self._cast_floating(_core.dtype.float64)

    def half(self: _M) -> _M:
        """Raises TypeError, changing nothing: bprop has no float16 yet (as Tensor.half)."""
        raise unsupported_dtype_error("Module.half", float16)

    def bfloat16(self: _M) -> _M:
        """Raises TypeError, changing nothing: bprop has no bfloat16 yet (as
        Tensor.bfloat16)."""
        raise unsupported_dtype_error("Module.bfloat16", bfloat16)

    def type(self: _M, dst_type: _core.dtype) -> _M:
        """Every parameter and buffer to dst_type; returns self."""
        dst_type = check_dtype("Module.type", dst_type)
        return self._convert(lambda t: None if t.dtype == dst_type else t.detach().to(dst_type))

    # ---- state ----------------------------------------------------------------------------

    def _state_items(self, prefix: str) -> Iterator[tuple[str, Module, str, Tensor]]:
        """(key, owning module, local name, tensor) in state_dict order: per module, its
        parameters then its persistent buffers, depth first (shared entries repeat)."""
        for name, p in self._parameters.items():
            if p is not None:
                yield prefix + name, self, name, p
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers_set:
                yield prefix + name, self, name, b
        for name, child in self._modules.items():
            if child is not None:
                yield from child._state_items(f"{prefix}{name}.")

    def _state_dict_defaults(self) -> dict[str, Tensor]:
        """Values, by local name, that load_state_dict uses for this module's keys a checkpoint
        lacks (such a key does not count as missing). None by default; BatchNorm keeps its
        num_batches_tracked, as PyTorch's _NormBase._load_from_state_dict does."""
        return {}

    def state_dict(
        self,
        destination: dict[str, Tensor] | None = None,
        prefix: str = "",
        keep_vars: bool = False,
    ) -> OrderedDict[str, Tensor]:
        """Every parameter and persistent buffer by its dotted name, in PyTorch's order (the
        tensors themselves, detached unless keep_vars)."""
        out: Any = OrderedDict() if destination is None else destination
        for key, _, _, t in self._state_items(prefix):
            out[key] = t if keep_vars else t.detach()
        return out

    def load_state_dict(
        self, state_dict: Mapping[str, Tensor], strict: bool = True, assign: bool = False
    ) -> _IncompatibleKeys:
        """Copies values into the parameters and persistent buffers (assign=True: makes the
        checkpoint's tensors themselves the parameters and buffers). Every check runs before
        the first change, so a failed load changes nothing. Returns (missing_keys,
        unexpected_keys)."""
        if not isinstance(state_dict, Mapping):
            raise TypeError(
                f"[load_state_dict] expected a mapping, got {type(state_dict).__name__}"
            )
        owners = {key: (module, name) for key, module, name, _ in self._state_items("")}
        own = {key: t for key, _, _, t in self._state_items("")}
        defaults: dict[str, Tensor] = {}
        for prefix, module in self.named_modules(remove_duplicate=False):
            for name, value in module._state_dict_defaults().items():
                defaults[f"{prefix}.{name}" if prefix else name] = value
        state_dict = {**{k: v for k, v in defaults.items() if k in own}, **state_dict}
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors: list[str] = []
        if strict:
            if missing:
                keys = ", ".join(f'"{k}"' for k in missing)
                errors.append(f"Missing key(s) in state_dict: {keys}. ")
            if unexpected:
                keys = ", ".join(f'"{k}"' for k in unexpected)
                errors.append(f"Unexpected key(s) in state_dict: {keys}. ")
        keys_wrong = bool(errors)
        for name, value in state_dict.items():
            if name not in own:
                continue
            if not isinstance(value, Tensor):
                raise TypeError(
                    f"[load_state_dict] {name}: expected a Tensor, got {type(value).__name__}"
                )
            if tuple(value.shape) != tuple(own[name].shape):
                errors.append(
                    f"size mismatch for {name}: copying a param with shape "
                    f"{tuple(value.shape)} from checkpoint, the shape in current model is "
                    f"{tuple(own[name].shape)}."
                )
        if errors:
            error = StateDictKeyError if keys_wrong else StateDictSizeError
            raise error(
                f"[load_state_dict] Error(s) in loading state_dict for {type(self).__name__}:"
                "\n\t" + "\n\t".join(errors)
            )
        with _no_grad():
            for key, value in state_dict.items():
                if key not in own:
                    continue
                target = own[key]
                if value is target:
                    continue
                if assign:
                    module, name = owners[key]
                    if isinstance(target, Parameter) and not isinstance(value, Parameter):
                        value = Parameter(value, target.requires_grad)
                    setattr(module, name, value)
                else:
                    target.copy_(value if value.dtype == target.dtype else value.to(target.dtype))
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing -------------------------------------------------------------------------

    def extra_repr(self) -> str:
        """The text between the parentheses of this module's repr (override to add it)."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        children = [
            f"({name}): " + repr(child).replace("\n", "\n  ")
            for name, child in self._modules.items()
        ]
        if not children:
            return f"{type(self).__name__}({extra})"
        lines = ([extra] if extra else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


def _uniform(shape: tuple[int, ...], bound: float, dtype: _core.dtype) -> Tensor:
    """U(-bound, bound): PyTorch's default for Linear and Conv2d (kaiming_uniform_ with
    a = sqrt(5) works out to bound = 1 / sqrt(fan_in), and the same for the bias)."""
    return _core._rand(tuple(shape), dtype) * (2 * bound) - bound

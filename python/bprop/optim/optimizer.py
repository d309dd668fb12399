"""bprop.optim.Optimizer: what every optimizer shares, laid out as torch.optim.Optimizer.

Parameters come in groups (`param_groups`, a list of dicts: 'params' and the group's
hyper-parameters). Each group has a backend that does its update: a C++ optimizer for SGD
and Adam/AdamW (the whole update of a group in one C++ call), in-place tensor ops for
RMSprop, Adagrad and Adadelta. Writing `group['lr'] = x` (schedulers do) reaches the backend
at once, so it takes effect on the next step, eager or replayed by bp.compile: a captured
step reads the groups' hyper-parameters live (the C++ optimizers read their options, the
tensor-op optimizers read 0-d tensors that the write fills). What is decided by a Python
branch (which parameters have a .grad, weight_decay != 0, momentum > 0, centered, maximize)
is fixed in a recording, as any Python control flow is."""

from __future__ import annotations

import copy
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import Any

from .. import _core
from ..autograd import enable_grad, no_grad

__all__ = ["Optimizer"]

Tensor = _core.Tensor


class _ParamGroup(dict):
    """One entry of param_groups: a dict as PyTorch's, whose writes of hyper-parameters are
    checked and handed to the group's backend before they are stored. (It refers to its
    optimizer weakly: a cycle would keep every optimizer alive.)"""

    _backend: Any  # what updates the group (set once the group is checked; None: nothing)

    def __init__(self, optimizer: Optimizer, values: dict) -> None:
        super().__init__(values)
        self._optimizer = weakref.ref(optimizer)

    def __setitem__(self, key: str, value: Any) -> None:
        optimizer = self._optimizer()
        if optimizer is not None and key in optimizer._hyper_keys and "_backend" in vars(self):
            updated = dict(self)
            updated[key] = value
            optimizer._apply(self, updated)  # checks first: a bad value changes nothing
        super().__setitem__(key, value)

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        new = dict(*args, **kwargs)
        optimizer = self._optimizer()
        if optimizer is not None and "_backend" in vars(self):
            if any(key in optimizer._hyper_keys for key in new):
                optimizer._apply(self, {**self, **new})  # all keys checked together
        for key, value in new.items():
            super().__setitem__(key, value)

    def __reduce_ex__(self, protocol: Any) -> Any:  # copies are plain dicts
        return (dict, (dict(self),))


def _typename(value: Any) -> str:
    return type(value).__name__


def _iterable(value: Any) -> bool:
    try:
        iter(value)
    except TypeError:
        return False
    return True


class Optimizer:
    """Base class of bprop's optimizers, as torch.optim.Optimizer: `params` is an iterable
    of tensors, of (name, tensor) pairs, or of dicts that each hold 'params' and the
    hyper-parameters that override `defaults` for that group."""

    # Hyper-parameters the backend reads (writes reach it at once), set by each optimizer.
    _hyper_keys: tuple[str, ...] = ()
    # bprop's optimizers keep their state in a backend per group; a subclass written as for
    # torch.optim.Optimizer (its own step() over param_groups) keeps it in self.state.
    _backed = False

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        name = type(self).__name__
        if isinstance(params, Tensor):
            raise TypeError(
                f"[{name}] params argument given to the optimizer should be an iterable of "
                f"Tensors or dicts, but got {_typename(params)}"
            )
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self._plain_state: defaultdict[Tensor, dict[str, Any]] = defaultdict(dict)
        if not _iterable(params) or isinstance(params, (str, bytes, dict)):
            raise TypeError(
                f"[{name}] params argument given to the optimizer should be an iterable of "
                f"Tensors or dicts, but got {_typename(params)}"
            )
        groups = list(params)
        if not groups:
            raise ValueError(f"[{name}] got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    # ------------------------------------------------------------ groups

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Adds a group: its 'params' and any hyper-parameters (the others take the
        optimizer's defaults). Raises TypeError for a non-dict or a non-tensor parameter,
        ValueError for a parameter already optimized (in this group or another) or a bad
        hyper-parameter; a failed call changes nothing. (PyTorch only warns for a parameter
        twice within one group, saying it will become an error; bprop raises.)"""
        name = type(self).__name__
        if not isinstance(param_group, dict):
            raise TypeError(
                f"[{name}] param_group must be a dict, but got {_typename(param_group)}"
            )
        if "params" not in param_group:
            raise ValueError(f"[{name}] a parameter group needs the key 'params'")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                f"[{name}] optimizer parameters need to be organized in ordered collections, "
                "but the ordering of tensors in sets will change between runs. Please use a "
                "list instead."
            )
        elif not _iterable(params) or isinstance(params, (str, bytes, dict)):
            raise TypeError(
                f"[{name}] a parameter group's 'params' should be a Tensor or an iterable of "
                f"Tensors, but got {_typename(params)}"
            )
        else:
            params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        tensors = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(tensors):
            raise ValueError(
                f"[{name}] all optimizer params should be with/without names. Some param "
                "names are missing"
            )
        for i, p in enumerate(tensors):
            if not isinstance(p, Tensor):
                raise TypeError(
                    f"[{name}] optimizer can only optimize Tensors, but one of the params "
                    f"is {_typename(p)}"
                )
            if not p.dtype.is_floating_point:
                raise TypeError(
                    f"[{name}] parameter {i} has dtype {p.dtype}; only floating point tensors "
                    "can be optimized"
                )
            if not p.is_leaf:
                raise ValueError(
                    f"[{name}] can't optimize a non-leaf tensor (parameter {i}, shape "
                    f"{tuple(p.shape)})"
                )
        if len({id(p) for p in tensors}) != len(tensors):
            raise ValueError(
                f"[{name}] optimizer contains a parameter group with duplicate parameters"
            )
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in tensors):
            raise ValueError(f"[{name}] some parameters appear in more than one parameter group")
        for group in self.param_groups:
            if ("param_names" in group) != bool(names):
                raise ValueError(
                    f"[{name}] all optimizer param groups should be with/without names"
                )
        values = {**self.defaults, **{k: v for k, v in param_group.items() if k != "params"}}
        values["params"] = tensors
        if names:
            values["param_names"] = names
        group = _ParamGroup(self, values)
        self._check(group)
        group._backend = self._make_backend(group) if tensors and self._backed else None
        self.param_groups.append(group)

    def _check(self, values: dict[str, Any]) -> None:
        """Raises ValueError for a bad hyper-parameter (each optimizer's own checks)."""

    def _make_backend(self, group: dict[str, Any]) -> Any:
        """What updates the group's parameters (a C++ optimizer or tensor-op state)."""
        raise NotImplementedError(f"[{type(self).__name__}] has no backend")

    def _apply(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        """Checks new hyper-parameters for `group` and hands them to its backend."""
        self._check(values)
        if group._backend is not None:
            self._set_backend(group, values)

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        raise NotImplementedError

    @property
    def lr(self) -> float:
        """The first group's learning rate (a bprop shorthand for param_groups[0]['lr']);
        setting it sets every group's."""
        return self.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value: float) -> None:
        for group in self.param_groups:
            group["lr"] = value

    # ------------------------------------------------------------ steps

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Drops every parameter's .grad (set_to_none, PyTorch's default) or zeroes it in
        place. A captured step replays it."""
        _core._zero_grad([p for g in self.param_groups for p in g["params"]], set_to_none)

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a .grad, in place. `closure`, if given,
        re-evaluates the model and returns the loss (called with grad enabled first); step
        returns what it returned."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        if not self._backed:
            raise NotImplementedError(f"[{type(self).__name__}] a subclass defines step()")
        with no_grad():
            for group in self.param_groups:
                if group._backend is not None:
                    self._step_group(group)
        return loss

    def _step_group(self, group: _ParamGroup) -> None:
        raise NotImplementedError

    # ------------------------------------------------------------ state dicts

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        """Parameter i of group's state as PyTorch's state_dict holds it (None: no state)."""
        raise NotImplementedError

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        """Raises ValueError if entry can't become parameter i of group's state."""
        raise NotImplementedError

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        """Replaces group's whole state: entries[i] for parameter i, a fresh state for the
        parameters entries lacks."""
        raise NotImplementedError

    def _entry(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        if group._backend is not None:
            return self._param_state(group, i)
        return self._plain_state.get(group["params"][i]) or None

    @property
    def state(self) -> dict[Tensor, dict[str, Any]]:
        """Per-parameter state keyed by the parameter, as PyTorch's optimizer.state. For
        bprop's optimizers it is built on each access (its tensors are the optimizer's own
        buffers); a subclass that defines its own step() keeps its state here, a
        defaultdict(dict) as PyTorch's."""
        if not self._backed:
            return self._plain_state
        state = {}
        for group in self.param_groups:
            for i, p in enumerate(group["params"]):
                entry = self._entry(group, i)
                if entry is not None:
                    state[p] = entry
        return state

    @state.setter
    def state(self, value: dict[Tensor, dict[str, Any]]) -> None:
        if self._backed:
            raise AttributeError(f"[{type(self).__name__}] state is read-only; use load_state_dict")
        self._plain_state = defaultdict(dict, value)

    def state_dict(self) -> dict[str, Any]:
        """{'state': {index: {name: tensor}}, 'param_groups': [{hyper-parameters, 'params':
        [index, ...]}]}, as PyTorch's: parameters are numbered across the groups in order."""
        state, groups, index = {}, [], 0
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            for i in range(len(group["params"])):
                entry = self._entry(group, i)
                if entry is not None:
                    state[index + i] = entry
            groups.append(packed)
            index += len(group["params"])
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Loads a state_dict() of an optimizer of the same kind over parameters of the same
        shapes in the same groups: the saved hyper-parameters replace the groups' own, and
        the saved state replaces the current one. Everything is checked first, so a failed
        load changes nothing."""
        name = f"{type(self).__name__}.load_state_dict"
        saved = state_dict.get("param_groups")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.param_groups):
            count = len(saved) if isinstance(saved, (list, tuple)) else None
            raise ValueError(
                f"[{name}] loaded state dict has a different number of parameter groups "
                f"({count}) than the optimizer ({len(self.param_groups)})"
            )
        for group, packed in zip(self.param_groups, saved):
            if len(packed.get("params", ())) != len(group["params"]):
                raise ValueError(
                    f"[{name}] loaded state dict contains a parameter group that doesn't match "
                    f"the size of optimizer's group ({len(packed.get('params', ()))} parameters, "
                    f"expected {len(group['params'])})"
                )
        state = state_dict.get("state", {})
        where = {}  # saved index -> (group number, position)
        for g, packed in enumerate(saved):
            for i, index in enumerate(packed["params"]):
                where[int(index)] = (g, i)
        for index, entry in state.items():
            if int(index) not in where:
                raise ValueError(f"[{name}] state for parameter {index}, which no group holds")
            g, i = where[int(index)]
            if self._backed:
                self._check_param_state(self.param_groups[g], i, entry)
        merged = []
        for group, packed in zip(self.param_groups, saved):
            values = dict(group)
            values.update({k: v for k, v in packed.items() if k != "params"})
            self._check(values)
            merged.append(values)
        # Nothing can fail from here on.
        for group, values in zip(self.param_groups, merged):
            if group._backend is not None:
                self._set_backend(group, values)
            for key, value in values.items():
                if key != "params":
                    dict.__setitem__(group, key, value)
        loaded = {where[int(index)]: entry for index, entry in state.items()}
        if not self._backed:
            self._plain_state = defaultdict(dict)
            for (g, i), entry in loaded.items():
                self._plain_state[self.param_groups[g]["params"][i]] = dict(entry)
        for g, group in enumerate(self.param_groups):
            if group._backend is not None:
                entries = {i: entry for (h, i), entry in loaded.items() if h == g}
                self._load_group_state(group, entries)

    def __deepcopy__(self, memo: dict[int, Any]) -> Optimizer:
        """A copy over copies of the parameters (the same copies as the model's when both are
        copied in one deepcopy call), with its own copy of the state."""
        new = object.__new__(type(self))
        memo[id(self)] = new
        for key, value in self.__dict__.items():
            if key not in ("param_groups", "_plain_state"):
                new.__dict__[key] = copy.deepcopy(value, memo)
        new.param_groups = []
        new._plain_state = defaultdict(dict)
        for group in self.param_groups:
            values = {k: v for k, v in group.items() if k not in ("params", "param_names")}
            params = copy.deepcopy(group["params"], memo)
            if "param_names" in group:
                params = list(zip(group["param_names"], params))
            new.add_param_group({**copy.deepcopy(values, memo), "params": params})
        new.load_state_dict(copy.deepcopy(self.state_dict(), memo))
        return new

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            for key in sorted(group):
                if key != "params":
                    lines.append(f"    {key}: {group[key]}")
        lines.append(")")
        return "\n".join(lines)


def _shape_error(name: str, key: str, i: int, tensor: Any, param: Tensor) -> ValueError | None:
    if not isinstance(tensor, Tensor) or tuple(tensor.shape) != tuple(param.shape):
        shape = tuple(tensor.shape) if isinstance(tensor, Tensor) else _typename(tensor)
        return ValueError(
            f"[{name}.load_state_dict] {key} of parameter {i} has shape {shape}, expected "
            f"{tuple(param.shape)}"
        )
    return None


def _step_value(step: Any) -> float:
    """A saved 'step' (a tensor, as PyTorch saves it, or a number) as a float."""
    return float(step.item()) if isinstance(step, Tensor) else float(step)


class _TensorOptimizer(Optimizer):
    """An optimizer whose update is in-place bprop tensor ops under no_grad (RMSprop,
    Adagrad, Adadelta), so that bp.compile records it as launches. Its groups' numeric
    hyper-parameters live in 0-d float64 tensors that writes to param_groups fill, and its
    per-parameter state ('step' as a 0-d float32 tensor, as PyTorch keeps it, and the
    buffers) is made with the group, outside any recording: a recording must not contain
    their creation, or every replay would reset them. Loading a state copies into these
    buffers, so a captured step keeps working after load_state_dict."""

    _backed = True
    _tensor_keys: tuple[str, ...] = ()  # the numeric hyper-parameters the update reads
    _state_keys: tuple[str, ...] = ()  # the buffers of a parameter, besides 'step'

    def _buffers_needed(self, values: dict[str, Any]) -> tuple[str, ...]:
        return self._state_keys

    def _initial_value(self, values: dict[str, Any], key: str) -> float:
        return 0.0

    def _make_backend(self, group: dict[str, Any]) -> Any:
        backend = _TensorGroup()
        backend.hyper = {k: _core._full((), float(group[k]), _core.dtype.float64)
                         for k in self._tensor_keys}  # fmt: skip
        backend.state = [
            {"step": _core._full((), 0.0, _core.dtype.float32)} for _ in group["params"]
        ]
        backend.stepped = [False] * len(group["params"])
        self._allocate(group["params"], backend, group)
        return backend

    def _allocate(self, params: list[Tensor], backend: _TensorGroup, values: dict) -> None:
        for p, entry in zip(params, backend.state):
            for key in self._buffers_needed(values):
                if key not in entry:
                    value = self._initial_value(values, key)
                    entry[key] = _core._full(tuple(p.shape), value, p.dtype)

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        backend = group._backend
        with no_grad():
            for key, tensor in backend.hyper.items():
                tensor.fill_(float(values[key]))
        self._allocate(group["params"], backend, values)

    def _step_group(self, group: _ParamGroup) -> None:
        backend = group._backend
        for i, p in enumerate(group["params"]):
            g = p.grad
            if g is None:
                continue
            if group["maximize"]:
                g = -g
            backend.stepped[i] = True
            self._update(p, g, backend.state[i], backend.hyper, group)

    def _update(self, p: Tensor, g: Tensor, state: dict, h: dict, group: dict) -> None:
        raise NotImplementedError

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        backend = group._backend
        if not backend.stepped[i]:
            return None
        entry = backend.state[i]
        return {k: entry[k] for k in ("step", *self._buffers_needed(group)) if k in entry}

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        name = type(self).__name__
        if "step" not in entry:
            raise ValueError(f"[{name}.load_state_dict] no 'step' in the state of parameter {i}")
        for key in self._state_keys:
            if key in entry:
                error = _shape_error(name, key, i, entry[key], group["params"][i])
                if error:
                    raise error
        if _step_value(entry["step"]) < 0:
            raise ValueError(f"[{name}.load_state_dict] negative step for parameter {i}")

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        backend = group._backend
        self._allocate(group["params"], backend, group)
        with no_grad():
            for i, state in enumerate(backend.state):
                entry = entries.get(i)
                state["step"].fill_(_step_value(entry["step"]) if entry else 0.0)
                for key in self._state_keys:
                    if key not in state:
                        continue
                    if entry is not None and key in entry:
                        state[key].copy_(entry[key])
                    else:
                        state[key].fill_(self._initial_value(group, key))
                backend.stepped[i] = entry is not None


class _TensorGroup:
    """A _TensorOptimizer group's backend: hyper (name -> 0-d float64 tensor), state (per
    parameter: name -> tensor) and stepped (per parameter: is its state PyTorch's, shown by
    state_dict; PyTorch makes it on the first step, Adagrad's on construction)."""

    hyper: dict[str, Tensor]
    state: list[dict[str, Tensor]]
    stepped: list[bool]


def _check_betas(name: str, betas: Any) -> None:
    """PyTorch's check of Adam-style betas: a pair, each in [0, 1)."""
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"[{name}] betas must be a pair of floats, got {betas!r}")
    for i, beta in enumerate(betas):
        if not 0.0 <= float(beta) < 1.0:
            raise ValueError(f"[{name}] invalid beta parameter at index {i}: {beta}")


def _check_nonnegative(name: str, values: dict[str, Any], checks: dict[str, str]) -> None:
    """PyTorch's checks: raises ValueError('[name] invalid <what>: <value>') for a negative
    value of any key of checks (key -> what)."""
    for key, what in checks.items():
        if not float(values[key]) >= 0.0:
            raise ValueError(f"[{name}] invalid {what}: {values[key]}")
    if values.get("differentiable"):
        raise ValueError(f"[{name}] differentiable=True is not supported")

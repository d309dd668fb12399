"""bprop.optim: optimizers whose whole step runs in one C++ call (PyTorch's update math), and
bprop.optim.lr_scheduler."""

from __future__ import annotations

import weakref
from collections.abc import Iterable

from .. import _core

__all__ = ["SGD", "Adam", "AdamW", "lr_scheduler"]


class _ParamGroup(dict):
    """PyTorch's param_groups entry: writing a hyper-parameter reaches the C++ optimizer.
    (It refers to its optimizer weakly: a cycle would keep every optimizer alive.)"""

    def __init__(self, optimizer, values: dict):
        super().__init__(values)
        self._optimizer = weakref.ref(optimizer)

    def __getitem__(self, key):
        if key == "lr":
            return self._optimizer().lr
        return super().__getitem__(key)

    def __setitem__(self, key, value):
        optimizer = self._optimizer()
        if optimizer is not None and key in optimizer._hyper_keys:
            updated = {k: v for k, v in self.items() if k in optimizer._hyper_keys}
            updated[key] = value
            optimizer._apply_hyper(updated)  # checked in C++ before anything changes
        super().__setitem__(key, value)


class _Optimizer:
    """What SGD and Adam share on the Python side: param_groups and state dicts."""

    def _init_group(self, hyper: dict) -> None:
        self.defaults = dict(hyper)
        self.param_groups = [_ParamGroup(self, {**hyper, "params": list(self.params)})]
        self.param_groups[0]["initial_lr"] = self.lr

    def state_dict(self) -> dict:
        """{'state': {index: {...tensors...}}, 'param_groups': [{hyper-parameters}]}, as PyTorch."""
        group = {k: v for k, v in self.param_groups[0].items() if k != "params"}
        group["lr"] = self.lr
        group["params"] = list(range(len(self.params)))
        return {"state": self._state(), "param_groups": [group]}

    def load_state_dict(self, state_dict: dict) -> None:
        """Checks everything first, so a failed load changes nothing."""
        groups = state_dict.get("param_groups")
        if not groups or len(groups) != 1 or len(groups[0].get("params", [])) != len(self.params):
            raise ValueError(
                f"[{type(self).__name__}.load_state_dict] expects one parameter group of "
                f"{len(self.params)} parameters"
            )
        state = state_dict.get("state", {})
        for index, entry in state.items():
            self._check_entry(int(index), entry)
        hyper = {k: v for k, v in groups[0].items() if k in self._hyper_keys}
        merged = {k: v for k, v in self.param_groups[0].items() if k in self._hyper_keys}
        merged.update(hyper)
        self._apply_hyper(merged)  # may raise: nothing has changed yet
        self._reset_state()  # the loaded state replaces the old one, as in PyTorch
        for index, entry in state.items():
            self._load_entry(int(index), entry)
        for key, value in groups[0].items():
            if key != "params":
                dict.__setitem__(self.param_groups[0], key, value)


class SGD(_core.SGD, _Optimizer):
    """Stochastic gradient descent with PyTorch's update math (the lecture's
    `w := w - lr * dL/dw`, plus optional momentum, dampening, Nesterov and weight decay).
    `params` is an iterable of leaf tensors that require grad."""

    def __init__(
        self,
        params: Iterable[_core.Tensor],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ) -> None:
        super().__init__(list(params), float(lr), float(momentum), float(dampening),
                         float(weight_decay), bool(nesterov))  # fmt: skip
        self._init_group({"lr": lr, "momentum": momentum, "dampening": dampening,
                          "weight_decay": weight_decay, "nesterov": nesterov})  # fmt: skip

    _hyper_keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov")

    def _apply_hyper(self, h: dict) -> None:
        self._set_options(float(h["lr"]), float(h["momentum"]), float(h["dampening"]),
                          float(h["weight_decay"]), bool(h["nesterov"]))  # fmt: skip

    def _state(self) -> dict:
        state = {}
        for i in range(len(self.params)):
            buffer = self._momentum_buffer(i)
            if buffer is not None:
                state[i] = {"momentum_buffer": buffer}
        return state

    def _check_entry(self, i, entry):
        if not 0 <= i < len(self.params) or "momentum_buffer" not in entry:
            raise ValueError(f"[SGD.load_state_dict] bad state entry for parameter {i}")
        if tuple(entry["momentum_buffer"].shape) != tuple(self.params[i].shape):
            raise ValueError(f"[SGD.load_state_dict] momentum buffer {i} has the wrong shape")

    def _load_entry(self, i, entry):
        self._set_momentum_buffer(i, entry["momentum_buffer"])

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, params={len(self.params)})"


class Adam(_core.Adam, _Optimizer):
    """Adam (Kingma and Ba) with PyTorch's update math; weight_decay adds an L2 term to the
    gradient. amsgrad is not offered."""

    _decoupled = False
    _default_weight_decay = 0.0

    def __init__(
        self,
        params: Iterable[_core.Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
    ) -> None:
        if amsgrad:
            raise ValueError(f"[{type(self).__name__}] amsgrad=True is not supported")
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        beta1, beta2 = betas
        super().__init__(list(params), float(lr), float(beta1), float(beta2), float(eps),
                         float(weight_decay), self._decoupled)  # fmt: skip
        self._init_group({"lr": lr, "betas": tuple(betas), "eps": eps,
                          "weight_decay": weight_decay, "amsgrad": False})  # fmt: skip

    _hyper_keys = ("lr", "betas", "eps", "weight_decay")

    def _apply_hyper(self, h: dict) -> None:
        beta1, beta2 = h["betas"]
        self._set_options(float(h["lr"]), float(beta1), float(beta2), float(h["eps"]),
                          float(h["weight_decay"]))  # fmt: skip

    def _state(self) -> dict:
        state = {}
        for i in range(len(self.params)):
            entry = self._state_entry(i)
            if entry is not None:
                steps, exp_avg, exp_avg_sq = entry
                state[i] = {"step": _core._full((), float(steps), _core.dtype.float32),
                            "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}  # fmt: skip
        return state

    def _check_entry(self, i, entry):
        name = type(self).__name__
        if not 0 <= i < len(self.params) or not {"step", "exp_avg", "exp_avg_sq"} <= set(entry):
            raise ValueError(f"[{name}.load_state_dict] bad state entry for parameter {i}")
        for key in ("exp_avg", "exp_avg_sq"):
            if tuple(entry[key].shape) != tuple(self.params[i].shape):
                raise ValueError(f"[{name}.load_state_dict] {key} {i} has the wrong shape")

    def _load_entry(self, i, entry):
        steps = entry["step"]
        steps = int(steps.item()) if isinstance(steps, _core.Tensor) else int(steps)
        self._set_state(i, steps, entry["exp_avg"], entry["exp_avg_sq"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.lr}, params={len(self.params)})"


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): w shrinks by lr * weight_decay
    each step. Default weight_decay 1e-2, as PyTorch's."""

    _decoupled = True
    _default_weight_decay = 1e-2


from . import lr_scheduler  # noqa: E402  (it needs the classes above)

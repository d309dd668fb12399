"""bprop.optim.SGD: stochastic gradient descent, one C++ optimizer per parameter group."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from .optimizer import Optimizer, _ParamGroup, _shape_error

__all__ = ["SGD"]


def _check_common(name: str, values: dict[str, Any]) -> None:
    """The checks SGD and Adam share (PyTorch's, with the optimizer's name in front)."""
    if not float(values["lr"]) >= 0.0:
        raise ValueError(f"[{name}] invalid learning rate: {values['lr']}")
    if not float(values["weight_decay"]) >= 0.0:
        raise ValueError(f"[{name}] invalid weight_decay value: {values['weight_decay']}")
    if values.get("differentiable"):
        raise ValueError(f"[{name}] differentiable=True is not supported")


def _negate_grads(params: list[_core.Tensor]) -> None:
    """maximize: the update of -grad. Negation is exact, so negating before the step and
    back after gives PyTorch's update and leaves .grad as it was (a capture records both)."""
    for p in params:
        g = p.grad
        if g is not None:
            g.mul_(-1.0)


class SGD(Optimizer):
    """Stochastic gradient descent with PyTorch's update math (the lecture's
    `w := w - lr * dL/dw`, plus optional momentum, dampening, Nesterov and weight decay):

        g = grad + weight_decay * w
        b = g (first step), else momentum * b + (1 - dampening) * g     (with momentum)
        g = g + momentum * b (nesterov), else b
        w = w - lr * g

    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends. foreach and fused are accepted
    and ignored (each group's update is one C++ loop already)."""

    _backed = True
    _hyper_keys = ("lr", "momentum", "dampening", "weight_decay", "nesterov", "maximize",
                   "differentiable")  # fmt: skip

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                    "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize,
                    "foreach": foreach, "differentiable": differentiable,
                    "fused": fused}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        _check_common("SGD", values)
        if not float(values["momentum"]) >= 0.0:
            raise ValueError(f"[SGD] invalid momentum value: {values['momentum']}")
        if values["nesterov"] and (values["momentum"] <= 0 or values["dampening"] != 0):
            raise ValueError("[SGD] Nesterov momentum requires a momentum and zero dampening")

    @staticmethod
    def _options(values: dict[str, Any]) -> tuple:
        return (float(values["lr"]), float(values["momentum"]), float(values["dampening"]),
                float(values["weight_decay"]), bool(values["nesterov"]))  # fmt: skip

    def _make_backend(self, group: dict[str, Any]) -> _core.SGD:
        return _core.SGD(list(group["params"]), *self._options(group))

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        group._backend._set_options(*self._options(values))

    def _step_group(self, group: _ParamGroup) -> None:
        if group["maximize"]:
            _negate_grads(group["params"])
        group._backend.step()
        if group["maximize"]:
            _negate_grads(group["params"])

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        buffer = group._backend._momentum_buffer(i)
        return None if buffer is None else {"momentum_buffer": buffer}

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        buffer = entry.get("momentum_buffer")
        if buffer is not None:
            error = _shape_error("SGD", "momentum_buffer", i, buffer, group["params"][i])
            if error:
                raise error

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        group._backend._reset_state()
        for i, entry in entries.items():
            if entry.get("momentum_buffer") is not None:
                group._backend._set_momentum_buffer(i, entry["momentum_buffer"])

"""bprop.optim.ASGD, as torch.optim.ASGD."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from ..autograd import no_grad
from .optimizer import _check_nonnegative, _ParamGroup, _step_value, _TensorGroup, _TensorOptimizer

__all__ = ["ASGD"]


class ASGD(_TensorOptimizer):
    """Averaged stochastic gradient descent (Polyak and Juditsky) with PyTorch's update math:

        g = grad + weight_decay w;   t = t + 1
        w = w (1 - lambd eta);   w = w - eta g
        ax = w (while mu = 1), else ax = ax + mu (w - ax)
        eta = lr / (1 + lambd lr t)^alpha;   mu = 1 / max(1, t - t0)

    eta and mu are 0-d float32 tensors in the state, as PyTorch keeps them (eta starts at the
    group's lr), and 'ax' holds the average. `params` is an iterable of leaf tensors, or of
    dicts with 'params' and per-group hyper-parameters (see Optimizer). maximize=True
    ascends; foreach and capturable are accepted and ignored (bp.compile captures the step
    as it is)."""

    _hyper_keys = ("lr", "lambd", "alpha", "t0", "weight_decay", "maximize", "differentiable")
    _tensor_keys = ("lr", "lambd", "alpha", "t0", "weight_decay")
    _state_keys = ("ax",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lambd: float = 1e-4,
        alpha: float = 0.75,
        t0: float = 1e6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0,
                    "weight_decay": weight_decay, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        _check_nonnegative("ASGD", values, {"lr": "learning rate",
                                            "weight_decay": "weight_decay value"})  # fmt: skip

    def _allocate(self, params: list, backend: _TensorGroup, values: dict) -> None:
        super()._allocate(params, backend, values)
        for i, entry in enumerate(backend.state):
            if "eta" not in entry:
                entry["eta"] = _core._full((), float(values["lr"]), _core.dtype.float32)
                entry["mu"] = _core._full((), 1.0, _core.dtype.float32)
            elif not backend.stepped[i]:  # PyTorch makes eta from lr on the first step
                with no_grad():
                    entry["eta"].fill_(float(values["lr"]))

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        entry = super()._param_state(group, i)
        if entry is None:
            return None
        state = group._backend.state[i]
        return {"step": entry["step"], "eta": state["eta"], "mu": state["mu"], "ax": entry["ax"]}

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        super()._check_param_state(group, i, entry)
        for key in ("eta", "mu", "ax"):
            if key not in entry:
                raise ValueError(f"[ASGD.load_state_dict] no '{key}' in the state of parameter {i}")

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        super()._load_group_state(group, entries)
        with no_grad():
            for i, state in enumerate(group._backend.state):
                entry = entries.get(i)
                state["eta"].fill_(_step_value(entry["eta"]) if entry else float(group["lr"]))
                state["mu"].fill_(_step_value(entry["mu"]) if entry else 1.0)

    def _update(self, p, g, state, h, group) -> None:
        step = state["step"]
        step.add_(1.0)
        if float(group["weight_decay"]) != 0:
            g = g + p * h["weight_decay"]
        eta, mu, ax = state["eta"], state["mu"], state["ax"]
        eta_value = eta.to(_core.dtype.float64)  # PyTorch reads it as a Python float
        p.mul_(1 - h["lambd"] * eta_value)
        p.add_(-eta_value * g)
        mu_value = mu.to(_core.dtype.float64)
        ax.copy_(_core.where(mu_value != 1, ax + (p - ax) * mu_value, p))
        eta.copy_(h["lr"] / ((1 + h["lambd"] * h["lr"] * step) ** h["alpha"]))
        mu.copy_(1 / (step - h["t0"]).clamp(min=1.0))

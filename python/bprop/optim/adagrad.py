"""bprop.optim.Adagrad, as torch.optim.Adagrad."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .optimizer import _check_nonnegative, _TensorOptimizer

__all__ = ["Adagrad"]


class Adagrad(_TensorOptimizer):
    """Adagrad (Duchi et al.) with PyTorch's update math:

        g = grad + weight_decay * w;   t = t + 1;   lr_t = lr / (1 + (t - 1) lr_decay)
        s = s + g^2;   w = w - lr_t g / (sqrt(s) + eps)

    The sums start at the optimizer's initial_accumulator_value (a group's own value is kept
    in its dict but not used, as in PyTorch), and the state of the groups given to the
    constructor exists from the start, as PyTorch's. `params` is an iterable of leaf
    tensors, or of dicts with 'params' and per-group hyper-parameters (see Optimizer).
    maximize=True ascends; foreach and fused are accepted and ignored."""

    _hyper_keys = ("lr", "lr_decay", "eps", "weight_decay", "initial_accumulator_value",
                   "maximize", "differentiable")  # fmt: skip
    _tensor_keys = ("lr", "lr_decay", "eps", "weight_decay")
    _state_keys = ("sum",)

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        lr_decay: float = 0,
        weight_decay: float = 0,
        initial_accumulator_value: float = 0,
        eps: float = 1e-10,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        defaults = {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                    "initial_accumulator_value": initial_accumulator_value,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "fused": fused}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)
        for group in self.param_groups:  # PyTorch makes these groups' state at once
            if group._backend is not None:
                group._backend.stepped = [True] * len(group["params"])

    def _check(self, values: dict[str, Any]) -> None:
        _check_nonnegative("Adagrad", values, {
            "lr": "learning rate", "lr_decay": "lr_decay value",
            "weight_decay": "weight_decay value",
            "initial_accumulator_value": "initial_accumulator_value value",
            "eps": "epsilon value"})  # fmt: skip

    def _initial_value(self, values: dict[str, Any], key: str) -> float:
        # PyTorch starts every group's sums at the optimizer's initial_accumulator_value,
        # whatever the group says.
        return float(self.defaults["initial_accumulator_value"])

    def _update(self, p, g, state, h, group) -> None:
        step = state["step"]
        step.add_(1.0)
        if float(group["weight_decay"]) != 0:
            g = g + p * h["weight_decay"]
        clr = h["lr"] / ((step - 1) * h["lr_decay"] + 1)
        state["sum"].add_(g * g)
        std = state["sum"].sqrt() + h["eps"]
        p.sub_(clr * g / std)

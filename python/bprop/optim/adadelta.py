"""bprop.optim.Adadelta, as torch.optim.Adadelta."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .optimizer import _check_nonnegative, _TensorOptimizer

__all__ = ["Adadelta"]


class Adadelta(_TensorOptimizer):
    """Adadelta (Zeiler) with PyTorch's update math:

        g = grad + weight_decay * w;   v = rho v + (1 - rho) g^2
        d = sqrt(u + eps) / sqrt(v + eps) * g;   u = rho u + (1 - rho) d^2;   w = w - lr d

    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends; capturable and foreach are
    accepted and ignored."""

    _hyper_keys = ("lr", "rho", "eps", "weight_decay", "maximize", "differentiable")
    _tensor_keys = ("lr", "rho", "eps", "weight_decay")
    _state_keys = ("square_avg", "acc_delta")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1.0,
        rho: float = 0.9,
        eps: float = 1e-6,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        capturable: bool = False,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                    "maximize": maximize, "capturable": capturable, "foreach": foreach,
                    "differentiable": differentiable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        _check_nonnegative("Adadelta", values, {"lr": "learning rate", "eps": "epsilon value",
                                                "weight_decay": "weight_decay value"})  # fmt: skip
        if not 0.0 <= float(values["rho"]) <= 1.0:
            raise ValueError(f"[Adadelta] invalid rho value: {values['rho']}")

    def _update(self, p, g, state, h, group) -> None:
        state["step"].add_(1.0)
        if float(group["weight_decay"]) != 0:
            g = g + p * h["weight_decay"]
        keep = 1 - h["rho"]
        square_avg, acc_delta = state["square_avg"], state["acc_delta"]
        square_avg.mul_(h["rho"])
        square_avg.add_(keep * g * g)
        std = (square_avg + h["eps"]).sqrt()
        delta = (acc_delta + h["eps"]).sqrt() / std * g
        acc_delta.mul_(h["rho"])
        acc_delta.add_(keep * delta * delta)
        p.sub_(h["lr"] * delta)

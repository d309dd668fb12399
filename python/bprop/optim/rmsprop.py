"""bprop.optim.RMSprop, as torch.optim.RMSprop."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .optimizer import _check_nonnegative, _TensorOptimizer

__all__ = ["RMSprop"]


class RMSprop(_TensorOptimizer):
    """RMSprop (Hinton) with PyTorch's update math:

        g = grad + weight_decay * w;   v = alpha v + (1 - alpha) g^2
        centered: a = lerp(a, g, 1 - alpha); d = sqrt(v - a^2) + eps, else d = sqrt(v) + eps
        momentum > 0: b = momentum b + g / d;  w = w - lr b,   else w = w - lr g / d

    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends; capturable and foreach are
    accepted and ignored (bp.compile captures the step as it is)."""

    _hyper_keys = ("lr", "alpha", "eps", "weight_decay", "momentum", "centered", "maximize",
                   "differentiable")  # fmt: skip
    _tensor_keys = ("lr", "alpha", "eps", "weight_decay", "momentum")
    _state_keys = ("square_avg", "momentum_buffer", "grad_avg")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum: float = 0,
        centered: bool = False,
        capturable: bool = False,
        foreach: bool | None = None,
        maximize: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps,
                    "centered": centered, "weight_decay": weight_decay,
                    "capturable": capturable, "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        _check_nonnegative("RMSprop", values, {"lr": "learning rate", "eps": "epsilon value",
                                               "momentum": "momentum value",
                                               "weight_decay": "weight_decay value",
                                               "alpha": "alpha value"})  # fmt: skip

    def _buffers_needed(self, values: dict[str, Any]) -> tuple[str, ...]:
        return (
            ("square_avg",)
            + (("momentum_buffer",) if float(values["momentum"]) > 0 else ())
            + (("grad_avg",) if values["centered"] else ())
        )

    def _update(self, p, g, state, h, group) -> None:
        state["step"].add_(1.0)
        if float(group["weight_decay"]) != 0:
            g = g + p * h["weight_decay"]
        keep = 1 - h["alpha"]
        square_avg = state["square_avg"]
        square_avg.mul_(h["alpha"])
        square_avg.add_(keep * g * g)
        if group["centered"]:
            grad_avg = state["grad_avg"]
            if 1 - float(group["alpha"]) < 0.5:  # lerp, as PyTorch computes it
                grad_avg.add_(keep * (g - grad_avg))
            else:
                grad_avg.copy_(g - (g - grad_avg) * h["alpha"])
            avg = (square_avg - grad_avg * grad_avg).sqrt()
        else:
            avg = square_avg.sqrt()
        avg = avg + h["eps"]
        if float(group["momentum"]) > 0:
            buffer = state["momentum_buffer"]
            buffer.mul_(h["momentum"])
            buffer.add_(g / avg)
            p.sub_(buffer * h["lr"])
        else:
            p.sub_(h["lr"] * g / avg)

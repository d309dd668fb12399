"""bprop.optim.Adamax, as torch.optim.Adamax, and the base of the Adam-like optimizers
written as in-place tensor ops (Adamax, NAdam, RAdam)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from .optimizer import _check_betas, _check_nonnegative, _ParamGroup, _TensorGroup, _TensorOptimizer

__all__ = ["Adamax"]


class _BetasOptimizer(_TensorOptimizer):
    """A _TensorOptimizer whose groups hold `betas` (a pair): its backend also keeps 0-d
    float64 tensors 'beta1' and 'beta2', filled live as the others."""

    def _check(self, values: dict[str, Any]) -> None:
        name = type(self).__name__
        _check_nonnegative(name, values, {"lr": "learning rate", "eps": "epsilon value",
                                          "weight_decay": "weight_decay value"})  # fmt: skip
        _check_betas(name, values["betas"])

    def _make_backend(self, group: dict[str, Any]) -> _TensorGroup:
        backend = super()._make_backend(group)
        for i, key in enumerate(("beta1", "beta2")):
            backend.hyper[key] = _core._full((), float(group["betas"][i]), _core.dtype.float64)
        return backend

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        beta1, beta2 = values["betas"]
        super()._set_backend(group, {**values, "beta1": beta1, "beta2": beta2})


def _lerp_(buffer: _core.Tensor, g: _core.Tensor, beta1: float, h: dict) -> None:
    """buffer.lerp_(g, 1 - beta1) in PyTorch's two forms (weight below 0.5 or not)."""
    if 1 - beta1 < 0.5:
        buffer.add_((1 - h["beta1"]) * (g - buffer))
    else:
        buffer.copy_(g - (g - buffer) * h["beta1"])


class Adamax(_BetasOptimizer):
    """Adamax (Adam with the infinity norm, Kingma and Ba) with PyTorch's update math::

        g = grad + weight_decay w;   t = t + 1;   m = lerp(m, g, 1 - beta1)
        u = max(beta2 u, |g| + eps);   w = w - lr / (1 - beta1^t) * m / u

    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends; foreach and capturable are
    accepted and ignored (bp.compile captures the step as it is)."""

    _hyper_keys = ("lr", "betas", "eps", "weight_decay", "maximize", "differentiable")
    _tensor_keys = ("lr", "eps", "weight_decay")
    _state_keys = ("exp_avg", "exp_inf")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        foreach: bool | None = None,
        *,
        maximize: bool = False,
        differentiable: bool = False,
        capturable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize,
                    "differentiable": differentiable, "capturable": capturable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _update(self, p, g, state, h, group) -> None:
        step = state["step"]
        step.add_(1.0)
        if float(group["weight_decay"]) != 0:
            g = g + p * h["weight_decay"]
        exp_avg, exp_inf = state["exp_avg"], state["exp_inf"]
        _lerp_(exp_avg, g, float(group["betas"][0]), h)
        exp_inf.mul_(h["beta2"])
        exp_inf.copy_(_core.maximum(exp_inf, g.abs() + h["eps"]))
        clr = h["lr"] / (1 - h["beta1"] ** step)
        p.sub_(clr * exp_avg / exp_inf)

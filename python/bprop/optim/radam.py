"""bprop.optim.RAdam, as torch.optim.RAdam."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from .adamax import _BetasOptimizer, _lerp_

__all__ = ["RAdam"]


class RAdam(_BetasOptimizer):
    """RAdam (rectified Adam, Liu et al.) with PyTorch's update math::

        g = grad + weight_decay w   (decoupled_weight_decay: w = (1 - lr weight_decay) w)
        t = t + 1;   m = lerp(m, g, 1 - beta1);   v = beta2 v + (1 - beta2) g^2
        rho_inf = 2 / (1 - beta2) - 1;   rho_t = rho_inf - 2 t beta2^t / (1 - beta2^t)
        rho_t > 5: w = w - m / (1 - beta1^t) lr sqrt(1 - beta2^t) / (sqrt(v) + eps) r_t, with
                   r_t = sqrt((rho_t - 4)(rho_t - 2) rho_inf / ((rho_inf - 4)(rho_inf - 2) rho_t))
        else:      w = w - m / (1 - beta1^t) lr

    The branch on rho_t is a tensor select, so a captured step takes the right one on every
    replay. `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends; foreach and capturable are
    accepted and ignored (bp.compile captures the step as it is)."""

    _hyper_keys = ("lr", "betas", "eps", "weight_decay", "decoupled_weight_decay", "maximize",
                   "differentiable")  # fmt: skip
    _tensor_keys = ("lr", "eps", "weight_decay")
    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "foreach": foreach, "maximize": maximize, "capturable": capturable,
                    "decoupled_weight_decay": decoupled_weight_decay,
                    "differentiable": differentiable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _update(self, p, g, state, h, group) -> None:
        step = state["step"]
        step.add_(1.0)
        if float(group["weight_decay"]) != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - h["lr"] * h["weight_decay"])
            else:
                g = g + p * h["weight_decay"]
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, g, float(group["betas"][0]), h)
        exp_avg_sq.mul_(h["beta2"])
        exp_avg_sq.add_((1 - h["beta2"]) * g * g)
        beta2_t = h["beta2"] ** step
        bias_correction1 = 1 - h["beta1"] ** step
        bias_correction2 = 1 - beta2_t
        corrected = exp_avg / bias_correction1
        rho_inf = 2 / (1 - h["beta2"]) - 1
        rho_t = rho_inf - 2 * step * beta2_t / bias_correction2
        rect = ((rho_t - 4) * (rho_t - 2) * rho_inf
                / ((rho_inf - 4) * (rho_inf - 2) * rho_t)) ** 0.5  # fmt: skip
        adaptive = bias_correction2**0.5 / (exp_avg_sq.sqrt() + h["eps"])
        plain = corrected * h["lr"]
        p.sub_(_core.where(rho_t > 5.0, plain * adaptive * rect, plain))

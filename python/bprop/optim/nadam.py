"""bprop.optim.NAdam, as torch.optim.NAdam."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from ..autograd import no_grad
from .adamax import _BetasOptimizer, _lerp_
from .optimizer import _ParamGroup, _step_value, _TensorGroup

__all__ = ["NAdam"]


class NAdam(_BetasOptimizer):
    """NAdam (Adam with Nesterov momentum, Dozat) with PyTorch's update math:

        g = grad + weight_decay w   (decoupled_weight_decay: w = (1 - lr weight_decay) w)
        t = t + 1;   mu_t = beta1 (1 - 0.96^(t momentum_decay) / 2);   P = P mu_t
        m = lerp(m, g, 1 - beta1);   v = beta2 v + (1 - beta2) g^2
        d = sqrt(v / (1 - beta2^t)) + eps
        w = w - lr (1 - mu_t) / (1 - P) g / d - lr mu_{t+1} / (1 - P mu_{t+1}) m / d

    The product of the mu's, 'mu_product', is a 0-d float32 tensor as PyTorch keeps it.
    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). maximize=True ascends; foreach and capturable are
    accepted and ignored (bp.compile captures the step as it is)."""

    _hyper_keys = ("lr", "betas", "eps", "weight_decay", "momentum_decay",
                   "decoupled_weight_decay", "maximize", "differentiable")  # fmt: skip
    _tensor_keys = ("lr", "eps", "weight_decay", "momentum_decay")
    _state_keys = ("exp_avg", "exp_avg_sq")

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 2e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        momentum_decay: float = 4e-3,
        decoupled_weight_decay: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
    ) -> None:
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "momentum_decay": momentum_decay,
                    "decoupled_weight_decay": decoupled_weight_decay, "maximize": maximize,
                    "foreach": foreach, "capturable": capturable,
                    "differentiable": differentiable}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        super()._check(values)
        if not float(values["momentum_decay"]) >= 0.0:
            raise ValueError(f"[NAdam] invalid momentum_decay value: {values['momentum_decay']}")

    def _allocate(self, params: list, backend: _TensorGroup, values: dict) -> None:
        super()._allocate(params, backend, values)
        for entry in backend.state:
            if "mu_product" not in entry:
                entry["mu_product"] = _core._full((), 1.0, _core.dtype.float32)

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        entry = super()._param_state(group, i)
        if entry is None:
            return None
        state = group._backend.state[i]
        return {"step": entry["step"], "mu_product": state["mu_product"],
                **{k: entry[k] for k in self._state_keys}}  # fmt: skip

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        super()._check_param_state(group, i, entry)
        if "mu_product" not in entry:
            raise ValueError(
                f"[NAdam.load_state_dict] no 'mu_product' in the state of parameter {i}"
            )

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        super()._load_group_state(group, entries)
        with no_grad():
            for i, state in enumerate(group._backend.state):
                entry = entries.get(i)
                state["mu_product"].fill_(_step_value(entry["mu_product"]) if entry else 1.0)

    def _update(self, p, g, state, h, group) -> None:
        step = state["step"]
        step.add_(1.0)
        bias_correction2 = 1 - h["beta2"] ** step
        if float(group["weight_decay"]) != 0:
            if group["decoupled_weight_decay"]:
                p.mul_(1 - h["lr"] * h["weight_decay"])
            else:
                g = g + p * h["weight_decay"]
        mu = h["beta1"] * (1.0 - 0.5 * (0.96 ** (step * h["momentum_decay"])))
        mu_next = h["beta1"] * (1.0 - 0.5 * (0.96 ** ((step + 1) * h["momentum_decay"])))
        mu_product = state["mu_product"]
        # PyTorch multiplies in the state's dtype, with mu rounded to it first.
        mu_product.mul_(mu.to(mu_product.dtype))
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        _lerp_(exp_avg, g, float(group["betas"][0]), h)
        exp_avg_sq.mul_(h["beta2"])
        exp_avg_sq.add_((1 - h["beta2"]) * g * g)
        denom = (exp_avg_sq / bias_correction2).sqrt() + h["eps"]
        product = mu_product.to(_core.dtype.float64)  # PyTorch reads it as a Python float
        mu_product_next = product * mu_next
        p.add_((-h["lr"] * (1.0 - mu) / (1.0 - product)) * g / denom)
        p.add_((-h["lr"] * mu_next / (1.0 - mu_product_next)) * exp_avg / denom)

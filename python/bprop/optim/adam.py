"""bprop.optim.Adam and AdamW: one C++ optimizer per parameter group."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from .optimizer import Optimizer, _ParamGroup, _shape_error, _step_value
from .sgd import _check_common, _negate_grads

__all__ = ["Adam", "AdamW"]


class Adam(Optimizer):
    """Adam (Kingma and Ba) with PyTorch's update math, in PyTorch's order of operations:

        g = grad + weight_decay w   (decoupled_weight_decay: w = (1 - lr weight_decay) w instead)
        m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2;  t = t + 1
        w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    `params` is an iterable of leaf tensors, or of dicts with 'params' and per-group
    hyper-parameters (see Optimizer). amsgrad=True is not offered (ValueError); maximize=True
    ascends. foreach, capturable and fused are accepted and ignored."""

    _backed = True
    _hyper_keys = ("lr", "betas", "eps", "weight_decay", "amsgrad", "maximize",
                   "differentiable", "decoupled_weight_decay")  # fmt: skip
    _default_weight_decay: float = 0
    _decoupled = False

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float | None = None,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
        decoupled_weight_decay: bool | None = None,
    ) -> None:
        if weight_decay is None:
            weight_decay = self._default_weight_decay
        if decoupled_weight_decay is None:
            decoupled_weight_decay = self._decoupled
        defaults = {"lr": lr, "betas": tuple(betas), "eps": eps, "weight_decay": weight_decay,
                    "amsgrad": amsgrad, "maximize": maximize, "foreach": foreach,
                    "capturable": capturable, "differentiable": differentiable, "fused": fused,
                    "decoupled_weight_decay": decoupled_weight_decay}  # fmt: skip
        self._check(defaults)
        super().__init__(params, defaults)

    def _check(self, values: dict[str, Any]) -> None:
        name = type(self).__name__
        _check_common(name, values)
        if not float(values["eps"]) >= 0.0:
            raise ValueError(f"[{name}] invalid epsilon value: {values['eps']}")
        betas = values["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"[{name}] betas must be a pair of floats, got {betas!r}")
        for i, beta in enumerate(betas):
            if not 0.0 <= float(beta) < 1.0:
                raise ValueError(f"[{name}] invalid beta parameter at index {i}: {beta}")
        if values["amsgrad"]:
            raise ValueError(f"[{name}] amsgrad=True is not supported")

    @staticmethod
    def _options(values: dict[str, Any]) -> tuple:
        beta1, beta2 = values["betas"]
        return (float(values["lr"]), float(beta1), float(beta2), float(values["eps"]),
                float(values["weight_decay"]))  # fmt: skip

    def _make_backend(self, group: dict[str, Any]) -> _core.Adam:
        return _core.Adam(list(group["params"]), *self._options(group),
                          bool(group["decoupled_weight_decay"]))  # fmt: skip

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        backend = group._backend
        if bool(values["decoupled_weight_decay"]) != bool(group["decoupled_weight_decay"]):
            # The C++ optimizer fixes it at construction: a new one takes over the state (a
            # step captured before keeps the old one).
            fresh = _core.Adam(list(group["params"]), *self._options(values),
                               bool(values["decoupled_weight_decay"]))  # fmt: skip
            for i in range(len(group["params"])):
                entry = backend._state_entry(i)
                if entry is not None:
                    fresh._set_state(i, *entry)
            group._backend = fresh
            return
        backend._set_options(*self._options(values))

    def _step_group(self, group: _ParamGroup) -> None:
        if group["maximize"]:
            _negate_grads(group["params"])
        group._backend.step()
        if group["maximize"]:
            _negate_grads(group["params"])

    def _param_state(self, group: _ParamGroup, i: int) -> dict[str, Any] | None:
        entry = group._backend._state_entry(i)
        if entry is None:
            return None
        steps, exp_avg, exp_avg_sq = entry
        return {"step": _core._full((), float(steps), _core.dtype.float32),
                "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}  # fmt: skip

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        name = type(self).__name__
        if not {"step", "exp_avg", "exp_avg_sq"} <= set(entry):
            raise ValueError(f"[{name}.load_state_dict] bad state entry for parameter {i}")
        for key in ("exp_avg", "exp_avg_sq"):
            error = _shape_error(name, key, i, entry[key], group["params"][i])
            if error:
                raise error
        if _step_value(entry["step"]) < 0:
            raise ValueError(f"[{name}.load_state_dict] negative step for parameter {i}")

    def _load_group_state(self, group: _ParamGroup, entries: dict[int, dict[str, Any]]) -> None:
        group._backend._reset_state()
        for i, entry in entries.items():
            group._backend._set_state(i, int(_step_value(entry["step"])), entry["exp_avg"],
                                      entry["exp_avg_sq"])  # fmt: skip


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter): w shrinks by
    lr * weight_decay each step. Default weight_decay 1e-2, as PyTorch's."""

    _default_weight_decay = 1e-2
    _decoupled = True

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
        capturable: bool = False,
        differentiable: bool = False,
        fused: bool | None = None,
    ) -> None:
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad, foreach=foreach,
                         maximize=maximize, capturable=capturable, differentiable=differentiable,
                         fused=fused, decoupled_weight_decay=True)  # fmt: skip

"""bprop.optim.Adam and AdamW: one C++ optimizer per parameter group."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .. import _core
from ..autograd import no_grad
from .optimizer import Optimizer, _check_betas, _ParamGroup, _shape_error, _step_value
from .sgd import _check_common, _negate_grads

__all__ = ["Adam", "AdamW"]

Tensor = _core.Tensor


class Adam(Optimizer):
    """Adam (Kingma and Ba) with PyTorch's update math, in PyTorch's order of operations:

        g = grad + weight_decay w   (decoupled_weight_decay: w = (1 - lr weight_decay) w instead)
        m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2;  t = t + 1
        w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    amsgrad=True divides by the running maximum of v instead (kept in 'max_exp_avg_sq'); such
    a group is updated by in-place tensor ops (as RMSprop's) rather than the C++ optimizer,
    and its state moves across when a group's amsgrad is switched. `params` is an iterable of
    leaf tensors, or of dicts with 'params' and per-group hyper-parameters (see Optimizer).
    maximize=True ascends. foreach, capturable and fused are accepted and ignored."""

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
        _check_betas(name, values["betas"])

    @staticmethod
    def _options(values: dict[str, Any]) -> tuple:
        beta1, beta2 = values["betas"]
        return (float(values["lr"]), float(beta1), float(beta2), float(values["eps"]),
                float(values["weight_decay"]))  # fmt: skip

    @staticmethod
    def _new_backend(params: list[Tensor], values: dict[str, Any]) -> Any:
        options = (*Adam._options(values), bool(values["decoupled_weight_decay"]))
        if values["amsgrad"]:
            return _AmsgradBackend(params, *options)
        return _core.Adam(params, *options)

    def _make_backend(self, group: dict[str, Any]) -> Any:
        return self._new_backend(list(group["params"]), group)

    def _set_backend(self, group: _ParamGroup, values: dict[str, Any]) -> None:
        backend = group._backend
        amsgrad = bool(values["amsgrad"])
        decoupled = bool(values["decoupled_weight_decay"])
        if amsgrad != isinstance(backend, _AmsgradBackend) or (
            not amsgrad and decoupled != bool(group["decoupled_weight_decay"])
        ):
            # The C++ optimizer fixes decoupled_weight_decay at construction, and amsgrad
            # groups have their own backend: a new one takes over the state (a step
            # captured before keeps the old one).
            fresh = self._new_backend(list(group["params"]), values)
            for i in range(len(group["params"])):
                entry = backend._state_entry(i)
                if entry is not None:
                    fresh._set_state(i, *entry)
            group._backend = fresh
            return
        if amsgrad:
            backend.decoupled = decoupled
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
        state = {"step": _core._full((), float(steps), _core.dtype.float32),
                 "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}  # fmt: skip
        if isinstance(group._backend, _AmsgradBackend):
            state["max_exp_avg_sq"] = group._backend.state[i]["max_exp_avg_sq"]
        return state

    def _check_param_state(self, group: _ParamGroup, i: int, entry: dict[str, Any]) -> None:
        name = type(self).__name__
        if not {"step", "exp_avg", "exp_avg_sq"} <= set(entry):
            raise ValueError(f"[{name}.load_state_dict] bad state entry for parameter {i}")
        for key in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq"):
            if key not in entry:
                continue
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
            if isinstance(group._backend, _AmsgradBackend) and "max_exp_avg_sq" in entry:
                with no_grad():
                    group._backend.state[i]["max_exp_avg_sq"].copy_(entry["max_exp_avg_sq"])


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


class _AmsgradBackend:
    """The backend of an Adam/AdamW group with amsgrad=True: PyTorch's single-tensor update
    as in-place tensor ops (bp.compile records them), with the C++ optimizer's interface
    (step, _set_options, _state_entry, _set_state, _reset_state). Hyper-parameters live in
    0-d float64 tensors that _set_options fills; the state is made here, outside any
    recording, as _TensorOptimizer's."""

    def __init__(
        self,
        params: list[Tensor],
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        weight_decay: float,
        decoupled: bool,
    ) -> None:
        self.params = params
        self.decoupled = decoupled
        self.hyper = {k: _core._full((), 0.0, _core.dtype.float64)
                      for k in ("lr", "beta1", "beta2", "eps", "weight_decay")}  # fmt: skip
        self._set_options(lr, beta1, beta2, eps, weight_decay)
        self.state = [
            {"step": _core._full((), 0.0, _core.dtype.float32),
             **{k: _core._full(tuple(p.shape), 0.0, p.dtype)
                for k in ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")}}
            for p in params
        ]  # fmt: skip
        self.stepped = [False] * len(params)

    def _set_options(
        self, lr: float, beta1: float, beta2: float, eps: float, weight_decay: float
    ) -> None:
        self.beta1, self.weight_decay = beta1, weight_decay  # what Python branches read
        with no_grad():
            for key, value in zip(("lr", "beta1", "beta2", "eps", "weight_decay"),
                                  (lr, beta1, beta2, eps, weight_decay)):  # fmt: skip
                self.hyper[key].fill_(value)

    def step(self) -> None:
        h = self.hyper
        for i, p in enumerate(self.params):
            g = p.grad
            if g is None:
                continue
            self.stepped[i] = True
            state = self.state[i]
            step = state["step"]
            step.add_(1.0)
            if self.weight_decay != 0:
                if self.decoupled:
                    p.mul_(1 - h["lr"] * h["weight_decay"])
                else:
                    g = g + p * h["weight_decay"]
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            if 1 - self.beta1 < 0.5:  # lerp, as PyTorch computes it
                exp_avg.add_((1 - h["beta1"]) * (g - exp_avg))
            else:
                exp_avg.copy_(g - (g - exp_avg) * h["beta1"])
            exp_avg_sq.mul_(h["beta2"])
            exp_avg_sq.add_((1 - h["beta2"]) * g * g)
            step_size = h["lr"] / (1 - h["beta1"] ** step)
            bias_correction2_sqrt = (1 - h["beta2"] ** step) ** 0.5
            maximum = state["max_exp_avg_sq"]
            maximum.copy_(_core.maximum(maximum, exp_avg_sq))
            denom = maximum.sqrt() / bias_correction2_sqrt + h["eps"]
            p.sub_(step_size * exp_avg / denom)

    def _state_entry(self, i: int) -> tuple[int, Tensor, Tensor] | None:
        if not self.stepped[i]:
            return None
        state = self.state[i]
        return int(state["step"].item()), state["exp_avg"], state["exp_avg_sq"]

    def _set_state(self, i: int, steps: int, exp_avg: Tensor, exp_avg_sq: Tensor) -> None:
        state = self.state[i]
        with no_grad():
            state["step"].fill_(float(steps))
            state["exp_avg"].copy_(exp_avg)
            state["exp_avg_sq"].copy_(exp_avg_sq)
            state["max_exp_avg_sq"].zero_()
        self.stepped[i] = True

    def _reset_state(self) -> None:
        with no_grad():
            for state in self.state:
                for tensor in state.values():
                    tensor.zero_()
        self.stepped = [False] * len(self.params)

"""bprop.optim.swa_utils, as torch.optim.swa_utils: stochastic weight averaging and
exponential moving averages of a model (AveragedModel with the avg_fn / multi_avg_fn
helpers), the SWALR schedule, and update_bn, which recomputes BatchNorm running statistics
for averaged weights."""

from __future__ import annotations

import copy
import itertools
import math
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from .. import _core
from ..autograd import no_grad
from ..nn.modules.batchnorm import _BatchNorm
from ..nn.modules.module import Module
from .lr_scheduler import LRScheduler, _per_group
from .optimizer import Optimizer

__all__ = ["AveragedModel", "update_bn", "SWALR", "get_ema_multi_avg_fn",
           "get_swa_multi_avg_fn", "get_ema_avg_fn", "get_swa_avg_fn"]  # fmt: skip

Tensor = _core.Tensor
_ParamList = Sequence[Tensor]


def _check_decay(name: str, decay: float) -> None:
    if decay < 0.0 or decay > 1.0:
        raise ValueError(
            f"[{name}] Invalid decay value {decay} provided. Please provide a value in [0,1] range."
        )


def _lerp_(average: Tensor, current: Tensor, weight: float) -> None:
    """average.lerp_(current, weight), in PyTorch's two forms (weight below 0.5 or not)."""
    if weight < 0.5:
        average.add_((current - average) * weight)
    else:
        average.copy_(current - (current - average) * (1 - weight))


def _copy_into(target: Tensor, value: Tensor) -> None:
    """target.copy_(value), truncating a floating value into an integer target (as
    PyTorch's copy_ does for an int64 buffer such as num_batches_tracked)."""
    if isinstance(value, Tensor) and value.dtype != target.dtype:
        value = value.to(target.dtype)
    target.copy_(value)


def get_ema_multi_avg_fn(decay: float = 0.999) -> Callable[[_ParamList, _ParamList, Any], None]:
    """A multi_avg_fn for AveragedModel that keeps an exponential moving average:
    average = decay average + (1 - decay) current, in place, for every tensor. Raises
    ValueError for a decay outside [0, 1]."""
    _check_decay("get_ema_multi_avg_fn", decay)

    def ema_update(ema_param_list: _ParamList, current_param_list: _ParamList, _: Any) -> None:
        with no_grad():
            if ema_param_list and ema_param_list[0].dtype.is_floating_point:
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    _lerp_(p_ema, p_model, 1 - decay)
            else:
                for p_ema, p_model in zip(ema_param_list, current_param_list, strict=True):
                    _copy_into(p_ema, p_ema * decay + p_model * (1 - decay))

    return ema_update


def get_swa_multi_avg_fn() -> Callable[[_ParamList, _ParamList, Any], None]:
    """A multi_avg_fn for AveragedModel that keeps the equal-weight running average of the
    n_averaged models seen so far: average += (current - average) / (n_averaged + 1)."""

    def swa_update(
        averaged_param_list: _ParamList, current_param_list: _ParamList, num_averaged: Any
    ) -> None:
        with no_grad():
            n = float(num_averaged.item()) if isinstance(num_averaged, Tensor) else num_averaged
            # PyTorch's weight: 1 / (n + 1) of an int64 tensor n is of the default dtype.
            weight = 1 / (num_averaged + 1)
            weight = float(weight.item()) if isinstance(weight, Tensor) else weight
            if averaged_param_list and averaged_param_list[0].dtype.is_floating_point:
                for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
                    _lerp_(p_avg, p_model, weight)
            else:
                for p_avg, p_model in zip(averaged_param_list, current_param_list, strict=True):
                    _copy_into(p_avg, p_avg + (p_model - p_avg) / (n + 1))

    return swa_update


def get_ema_avg_fn(decay: float = 0.999) -> Callable[[Tensor, Tensor, Any], Tensor]:
    """An avg_fn for AveragedModel: returns decay * average + (1 - decay) * current.
    Raises ValueError for a decay outside [0, 1]."""
    _check_decay("get_ema_avg_fn", decay)

    def ema_update(ema_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return decay * ema_param + (1 - decay) * current_param

    return ema_update


def get_swa_avg_fn() -> Callable[[Tensor, Tensor, Any], Tensor]:
    """An avg_fn for AveragedModel: returns average + (current - average) / (n + 1)."""

    def swa_update(averaged_param: Tensor, current_param: Tensor, num_averaged: Any) -> Tensor:
        with no_grad():
            return averaged_param + (current_param - averaged_param) / (num_averaged + 1)

    return swa_update


class AveragedModel(Module):
    """A copy of `model` whose parameters are a running average of the models handed to
    update_parameters(), as torch.optim.swa_utils.AveragedModel: the equal-weight average
    (SWA) by default; `avg_fn(averaged, current, n_averaged) -> new` or
    `multi_avg_fn(averaged_list, current_list, n_averaged)` (in place) for another one, such
    as get_ema_multi_avg_fn(decay). The first update copies the model. Buffers are copied
    from the model on every update, or averaged with the parameters if use_buffers=True.
    `n_averaged` is an int64 buffer. Calling it calls the averaged copy. Raises
    AssertionError when both avg_fn and multi_avg_fn are given, as PyTorch."""

    n_averaged: Tensor

    def __init__(
        self,
        model: Module,
        device: Any = None,
        avg_fn: Callable[[Tensor, Tensor, Any], Tensor] | None = None,
        multi_avg_fn: Callable[[_ParamList, _ParamList, Any], None] | None = None,
        use_buffers: bool = False,
    ) -> None:
        super().__init__()
        if avg_fn is not None and multi_avg_fn is not None:
            raise AssertionError(
                "[AveragedModel] Only one of avg_fn and multi_avg_fn should be provided"
            )
        self.module = copy.deepcopy(model)
        if device is not None:
            self.module = self.module.to(device)
        self.register_buffer("n_averaged", _core._zeros((), _core.dtype.int64))
        self.avg_fn = avg_fn
        self.multi_avg_fn = multi_avg_fn
        self.use_buffers = use_buffers

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The averaged copy of the model applied to the arguments."""
        return self.module(*args, **kwargs)

    def update_parameters(self, model: Module) -> None:
        """Folds `model`'s current parameters (and buffers, with use_buffers) into the
        average and counts it in n_averaged; the first call copies them."""
        if self.use_buffers:
            mine = itertools.chain(self.module.parameters(), self.module.buffers())
            theirs = itertools.chain(model.parameters(), model.buffers())
        else:
            mine, theirs = self.parameters(), model.parameters()
        count = int(self.n_averaged.item())
        averaged, current = [], []
        with no_grad():
            for p_averaged, p_model in zip(mine, theirs):
                p_model = p_model.detach()
                averaged.append(p_averaged.detach())
                current.append(p_model)
                if count == 0:
                    p_averaged.detach().copy_(p_model)
            if count > 0:
                if self.multi_avg_fn is not None:
                    groups: dict[Any, tuple[list[Tensor], list[Tensor]]] = {}
                    for a, c in zip(averaged, current):  # by dtype, as PyTorch groups them
                        mine_list, theirs_list = groups.setdefault(a.dtype, ([], []))
                        mine_list.append(a)
                        theirs_list.append(c)
                    for mine_list, theirs_list in groups.values():
                        self.multi_avg_fn(mine_list, theirs_list, self.n_averaged)
                else:  # PyTorch's per-tensor form on the CPU
                    avg_fn = self.avg_fn or get_swa_avg_fn()
                    for a, c in zip(averaged, current):
                        _copy_into(a, avg_fn(a, c, self.n_averaged))
            if not self.use_buffers:
                for b_swa, b_model in zip(self.module.buffers(), model.buffers(), strict=True):
                    b_swa.detach().copy_(b_model.detach())
            self.n_averaged.add_(1)


def update_bn(loader: Iterable[Any], model: Module, device: Any = None) -> None:
    """Recomputes the running statistics of every BatchNorm of `model` from one pass over
    `loader` (batches, or tuples/lists whose first item is the input), as
    torch.optim.swa_utils.update_bn: the statistics are reset and accumulated as a
    cumulative average (momentum None) in train mode; the momenta and the model's mode are
    restored afterwards. A model without BatchNorm is left alone."""
    momenta = {}
    for module in model.modules():
        if isinstance(module, _BatchNorm):
            module.reset_running_stats()
            momenta[module] = module.momentum
    if not momenta:
        return
    was_training = model.training
    model.train()
    for module in momenta:
        module.momentum = None
    try:
        with no_grad():
            for input in loader:
                if isinstance(input, (list, tuple)):
                    input = input[0]
                if device is not None:
                    input = input.to(device)
                model(input)
    finally:
        for module, momentum in momenta.items():
            module.momentum = momentum
        model.train(was_training)


class SWALR(LRScheduler):
    """The SWA schedule, as torch.optim.swa_utils.SWALR: each group's lr is annealed from
    its current value to its swa_lr (a number, or one per group) over anneal_epochs steps
    ('cos' or 'linear'), then held there. Sets 'swa_lr' in every group. Raises ValueError
    for another anneal_strategy or a negative or non-int anneal_epochs."""

    def __init__(
        self,
        optimizer: Optimizer,
        swa_lr: float | list[float],
        anneal_epochs: int = 10,
        anneal_strategy: str = "cos",
        last_epoch: int = -1,
    ) -> None:
        swa_lrs = _per_group("SWALR", "swa_lr", optimizer, swa_lr)
        for value, group in zip(swa_lrs, optimizer.param_groups):
            group["swa_lr"] = value
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(
                "[SWALR] anneal_strategy must be one of 'cos' or 'linear', instead got "
                f"{anneal_strategy}"
            )
        self._set_anneal_func(anneal_strategy)
        if not isinstance(anneal_epochs, int) or anneal_epochs < 0:
            raise ValueError(
                f"[SWALR] anneal_epochs must be equal or greater than 0, got {anneal_epochs}"
            )
        self.anneal_epochs = anneal_epochs
        super().__init__(optimizer, last_epoch)

    @staticmethod
    def _linear_anneal(t: float) -> float:
        return t

    @staticmethod
    def _cosine_anneal(t: float) -> float:
        return (1 - math.cos(math.pi * t)) / 2

    @staticmethod
    def _get_initial_lr(lr: float, swa_lr: float, alpha: float) -> float:
        if alpha == 1:
            return swa_lr
        return (lr - alpha * swa_lr) / (1 - alpha)

    def _set_anneal_func(self, anneal_strategy: str) -> None:
        self._anneal_strategy = anneal_strategy
        self.anneal_func = self._cosine_anneal if anneal_strategy == "cos" else self._linear_anneal

    def get_lr(self) -> list[float]:
        """The rates of the step just entered: the anneal recovers the rate it started from
        out of the current one and moves it `alpha` of the way to swa_lr."""
        if self._is_initial is False and not getattr(self, "_in_step", False):
            warnings.warn(
                "To get the last learning rate computed by the scheduler, please use "
                "`get_last_lr()`.",
                UserWarning,
                stacklevel=2,
            )
        step = self._step_count - 1
        if self.anneal_epochs == 0:
            step = max(1, step)
        prev_t = max(0, min(1, (step - 1) / max(1, self.anneal_epochs)))
        prev_alpha = self.anneal_func(prev_t)
        prev_lrs = [self._get_initial_lr(group["lr"], group["swa_lr"], prev_alpha)
                    for group in self.optimizer.param_groups]  # fmt: skip
        t = max(0, min(1, step / max(1, self.anneal_epochs)))
        alpha = self.anneal_func(t)
        return [group["swa_lr"] * alpha + lr * (1 - alpha)
                for group, lr in zip(self.optimizer.param_groups, prev_lrs)]  # fmt: skip

    def step(self, epoch: int | None = None) -> None:
        """Enters the next epoch and sets every group's lr."""
        self._in_step = True
        try:
            super().step(epoch)
        finally:
            self._in_step = False

    def state_dict(self) -> dict[str, Any]:
        """Every attribute but the optimizer and the anneal function, as PyTorch's."""
        return {key: value for key, value in self.__dict__.items()
                if key not in ("optimizer", "anneal_func")}  # fmt: skip

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restores what state_dict() returned."""
        self.__dict__.update(state_dict)
        self._set_anneal_func(self._anneal_strategy)

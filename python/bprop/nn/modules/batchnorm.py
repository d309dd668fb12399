"""Batch normalisation, as torch.nn's BatchNorm1d/2d/3d: PyTorch's parameters (weight, bias),
buffers (running_mean, running_var, num_batches_tracked) and update rule.

The running statistics are updated by in-place tensor ops under no_grad, and the cumulative
average of momentum=None takes its factor 1 / num_batches_tracked as a tensor, never as a
Python number: nothing reads a value into Python, so bp.compile records the update and every
replay repeats it."""

from __future__ import annotations

from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from ...autograd import no_grad as _no_grad
from .. import functional as F
from .module import Module, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d"]


class _BatchNorm(Module):
    _dims: tuple[int, ...] = ()

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
        if num_features <= 0:
            raise ValueError(f"[{op}] num_features must be positive, got {num_features}")
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.affine, self.track_running_stats = affine, track_running_stats
        shape = (num_features,)
        if affine:
            self.weight = Parameter(_core._ones(shape, dtype))
            if bias:
                self.bias = Parameter(_core._zeros(shape, dtype))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", _core._zeros(shape, dtype))
            self.register_buffer("running_var", _core._ones(shape, dtype))
            self.register_buffer("num_batches_tracked", _core._zeros((), _core.dtype.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)

    def reset_running_stats(self) -> None:
        """running_mean to 0, running_var to 1, num_batches_tracked to 0."""
        if self.track_running_stats:
            with _no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1.0)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """The running statistics reset, weight to 1, bias to 0."""
        self.reset_running_stats()
        with _no_grad():
            if self.weight is not None:
                self.weight.fill_(1.0)
            if self.bias is not None:
                self.bias.zero_()

    def _state_dict_defaults(self) -> dict[str, Tensor]:
        """A checkpoint without num_batches_tracked (saved before PyTorch had it) loads,
        keeping the current count, as PyTorch's _NormBase._load_from_state_dict."""
        if self.num_batches_tracked is None:
            return {}
        return {"num_batches_tracked": self.num_batches_tracked}

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in self._dims:
            wanted = " or ".join(f"{d}D" for d in self._dims)
            raise ValueError(
                f"[{type(self).__name__}] expected {wanted} input (got {input.ndim}D input)"
            )

    def forward(self, input: Tensor) -> Tensor:
        """Normalised input: by batch statistics while training (updating the running ones)
        or when running statistics are not tracked, else by the running statistics."""
        self._check_input_dim(input)
        if input.shape[1] != self.num_features:
            raise ValueError(
                f"[{type(self).__name__}] expected {self.num_features} channels (dim 1), got "
                f"input of shape {tuple(input.shape)}"
            )
        if self.training and input.numel() // self.num_features <= 1:
            # checked here too, before num_batches_tracked moves: a failed call changes nothing
            raise ValueError(
                f"[batch_norm] Expected more than 1 value per channel when training, got input "
                f"size {tuple(input.shape)}"
            )
        factor: float | Tensor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with _no_grad():
                self.num_batches_tracked.add_(1)
                if self.momentum is None:  # cumulative moving average
                    factor = 1.0 / self.num_batches_tracked.to(self.running_mean.dtype)
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep_running = not self.training or self.track_running_stats
        return F._batch_norm(
            input,
            self.running_mean if keep_running else None,
            self.running_var if keep_running else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over (N, C) or (N, C, L) input, per channel C."""

    _dims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over (N, C, H, W) input, per channel C."""

    _dims = (4,)


class BatchNorm3d(_BatchNorm):
    """Batch normalisation over (N, C, D, H, W) input, per channel C."""

    _dims = (5,)

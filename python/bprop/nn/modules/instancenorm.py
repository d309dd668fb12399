"""Instance normalisation, as torch.nn's InstanceNorm1d/2d/3d: PyTorch's options, parameters
(weight, bias when affine) and buffers (running_mean, running_var, num_batches_tracked when
track_running_stats), so state dicts interchange."""

from __future__ import annotations

import warnings
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from ...autograd import no_grad as _no_grad
from .. import functional as F
from .module import Module, Parameter

__all__ = ["InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]


class _InstanceNorm(Module):
    _no_batch_dim = 2

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = False,
        track_running_stats: bool = False,
        device: Any = None,
        dtype: _core.dtype | None = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
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

    def _apply_instance_norm(self, input: Tensor) -> Tensor:
        return F.instance_norm(
            input,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            self.training or not self.track_running_stats,
            self.momentum if self.momentum is not None else 0.0,
            self.eps,
        )

    def forward(self, input: Tensor) -> Tensor:
        dims = self._no_batch_dim
        if input.ndim not in (dims, dims + 1):
            raise ValueError(
                f"[{type(self).__name__}] expected {dims}D or {dims + 1}D input (got "
                f"{input.ndim}D input)"
            )
        feature_dim = input.ndim - dims
        if input.shape[feature_dim] != self.num_features:
            if self.affine:
                raise ValueError(
                    f"[{type(self).__name__}] expected input's size at dim={feature_dim} to "
                    f"match num_features ({self.num_features}), but got: "
                    f"{input.shape[feature_dim]}."
                )
            warnings.warn(
                f"input's size at dim={feature_dim} does not match num_features. You can "
                "silence this warning by not passing in num_features, which is not used "
                "because affine=False",
                stacklevel=2,
            )
        if input.ndim == dims:
            return self._apply_instance_norm(input.unsqueeze(0)).squeeze(0)
        return self._apply_instance_norm(input)

    def extra_repr(self) -> str:
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class InstanceNorm1d(_InstanceNorm):
    """Instance normalisation of (N, C, L) or unbatched (C, L) input."""

    _no_batch_dim = 2


class InstanceNorm2d(_InstanceNorm):
    """Instance normalisation of (N, C, H, W) or unbatched (C, H, W) input."""

    _no_batch_dim = 3


class InstanceNorm3d(_InstanceNorm):
    """Instance normalisation of (N, C, D, H, W) or unbatched (C, D, H, W) input."""

    _no_batch_dim = 4

"""Gradient clipping, as torch.nn.utils.clip_grad.

Nothing here reads a tensor's value in Python (no .item(), no float()): the norm stays a 0-d
tensor and the gradients are scaled by the tensor clamp(max_norm / (norm + 1e-6), max=1), as
PyTorch does, so a training step that clips records and replays under bp.compile. Only
error_if_nonfinite=True must look at the norm, and so can't be recorded."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Union

from ... import _core
from ..._core import Tensor
from ...autograd import no_grad

__all__ = ["clip_grad_norm_", "clip_grad_value_", "clip_grads_with_norm_", "get_total_norm"]

Tensors = Union[Tensor, Iterable[Tensor]]  # noqa: UP007  (runs on 3.9)


def _as_list(tensors: Tensors) -> list[Tensor]:
    return [tensors] if isinstance(tensors, Tensor) else list(tensors)


def _grads(parameters: Tensors) -> list[Tensor]:
    return [p.grad for p in _as_list(parameters) if p.grad is not None]


def _norm(t: Tensor, norm_type: float) -> Tensor:
    if math.isinf(norm_type):
        return t.abs().amax() if norm_type > 0 else t.abs().amin()
    if norm_type == 0.0:  # the number of non-zero entries
        return t.ne(0).to(t.dtype).sum()
    if norm_type == 2.0:
        return (t * t).sum().sqrt()
    if norm_type == 1.0:
        return t.abs().sum()
    return (t.abs() ** norm_type).sum() ** (1.0 / norm_type)


def get_total_norm(
    tensors: Tensors,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """The norm of the norms of `tensors` (the norm of their concatenation), as
    torch.nn.utils.get_total_norm; a 0-d tensor, 0. for no tensors. foreach is accepted
    for PyTorch's signature (the loop is the same either way)."""
    del foreach
    tensors = _as_list(tensors)
    norm_type = float(norm_type)
    if not tensors:
        return _core._zeros((), _core.get_default_dtype())
    with no_grad():
        norms = [_norm(t.detach(), norm_type) for t in tensors]
        total = _norm(_core._stack(norms, 0), norm_type)
    if error_if_nonfinite and not math.isfinite(total.item()):
        raise RuntimeError(
            f"[clip_grad_norm_] The total norm of order {norm_type} for gradients from "
            "`parameters` is non-finite, so it cannot be clipped. To disable this error and "
            "scale the gradients by the non-finite norm anyway, set `error_if_nonfinite=False`"
        )
    return total


def clip_grads_with_norm_(
    parameters: Tensors, max_norm: float, total_norm: Tensor, foreach: bool | None = None
) -> None:
    """Scales the gradients in place by clamp(max_norm / (total_norm + 1e-6), max=1), as
    ``torch.nn.utils.clip_grads_with_norm_``."""
    del foreach
    grads = _grads(parameters)
    if not grads:
        return
    with no_grad():
        coefficient = (float(max_norm) / (total_norm.detach() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(coefficient)


def clip_grad_norm_(
    parameters: Tensors,
    max_norm: float,
    norm_type: float = 2.0,
    error_if_nonfinite: bool = False,
    foreach: bool | None = None,
) -> Tensor:
    """Scales the gradients in place so their joint norm is at most max_norm and returns the
    norm before clipping (a 0-d tensor), as ``torch.nn.utils.clip_grad_norm_``. Recordable by
    bp.compile unless error_if_nonfinite=True."""
    parameters = _as_list(parameters)
    grads = _grads(parameters)
    total = get_total_norm(grads, norm_type, error_if_nonfinite, foreach)
    clip_grads_with_norm_(parameters, max_norm, total, foreach)
    return total


def clip_grad_value_(parameters: Tensors, clip_value: float, foreach: bool | None = None) -> None:
    """Clamps every gradient in place to [-clip_value, clip_value], as
    ``torch.nn.utils.clip_grad_value_``."""
    del foreach
    clip_value = float(clip_value)
    with no_grad():
        for g in _grads(parameters):
            g.clamp_(-clip_value, clip_value)

"""bprop.nn.utils: `clip_grad_norm_`."""

from __future__ import annotations

import math

from .. import _core
from ..autograd import no_grad

__all__ = ["clip_grad_norm_"]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0) -> _core.Tensor:
    """Scales the gradients in place so their joint norm is at most max_norm (as
    `torch.nn.utils.clip_grad_norm_`); returns the norm before clipping."""
    if isinstance(parameters, _core.Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    norm_type = float(norm_type)
    if not grads:
        return _core._zeros((), _core.get_default_dtype())
    with no_grad():
        if math.isinf(norm_type):
            norms = [g.abs().amax() for g in grads]
            total = _core._stack(norms, 0).amax()
        else:
            norms = [(g.abs() ** norm_type).sum() for g in grads]
            total = _core._stack(norms, 0).sum() ** (1.0 / norm_type)
        scale = float(max_norm) / (float(total) + 1e-6)
        if scale < 1.0:
            for g in grads:
                g.mul_(scale)
    return total

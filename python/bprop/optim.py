"""bprop.optim: optimizers whose update runs in C++."""

from __future__ import annotations

from . import _core

__all__ = ["SGD"]


class SGD(_core.SGD):
    """Stochastic gradient descent, the lecture's update rule `w := w - lr * dL/dw`.

    `params` is an iterable of leaf tensors that require grad."""

    def __init__(self, params, lr: float = 1e-3):
        super().__init__(list(params), float(lr))

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, params={len(self.params)})"

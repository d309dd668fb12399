"""bprop.optim: optimizers whose update runs in C++."""

from __future__ import annotations

from . import _core

__all__ = ["SGD"]


class SGD(_core.SGD):
    """Stochastic gradient descent with PyTorch's update math (the lecture's
    `w := w - lr * dL/dw`, plus optional momentum, dampening, Nesterov and weight decay).
    The whole step runs in C++. `params` is an iterable of leaf tensors that require grad."""

    def __init__(
        self,
        params,
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(
            list(params),
            float(lr),
            float(momentum),
            float(dampening),
            float(weight_decay),
            bool(nesterov),
        )

    def __repr__(self) -> str:
        return f"SGD(lr={self.lr}, params={len(self.params)})"

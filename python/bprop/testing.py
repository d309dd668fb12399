"""bprop.testing: check gradients against float64 central differences, for your own functions
as for bprop's ops.

    bp.testing.gradcheck(lambda x, w: (x @ w).tanh().sum(), (x, w))
    bp.testing.gradgradcheck(fn, inputs)

Inputs are float64 tensors; those with requires_grad=True are checked. For large inputs,
random_directions=k compares k random directional derivatives instead of the full Jacobian
(JAX's check_grads does the same)."""

from __future__ import annotations

import numpy as np

from . import _core
from ._core import Tensor
from .autograd import grad

__all__ = ["gradcheck", "gradgradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient that disagrees with finite differences."""


def _outputs(fn, inputs) -> list:
    out = fn(*inputs)
    return list(out) if isinstance(out, (tuple, list)) else [out]


def _check_inputs(op: str, inputs) -> list:
    inputs = list(inputs) if isinstance(inputs, (tuple, list)) else [inputs]
    for i, t in enumerate(inputs):
        if isinstance(t, Tensor) and t.requires_grad and t.dtype != _core.dtype.float64:
            raise TypeError(
                f"[{op}] input {i} is {t.dtype!r}; finite differences need float64 inputs"
            )
    if not any(isinstance(t, Tensor) and t.requires_grad for t in inputs):
        raise ValueError(f"[{op}] no input requires grad: nothing to check")
    return inputs


def _flat_values(outs) -> np.ndarray:
    return np.concatenate([np.asarray(o.detach().numpy(), dtype=np.float64).ravel() for o in outs])


def gradcheck(
    fn,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    random_directions: int | None = None,
    seed: int = 0,
) -> bool:
    """True when the VJPs of fn at inputs match central differences; else GradcheckError."""
    inputs = _check_inputs("gradcheck", inputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    rng = np.random.default_rng(seed)
    outs = _outputs(fn, inputs)
    diff_outs = [o for o in outs if o.requires_grad]
    # A random cotangent per output turns each output into a scalar <v, out>.
    cotangents = [rng.standard_normal(o.shape) for o in outs]
    grads = (
        grad(
            diff_outs,
            [inputs[i] for i in wrt],
            [_core._tensor_from_numpy(c) for o, c in zip(outs, cotangents) if o.requires_grad],
            allow_unused=True,
        )
        if diff_outs
        else [None] * len(wrt)
    )
    analytic = [
        np.zeros(inputs[i].shape) if g is None else g.detach().numpy().astype(np.float64)
        for i, g in zip(wrt, grads)
    ]

    def scalar_at(values: list) -> float:
        shifted = list(inputs)
        for i, v in zip(wrt, values):
            # Still requiring grad: fn may differentiate inside (gradgradcheck's does).
            shifted[i] = _core._tensor_from_numpy(v).requires_grad_(True)
        new_outs = _outputs(fn, shifted)
        return float(
            sum(
                np.sum(np.asarray(o.detach().numpy(), np.float64) * c)
                for o, c in zip(new_outs, cotangents)
            )
        )

    base = [inputs[i].detach().numpy().astype(np.float64) for i in wrt]
    if random_directions is None:
        for k, i in enumerate(wrt):
            numeric = np.zeros_like(base[k])
            for j in range(base[k].size):
                plus = [b.copy() for b in base]
                minus = [b.copy() for b in base]
                plus[k].flat[j] += eps
                minus[k].flat[j] -= eps
                numeric.flat[j] = (scalar_at(plus) - scalar_at(minus)) / (2 * eps)
            _compare(f"input {i}", analytic[k], numeric, atol, rtol)
    else:
        for d in range(random_directions):
            directions = [rng.standard_normal(b.shape) for b in base]
            plus = [b + eps * v for b, v in zip(base, directions)]
            minus = [b - eps * v for b, v in zip(base, directions)]
            numeric = (scalar_at(plus) - scalar_at(minus)) / (2 * eps)
            expected = sum(float(np.sum(a * v)) for a, v in zip(analytic, directions))
            _compare(f"random direction {d}", np.array(expected), np.array(numeric), atol, rtol)
    return True


def gradgradcheck(
    fn,
    inputs,
    *,
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    random_directions: int | None = None,
    seed: int = 0,
) -> bool:
    """gradcheck of the first derivative: checks VJPs built with create_graph=True."""
    inputs = _check_inputs("gradgradcheck", inputs)
    wrt = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    rng = np.random.default_rng(seed + 1)
    outs = _outputs(fn, inputs)
    cotangents = [
        _core._tensor_from_numpy(rng.standard_normal(o.shape)) for o in outs if o.requires_grad
    ]

    def first_derivative(*args):
        diff = [o for o in _outputs(fn, args) if o.requires_grad]
        gs = grad(diff, [args[i] for i in wrt], cotangents, create_graph=True, allow_unused=True)
        return tuple(g for g in gs if g is not None and g.requires_grad)

    if not first_derivative(*inputs):
        return True  # the gradient is constant in the inputs: nothing second-order to check
    return gradcheck(
        first_derivative,
        inputs,
        eps=eps,
        atol=atol,
        rtol=rtol,
        random_directions=random_directions,
        seed=seed,
    )


def _compare(what: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float):
    if not np.allclose(analytic, numeric, atol=atol, rtol=rtol, equal_nan=False):
        error = float(np.max(np.abs(analytic - numeric)))
        raise GradcheckError(
            f"[gradcheck] gradient mismatch for {what}: max abs error {error:.3g} "
            f"(atol {atol}, rtol {rtol})\nanalytic:\n{analytic}\nnumeric:\n{numeric}"
        )

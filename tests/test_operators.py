"""The arithmetic operators are C++ number slots on the Tensor type (python/src/fast_ops.cpp):
they must behave exactly like the bound methods, reflected forms and errors included."""

import bprop as bp
import numpy as np
import pytest


@pytest.mark.parametrize(
    "expr, expected",
    [
        (lambda x: x + 2, [3.0, 4.0]),
        (lambda x: 2 + x, [3.0, 4.0]),
        (lambda x: x - 2, [-1.0, 0.0]),
        (lambda x: 2 - x, [1.0, 0.0]),
        (lambda x: x * 3, [3.0, 6.0]),
        (lambda x: 3 * x, [3.0, 6.0]),
        (lambda x: x / 4, [0.25, 0.5]),
        (lambda x: 4 / x, [4.0, 2.0]),
        (lambda x: -x, [-1.0, -2.0]),
        (lambda x: x + x, [2.0, 4.0]),
        (lambda x: x * True, [1.0, 2.0]),
        (lambda x: x + np.float64(0.5), [1.5, 2.5]),
    ],
)
def test_operator_values_and_gradients_match_methods(expr, expected):
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = expr(x)
    np.testing.assert_allclose(y.detach().numpy(), expected)
    assert y.dtype == bp.float32 and y.grad_fn is not None
    y.sum().backward()
    h = 1e-3
    xs = np.array([1.0, 2.0])
    numeric = [
        (expr(bp.tensor(xs + h * e, dtype=bp.float64)).sum().item()
         - expr(bp.tensor(xs - h * e, dtype=bp.float64)).sum().item()) / (2 * h)
        for e in np.eye(2)
    ]  # fmt: skip
    np.testing.assert_allclose(x.grad.numpy(), numeric, rtol=1e-4)


def test_operator_errors():
    x = bp.ones(2)
    with pytest.raises(TypeError, match="unsupported operand"):
        x + "a"
    with pytest.raises(TypeError):
        None * x
    with pytest.raises(ValueError, match=r"\[add\].*\(2,\).*\(3,\)"):
        x + bp.ones(3)
    with pytest.raises(TypeError, match="sub"):
        bp.tensor([True]) - bp.tensor([False])


def test_operators_on_subclasses_and_explicit_dunder_calls():
    p = bp.nn.Parameter(bp.ones(2))
    q = p * 2 + 1
    np.testing.assert_array_equal(q.detach().numpy(), [3.0, 3.0])
    assert type(q) is bp.Tensor and q.grad_fn is not None
    x = bp.tensor([1.0, 2.0])
    np.testing.assert_array_equal(x.__add__(1.0).numpy(), (x + 1.0).numpy())
    np.testing.assert_array_equal(x.__rsub__(1.0).numpy(), (1.0 - x).numpy())

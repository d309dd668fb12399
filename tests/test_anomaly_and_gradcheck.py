"""bp.detect_anomaly() and bp.testing.gradcheck / gradgradcheck.

Anomaly mode: backward raises at the first op whose gradient becomes NaN, naming the op and
showing where its forward ran. gradcheck: passes on correct gradients (full Jacobian and the
random-direction mode), and catches wrong ones: a wrong first derivative, and a first
derivative that is right in value but whose own derivative is wrong (gradgradcheck). Finally
every row of the op tables (test_ops.OPS, test_functional.FN_OPS) goes through both checkers,
as a user would run them.
"""

from __future__ import annotations

import re

import bprop as bp
import numpy as np
import pytest
from test_functional import FN_OPS
from test_ops import OPS, case_data, to_np

# PyTorch warns when anomaly mode is switched on; a warning is no failure here.
anomaly = pytest.mark.filterwarnings("ignore::UserWarning")


def T(a):
    return bp.tensor(np.asarray(a, dtype=np.float64), requires_grad=True)


def first_backward_name(msg: str) -> str | None:
    found = re.findall(r"[A-Z][A-Za-z0-9]*Backward\d", msg)
    return found[0] if found else None


# ---------------------------------------------------------------------------------------------
# detect_anomaly
# ---------------------------------------------------------------------------------------------


@anomaly
def test_anomaly_names_sqrt_and_its_forward_line():
    x = T([0.0, 1.0])
    with bp.detect_anomaly():
        y = x.sqrt()  # FORWARD-OF-SQRT
        z = (y * 0.0).exp().sum()
        with pytest.raises(RuntimeError) as excinfo:
            z.backward()
    msg = str(excinfo.value)
    assert "SqrtBackward0" in msg
    assert first_backward_name(msg) == "SqrtBackward0", msg
    assert re.search(r'File ".*test_anomaly_and_gradcheck\.py", line \d+', msg), msg
    assert "FORWARD-OF-SQRT" in msg or "y = x.sqrt()" in msg, msg


@anomaly
def test_anomaly_names_div():
    a = T([0.0, 1.0])
    b = T([0.0, 2.0])
    with bp.detect_anomaly():
        q = a / b
        with pytest.raises(RuntimeError) as excinfo:
            q.sum().backward()
    msg = str(excinfo.value)
    assert first_backward_name(msg) == "DivBackward0", msg
    assert "test_anomaly_and_gradcheck.py" in msg


@anomaly
def test_anomaly_blames_the_first_op_not_later_ones():
    """NaN appears in SqrtBackward and then flows on into MulBackward: Sqrt is named."""
    x = T([0.0, 4.0])
    with bp.detect_anomaly():
        w = x * 3.0
        y = w.sqrt()
        loss = (y * 0.0).sum()
        with pytest.raises(RuntimeError) as excinfo:
            loss.backward()
    assert first_backward_name(str(excinfo.value)) == "SqrtBackward0", str(excinfo.value)


@anomaly
def test_anomaly_in_bp_grad_and_create_graph():
    x = T([0.0, 1.0])
    with bp.detect_anomaly():
        y = (x.sqrt() * 0.0).sum()
        with pytest.raises(RuntimeError, match="SqrtBackward0"):
            bp.grad(y, x, create_graph=True)


def test_without_anomaly_nan_propagates_silently():
    x = T([0.0, 1.0])
    (x.sqrt() * 0.0).exp().sum().backward()
    g = to_np(x.grad)
    assert np.isnan(g[0]) and g[1] == 0.0


@anomaly
def test_anomaly_mode_is_scoped():
    x = T([0.0, 1.0])
    with pytest.raises(RuntimeError):
        with bp.detect_anomaly():
            (x.sqrt() * 0.0).sum().backward()
    # the mode is off again, also after an exception left the block
    x.grad = None
    (x.sqrt() * 0.0).sum().backward()
    assert np.isnan(to_np(x.grad)[0])


@anomaly
def test_anomaly_mode_passes_finite_gradients_through():
    x_np = np.array([0.3, -1.2, 2.0])
    x = T(x_np)
    with bp.detect_anomaly():
        y = (x.tanh() * x).exp().sum()
        (g,) = bp.grad(y, x, create_graph=True)
        (h,) = bp.grad(g.sum(), x)
    x2 = T(x_np)
    (g2,) = bp.grad((x2.tanh() * x2).exp().sum(), x2, create_graph=True)
    (h2,) = bp.grad(g2.sum(), x2)
    np.testing.assert_array_equal(to_np(g), to_np(g2))
    np.testing.assert_array_equal(to_np(h), to_np(h2))


@anomaly
def test_anomaly_inf_is_not_nan():
    """sqrt'(0) = inf is a legitimate IEEE result; only NaN is an anomaly."""
    x = T([0.0, 1.0])
    with bp.detect_anomaly():
        x.sqrt().sum().backward()
    assert np.isinf(to_np(x.grad)[0])


# ---------------------------------------------------------------------------------------------
# gradcheck / gradgradcheck
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(2024)


def rand(*shape):
    return T(RNG.uniform(-1.5, 1.5, size=shape))


def test_gradcheck_error_is_an_assertion_error():
    assert issubclass(bp.testing.GradcheckError, AssertionError)


@pytest.mark.parametrize(
    "fn, shapes",
    [
        pytest.param(lambda x: x.tanh(), [(4, 3)], id="tanh"),
        pytest.param(lambda x: (x * x).sum(), [(5,)], id="to_0d"),
        pytest.param(lambda a, b: a @ b, [(3, 4), (4, 2)], id="matmul"),
        pytest.param(lambda a, b: (a * b).exp(), [(3, 1), (1, 4)], id="broadcast"),
        pytest.param(lambda a, b, c: (a @ b + c).sigmoid(), [(2, 3), (3, 4), (4,)], id="layer"),
    ],
)
def test_gradcheck_and_gradgradcheck_pass(fn, shapes):
    inputs = tuple(rand(*s) for s in shapes)
    assert bp.testing.gradcheck(fn, inputs) is True
    assert bp.testing.gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3) is True
    assert bp.testing.gradgradcheck(fn, inputs) is True


def test_gradcheck_random_directions_on_a_large_input():
    w = bp.tensor(RNG.standard_normal((200, 300)) / 20.0)

    def fn(x):
        return (w @ x).tanh()

    x = rand(300)
    assert bp.testing.gradcheck(fn, (x,), random_directions=4) is True
    assert bp.testing.gradgradcheck(fn, (x,), random_directions=4) is True


def _detach_times(x):
    """Value x^2, but the recorded gradient is x instead of 2x."""
    return x.detach() * x


def _slightly_wrong(x):
    """Value x^2; recorded gradient 1.99 x: off by half a percent."""
    return x * x + 0.01 * (x.detach() * x - x * x)


def _right_grad_wrong_hessian(x):
    """'Magic box': value x^3 and a gradient of value 3x^2, but that gradient is a constant in
    the graph (built from detached x), so its derivative comes out 0 instead of 6x."""
    d = x.detach()
    return d**3 + (x - d) * (3.0 * d**2) + 0.0 * x * x


@pytest.mark.parametrize("fn", [_detach_times, _slightly_wrong], ids=["detach", "half_percent"])
def test_gradcheck_detects_a_wrong_gradient(fn):
    x = rand(4, 3)
    with pytest.raises(bp.testing.GradcheckError) as excinfo:
        bp.testing.gradcheck(fn, (x,))
    assert re.search(r"\d", str(excinfo.value)), "the message should report the error size"


def test_gradcheck_random_directions_detects_a_wrong_gradient():
    with pytest.raises(bp.testing.GradcheckError):
        bp.testing.gradcheck(_detach_times, (rand(500),), random_directions=3)


def test_gradcheck_wrong_gradient_in_one_of_two_inputs():
    def fn(a, b):
        return a * b.detach() * b  # right for a, wrong for b

    with pytest.raises(bp.testing.GradcheckError):
        bp.testing.gradcheck(fn, (rand(3), rand(3)))


def test_gradgradcheck_detects_a_wrong_second_derivative():
    x = T([0.5, -1.2, 0.8])
    assert bp.testing.gradcheck(_right_grad_wrong_hessian, (x,)) is True
    with pytest.raises(bp.testing.GradcheckError):
        bp.testing.gradgradcheck(_right_grad_wrong_hessian, (x,))
    with pytest.raises(bp.testing.GradcheckError):
        bp.testing.gradgradcheck(_right_grad_wrong_hessian, (x,), random_directions=2)


def test_gradcheck_agrees_with_torch_on_the_same_function():
    """Both checkers accept a correct composite and reject the same wrong one."""
    torch = pytest.importorskip("torch")
    x_np = RNG.uniform(-1, 1, (3, 4))
    ok = bp.testing.gradcheck(lambda x: (x.sin() * x.cos()).sum(dim=1), (T(x_np),))
    tx = torch.tensor(x_np, requires_grad=True)
    assert ok and torch.autograd.gradcheck(lambda x: (x.sin() * x.cos()).sum(dim=1), (tx,))
    assert not torch.autograd.gradcheck(_detach_times, (tx,), raise_exception=False)
    with pytest.raises(bp.testing.GradcheckError):
        bp.testing.gradcheck(_detach_times, (T(x_np),))


# ---------------------------------------------------------------------------------------------
# every table row through the user-facing checkers
# ---------------------------------------------------------------------------------------------

ALL_ROWS = [pytest.param(c, id=c.id) for c in OPS if c.fd] + [
    pytest.param(c, id=f"F-{c.id}") for c in FN_OPS
]
FULL_JACOBIAN_LIMIT = 120  # larger inputs or outputs: random directions


def _inputs_and_mode(case):
    arrays, v, _ = case_data(case)
    inputs = tuple(T(a) for a in arrays)
    big = sum(a.size for a in arrays) > FULL_JACOBIAN_LIMIT or v.size > FULL_JACOBIAN_LIMIT
    return inputs, ({"random_directions": 6} if big else {})


def _fn(case):
    return lambda *xs: case.fn(bp, *xs)


@pytest.mark.parametrize("case", ALL_ROWS)
def test_table_row_gradcheck(case):
    inputs, mode = _inputs_and_mode(case)
    assert bp.testing.gradcheck(_fn(case), inputs, **mode) is True


@pytest.mark.parametrize("case", ALL_ROWS)
def test_table_row_gradgradcheck(case):
    inputs, mode = _inputs_and_mode(case)
    assert bp.testing.gradgradcheck(_fn(case), inputs, **mode) is True

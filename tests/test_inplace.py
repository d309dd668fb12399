"""In-place ops: add_ sub_ mul_ div_ zero_ fill_ copy_ clamp_ and += -= *= /=.

Values and identity (they return self), writes through views, gradients when the modified tensor
is a non-leaf (against PyTorch and closed forms), and misuse: in-place on a leaf that requires
grad, and backward through a graph whose saved tensor was modified afterwards.
"""

from __future__ import annotations

import re

import bprop as bp
import numpy as np
import pytest


def to_np(t) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


A = np.array([[0.5, -1.25, 2.0, -0.3], [1.5, 0.75, -2.5, 0.1], [-0.6, 0.9, 1.1, -1.7]])
OTHER = np.array([[1.5, 0.5, -2.0, 1.25], [0.8, -1.1, 0.4, 2.0], [1.3, -0.7, 0.6, 0.9]])
ROW = np.array([0.5, -2.0, 1.25, 4.0])


def _aug(op):
    def f(t, o):
        if op == "+":
            t += o
        elif op == "-":
            t -= o
        elif op == "*":
            t *= o
        else:
            t /= o
        return t

    return f


# (in-place call on (t, other), numpy result of (a, other), other: "full" / "row" / None)
INPLACE = [
    pytest.param(lambda t, o: t.add_(o), lambda a, o: a + o, "full", id="add_"),
    pytest.param(
        lambda t, o: t.add_(o, alpha=2.5), lambda a, o: a + 2.5 * o, "full", id="add_alpha"
    ),
    pytest.param(lambda t, o: t.add_(o), lambda a, o: a + o, "row", id="add_bcast"),
    pytest.param(lambda t, o: t.add_(1.5), lambda a, o: a + 1.5, None, id="add_scalar"),
    pytest.param(lambda t, o: t.sub_(o), lambda a, o: a - o, "full", id="sub_"),
    pytest.param(
        lambda t, o: t.sub_(o, alpha=0.5), lambda a, o: a - 0.5 * o, "row", id="sub_alpha"
    ),
    pytest.param(lambda t, o: t.sub_(2.0), lambda a, o: a - 2.0, None, id="sub_scalar"),
    pytest.param(lambda t, o: t.mul_(o), lambda a, o: a * o, "full", id="mul_"),
    pytest.param(lambda t, o: t.mul_(o), lambda a, o: a * o, "row", id="mul_bcast"),
    pytest.param(lambda t, o: t.mul_(-3.0), lambda a, o: a * -3.0, None, id="mul_scalar"),
    pytest.param(lambda t, o: t.div_(o), lambda a, o: a / o, "full", id="div_"),
    pytest.param(lambda t, o: t.div_(4.0), lambda a, o: a / 4.0, None, id="div_scalar"),
    pytest.param(lambda t, o: t.zero_(), lambda a, o: np.zeros_like(a), None, id="zero_"),
    pytest.param(lambda t, o: t.fill_(1.25), lambda a, o: np.full_like(a, 1.25), None, id="fill_"),
    pytest.param(lambda t, o: t.copy_(o), lambda a, o: o + 0 * a, "full", id="copy_"),
    pytest.param(lambda t, o: t.copy_(o), lambda a, o: o + 0 * a, "row", id="copy_bcast"),
    pytest.param(
        lambda t, o: t.clamp_(-0.5, 0.8), lambda a, o: np.clip(a, -0.5, 0.8), None, id="clamp_"
    ),
    pytest.param(
        lambda t, o: t.clamp_(min=0.2), lambda a, o: np.maximum(a, 0.2), None, id="clamp_min"
    ),
    pytest.param(
        lambda t, o: t.clamp_(max=-0.2), lambda a, o: np.minimum(a, -0.2), None, id="clamp_max"
    ),
    pytest.param(_aug("+"), lambda a, o: a + o, "full", id="iadd"),
    pytest.param(_aug("-"), lambda a, o: a - o, "row", id="isub"),
    pytest.param(_aug("*"), lambda a, o: a * o, "full", id="imul"),
    pytest.param(_aug("/"), lambda a, o: a / o, "row", id="itruediv"),
    pytest.param(lambda t, o: _aug("+")(t, 2.0), lambda a, o: a + 2.0, None, id="iadd_scalar"),
    pytest.param(lambda t, o: _aug("*")(t, 0.5), lambda a, o: a * 0.5, None, id="imul_scalar"),
]


def _other(m, kind, dtype, requires_grad=False):
    if kind is None:
        return None
    o = OTHER if kind == "full" else ROW
    return m.tensor(o.astype(dtype), requires_grad=requires_grad)


def _other_np(kind):
    return None if kind is None else (OTHER if kind == "full" else ROW)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("op, ref, kind", INPLACE)
def test_inplace_values(op, ref, kind, dtype):
    a = A.astype(dtype)
    t = bp.tensor(a)
    result = op(t, _other(bp, kind, dtype))
    np.testing.assert_array_equal(to_np(result), to_np(t))
    assert tuple(t.shape) == a.shape
    assert t.dtype == (bp.float32 if dtype == "float32" else bp.float64)
    want = ref(a.astype(np.float64), _other_np(kind)).astype(dtype)
    np.testing.assert_allclose(to_np(t), want, rtol=1e-6 if dtype == "float32" else 1e-15)


@pytest.mark.parametrize("op, ref, kind", INPLACE)
def test_inplace_returns_self(op, ref, kind):
    """As in PyTorch, `t.add_(o) is t`, and `t += o` leaves the name bound to the same object."""
    t = bp.tensor(A)
    assert op(t, _other(bp, kind, "float64")) is t


@pytest.mark.parametrize("op, ref, kind", INPLACE)
def test_inplace_on_a_view_writes_the_base(op, ref, kind):
    base_np = np.zeros((3, 2, 4))
    base_np[:, 1, :] = A
    base = bp.tensor(base_np)
    view = base[:, 1]  # (3, 4), strided
    op(view, _other(bp, kind, "float64"))
    want = base_np.copy()
    want[:, 1, :] = ref(A, _other_np(kind))
    np.testing.assert_allclose(to_np(base), want, rtol=1e-15)


def test_inplace_through_transposed_and_stepped_views():
    base = bp.tensor(np.arange(12.0).reshape(3, 4))
    base.T[::2].mul_(10.0)  # columns 0 and 2
    want = np.arange(12.0).reshape(3, 4)
    want[:, ::2] *= 10.0
    np.testing.assert_array_equal(to_np(base), want)
    base[1:, 1::2].fill_(-1.0)
    want[1:, 1::2] = -1.0
    np.testing.assert_array_equal(to_np(base), want)


def test_inplace_on_from_numpy_tensor_writes_the_array():
    a = np.ones((2, 3))
    t = bp.from_numpy(a)
    t.mul_(3.0)
    t[0].zero_()
    np.testing.assert_array_equal(a, [[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]])


def test_inplace_int_tensor():
    t = bp.tensor([1, 2, 3])
    t.add_(2)
    t *= 3
    t.clamp_(min=10)
    assert t.dtype == bp.int64
    np.testing.assert_array_equal(to_np(t), [10, 12, 15])


def test_copy_converts_dtype():
    t = bp.zeros(3)
    t.copy_(bp.tensor([0.1, 0.2, 0.3], dtype=bp.float64))
    assert t.dtype == bp.float32
    np.testing.assert_array_equal(to_np(t), np.array([0.1, 0.2, 0.3], dtype=np.float32))
    t.copy_(bp.tensor([1, 2, 3]))
    np.testing.assert_array_equal(to_np(t), [1.0, 2.0, 3.0])


def _version(t) -> int:
    v = t._version  # an int in PyTorch; accept a method too
    return v() if callable(v) else v


def test_version_counter():
    t = bp.zeros(3)
    v0 = _version(t)
    t.add_(1.0)
    assert _version(t) == v0 + 1
    t[0].fill_(2.0)  # a view shares its base's version counter
    assert _version(t) == v0 + 2
    t += 1.0
    assert _version(t) == v0 + 3
    u = t + 1.0  # out of place: no bump
    assert _version(t) == v0 + 3
    assert _version(u) == 0


# ---------------------------------------------------------------------------------------------
# gradients through in-place ops on non-leaves
# ---------------------------------------------------------------------------------------------


def test_inplace_mul_on_nonleaf_contract_example():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    y.mul_(3)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [6.0, 6.0, 6.0])


NONLEAF = [
    pytest.param(*p.values, grad, id=f"{p.id}-{'grad' if grad else 'const'}")
    for p in INPLACE
    for grad in (False, True)
    if p.values[2] is not None or not grad
]


@pytest.mark.parametrize("op, ref, kind, other_requires_grad", NONLEAF)
def test_inplace_nonleaf_gradient_vs_torch(op, ref, kind, other_requires_grad):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(11)
    w = rng.standard_normal(A.shape)

    def run(m):
        x = m.tensor(A, requires_grad=True)
        o = _other(m, kind, "float64", requires_grad=other_requires_grad)
        y = x * 1.5
        op(y, o)
        (y * m.tensor(w)).sum().backward()
        grads = [x.grad] + ([o.grad] if other_requires_grad else [])
        # A gradient of None means zeros (PyTorch gives zeros where bprop may prune the path).
        return to_np(y), [np.zeros(A.shape) if g is None else to_np(g) for g in grads]

    got_y, got = run(bp)
    want_y, want = run(torch)
    np.testing.assert_allclose(got_y, want_y, rtol=1e-14)
    for g, wg in zip(got, want):
        np.testing.assert_allclose(g, wg, rtol=1e-13, atol=1e-15)


def test_inplace_on_view_of_nonleaf_gradient():
    """PyTorch rebases the base's history (CopySlices); the gradient must see the change."""
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1.0
    y[1:].mul_(2.0)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [1.0, 2.0, 2.0])


def test_inplace_makes_a_plain_tensor_require_grad():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = bp.zeros(3)
    a.add_(x)
    assert a.requires_grad
    assert a.grad_fn is not None
    (a * a).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [2.0, 4.0, 6.0])


def test_copy_into_nonleaf_routes_gradient_to_source():
    x = bp.tensor(A, requires_grad=True)
    s = bp.tensor(ROW, requires_grad=True)
    y = x * 2.0
    y.copy_(s)
    (y * 3.0).sum().backward()
    assert x.grad is None or np.all(to_np(x.grad) == 0.0)
    np.testing.assert_array_equal(to_np(s.grad), np.full(4, 9.0))


def test_zero_and_fill_on_nonleaf_cut_the_gradient():
    for op in (lambda t: t.zero_(), lambda t: t.fill_(2.0)):
        x = bp.tensor([1.0, 2.0], requires_grad=True)
        y = x.exp()
        z = y * 1.0
        op(z)
        (z * x).sum().backward()  # only the direct path through x survives
        np.testing.assert_allclose(to_np(x.grad), to_np(z))


def test_unsaved_tensor_may_be_modified():
    """add saves nothing, so modifying its input afterwards is fine; the old graph is used."""
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    a = x * 1.0
    b = a + 1.0
    a.mul_(2.0)
    b.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [1.0, 1.0, 1.0])


def test_second_order_through_inplace():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 1.0
    y.mul_(x)  # y = x^2
    (g,) = bp.grad(y.sum(), x, create_graph=True)
    np.testing.assert_array_equal(to_np(g), [2.0, 4.0, 6.0])
    (g2,) = bp.grad(g.sum(), x)
    np.testing.assert_array_equal(to_np(g2), [2.0, 2.0, 2.0])


def test_sgd_style_update_under_no_grad():
    w = bp.tensor([1.0, -2.0], requires_grad=True)
    (w * w).sum().backward()
    with bp.no_grad():
        w.sub_(0.25 * w.grad)
        w -= 0.0
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_array_equal(to_np(w), [0.5, -1.0])


# ---------------------------------------------------------------------------------------------
# misuse
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op, ref, kind", INPLACE)
def test_inplace_on_leaf_requiring_grad_raises(op, ref, kind):
    x = bp.tensor(A, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf"):
        op(x, _other(bp, kind, "float64"))
    np.testing.assert_array_equal(to_np(x), A)
    assert x.is_leaf and x.grad_fn is None


def test_inplace_on_view_of_leaf_requiring_grad_raises():
    x = bp.tensor(A, requires_grad=True)
    with pytest.raises(RuntimeError):
        x[0].add_(1.0)
    with pytest.raises(RuntimeError):
        x.T.mul_(2.0)
    np.testing.assert_array_equal(to_np(x), A)


VERSION_MSG = re.compile(r"is at version (\d+); expected version (\d+)")


def _assert_version_error(excinfo, op):
    msg = str(excinfo.value)
    assert "modified by an inplace operation" in msg
    found = VERSION_MSG.search(msg)
    assert found, msg
    assert int(found.group(1)) > int(found.group(2)), msg
    assert re.search(op, msg, re.IGNORECASE), f"op {op!r} not named in: {msg}"


# build(x) -> (output, modify); the error must name the op that saved the tensor.
@pytest.mark.parametrize(
    "build, op",
    [
        pytest.param(
            lambda x: (lambda a: (a * a, lambda: a.add_(1.0)))(x * 1.0), "mul", id="mul_input"
        ),
        pytest.param(
            lambda x: (lambda y: (y, lambda: y.mul_(2.0)))(x.tanh()), "tanh", id="tanh_output"
        ),
        pytest.param(
            lambda x: (lambda y: (y, lambda: y.zero_()))(x.sigmoid()), "sigmoid", id="sigmoid"
        ),
        pytest.param(
            lambda x: (lambda a: (a @ a.T, lambda: a.copy_(a * 0.0)))(x.reshape(1, 3) * 1.0),
            "mm|matmul",
            id="matmul_input",
        ),
        pytest.param(
            lambda x: (lambda a: (a.log(), lambda: a.clamp_(min=2.0)))(x * 1.0),
            "log",
            id="log_input",
        ),
        pytest.param(
            lambda x: (lambda a: (a**2, lambda: _aug("+")(a, 1.0)))(x * 1.0), "pow", id="iadd"
        ),
    ],
)
def test_modified_saved_tensor_raises_on_backward(build, op):
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    out, modify = build(x)
    modify()
    with pytest.raises(RuntimeError) as excinfo:
        out.sum().backward()
    _assert_version_error(excinfo, op)


def test_modified_saved_tensor_through_a_view_raises():
    """exp saves its output; writing through a view of it must not go unnoticed (PyTorch raises
    at backward; refusing the in-place write on the view already is as safe)."""
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.exp()
    with pytest.raises(RuntimeError):
        y[0].fill_(1.0)
        y.sum().backward()


def test_modified_leaf_after_no_grad_update_raises():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    with bp.no_grad():
        w.mul_(0.5)
    with pytest.raises(RuntimeError) as excinfo:
        loss.backward()
    _assert_version_error(excinfo, "mul")


def test_inplace_dtype_and_shape_misuse():
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        bp.tensor([1, 2]).add_(0.5)  # float result can't be stored in int64
    with pytest.raises((RuntimeError, TypeError, ValueError)):
        bp.tensor([1, 2]).div_(2)  # true division gives float
    with pytest.raises((RuntimeError, ValueError)):
        bp.zeros(3).add_(bp.ones(2, 3))  # broadcast would change the shape
    with pytest.raises((RuntimeError, ValueError)):
        bp.zeros(3).copy_(bp.ones(4))
    t = bp.zeros(3)
    with pytest.raises((RuntimeError, ValueError)):
        t += bp.ones(2, 3)
    np.testing.assert_array_equal(to_np(t), np.zeros(3))

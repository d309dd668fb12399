"""The autograd engine: graph recording, accumulation, grad mode, bp.grad, higher order, scale."""

from __future__ import annotations

import gc

import bprop as bp
import numpy as np
import pytest
from conftest import UNDER_ASAN


def to_np(t) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


def f64(values, requires_grad=False):
    """A float64 tensor built from a numpy array (so no value passes through float32)."""
    return bp.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def leaf(values):
    return f64(values, requires_grad=True)


def node_name(entry):
    """next_functions entries are (node, index) pairs in PyTorch; accept bare nodes too."""
    node = entry[0] if isinstance(entry, tuple) else entry
    return None if node is None else node.name()


# ---------------------------------------------------------------------------------------------
# regression cases: repeated inputs, diamonds, reuse
# ---------------------------------------------------------------------------------------------


def test_x_times_x():
    x = leaf([1.5, -2.0, 0.25])
    (x * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0, -4.0, 0.5], rtol=1e-15)


def test_x_times_x_scalar():
    x = leaf(3.0)
    y = x * x
    y.backward()
    assert x.grad.shape == ()
    assert x.grad.item() == 6.0


def test_a_plus_a():
    a = leaf([1.0, 2.0])
    (a + a).sum().backward()
    np.testing.assert_array_equal(to_np(a.grad), [2.0, 2.0])


def test_b_is_a_plus_a_then_c_is_b_plus_b():
    a = leaf([1.0, -1.0, 7.0])
    b = a + a
    c = b + b
    c.sum().backward()
    np.testing.assert_array_equal(to_np(a.grad), [4.0, 4.0, 4.0])


def test_diamond():
    """a feeds b and c, both feed d: the two paths' gradients add up."""
    a_np = np.array([0.5, -1.5])
    a = leaf(a_np)
    b = a * 2.0
    c = a * 3.0
    d = b * c  # 6 a^2
    d.sum().backward()
    np.testing.assert_allclose(to_np(a.grad), 12 * a_np, rtol=1e-15)


def test_diamond_nonlinear():
    a_np = np.array([0.3, -0.8, 1.1])
    a = leaf(a_np)
    b = a.tanh()
    c = a.exp()
    d = (b * c + b).sum()
    d.backward()
    t, e = np.tanh(a_np), np.exp(a_np)
    want = (1 - t**2) * e + t * e + (1 - t**2)
    np.testing.assert_allclose(to_np(a.grad), want, rtol=1e-13)


def test_stacked_diamonds():
    """Ten diamonds in a row (y = y + y): each doubles the gradient, 2^10 in all."""
    x = leaf([1.0])
    y = x
    for _ in range(10):
        y = y + y
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [1024.0])


def test_reuse_of_non_leaf():
    x_np = np.array([-0.7, 0.2, 1.3])
    x = leaf(x_np)
    h = x.tanh()
    y = (h * h + h * 3.0 - h).sum()
    y.backward()
    t = np.tanh(x_np)
    np.testing.assert_allclose(to_np(x.grad), (2 * t + 2) * (1 - t**2), rtol=1e-13)


def test_same_tensor_both_operands_of_every_binary_op():
    x_np = np.array([0.7, 1.9])
    for f, df in [
        (lambda x: x - x, lambda x: 0 * x),
        (lambda x: x / x, lambda x: 0 * x),
        (lambda x: x**x, lambda x: x**x * (np.log(x) + 1)),
        (lambda x: x @ x.T, lambda x: 2 * x),
    ]:
        x = bp.tensor(x_np.reshape(1, 2), requires_grad=True)
        f(x).sum().backward()
        np.testing.assert_allclose(to_np(x.grad), df(x_np.reshape(1, 2)), atol=1e-12)


# ---------------------------------------------------------------------------------------------
# .grad accumulation and retain_graph
# ---------------------------------------------------------------------------------------------


def test_grad_accumulates_across_backward_calls():
    x = leaf([1.0, 2.0])
    (x * 3.0).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [3.0 + 2.0, 3.0 + 4.0])
    x.grad = None
    (x * 5.0).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [5.0, 5.0])


def test_grad_is_settable():
    x = leaf([1.0, 2.0])
    x.grad = bp.tensor([10.0, 20.0], dtype=bp.float64)
    (x * 2.0).sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [12.0, 22.0])


def test_retain_graph_allows_a_second_backward_and_accumulates():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(to_np(x.grad), 2 * 2 * np.array([1.0, -2.0]))


def test_second_backward_without_retain_graph_raises():
    x = leaf([1.0, -2.0])
    y = (x.tanh() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        y.backward()


def test_bp_grad_frees_graph_unless_retained():
    x = leaf([1.0, -2.0])
    y = (x * x).sum()
    (g1,) = bp.grad(y, x, retain_graph=True)
    (g2,) = bp.grad(y, x)
    np.testing.assert_array_equal(to_np(g1), to_np(g2))
    with pytest.raises(RuntimeError, match="retain_graph=True"):
        bp.grad(y, x)


def test_shared_subgraph_across_two_losses():
    """Two losses share h; backward of the first with retain_graph keeps h's graph for the
    second."""
    x = leaf([0.5, 1.5])
    h = x.exp()
    l1 = (h * 2.0).sum()
    l2 = (h * h).sum()
    l1.backward(retain_graph=True)
    l2.backward()
    e = np.exp([0.5, 1.5])
    np.testing.assert_allclose(to_np(x.grad), 2 * e + 2 * e * e, rtol=1e-13)


# ---------------------------------------------------------------------------------------------
# backward(gradient=...) for non-scalar outputs
# ---------------------------------------------------------------------------------------------


def test_backward_with_gradient_for_vector_output():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    y.backward(gradient=f64([1.0, 0.1, 0.01]))
    np.testing.assert_allclose(to_np(x.grad), [2.0, 0.2 * 2.0, 0.01 * 6.0], rtol=1e-15)


def test_backward_with_gradient_for_matrix_output():
    w_np = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    v_np = np.array([[1.0, -1.0], [0.5, 2.0]])
    x = leaf([[1.0, 0.0, -1.0], [2.0, 1.0, 0.0]])
    y = x @ bp.tensor(w_np)
    y.backward(gradient=bp.tensor(v_np))
    np.testing.assert_allclose(to_np(x.grad), v_np @ w_np.T, rtol=1e-15)


def test_non_scalar_backward_without_gradient_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        (x * 2.0).backward()


def test_single_element_non_0d_backward_is_implicit():
    x = leaf([[3.0]])
    (x * x).backward()
    np.testing.assert_allclose(to_np(x.grad), [[6.0]])


def test_backward_gradient_shape_mismatch_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises((RuntimeError, ValueError)):
        (x * 2.0).backward(gradient=bp.tensor([1.0, 2.0, 3.0], dtype=bp.float64))


def test_backward_on_tensor_not_requiring_grad_raises():
    x = bp.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        (x * 2.0).sum().backward()


# ---------------------------------------------------------------------------------------------
# grad mode
# ---------------------------------------------------------------------------------------------


def test_no_grad_context_manager():
    x = leaf([1.0, 2.0])
    assert bp.is_grad_enabled()
    with bp.no_grad():
        assert not bp.is_grad_enabled()
        y = x * 2.0
    assert bp.is_grad_enabled()
    assert not y.requires_grad
    assert y.grad_fn is None
    assert y.is_leaf
    np.testing.assert_array_equal(to_np(y), [2.0, 4.0])


def test_no_grad_decorator():
    @bp.no_grad()
    def double(t):
        assert not bp.is_grad_enabled()
        return t * 2.0

    x = leaf([1.0])
    y = double(x)
    assert not y.requires_grad
    assert bp.is_grad_enabled()


def test_enable_grad_inside_no_grad_and_as_decorator():
    x = leaf([1.0, 2.0])

    @bp.enable_grad()
    def triple(t):
        return t * 3.0

    with bp.no_grad():
        with bp.enable_grad():
            assert bp.is_grad_enabled()
            y = x * 2.0
        assert not bp.is_grad_enabled()
        z = triple(x)
        assert not bp.is_grad_enabled()
        w = x * 4.0
    assert y.requires_grad and y.grad_fn is not None
    assert z.requires_grad and z.grad_fn is not None
    assert not w.requires_grad
    (y.sum() + z.sum()).backward()
    np.testing.assert_array_equal(to_np(x.grad), [5.0, 5.0])


def test_grad_mode_nesting_restores_state():
    assert bp.is_grad_enabled()
    with bp.no_grad():
        with bp.no_grad():
            assert not bp.is_grad_enabled()
        assert not bp.is_grad_enabled()
        with bp.enable_grad():
            with bp.no_grad():
                assert not bp.is_grad_enabled()
            assert bp.is_grad_enabled()
        assert not bp.is_grad_enabled()
    assert bp.is_grad_enabled()


def test_grad_mode_restored_after_exception():
    with pytest.raises(KeyError):
        with bp.no_grad():
            raise KeyError("boom")
    assert bp.is_grad_enabled()

    @bp.no_grad()
    def fails():
        raise KeyError("boom")

    with pytest.raises(KeyError):
        fails()
    assert bp.is_grad_enabled()


def test_set_grad_enabled():
    x = leaf([1.0])
    try:
        bp.set_grad_enabled(False)
        assert not bp.is_grad_enabled()
        assert not (x * 2.0).requires_grad
        bp.set_grad_enabled(True)
        assert (x * 2.0).requires_grad
    finally:
        bp.set_grad_enabled(True)


def test_set_grad_enabled_as_context_manager():
    x = leaf([1.0])
    with bp.set_grad_enabled(False):
        assert not bp.is_grad_enabled()
        y = x * 2.0
        with bp.set_grad_enabled(True):
            z = x * 2.0
    assert bp.is_grad_enabled()
    assert not y.requires_grad
    assert z.requires_grad


def test_no_grad_bare_decorator():
    """PyTorch (>= 2.1) accepts @torch.no_grad without parentheses."""

    @bp.no_grad
    def double(t):
        return t * 2.0

    assert not double(leaf([1.0])).requires_grad
    assert bp.is_grad_enabled()


def test_no_grad_decorator_on_generator_function():
    """As in PyTorch, a decorated generator runs its body (each resumption) with grad off."""
    x = leaf([1.0])

    @bp.no_grad()
    def gen():
        for _ in range(2):
            yield bp.is_grad_enabled(), (x * 2.0).requires_grad

    assert list(gen()) == [(False, False), (False, False)]
    assert bp.is_grad_enabled()


def test_backward_works_inside_no_grad_for_graph_built_outside():
    x = leaf([2.0])
    y = (x * x).sum()
    with bp.no_grad():
        y.backward()
    np.testing.assert_array_equal(to_np(x.grad), [4.0])


# ---------------------------------------------------------------------------------------------
# detach, requires_grad, is_leaf, grad_fn
# ---------------------------------------------------------------------------------------------


def test_detach_cuts_the_graph():
    x_np = np.array([1.5, -0.5])
    x = leaf(x_np)
    d = x.detach()
    assert not d.requires_grad
    assert d.is_leaf
    assert d.grad_fn is None
    (x * x.detach()).sum().backward()  # the detached factor is a constant
    np.testing.assert_allclose(to_np(x.grad), x_np)


def test_detach_shares_storage():
    x = leaf([1.0, 2.0])
    d = x.detach()
    d.numpy()[0] = 42.0
    assert to_np(x)[0] == 42.0


def test_detach_of_non_leaf():
    x = leaf([1.0, 2.0])
    y = x * 3.0
    d = y.detach()
    assert d.is_leaf and not d.requires_grad
    np.testing.assert_array_equal(to_np(d), [3.0, 6.0])


def test_requires_grad_propagation():
    a = leaf([1.0])
    b = bp.tensor([2.0], dtype=bp.float64)
    assert a.requires_grad and not b.requires_grad
    assert (a * b).requires_grad
    assert (b * a).requires_grad
    assert not (b * b).requires_grad
    assert (a + 1.0).requires_grad
    assert a.exp().sum().requires_grad
    assert (b.exp() + a).requires_grad
    assert a.reshape(1, 1).T.requires_grad


def test_requires_grad_setter_and_requires_grad_():
    x = bp.tensor([1.0, 2.0])
    assert not x.requires_grad
    x.requires_grad = True
    assert x.requires_grad
    y = bp.tensor([1.0])
    assert y.requires_grad_().requires_grad
    assert y.requires_grad
    y.requires_grad_(False)
    assert not y.requires_grad


def test_only_float_tensors_can_require_grad():
    with pytest.raises(RuntimeError, match="floating point"):
        bp.tensor([1, 2], requires_grad=True)
    with pytest.raises(RuntimeError, match="floating point"):
        bp.tensor([True]).requires_grad_()
    n = bp.tensor([1, 2])
    with pytest.raises(RuntimeError, match="floating point"):
        n.requires_grad = True


def test_is_leaf():
    a = leaf([1.0])
    b = bp.tensor([1.0])
    assert a.is_leaf and b.is_leaf
    assert not (a * 2.0).is_leaf
    assert (b * 2.0).is_leaf  # no graph recorded: a leaf, as in PyTorch
    assert a.detach().is_leaf


def test_grad_only_for_leaves():
    a = leaf([1.0, 2.0])
    h = a * 2.0
    (h * h).sum().backward()
    np.testing.assert_allclose(to_np(a.grad), 8 * np.array([1.0, 2.0]))


@pytest.mark.parametrize(
    "fn, name",
    [
        (lambda a, b: a + b, "AddBackward0"),
        (lambda a, b: a - b, "SubBackward0"),
        (lambda a, b: a * b, "MulBackward0"),
        (lambda a, b: a / b, "DivBackward0"),
        (lambda a, b: -a, "NegBackward0"),
        (lambda a, b: a.exp(), "ExpBackward0"),
        (lambda a, b: a.log(), "LogBackward0"),
        (lambda a, b: a.tanh(), "TanhBackward0"),
        (lambda a, b: a.sigmoid(), "SigmoidBackward0"),
        (lambda a, b: a.relu(), "ReluBackward0"),
    ],
)
def test_grad_fn_names(fn, name):
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 4.0])
    out = fn(a, b)
    assert out.grad_fn is not None
    assert out.grad_fn.name() == name


@pytest.mark.parametrize(
    "fn",
    [
        lambda a: a**2,
        lambda a: a**a,
        lambda a: 2.0**a,
        lambda a: a.sum(),
        lambda a: a.sum(dim=0),
        lambda a: a.mean(),
        lambda a: a @ a.T,
        lambda a: a.reshape(-1),
        lambda a: a.transpose(0, 1),
        lambda a: a.permute(1, 0),
        lambda a: bp.where(a > 1.5, a, a * 2.0),
    ],
)
def test_grad_fn_names_are_pytorch_style(fn):
    a = leaf([[1.0, 2.0], [3.0, 4.0]])
    name = fn(a).grad_fn.name()
    assert name.endswith("Backward0") or name.endswith("Backward1") or name.endswith("Backward2"), (
        name
    )


def test_grad_fn_next_functions():
    a = leaf([1.0])
    b = leaf([2.0])
    c = bp.tensor([3.0], dtype=bp.float64)
    y = (a * b) + c
    assert y.grad_fn.name() == "AddBackward0"
    nxt = list(y.grad_fn.next_functions)
    assert node_name(nxt[0]) == "MulBackward0"
    assert node_name(nxt[1]) is None  # c does not require grad
    mul_node = nxt[0][0] if isinstance(nxt[0], tuple) else nxt[0]
    mul_next = list(mul_node.next_functions)
    assert [node_name(e).rsplit(":", 1)[-1] for e in mul_next] == ["AccumulateGrad"] * 2
    assert a.grad_fn is None


# ---------------------------------------------------------------------------------------------
# bp.grad
# ---------------------------------------------------------------------------------------------


def test_grad_returns_tuple_and_does_not_touch_dot_grad():
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    g = bp.grad(y, x)
    assert isinstance(g, tuple) and len(g) == 1
    np.testing.assert_array_equal(to_np(g[0]), [2.0, 4.0])
    assert x.grad is None


def test_grad_multiple_inputs():
    a = leaf([1.0, 2.0])
    b = leaf([3.0, 5.0])
    y = (a * b * b).sum()
    ga, gb = bp.grad(y, [a, b])
    np.testing.assert_array_equal(to_np(ga), [9.0, 25.0])
    np.testing.assert_array_equal(to_np(gb), [6.0, 20.0])
    assert a.grad is None and b.grad is None


def test_grad_multiple_outputs_sum():
    x = leaf([1.0, 2.0])
    y1 = (x * x).sum()
    y2 = (x * 3.0).sum()
    (g,) = bp.grad([y1, y2], [x])
    np.testing.assert_array_equal(to_np(g), [5.0, 7.0])


def test_grad_outputs_for_non_scalar():
    x = leaf([1.0, 2.0, 3.0])
    y = x * x
    v = bp.tensor([1.0, 10.0, 100.0], dtype=bp.float64)
    (g,) = bp.grad(y, x, grad_outputs=v, retain_graph=True)
    np.testing.assert_array_equal(to_np(g), [2.0, 40.0, 600.0])
    (g,) = bp.grad([y], [x], grad_outputs=[bp.tensor([1.0, 1.0, 1.0], dtype=bp.float64)])
    np.testing.assert_array_equal(to_np(g), [2.0, 4.0, 6.0])


def test_grad_multiple_outputs_with_grad_outputs():
    x = leaf([1.0, 2.0])
    y1 = x * 2.0
    y2 = x * x
    (g,) = bp.grad(
        [y1, y2],
        x,
        grad_outputs=[
            bp.tensor([1.0, 0.0], dtype=bp.float64),
            bp.tensor([0.0, 1.0], dtype=bp.float64),
        ],
    )
    np.testing.assert_array_equal(to_np(g), [2.0, 4.0])


def test_grad_non_scalar_without_grad_outputs_raises():
    x = leaf([1.0, 2.0])
    with pytest.raises(RuntimeError, match="grad can be implicitly created only for scalar"):
        bp.grad(x * 2.0, x)


def test_grad_allow_unused():
    x = leaf([1.0])
    unused = leaf([2.0])
    y = (x * 2.0).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        bp.grad(y, [x, unused], retain_graph=True)
    gx, gu = bp.grad(y, [x, unused], allow_unused=True)
    np.testing.assert_array_equal(to_np(gx), [2.0])
    assert gu is None


def test_grad_wrt_non_leaf():
    x = leaf([0.5, -0.5])
    h = x.tanh()
    y = (h * h).sum()
    gh, gx = bp.grad(y, [h, x])
    t = np.tanh([0.5, -0.5])
    np.testing.assert_allclose(to_np(gh), 2 * t, rtol=1e-14)
    np.testing.assert_allclose(to_np(gx), 2 * t * (1 - t**2), rtol=1e-14)


def test_autograd_grad_alias():
    x = leaf([3.0])
    (g,) = bp.autograd.grad((x * x).sum(), x)
    np.testing.assert_array_equal(to_np(g), [6.0])


def test_gradients_without_create_graph_are_not_differentiable():
    x = leaf([1.0, 2.0])
    (g,) = bp.grad((x * x * x).sum(), x)
    assert not g.requires_grad
    assert g.grad_fn is None
    x.grad = None
    (x * x * x).sum().backward()
    assert not x.grad.requires_grad


# ---------------------------------------------------------------------------------------------
# create_graph: grad of grad, Hessian-vector products
# ---------------------------------------------------------------------------------------------


def test_grad_of_grad():
    x_np = np.array([0.5, -1.0, 2.0])
    x = leaf(x_np)
    (g,) = bp.grad((x**3).sum(), x, create_graph=True)
    assert g.requires_grad and g.grad_fn is not None
    np.testing.assert_allclose(to_np(g), 3 * x_np**2, rtol=1e-15)
    (g2,) = bp.grad(g.sum(), x)
    np.testing.assert_allclose(to_np(g2), 6 * x_np, rtol=1e-15)


# PyTorch warns here about the reference cycle parameter <-> .grad; bprop may warn the same way.
@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_makes_dot_grad_differentiable():
    x_np = np.array([0.3, 0.9])
    x = leaf(x_np)
    (x.tanh().sum()).backward(create_graph=True, retain_graph=True)
    g = x.grad
    assert g.requires_grad
    (g2,) = bp.grad(g.sum(), x)
    t = np.tanh(x_np)
    np.testing.assert_allclose(to_np(g2), -2 * t * (1 - t**2), rtol=1e-13)


@pytest.mark.filterwarnings("ignore:Using backward\\(\\) with create_graph=True")
def test_backward_create_graph_retains_graph_by_default():
    """PyTorch: retain_graph defaults to create_graph, so .grad can be differentiated again
    (the gradient graph uses the forward graph's saved tensors)."""
    x_np = np.array([0.3, 0.9])
    x = leaf(x_np)
    (x.tanh().sum()).backward(create_graph=True)
    (g2,) = bp.grad(x.grad.sum(), x)
    t = np.tanh(x_np)
    np.testing.assert_allclose(to_np(g2), -2 * t * (1 - t**2), rtol=1e-13)


def test_hessian_vector_product():
    """f(x) = x^T A x + sum(x^3): H = A + A^T + diag(6 x)."""
    rng = np.random.default_rng(0)
    n = 5
    a_np = rng.standard_normal((n, n))
    x_np = rng.standard_normal((n, 1))
    v_np = rng.standard_normal((n, 1))
    a = bp.tensor(a_np)
    x = bp.tensor(x_np, requires_grad=True)
    f = (x.T @ a @ x).sum() + (x**3).sum()
    (g,) = bp.grad(f, x, create_graph=True)
    np.testing.assert_allclose(to_np(g), (a_np + a_np.T) @ x_np + 3 * x_np**2, rtol=1e-12)
    (hv,) = bp.grad((g * bp.tensor(v_np)).sum(), x)
    h = a_np + a_np.T + np.diag(6 * x_np[:, 0])
    np.testing.assert_allclose(to_np(hv), h @ v_np, rtol=1e-12, atol=1e-12)


def test_hessian_of_mlp_loss_matches_finite_differences():
    """Full Hessian of a tiny tanh network loss, row by row from HVPs, vs central differences
    of the gradient; it must also be symmetric."""
    rng = np.random.default_rng(1)
    x_np = rng.standard_normal((4, 3))
    y_np = rng.standard_normal((4, 1))
    w_np = rng.standard_normal((3, 1)) * 0.5

    def loss(w):
        return (((bp.tensor(x_np) @ w).tanh() - bp.tensor(y_np)) ** 2).mean()

    def gradient(w_arr):
        w = bp.tensor(w_arr, requires_grad=True)
        return to_np(bp.grad(loss(w), w)[0])

    w = bp.tensor(w_np, requires_grad=True)
    (g,) = bp.grad(loss(w), w, create_graph=True)
    rows = []
    for i in range(3):
        e = np.zeros((3, 1))
        e[i] = 1.0
        (row,) = bp.grad((g * bp.tensor(e)).sum(), w, retain_graph=True)
        rows.append(to_np(row)[:, 0])
    hess = np.array(rows)
    eps = 1e-6
    fd = np.zeros((3, 3))
    for i in range(3):
        d = np.zeros((3, 1))
        d[i] = eps
        fd[:, i] = ((gradient(w_np + d) - gradient(w_np - d)) / (2 * eps))[:, 0]
    np.testing.assert_allclose(hess, fd, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-12, atol=1e-14)


def test_double_backward_vs_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    x_np = rng.uniform(0.5, 1.5, (3, 4))
    w_np = rng.standard_normal((4, 2))

    def run(m, grad):
        x = m.tensor(x_np, requires_grad=True)
        w = m.tensor(w_np, requires_grad=True)
        y = ((x.log() @ w).sigmoid() * x.sum(dim=1, keepdim=True)).mean()
        gx, gw = grad(y, [x, w], create_graph=True)
        z = (gx * gx).sum() + (gw.exp()).sum()
        return [to_np(t) for t in grad(z, [x, w])]

    got = run(bp, bp.grad)
    want = run(torch, torch.autograd.grad)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)


# ---------------------------------------------------------------------------------------------
# in-place modification of saved tensors
# ---------------------------------------------------------------------------------------------


def test_backward_after_sgd_step_on_saved_tensor_raises():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    x = bp.tensor([3.0, 4.0])
    loss = (w * x * w).sum()  # saves w
    loss.backward(retain_graph=True)
    bp.optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_sgd_step_and_zero_grad():
    w = bp.tensor([1.0, 2.0], dtype=bp.float64, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    (w * w).sum().backward()
    opt.step()
    np.testing.assert_allclose(to_np(w), [1.0 - 0.2, 2.0 - 0.4], rtol=1e-15)
    assert w.is_leaf and w.requires_grad
    opt.zero_grad()
    assert w.grad is None


# ---------------------------------------------------------------------------------------------
# scale: a million-node chain
# ---------------------------------------------------------------------------------------------

# 300,000 nodes under ASan, as in the C++ test: a quarter of the time (30 -> 8 s), and still
# far beyond the depth that would overflow the stack if anything recursed.
CHAIN = 300_000 if UNDER_ASAN else 10**6


def test_million_node_chain_backward_and_free():
    """Iterative backward and iterative teardown: neither may recurse a million deep."""
    x = bp.tensor(0.5, dtype=bp.float64, requires_grad=True)
    y = x
    for _ in range(CHAIN):
        y = y + 1.0
    assert y.item() == 0.5 + CHAIN
    y.backward()
    assert x.grad.item() == 1.0
    del y
    gc.collect()
    # The leaf survives the chain and is still usable.
    z = x * 2.0
    z.backward()
    assert x.grad.item() == 3.0


def test_million_node_chain_freed_without_backward():
    """A graph that was never run backward (its nodes still hold saved tensors) is freed."""
    x = bp.tensor([0.5], requires_grad=True)
    y = x
    for _ in range(CHAIN):
        y = y * 1.0
    del y
    gc.collect()
    assert x.grad is None
    assert x.is_leaf


def test_long_chain_with_create_graph():
    """A 2,000-deep chain of tanh differentiated twice (the second graph is as deep), against
    forward-mode recursions for the first and second derivative."""
    c, depth, x0 = 1.0, 2_000, 0.9
    x = leaf([x0])
    y = x
    for _ in range(depth):
        y = (y * c).tanh()
    (g,) = bp.grad(y.sum(), x, create_graph=True)
    (g2,) = bp.grad(g.sum(), x)
    v, d1, d2 = x0, 1.0, 0.0
    for _ in range(depth):
        t = np.tanh(c * v)
        s = 1.0 - t * t
        d1, d2 = c * s * d1, c * s * d2 - 2.0 * t * s * c * c * d1 * d1
        v = t
    np.testing.assert_allclose(to_np(y), [v], rtol=1e-12)
    np.testing.assert_allclose(to_np(g), [d1], rtol=1e-9)
    np.testing.assert_allclose(to_np(g2), [d2], rtol=1e-9)


def test_backward_seed_that_requires_grad_is_not_aliased_by_grad():
    # Before: .grad became the user's seed tensor, and zero_grad then wiped it.
    x = bp.ones(3, requires_grad=True)
    seed = bp.full((3,), 5.0, requires_grad=True)
    (x + 0).backward(seed)
    assert not x.grad._is_same(seed)
    assert not x.grad.requires_grad
    bp.optim.SGD([x], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(seed.detach().numpy(), [5.0, 5.0, 5.0])


def test_grad_wrt_non_leaf_does_not_run_or_free_its_grad_fn():
    # The gradient for a non-leaf input is what reaches its node; the node itself is not run,
    # so its saved tensors survive for a later backward (as in PyTorch).
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    h = x * x
    loss = (h * 3).sum()
    (g,) = bp.grad(loss, h)
    np.testing.assert_array_equal(g.numpy(), [3.0, 3.0])
    h.sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 4.0])


# ---- post-accumulate-grad hooks ----


def test_post_accumulate_grad_hook_sees_the_summed_gradient_once_per_backward():
    w = leaf([1.0, 2.0])
    seen = []
    w.register_post_accumulate_grad_hook(lambda p: seen.append(to_np(p.grad)))
    (w * w + w).sum().backward()  # w reaches the loss by three paths: one call, their sum
    (3 * w).sum().backward()  # accumulates into .grad: the hook sees the new total
    assert len(seen) == 2
    np.testing.assert_array_equal(seen[0], [3.0, 5.0])
    np.testing.assert_array_equal(seen[1], [6.0, 8.0])


def test_post_accumulate_grad_hooks_run_in_order_and_remove():
    w = leaf([1.0])
    calls = []
    first = w.register_post_accumulate_grad_hook(lambda p: calls.append("first"))
    with w.register_post_accumulate_grad_hook(lambda p: calls.append("second")):
        (2 * w).sum().backward()
    (2 * w).sum().backward()  # the context manager took "second" off
    first.remove()
    first.remove()  # removing twice is harmless
    (2 * w).sum().backward()
    assert calls == ["first", "second", "first"]


def test_post_accumulate_grad_hook_is_not_called_by_grad():
    w = leaf([1.0, 2.0])
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(1))
    (g,) = bp.grad((w * w).sum(), [w])
    np.testing.assert_array_equal(to_np(g), [2.0, 4.0])
    assert calls == [] and w.grad is None


def test_post_accumulate_grad_hook_errors():
    w = leaf([1.0])
    prefix = r"\[register_post_accumulate_grad_hook\]"
    with pytest.raises(RuntimeError, match=prefix + r".*output of an op \(MulBackward0\)"):
        (w * 2).register_post_accumulate_grad_hook(print)
    with pytest.raises(RuntimeError, match=prefix + r".*does not require grad"):
        bp.zeros(2).register_post_accumulate_grad_hook(print)
    with pytest.raises(TypeError, match=prefix + r" hook must be callable, got int"):
        w.register_post_accumulate_grad_hook(3)


def test_an_exception_in_a_post_accumulate_grad_hook_ends_backward():
    w = leaf([1.0])

    def hook(p):
        raise ValueError("hook says no")

    w.register_post_accumulate_grad_hook(hook)
    with pytest.raises(ValueError, match="hook says no"):
        (2 * w).sum().backward()
    np.testing.assert_array_equal(to_np(w.grad), [2.0])  # accumulated before the hook ran


def test_post_accumulate_grad_hooks_run_in_captured_replays():
    def make():
        """A step on a fresh seeded model whose weight's hook logs .grad; returns both."""
        bp.manual_seed(0)
        model = bp.nn.Linear(3, 2)
        opt = bp.optim.SGD(model.parameters(), lr=0.1)
        seen = []
        # Reading values in a hook is fine while recording: hooks run outside the recording.
        model.weight.register_post_accumulate_grad_hook(lambda p: seen.append(to_np(p.grad)))

        def step(x, y):
            opt.zero_grad()
            bp.nn.functional.mse_loss(model(x), y).backward()
            opt.step()

        return step, seen

    batches = [(bp.randn(4, 3), bp.randn(4, 2)) for _ in range(3)]
    step, replayed = make()
    compiled = bp.compile(step)
    for x, y in batches:
        compiled(x, y)
    step, eager = make()
    for x, y in batches:
        step(x, y)
    assert len(replayed) == 3
    for a, b in zip(replayed, eager):
        np.testing.assert_array_equal(a, b)


def test_a_hook_registered_after_recording_runs_in_replays():
    w = bp.tensor([1.0, 2.0], requires_grad=True)

    @bp.compile
    def step(x):
        w.grad = None
        (w * x).sum().backward()
        return w.grad

    step(bp.tensor([1.0, 1.0]))
    calls = []
    w.register_post_accumulate_grad_hook(lambda p: calls.append(to_np(p.grad)))
    step(bp.tensor([3.0, 4.0]))
    assert len(calls) == 1
    np.testing.assert_array_equal(calls[0], [3.0, 4.0])


def test_a_post_accumulate_grad_hook_may_run_backward_through_its_own_leaf():
    w = leaf([1.0])
    nested = []

    def hook(p):
        if not nested:  # once: the nested backward calls this hook again
            nested.append(to_np(p.grad))
            with bp.enable_grad():
                (3 * w).sum().backward()

    w.register_post_accumulate_grad_hook(hook)
    (2 * w).sum().backward()
    np.testing.assert_array_equal(nested[0], [2.0])
    np.testing.assert_array_equal(to_np(w.grad), [5.0])


def test_hooks_added_or_removed_during_a_call_take_effect_from_the_next():
    w = leaf([1.0])
    calls = []
    handles = {}

    def first(p):
        calls.append("first")
        handles["second"].remove()
        if "third" not in handles:
            handles["third"] = w.register_post_accumulate_grad_hook(lambda p: calls.append("3"))

    w.register_post_accumulate_grad_hook(first)
    handles["second"] = w.register_post_accumulate_grad_hook(lambda p: calls.append("second"))
    (2 * w).sum().backward()
    assert calls == ["first", "second"]
    (2 * w).sum().backward()
    assert calls == ["first", "second", "first", "3"]

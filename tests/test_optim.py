"""bp.optim.SGD: update math, zero_grad, argument checks, training, and version checks."""

import bprop as bp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

TOL = {bp.float32: {"rtol": 1e-6, "atol": 1e-7}, bp.float64: {"rtol": 1e-14, "atol": 1e-15}}
NP = {bp.float32: np.float32, bp.float64: np.float64}


def arr(t):
    return np.asarray(t.detach())


def _values(dtype, seed, shape=(3, 4)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal(shape).astype(NP[dtype])


# ---------------------------------------------------------------- step math


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("lr", [0.1, 0.01, 1.0, 0.0, 3.5])
def test_step_with_assigned_grad(dtype, lr):
    w0 = _values(dtype, 0)
    g0 = _values(dtype, 1)
    w = bp.tensor(w0, requires_grad=True)
    w.grad = bp.tensor(g0)
    opt = bp.optim.SGD([w], lr=lr)
    opt.step()
    assert w.dtype == dtype
    expected = (w0.astype(np.float64) - lr * g0.astype(np.float64)).astype(NP[dtype])
    assert_allclose(arr(w), expected, **TOL[dtype])
    # The gradient itself is left alone by step().
    assert_array_equal(arr(w.grad), g0)


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_step_with_backward_grad(dtype):
    w0 = _values(dtype, 2, (5,))
    c = _values(dtype, 3, (5,))
    w = bp.tensor(w0, requires_grad=True)
    loss = (w * bp.tensor(c)).sum()  # d loss / d w = c
    loss.backward()
    assert_allclose(arr(w.grad), c, **TOL[dtype])
    bp.optim.SGD([w], lr=0.25).step()
    assert_allclose(arr(w), w0 - NP[dtype](0.25) * c, **TOL[dtype])


def test_step_exact_on_representable_values():
    # Values whose products and differences are exact in binary: the result must be exact.
    for dtype in (bp.float32, bp.float64):
        w = bp.tensor([1.0, -2.0, 0.5, 8.0], dtype=dtype, requires_grad=True)
        w.grad = bp.tensor([4.0, 2.0, -1.0, 0.25], dtype=dtype)
        bp.optim.SGD([w], lr=0.5).step()
        assert w.dtype == dtype
        assert arr(w).tolist() == [-1.0, -3.0, 1.0, 7.875]


def test_several_steps_several_params():
    a0 = _values(bp.float32, 4, (2, 3))
    b0 = _values(bp.float64, 5, (4,))
    a = bp.tensor(a0, requires_grad=True)
    b = bp.tensor(b0, requires_grad=True)
    opt = bp.optim.SGD([a, b], lr=0.1)
    ea, eb = a0.astype(np.float64), b0.copy()
    for _ in range(3):
        opt.zero_grad()
        loss = (a * a).sum() + (b * b * b).sum()
        loss.backward()
        ga = 2 * ea
        gb = 3 * eb**2
        assert_allclose(arr(a.grad), ga, rtol=1e-5, atol=1e-6)
        assert_allclose(arr(b.grad), gb, rtol=1e-12)
        opt.step()
        ea = ea - 0.1 * ga
        eb = eb - 0.1 * gb
    assert a.dtype == bp.float32 and b.dtype == bp.float64
    assert_allclose(arr(a), ea, rtol=1e-5, atol=1e-6)
    assert_allclose(arr(b), eb, rtol=1e-12)


def test_params_from_generator():
    ws = [bp.tensor([1.0, 2.0], requires_grad=True) for _ in range(3)]
    opt = bp.optim.SGD((w for w in ws), lr=1.0)
    for w in ws:
        w.grad = bp.tensor([1.0, 1.0])
    opt.step()
    for w in ws:
        assert arr(w).tolist() == [0.0, 1.0]


def test_step_keeps_params_leaves_and_is_not_recorded():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    (w * w).sum().backward()
    bp.optim.SGD([w], lr=0.1).step()
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    assert bp.is_grad_enabled()
    assert_allclose(arr(w), [0.8, 1.6], rtol=1e-6)


def test_step_updates_storage_in_place():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    w = bp.from_numpy(a)
    w.requires_grad_()
    view = w.detach()
    w.grad = bp.tensor([1.0, 1.0, 1.0])
    bp.optim.SGD([w], lr=1.0).step()
    assert_array_equal(a, [0.0, 1.0, 2.0])
    assert_array_equal(arr(view), [0.0, 1.0, 2.0])


def test_step_matches_torch():
    torch = pytest.importorskip("torch")
    w0 = _values(bp.float32, 6, (3, 3))
    x0 = _values(bp.float32, 7, (4, 3))
    w = bp.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.05)
    topt = torch.optim.SGD([tw], lr=0.05)
    x, tx = bp.tensor(x0), torch.tensor(x0)
    for _ in range(5):
        opt.zero_grad()
        topt.zero_grad()
        (x @ w).tanh().sum().backward()
        (tx @ tw).tanh().sum().backward()
        opt.step()
        topt.step()
    assert_allclose(arr(w), tw.detach().numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- zero_grad / missing grads


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_zero_grad_set_to_none_default(dtype):
    w = bp.tensor([1.0, 2.0], dtype=dtype, requires_grad=True)
    v = bp.tensor([[3.0]], dtype=dtype, requires_grad=True)
    (w.sum() + v.sum()).backward()
    opt = bp.optim.SGD([w, v], lr=0.1)
    assert w.grad is not None and v.grad is not None
    opt.zero_grad()
    assert w.grad is None
    assert v.grad is None


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_zero_grad_keep_tensors(dtype):
    w = bp.tensor([[1.0, 2.0, 3.0]], dtype=dtype, requires_grad=True)
    (w * 5).sum().backward()
    opt = bp.optim.SGD([w], lr=0.1)
    opt.zero_grad(set_to_none=False)
    assert w.grad is not None
    assert w.grad.shape == (1, 3)
    assert w.grad.dtype == dtype
    assert_array_equal(arr(w.grad), np.zeros((1, 3)))
    # The zeroed gradient keeps accumulating.
    (w * 2).sum().backward()
    assert_array_equal(arr(w.grad), np.full((1, 3), 2.0))


def test_zero_grad_without_grads():
    w = bp.tensor([1.0], requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    opt.zero_grad()
    assert w.grad is None
    opt.zero_grad(set_to_none=False)
    assert w.grad is None or arr(w.grad).tolist() == [0.0]


def test_gradients_accumulate_without_zero_grad():
    w = bp.tensor([1.0, 1.0], requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    (w * 3).sum().backward()
    (w * 3).sum().backward()
    assert_array_equal(arr(w.grad), [6.0, 6.0])
    opt.step()
    assert_allclose(arr(w), [0.4, 0.4], rtol=1e-6)


def test_step_skips_params_without_grad():
    used = bp.tensor([1.0, 2.0], requires_grad=True)
    unused = bp.tensor([5.0, 6.0], requires_grad=True)
    opt = bp.optim.SGD([used, unused], lr=0.5)
    (used * used).sum().backward()
    opt.step()
    assert_array_equal(arr(used), [0.0, 0.0])
    assert_array_equal(arr(unused), [5.0, 6.0])
    assert unused.grad is None
    opt.zero_grad()
    opt.step()  # no grads at all: nothing changes, no error
    assert_array_equal(arr(used), [0.0, 0.0])
    assert_array_equal(arr(unused), [5.0, 6.0])


# ---------------------------------------------------------------- argument checks


def test_rejects_non_leaf():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    y = w * 2
    with pytest.raises(ValueError):
        bp.optim.SGD([y], lr=0.1)
    with pytest.raises(ValueError):
        bp.optim.SGD([w, y], lr=0.1)


@pytest.mark.parametrize(
    "make", [lambda: bp.tensor([1, 2]), lambda: bp.tensor([True]), lambda: bp.arange(3)]
)
def test_rejects_non_float(make):
    with pytest.raises(TypeError, match=r"\[SGD\].*floating point"):
        bp.optim.SGD([make()], lr=0.1)


@pytest.mark.parametrize("lr", [-0.1, -1e-8, -1.0])
def test_rejects_negative_lr(lr):
    w = bp.tensor([1.0], requires_grad=True)
    with pytest.raises(ValueError):
        bp.optim.SGD([w], lr=lr)


def test_failed_construction_changes_nothing():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    w.grad = bp.tensor([0.5, 0.5])
    with pytest.raises(ValueError):
        bp.optim.SGD([w], lr=-1.0)
    with pytest.raises(ValueError):
        bp.optim.SGD([w, w * 2], lr=0.1)
    assert_array_equal(arr(w), [1.0, 2.0])
    assert_array_equal(arr(w.grad), [0.5, 0.5])
    assert w.is_leaf and w.requires_grad


# ---------------------------------------------------------------- training


def test_linear_regression_loss_falls():
    bp.manual_seed(0)
    x = bp.randn(64, 3)
    w_true = bp.tensor([[2.0], [-3.0], [0.5]])
    y = x @ w_true + 0.75
    w = bp.zeros(3, 1, requires_grad=True)
    b = bp.zeros(1, requires_grad=True)
    opt = bp.optim.SGD([w, b], lr=0.1)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss = ((x @ w + b - y) ** 2).mean()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[0] > 1.0
    assert all(later <= earlier + 1e-7 for earlier, later in zip(losses, losses[1:]))
    assert losses[-1] < 1e-4 * losses[0]
    assert_allclose(arr(w.detach()), arr(w_true), atol=1e-2)
    assert_allclose(arr(b.detach()), [0.75], atol=1e-2)


def test_small_mlp_loss_falls():
    rng = np.random.default_rng(3)
    x = bp.tensor([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]], dtype=bp.float64)
    y = bp.tensor([[0.0], [1.0], [1.0], [0.0]], dtype=bp.float64)
    w1 = bp.tensor(rng.standard_normal((2, 8)) * 0.5, requires_grad=True)
    b1 = bp.zeros(8, dtype=bp.float64, requires_grad=True)
    w2 = bp.tensor(rng.standard_normal((8, 1)) * 0.5, requires_grad=True)
    b2 = bp.zeros(1, dtype=bp.float64, requires_grad=True)
    opt = bp.optim.SGD([w1, b1, w2, b2], lr=0.5)
    first = None
    for _ in range(300):
        opt.zero_grad()
        pred = (x @ w1 + b1).tanh() @ w2 + b2
        loss = ((pred - y) ** 2).mean()
        loss.backward()
        opt.step()
        first = loss.item() if first is None else first
    assert loss.item() < 0.1 * first
    assert w1.dtype == bp.float64 and w1.is_leaf


# ---------------------------------------------------------------- version counter


def test_backward_after_step_modified_saved_param():
    w = bp.tensor([1.0, -2.0, 3.0], requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    loss = (w**2).sum()  # pow saves w
    loss.backward(retain_graph=True)
    opt.step()
    grad_before = arr(w.grad).copy()
    w_before = arr(w.detach()).copy()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    assert_array_equal(arr(w.grad), grad_before)
    assert_array_equal(arr(w.detach()), w_before)


def test_backward_after_step_two_params():
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    b = bp.tensor([3.0, 4.0], requires_grad=True)
    opt = bp.optim.SGD([a, b], lr=0.1)
    loss = (a * b).sum()  # mul saves both inputs
    loss.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_graph_built_before_step_without_saved_param_is_fine():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    loss = (w + 1.0).sum()  # add saves nothing of w
    loss.backward(retain_graph=True)
    opt.step()
    loss.backward()
    assert_array_equal(arr(w.grad), [2.0, 2.0])


def test_fresh_forward_after_step_works():
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.25)
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()
        opt.step()
    # w <- w - 0.25 * 2w = w / 2 each step
    assert_allclose(arr(w.detach()), [0.125, 0.25], rtol=1e-7)

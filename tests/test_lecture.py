"""The worked examples of the backpropagation lecture (seed/backprop-lecture.txt), as tests.

Each test builds the lecture's computation with bprop, runs backward, and checks the gradients
against the closed forms the lecture derives by hand.
"""

from __future__ import annotations

import bprop as bp
import numpy as np
import pytest

RTOL = 1e-12


def to_np(t) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


def f64(values, requires_grad=False):
    return bp.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


# ---------------------------------------------------------------------------------------------
# One neuron: L = (yhat - y)^2, yhat = x^T w, dL/dw_i = 2 (yhat - y) x_i
# ---------------------------------------------------------------------------------------------


def test_single_neuron_gradient():
    x_np = np.array([0.5, -1.2, 2.0, 0.3, -0.7])
    w_np = np.array([0.1, 0.4, -0.3, 0.8, 0.2])
    y_np = 1.5
    x = f64(x_np)
    w = f64(w_np, requires_grad=True)

    yhat = (x * w).sum()  # x_1 w_1 + x_2 w_2 + ... + x_d w_d
    loss = (yhat - y_np) ** 2
    loss.backward()

    yhat_np = x_np @ w_np
    np.testing.assert_allclose(yhat.item(), yhat_np, rtol=RTOL)
    np.testing.assert_allclose(loss.item(), (yhat_np - y_np) ** 2, rtol=RTOL)
    np.testing.assert_allclose(to_np(w.grad), 2 * (yhat_np - y_np) * x_np, rtol=RTOL)


def test_single_neuron_matmul_form_and_update_rule():
    """The same neuron as x^T w with matmul, and one step of w := w - eta dL/dw."""
    x_np = np.array([[0.5], [-1.2], [2.0]])
    w_np = np.array([[0.1], [0.4], [-0.3]])
    y_np, eta = -0.25, 0.05
    w = f64(w_np, requires_grad=True)
    loss = ((f64(x_np).T @ w - y_np) ** 2).sum()
    loss.backward()
    delta = (x_np.T @ w_np).item() - y_np
    np.testing.assert_allclose(to_np(w.grad), 2 * delta * x_np, rtol=RTOL)

    bp.optim.SGD([w], lr=eta).step()
    np.testing.assert_allclose(to_np(w), w_np - eta * 2 * delta * x_np, rtol=RTOL)


# ---------------------------------------------------------------------------------------------
# The 3-input, 2-hidden tanh network
#   a_j = sum_i w1_ij x_i, z_j = tanh(a_j), yhat = sum_j w2_j z_j, L = (yhat - y)^2
#   dL/dw2_j = delta z_j,  dL/dw1_ij = delta_j x_i,
#   delta = 2 (yhat - y),  delta_j = delta w2_j (1 - tanh(a_j)^2)
# ---------------------------------------------------------------------------------------------

X3 = np.array([0.8, -0.5, 1.3])
W1 = np.array([[0.2, -0.6], [0.7, 0.1], [-0.4, 0.5]])  # W1[i, j] = w(i -> j)
W2 = np.array([1.1, -0.9])
Y = 0.3


def _delta_form(x, w1, w2, y):
    a = x @ w1
    z = np.tanh(a)
    yhat = z @ w2
    delta = 2 * (yhat - y)
    delta_j = delta * w2 * (1 - np.tanh(a) ** 2)
    return delta * z, np.outer(x, delta_j)  # dL/dw2, dL/dw1


def test_tanh_network_delta_form():
    """Written with scalar tensors only, node by node, as on the lecture's slides."""
    x = [f64(v) for v in X3]
    w1 = [[f64(W1[i, j], requires_grad=True) for j in range(2)] for i in range(3)]
    w2 = [f64(W2[j], requires_grad=True) for j in range(2)]

    z = []
    for j in range(2):
        a_j = w1[0][j] * x[0] + w1[1][j] * x[1] + w1[2][j] * x[2]
        z.append(a_j.tanh())
    yhat = w2[0] * z[0] + w2[1] * z[1]
    loss = (yhat - Y) ** 2
    loss.backward()

    want_w2, want_w1 = _delta_form(X3, W1, W2, Y)
    for j in range(2):
        np.testing.assert_allclose(w2[j].grad.item(), want_w2[j], rtol=RTOL)
        for i in range(3):
            np.testing.assert_allclose(w1[i][j].grad.item(), want_w1[i, j], rtol=RTOL)

    # The two weights the lecture works out explicitly.
    a = X3 @ W1
    yhat_np = np.tanh(a) @ W2
    dl_dw11 = 2 * (yhat_np - Y) * W2[0] * (1 - np.tanh(a[0]) ** 2) * X3[0]
    dl_dw22 = 2 * (yhat_np - Y) * W2[1] * (1 - np.tanh(a[1]) ** 2) * X3[1]
    np.testing.assert_allclose(w1[0][0].grad.item(), dl_dw11, rtol=RTOL)
    np.testing.assert_allclose(w1[1][1].grad.item(), dl_dw22, rtol=RTOL)


def test_tanh_network_delta_form_matrix_ops():
    """The same network with one (3, 2) weight matrix: same gradients, and the deltas are the
    gradients of the loss with respect to the pre-activations a_j (bp.grad on non-leaves)."""
    x = f64(X3.reshape(1, 3))
    w1 = f64(W1, requires_grad=True)
    w2 = f64(W2.reshape(2, 1), requires_grad=True)
    a = x @ w1
    yhat = a.tanh() @ w2
    loss = ((yhat - Y) ** 2).sum()
    g_a, g_yhat, g_w1, g_w2 = bp.grad(loss, [a, yhat, w1, w2])

    want_w2, want_w1 = _delta_form(X3, W1, W2, Y)
    np.testing.assert_allclose(to_np(g_w2)[:, 0], want_w2, rtol=RTOL)
    np.testing.assert_allclose(to_np(g_w1), want_w1, rtol=RTOL)
    a_np = X3 @ W1
    delta = 2 * (np.tanh(a_np) @ W2 - Y)
    np.testing.assert_allclose(to_np(g_yhat), [[delta]], rtol=RTOL)
    np.testing.assert_allclose(to_np(g_a)[0], delta * W2 * (1 - np.tanh(a_np) ** 2), rtol=RTOL)


# ---------------------------------------------------------------------------------------------
# Flowing backward, vectorized over a batch
#   A1 = X W1, Z2 = tanh(A1), Yhat = Z2 W2, L = sum (Yhat - Y)^2
#   delta = 2 (Yhat - Y), grad W2 = Z2^T delta,
#   delta1 = (delta W2^T) * (1 - tanh(A1)^2), grad W1 = X^T delta1
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_flowing_backward_vectorized(dtype):
    rng = np.random.default_rng(4)
    n, d, h, k = 8, 3, 2, 1
    x_np = rng.standard_normal((n, d)).astype(dtype)
    y_np = rng.standard_normal((n, k)).astype(dtype)
    w1_np = (rng.standard_normal((d, h)) * 0.5).astype(dtype)
    w2_np = (rng.standard_normal((h, k)) * 0.5).astype(dtype)

    w1 = bp.tensor(w1_np, requires_grad=True)
    w2 = bp.tensor(w2_np, requires_grad=True)
    a1 = bp.tensor(x_np) @ w1
    z2 = bp.tanh(a1)
    yhat = z2 @ w2
    loss = ((yhat - bp.tensor(y_np)) ** 2).sum()
    loss.backward()

    x64, y64, w1_64, w2_64 = (t.astype(np.float64) for t in (x_np, y_np, w1_np, w2_np))
    a1_np = x64 @ w1_64
    z2_np = np.tanh(a1_np)
    delta = 2 * (z2_np @ w2_64 - y64)
    delta1 = (delta @ w2_64.T) * (1 - np.tanh(a1_np) ** 2)
    tol = {"rtol": RTOL, "atol": 1e-13} if dtype == "float64" else {"rtol": 1e-5, "atol": 1e-6}
    assert w1.grad.dtype == w1.dtype and w2.grad.dtype == w2.dtype
    np.testing.assert_allclose(to_np(w2.grad), z2_np.T @ delta, **tol)
    np.testing.assert_allclose(to_np(w1.grad), x64.T @ delta1, **tol)


def test_flowing_backward_multiple_outputs():
    """The lecture's exercise: k = 3 outputs; delta is now a vector per example."""
    rng = np.random.default_rng(5)
    x_np = rng.standard_normal((6, 4))
    y_np = rng.standard_normal((6, 3))
    w1_np = rng.standard_normal((4, 5)) * 0.5
    w2_np = rng.standard_normal((5, 3)) * 0.5
    w1 = f64(w1_np, requires_grad=True)
    w2 = f64(w2_np, requires_grad=True)
    loss = (((f64(x_np) @ w1).tanh() @ w2 - f64(y_np)) ** 2).sum()
    loss.backward()
    a1 = x_np @ w1_np
    delta = 2 * (np.tanh(a1) @ w2_np - y_np)
    delta1 = (delta @ w2_np.T) * (1 - np.tanh(a1) ** 2)
    np.testing.assert_allclose(to_np(w2.grad), np.tanh(a1).T @ delta, rtol=RTOL)
    np.testing.assert_allclose(to_np(w1.grad), x_np.T @ delta1, rtol=RTOL)


def test_bias_neurons():
    """The lecture's other exercise: with biases, dL/db = the column sums of the deltas."""
    rng = np.random.default_rng(6)
    x_np = rng.standard_normal((5, 3))
    y_np = rng.standard_normal((5, 1))
    w1_np, b1_np = rng.standard_normal((3, 2)), rng.standard_normal(2)
    w2_np, b2_np = rng.standard_normal((2, 1)), rng.standard_normal(1)
    w1, b1 = f64(w1_np, True), f64(b1_np, True)
    w2, b2 = f64(w2_np, True), f64(b2_np, True)
    loss = ((((f64(x_np) @ w1 + b1).tanh() @ w2 + b2) - f64(y_np)) ** 2).sum()
    loss.backward()
    a1 = x_np @ w1_np + b1_np
    delta = 2 * (np.tanh(a1) @ w2_np + b2_np - y_np)
    delta1 = (delta @ w2_np.T) * (1 - np.tanh(a1) ** 2)
    np.testing.assert_allclose(to_np(b2.grad), delta.sum(axis=0), rtol=RTOL)
    np.testing.assert_allclose(to_np(b1.grad), delta1.sum(axis=0), rtol=RTOL)
    np.testing.assert_allclose(to_np(w1.grad), x_np.T @ delta1, rtol=RTOL)


# ---------------------------------------------------------------------------------------------
# The chain rule over multiple paths: dz/dx = sum_j dz/dy_j dy_j/dx
# ---------------------------------------------------------------------------------------------


def test_multi_path_chain_rule():
    x = f64(0.7, requires_grad=True)
    ys = [x.exp(), x * x, x.tanh(), x.sigmoid()]
    z = ys[0] * ys[1] + ys[2] * ys[3] + ys[1]

    (dz_dx,) = bp.grad(z, x, retain_graph=True)
    dz_dy = bp.grad(z, ys, retain_graph=True)
    dy_dx = [bp.grad(y, x, retain_graph=True)[0] for y in ys]
    total = sum(a.item() * b.item() for a, b in zip(dz_dy, dy_dx))
    np.testing.assert_allclose(dz_dx.item(), total, rtol=RTOL)

    xv = 0.7
    e, sq, t, s = np.exp(xv), xv * xv, np.tanh(xv), 1 / (1 + np.exp(-xv))
    want = e * sq + e * 2 * xv + (1 - t * t) * s + t * s * (1 - s) + 2 * xv
    np.testing.assert_allclose(dz_dx.item(), want, rtol=RTOL)

    # backward() sums the paths the same way into x.grad.
    z.backward()
    np.testing.assert_allclose(x.grad.item(), want, rtol=RTOL)


def test_chain_rule_vector_form_jacobian_transpose():
    """grad_x z = (dy/dx)^T grad_y z, with the Jacobian built row by row from VJPs."""
    rng = np.random.default_rng(7)
    m_, n_ = 4, 3
    a_np = rng.standard_normal((n_, m_))
    x_np = rng.standard_normal((m_, 1))
    x = f64(x_np, requires_grad=True)
    y = (f64(a_np) @ x).tanh()  # g: R^m -> R^n
    z = (y * y * y).sum() + y.sum()  # f: R^n -> R

    (grad_y,) = bp.grad(z, y, retain_graph=True)
    rows = []
    for j in range(n_):
        e = np.zeros((n_, 1))
        e[j] = 1.0
        (row,) = bp.grad(y, x, grad_outputs=f64(e), retain_graph=True)
        rows.append(to_np(row)[:, 0])
    jac = np.array(rows)  # n x m
    (grad_x,) = bp.grad(z, x)

    t = np.tanh(a_np @ x_np)
    np.testing.assert_allclose(jac, (1 - t**2) * a_np, rtol=RTOL)
    np.testing.assert_allclose(to_np(grad_y), 3 * t**2 + 1, rtol=RTOL)
    np.testing.assert_allclose(to_np(grad_x), jac.T @ to_np(grad_y), rtol=RTOL)


def test_logistic_regression():
    """yhat = sigmoid(x^T w + b) with cross-entropy: dL/dw = (yhat - y) x, dL/db = yhat - y."""
    x_np = np.array([[0.4, -1.1, 0.9]])
    w_np = np.array([[0.3], [0.2], [-0.5]])
    b_np = np.array([0.1])
    w, b = f64(w_np, True), f64(b_np, True)
    for y_np in (0.0, 1.0):
        w.grad = None
        b.grad = None
        yhat = (f64(x_np) @ w + b).sigmoid()
        loss = -(y_np * yhat.log() + (1 - y_np) * (1 - yhat).log()).sum()
        loss.backward()
        p = 1 / (1 + np.exp(-(x_np @ w_np + b_np)))
        np.testing.assert_allclose(to_np(w.grad), (p - y_np) * x_np.T, rtol=1e-12)
        np.testing.assert_allclose(to_np(b.grad), (p - y_np)[0], rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# The MLP of the lecture's last slides: H = max{0, X W1 + b1}, J = data cost + weight decay
# ---------------------------------------------------------------------------------------------


def _mlp_data(seed=8, n=64, d=3):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    y = (np.sin(x[:, :1]) + 0.5 * x[:, 1:2] * x[:, 2:3]).astype(np.float64)
    return x, y


def _mlp_params(seed=9, d=3, h=16):
    rng = np.random.default_rng(seed)
    return [
        bp.tensor(rng.standard_normal((d, h)) * 0.5, requires_grad=True),
        bp.tensor(np.zeros(h), requires_grad=True),
        bp.tensor(rng.standard_normal((h, 1)) * 0.3, requires_grad=True),
        bp.tensor(np.zeros(1), requires_grad=True),
    ]


def _mlp_cost(params, x, y, lam):
    w1, b1, w2, b2 = params
    h = (x @ w1 + b1).relu()
    yhat = h @ w2 + b2
    data = ((yhat - y) ** 2).mean()
    decay = (w1**2).sum() + (w2**2).sum()
    return data + lam * decay, data


def test_mlp_sgd_training_loss_falls():
    x_np, y_np = _mlp_data()
    x, y = f64(x_np), f64(y_np)
    params = _mlp_params()
    opt = bp.optim.SGD(params, lr=0.05)
    lam = 1e-4
    losses = []
    for _ in range(300):
        opt.zero_grad()
        cost, data = _mlp_cost(params, x, y, lam)
        cost.backward()
        opt.step()
        losses.append(data.item())
    assert all(np.isfinite(losses))
    assert losses[-1] < 0.3 * losses[0], (losses[0], losses[-1])
    # Mostly monotone: SGD with a small enough step on full batches.
    assert sum(b > a for a, b in zip(losses, losses[1:])) < 15
    for p in params:
        assert p.is_leaf and p.requires_grad


def test_mlp_sgd_matches_manual_update():
    """opt.step() is exactly w := w - lr * dJ/dw for every parameter."""
    x_np, y_np = _mlp_data(n=16)
    params = _mlp_params()
    cost, _ = _mlp_cost(params, f64(x_np), f64(y_np), 1e-3)
    cost.backward()
    before = [to_np(p) for p in params]
    grads = [to_np(p.grad) for p in params]
    bp.optim.SGD(params, lr=0.1).step()
    for p, b, g in zip(params, before, grads):
        np.testing.assert_allclose(to_np(p), b - 0.1 * g, rtol=1e-15, atol=1e-15)


def test_weight_decay_contributes_2_lambda_w():
    """Two paths lead back from J to each weight; the regularizer's adds exactly 2 lambda W."""
    x_np, y_np = _mlp_data(n=16)
    x, y = f64(x_np), f64(y_np)
    params = _mlp_params()
    lam = 0.37
    g_with = bp.grad(_mlp_cost(params, x, y, lam)[0], params)
    g_without = bp.grad(_mlp_cost(params, x, y, 0.0)[0], params)
    w1, b1, w2, b2 = params
    for p, gw, g0, decayed in zip(params, g_with, g_without, [True, False, True, False]):
        diff = to_np(gw) - to_np(g0)
        want = 2 * lam * to_np(p) if decayed else np.zeros_like(to_np(p))
        np.testing.assert_allclose(diff, want, rtol=1e-10, atol=1e-12)

    # The regularization path alone.
    decay = lam * ((w1**2).sum() + (w2**2).sum())
    gw1, gw2 = bp.grad(decay, [w1, w2])
    np.testing.assert_allclose(to_np(gw1), 2 * lam * to_np(w1), rtol=1e-14)
    np.testing.assert_allclose(to_np(gw2), 2 * lam * to_np(w2), rtol=1e-14)


def test_weight_decay_alone_shrinks_weights_geometrically():
    """With only the decay term, SGD multiplies W by (1 - 2 lr lambda) each step."""
    w_np = np.array([[1.0, -2.0], [0.5, 3.0]])
    w = f64(w_np, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    lam = 0.5
    for _ in range(10):
        opt.zero_grad()
        (lam * (w**2).sum()).backward()
        opt.step()
    np.testing.assert_allclose(to_np(w), w_np * (1 - 2 * 0.1 * lam) ** 10, rtol=1e-13)


def test_book_keeping_each_delta_computed_once():
    """A deep tanh chain's gradient equals the product of the local derivatives, i.e. the
    deltas are carried down and reused, not recomputed per weight."""
    depth = 50
    ws_np = np.linspace(0.5, 1.5, depth)
    ws = [f64(w, requires_grad=True) for w in ws_np]
    x0 = 0.3
    z = f64(x0)
    for w in ws:
        z = (w * z).tanh()
    z.backward()

    zs = [x0]
    for w in ws_np:
        zs.append(np.tanh(w * zs[-1]))
    delta = 1.0
    for k in reversed(range(depth)):
        local = 1 - zs[k + 1] ** 2  # dtanh at layer k
        np.testing.assert_allclose(ws[k].grad.item(), delta * local * zs[k], rtol=1e-10)
        delta = delta * local * ws_np[k]

"""The backpropagation lecture by hand, then with bprop (docs/tutorial.md).

Each section computes a gradient the way the lecture derives it, with numpy and the lecture's
formulas, then lets bprop compute it, and asserts that the two agree (float64, to 1e-12
relative). Run it: `python examples/lecture_by_hand.py`; it prints one line per section and
exits non-zero if any derivation disagrees. The tutorial includes the code between the
`[name]` / `[end name]` markers, so the text and the code cannot drift apart.
"""

from __future__ import annotations

from typing import Callable

import bprop as bp
import bprop.nn.functional as F
import numpy as np

RTOL = 1e-12


def t(values: object, requires_grad: bool = False) -> bp.Tensor:
    """A float64 bprop tensor from numbers or a numpy array."""
    return bp.tensor(np.asarray(values, dtype=np.float64), requires_grad=requires_grad)


def agree(got: bp.Tensor, want: float | np.ndarray) -> None:
    """Asserts that a bprop tensor holds the numbers of a numpy array."""
    np.testing.assert_allclose(np.asarray(got.detach().numpy()), want, rtol=RTOL, atol=1e-15)


def one_neuron() -> float:
    # [hand: one neuron]
    x = np.array([0.5, -1.2, 2.0])
    w = np.array([0.1, 0.4, -0.3])
    y, eta = 1.5, 0.1

    y_hat = x @ w  # x^T w = x1 w1 + x2 w2 + x3 w3
    loss = (y_hat - y) ** 2
    grad_w = 2 * (y_hat - y) * x  # dL/dw_i = 2 (y_hat - y) x_i
    w_new = w - eta * grad_w  # w_i := w_i - eta dL/dw_i
    # [end hand: one neuron]

    # [bprop: one neuron]
    x_t = t(x)
    w_t = t(w, requires_grad=True)
    loss_t = (x_t @ w_t - y) ** 2  # forward: records the graph
    loss_t.backward()  # backward: fills w_t.grad
    agree(loss_t, loss)
    agree(w_t.grad, grad_w)

    bp.optim.SGD([w_t], lr=eta).step()  # w := w - eta w.grad
    agree(w_t, w_new)
    # [end bprop: one neuron]
    return float(np.ravel(loss)[0])


def chain_rule() -> float:
    # [hand: chain rule]
    # z = f(g(x)) with y = g(x) = x^2 and z = f(y) = sin(y): dz/dx = dz/dy dy/dx
    x = 0.7
    y = x**2
    dz_dx = np.cos(y) * 2 * x

    # Vectors: y = g(x) = tanh(W x) in R^2, x in R^3, z = f(y) = sum(y^2).
    # grad_x z = (dy/dx)^T grad_y z: the Jacobian (2 x 3) transposed times a gradient.
    W = np.array([[0.2, -0.5, 0.1], [0.7, 0.3, -0.4]])
    xv = np.array([1.0, -2.0, 0.5])
    yv = np.tanh(W @ xv)
    grad_y = 2 * yv
    jacobian = (1 - yv**2)[:, None] * W  # dy_j/dx_i
    grad_x = jacobian.T @ grad_y
    # [end hand: chain rule]

    # [bprop: chain rule]
    x_t = t(x, requires_grad=True)
    (g,) = bp.grad((x_t**2).sin(), x_t)
    agree(g, dz_dx)

    # bprop never builds the Jacobian: each op maps the gradient of its output to the
    # gradient of its inputs (a vector-Jacobian product), here tanh's, then matmul's.
    xv_t = t(xv, requires_grad=True)
    y_t = (t(W) @ xv_t).tanh()
    (g,) = bp.grad((y_t**2).sum(), xv_t, retain_graph=True)  # keep it for the next call
    agree(g, grad_x)

    # One VJP on its own: grad_outputs plays the role of grad_y z.
    (vjp,) = bp.grad(y_t, xv_t, grad_outputs=t(grad_y))
    agree(vjp, jacobian.T @ grad_y)
    # [end bprop: chain rule]
    return float(np.ravel(dz_dx)[0])


def multiple_paths() -> float:
    # [hand: multiple paths]
    # x reaches z over two paths: y1 = sin(x), y2 = exp(x), z = y1 * y2.
    # dz/dx = dz/dy1 dy1/dx + dz/dy2 dy2/dx
    x = 0.3
    y1, y2 = np.sin(x), np.exp(x)
    dz_dx = y2 * np.cos(x) + y1 * np.exp(x)

    # The same rule explains x * x (two edges from x into one mul): x + x = 2x.
    dsq_dx = x + x
    # [end hand: multiple paths]

    # [bprop: multiple paths]
    x_t = t(x, requires_grad=True)
    z = x_t.sin() * x_t.exp()
    z.backward()  # the gradients arriving over both paths are summed into x_t.grad
    agree(x_t.grad, dz_dx)

    x_t = t(x, requires_grad=True)
    (x_t * x_t).backward()
    agree(x_t.grad, dsq_dx)
    # [end bprop: multiple paths]
    return float(np.ravel(dz_dx)[0])


def tanh_local_gradient() -> float:
    # [hand: tanh]
    a = np.array([-2.0, -0.5, 0.0, 0.5, 2.0])
    z = np.tanh(a)
    local = 1 - np.tanh(a) ** 2  # d tanh(a) / da
    upstream = np.array([0.3, -1.0, 2.0, 0.5, 1.0])  # some dL/dz
    dL_da = upstream * local  # elementwise: the Jacobian of tanh is diagonal
    # [end hand: tanh]

    # [bprop: tanh]
    a_t = t(a, requires_grad=True)
    z_t = a_t.tanh()
    agree(z_t, z)
    (g,) = bp.grad(z_t, a_t, grad_outputs=t(upstream), retain_graph=True)  # tanh's VJP
    agree(g, dL_da)
    (g,) = bp.grad(z_t.sum(), a_t)  # upstream of ones: the local gradient itself
    agree(g, local)
    # [end bprop: tanh]
    return float(np.ravel(local)[0])


def tanh_network() -> float:
    # [hand: 3-2-1 network]
    # The lecture's network: 3 inputs, 2 tanh units, 1 linear output, squared error.
    Z1 = np.array([0.5, -1.0, 2.0])  # Z^(1) = x
    W1 = np.array([[0.1, -0.3], [0.4, 0.2], [-0.5, 0.6]])  # W^(1): 3 x 2, w_{i~>j}
    W2 = np.array([0.7, -1.1])  # W^(2): 2
    y, eta = 0.25, 0.1

    # Feedforward (fprop), in topological order
    A1 = Z1 @ W1  # 1. A^(1) = Z^(1)T W^(1)
    Z2 = np.tanh(A1)  # 2. Z^(2) = tanh(A^(1))
    y_hat = Z2 @ W2  # 3. y_hat = Z^(2)T W^(2)
    loss = (y_hat - y) ** 2  # 4. loss (y_hat - y)^2

    # Flowing backward (bprop), in reverse order. The lecture drops the 2 of the square;
    # we keep it, so delta is exactly dL/dy_hat.
    delta = 2 * (y_hat - y)  # top: the error at the output
    grad_W2 = delta * Z2  # gradient w.r.t. W^(2) = delta Z^(2)
    delta1 = (W2 * delta) * (1 - np.tanh(A1) ** 2)  # delta_1 = (W^(2)T delta) . (1 - tanh^2)
    grad_W1 = np.outer(Z1, delta1)  # dL/dw_{i~>j} = delta_j z_i: local error x local input

    # The lecture's scalar derivations agree with the vectorised ones:
    a1, a2 = A1
    x1, x2, _ = Z1
    assert np.isclose(grad_W1[0, 0], 2 * (y_hat - y) * W2[0] * (1 - np.tanh(a1) ** 2) * x1)
    assert np.isclose(grad_W1[1, 1], 2 * (y_hat - y) * W2[1] * (1 - np.tanh(a2) ** 2) * x2)

    W1_new, W2_new = W1 - eta * grad_W1, W2 - eta * grad_W2  # the updates
    # [end hand: 3-2-1 network]

    # [bprop: 3-2-1 network]
    x_t = t(Z1)
    W1_t, W2_t = t(W1, requires_grad=True), t(W2, requires_grad=True)

    A1_t = x_t @ W1_t  # fprop: each op runs now and records a node
    y_hat_t = A1_t.tanh() @ W2_t
    loss_t = (y_hat_t - y) ** 2
    agree(loss_t, loss)

    # The deltas are the gradients with respect to the intermediate nodes.
    d, d1, g1, g2 = bp.grad(loss_t, [y_hat_t, A1_t, W1_t, W2_t], retain_graph=True)
    agree(d, delta)
    agree(d1, delta1)
    agree(g1, grad_W1)
    agree(g2, grad_W2)

    loss_t.backward()  # one reverse sweep computes every delta once and reuses it
    opt = bp.optim.SGD([W1_t, W2_t], lr=eta)
    opt.step()
    agree(W1_t, W1_new)
    agree(W2_t, W2_new)
    # [end bprop: 3-2-1 network]
    return float(np.ravel(loss)[0])


def mlp_cross_entropy_weight_decay() -> float:
    # [hand: MLP]
    # Goodfellow et al.'s graph: U1 = X W1, H = relu(U1), U2 = H W2,
    # J = cross_entropy(U2, y) + lam (sum W1^2 + sum W2^2), trained with SGD.
    rng = np.random.default_rng(0)
    N, D, K, C = 16, 4, 8, 3
    X = rng.normal(size=(N, D))
    labels = rng.integers(0, C, size=N)
    W1 = rng.normal(scale=0.5, size=(D, K))
    W2 = rng.normal(scale=0.5, size=(K, C))
    lam, eta, steps = 1e-2, 0.5, 20

    def forward_backward(W1: np.ndarray, W2: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        U1 = X @ W1
        H = np.maximum(U1, 0)
        U2 = H @ W2
        logp = U2 - U2.max(axis=1, keepdims=True)
        logp -= np.log(np.exp(logp).sum(axis=1, keepdims=True))  # log softmax
        J = -logp[np.arange(N), labels].mean() + lam * ((W1**2).sum() + (W2**2).sum())

        dU2 = np.exp(logp)  # softmax - one_hot, averaged over the batch
        dU2[np.arange(N), labels] -= 1
        dU2 /= N
        # Two paths lead back to each W: through the cross-entropy and through the
        # weight decay, which always contributes 2 lam W. The chain rule sums them.
        gW2 = H.T @ dU2 + 2 * lam * W2
        dU1 = (dU2 @ W2.T) * (U1 > 0)
        gW1 = X.T @ dU1 + 2 * lam * W1
        return J, gW1, gW2

    J0, gW1_0, gW2_0 = forward_backward(W1, W2)
    losses = []
    for _ in range(steps):
        J, gW1, gW2 = forward_backward(W1, W2)
        losses.append(J)
        W1, W2 = W1 - eta * gW1, W2 - eta * gW2
    assert losses[-1] < losses[0]
    # [end hand: MLP]

    # [bprop: MLP]
    rng = np.random.default_rng(0)  # the same data and initial weights
    X_t = t(rng.normal(size=(N, D)))
    y_t = bp.tensor(rng.integers(0, C, size=N))  # int64 class indices
    W1_t = t(rng.normal(scale=0.5, size=(D, K)), requires_grad=True)
    W2_t = t(rng.normal(scale=0.5, size=(K, C)), requires_grad=True)

    def cost() -> bp.Tensor:
        logits = (X_t @ W1_t).relu() @ W2_t
        return F.cross_entropy(logits, y_t) + lam * ((W1_t**2).sum() + (W2_t**2).sum())

    g1, g2 = bp.grad(cost(), [W1_t, W2_t])
    agree(g1, gW1_0)
    agree(g2, gW2_0)

    opt = bp.optim.SGD([W1_t, W2_t], lr=eta)
    for step in range(steps):
        opt.zero_grad()
        J_t = cost()
        agree(J_t, losses[step])
        J_t.backward()
        opt.step()
    agree(W1_t, W1)
    agree(W2_t, W2)

    # SGD's weight_decay=wd adds wd * W to the gradient: the same as the cost's lam W^2
    # term when wd = 2 lam.
    W1_t = t(rng.normal(size=(D, K)), requires_grad=True)
    W1_copy = t(W1_t.detach().numpy(), requires_grad=True)
    for w, decay, penalty in ((W1_t, 0.0, lam), (W1_copy, 2 * lam, 0.0)):
        opt = bp.optim.SGD([w], lr=eta, weight_decay=decay)
        loss = F.cross_entropy((X_t @ w).relu() @ W2_t.detach(), y_t) + penalty * (w**2).sum()
        loss.backward()
        opt.step()
    agree(W1_t, W1_copy.detach().numpy())
    # [end bprop: MLP]
    return float(np.ravel(losses[-1])[0])


def symbol_to_symbol() -> float:
    # [hand: symbol to symbol]
    x = np.array([-1.0, 0.5, 2.0])
    first = 1 - np.tanh(x) ** 2  # d/dx tanh(x)
    second = -2 * np.tanh(x) * (1 - np.tanh(x) ** 2)  # d2/dx2 tanh(x)

    # The one neuron's loss L(w) = (x^T w - y)^2 has Hessian 2 x x^T; a Hessian-vector
    # product H v = 2 x (x^T v).
    xs = np.array([0.5, -1.2, 2.0])
    w, v, y = np.array([0.1, 0.4, -0.3]), np.array([1.0, 0.0, -1.0]), 1.5
    hvp = 2 * xs * (xs @ v)
    # [end hand: symbol to symbol]

    # [bprop: symbol to symbol]
    x_t = t(x, requires_grad=True)
    (g,) = bp.grad(x_t.tanh().sum(), x_t, create_graph=True)
    # The gradient is itself a graph of bprop ops (built from tanh's VJP), not just numbers:
    assert g.requires_grad and g.grad_fn is not None
    agree(g, first)
    (h,) = bp.grad(g.sum(), x_t)  # differentiate the gradient graph again
    agree(h, second)

    w_t = t(w, requires_grad=True)
    loss = (t(xs) @ w_t - y) ** 2
    (g,) = bp.grad(loss, w_t, create_graph=True)  # 2 (x^T w - y) x, as a graph
    (Hv,) = bp.grad(g @ t(v), w_t)  # d/dw (g . v) = H v
    agree(Hv, hvp)
    # [end bprop: symbol to symbol]
    return float(np.ravel(second)[0])


SECTIONS: list[tuple[str, Callable[[], float]]] = [
    ("one neuron", one_neuron),
    ("chain rule over a path", chain_rule),
    ("sum over multiple paths", multiple_paths),
    ("tanh's local gradient", tanh_local_gradient),
    ("3-2-1 tanh network: fprop, bprop, deltas", tanh_network),
    ("MLP: cross-entropy + weight decay, SGD", mlp_cross_entropy_weight_decay),
    ("symbol-to-symbol: second derivatives", symbol_to_symbol),
]


def main() -> None:
    for name, section in SECTIONS:
        result = section()
        print(f"{name:45s} hand == bprop  ({result:+.6f})")


if __name__ == "__main__":
    main()

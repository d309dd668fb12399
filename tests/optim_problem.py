"""The small problem the optimizer tests train with bprop and PyTorch side by side: a two-layer
tanh network from the same float64 weights, two parameter groups that differ in their
hyper-parameters, and the comparison of the weights after each run."""

import numpy as np

TOL = 1e-10


def problem(seed):
    """(INIT, X): the initial weights by name and the inputs, drawn from one seed."""
    rng = np.random.default_rng(seed)
    init = {"w1": rng.standard_normal((3, 4)), "b1": rng.standard_normal(4) * 0.1,
            "w2": rng.standard_normal((4, 2))}  # fmt: skip
    return init, rng.standard_normal((5, 3))


def make_params(lib, init):
    return [lib.tensor(init[k].copy(), requires_grad=True) for k in ("w1", "b1", "w2")]


def loss_of(lib, params, x):
    w1, b1, w2 = params
    h = (x @ w1 + b1).tanh()
    return ((h @ w2) ** 2).sum() + (w2 * 0.5).sum()


def optimizer(lib, name, params, defaults, group_options):
    w1, b1, w2 = params
    groups = [{"params": [w1, b1], **group_options[0]}, {"params": [w2], **group_options[1]}]
    return getattr(lib.optim, name)(groups, **defaults)


def train(lib, params, opt, steps, x, each=None):
    x = lib.tensor(x)
    for i in range(steps):
        opt.zero_grad()
        loss_of(lib, params, x).backward()
        opt.step()
        if each is not None:
            each(i, opt)


def assert_same(ours, theirs, tol=TOL):
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.detach().numpy(), q.detach().numpy(), rtol=tol, atol=tol)

"""micrograd's cross-check against PyTorch, plus a tiny MLP built from scalar tensors.

The two expressions of micrograd's test_engine.py, written as that file writes the PyTorch
side (`torch.Tensor([-4.0]).double()`, `requires_grad = True`, `.relu()`, `**`, `/`), then a
second derivative through `torch.autograd.grad(create_graph=True)`, then a 2-4-1 network whose
every weight is its own 0-d tensor, trained with micrograd's hand-written SGD and hinge loss.
Prints the values and gradients, then the training losses.
"""

import json

import numpy as np
import torch


def sanity_check():
    x = torch.Tensor([-4.0]).double()
    x.requires_grad = True
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    xpt, ypt = x, y
    print(f"sanity: y = {ypt.data.item()}, dy/dx = {xpt.grad.item()}")
    return [ypt.data.item(), xpt.grad.item()]


def more_ops():
    a = torch.Tensor([-4.0]).double()
    b = torch.Tensor([2.0]).double()
    a.requires_grad = True
    b.requires_grad = True
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    apt, bpt, gpt = a, b, g
    print(
        f"more ops: g = {gpt.data.item():.6f}, dg/da = {apt.grad.item():.6f}, "
        f"dg/db = {bpt.grad.item():.6f}"
    )
    return [gpt.data.item(), apt.grad.item(), bpt.grad.item()]


def second_order():
    x = torch.tensor(0.7, dtype=torch.float64, requires_grad=True)
    y = torch.tanh(x) * x**3 + torch.exp(-x)
    (dy,) = torch.autograd.grad(y, x, create_graph=True)
    dy.backward()
    print(f"second order: y' = {dy.item():.6f}, y'' = {x.grad.item():.6f}")
    return [dy.item(), x.grad.item()]


class Neuron:
    def __init__(self, rng, nin, nonlin=True):
        self.w = [torch.tensor(rng.uniform(-1, 1), requires_grad=True) for _ in range(nin)]
        self.b = torch.tensor(0.0, requires_grad=True)
        self.nonlin = nonlin

    def __call__(self, x):
        act = sum((wi * xi for wi, xi in zip(self.w, x)), self.b)
        return act.tanh() if self.nonlin else act

    def parameters(self):
        return self.w + [self.b]


class MLP:
    def __init__(self, rng, nin, nouts):
        sizes = [nin] + nouts
        self.layers = [
            [Neuron(rng, sizes[i], nonlin=i != len(nouts) - 1) for _ in range(sizes[i + 1])]
            for i in range(len(nouts))
        ]

    def __call__(self, x):
        for layer in self.layers:
            x = [n(x) for n in layer]
        return x[0]

    def parameters(self):
        return [p for layer in self.layers for n in layer for p in n.parameters()]


def train_scalar_mlp():
    rng = np.random.default_rng(1)
    xs = [[2.0, 3.0], [3.0, -1.0], [0.5, 1.0], [1.0, 1.0], [-1.5, 0.5], [-2.0, -2.0]]
    ys = [1.0, -1.0, -1.0, 1.0, 1.0, -1.0]
    model = MLP(rng, 2, [4, 1])
    params = model.parameters()
    print(f"{len(params)} scalar parameters")
    losses = []
    for k in range(12):
        scores = [model([torch.tensor(v) for v in x]) for x in xs]
        loss = sum((1 + -yi * si).relu() for yi, si in zip(ys, scores)) / len(xs)
        alpha = 1e-4
        loss = loss + alpha * sum(p * p for p in params)
        for p in params:
            p.grad = None
        loss.backward()
        learning_rate = 1.0 - 0.9 * k / 12
        with torch.no_grad():
            for p in params:
                p -= learning_rate * p.grad
        acc = sum((yi > 0) == (si.item() > 0) for yi, si in zip(ys, scores)) / len(ys)
        print(f"step {k} loss {loss.item():.6f}, accuracy {acc * 100:.0f}%")
        losses.append(loss.item())
    return losses


if __name__ == "__main__":
    values = sanity_check() + more_ops() + second_order() + train_scalar_mlp()
    print("LOSSES", json.dumps(values))

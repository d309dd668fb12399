"""The lecture's training loop, end to end: a tanh MLP fitted by SGD to generated data, with
the loss J = mean squared error + lambda * sum(W^2) (weight decay), printed as it falls.

    python examples/train_mlp.py [--steps 300] [--hidden 16] [--lr 0.1]
"""

from __future__ import annotations

import argparse
import time

import bprop as bp


def make_data(n: int, seed: int) -> tuple[bp.Tensor, bp.Tensor]:
    """y = 1.5 tanh(x1) + x2 x3 / 2 + noise: nonlinear, so the hidden layer has work to do."""
    bp.manual_seed(seed)
    x = bp.randn(n, 3)
    pick = [bp.tensor([[1.0], [0.0], [0.0]]), bp.tensor([[0.0], [1.0], [0.0]]),
            bp.tensor([[0.0], [0.0], [1.0]])]  # fmt: skip
    x1, x2, x3 = (x @ p for p in pick)
    y = 1.5 * x1.tanh() + 0.5 * x2 * x3 + 0.05 * bp.randn(n, 1)
    return x, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--weight-decay", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    x, y = make_data(args.samples, args.seed)
    bp.manual_seed(args.seed + 1)
    w1 = (bp.randn(3, args.hidden) * (1 / 3**0.5)).requires_grad_()
    b1 = bp.zeros(args.hidden, requires_grad=True)
    w2 = (bp.randn(args.hidden, 1) * (1 / args.hidden**0.5)).requires_grad_()
    b2 = bp.zeros(1, requires_grad=True)
    optimizer = bp.optim.SGD([w1, b1, w2, b2], lr=args.lr)

    start = time.perf_counter()
    for step in range(args.steps + 1):
        hidden = (x @ w1 + b1).tanh()  # Z2 = tanh(X W1 + b1)
        y_hat = hidden @ w2 + b2
        mse = ((y_hat - y) ** 2).mean()
        loss = mse + args.weight_decay * ((w1**2).sum() + (w2**2).sum())
        optimizer.zero_grad()
        loss.backward()  # reverse-mode: dJ/dW for every weight in one sweep
        optimizer.step()  # W := W - lr * dJ/dW
        if step % (args.steps // 10 or 1) == 0:
            print(f"step {step:4d}  loss {loss.item():.6f}  mse {mse.item():.6f}")
    elapsed = time.perf_counter() - start
    print(f"{args.steps} steps in {elapsed:.2f} s ({1e3 * elapsed / args.steps:.2f} ms/step)")


if __name__ == "__main__":
    main()

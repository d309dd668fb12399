"""Draw the lecture's 3-2-1 tanh network before and after backward (the README's pictures).

    python examples/lecture_graph.py [OUTDIR]     # default OUTDIR: docs/

Writes lecture-321.{dot,png} (the graph) and lecture-321-grads.{dot,png} (after backward: each
weight's ‖grad‖ and each named intermediate's ‖δ‖, coloured by size). Needs Graphviz's `dot`
program; installs nothing, and exits with status 1 and a hint when `dot` is missing.

The network is the lecture's (seed/backprop-lecture.txt), with biases added:
    a = x W1 + b1,  h = tanh(a),  y_hat = h W2 + b2,  L = (y_hat - y)^2
so ‖δ‖ at y_hat is 2 |y_hat - y| (the lecture's δ, with the 2 it drops) and ‖δ‖ at a is the
norm of the lecture's δ_j = δ w_j (1 - tanh^2 a_j), the hidden units' local errors.
"""

from __future__ import annotations

import sys
from pathlib import Path

import bprop as bp
import numpy as np


def build() -> tuple[bp.Tensor, dict[str, bp.Tensor]]:
    f64 = np.float64
    # x requires grad only so that it is a node of the picture: bprop records only tensors that
    # require grad. Its ‖grad‖ is the blame that reaches the input.
    x = bp.tensor(np.array([[0.5, -1.0, 2.0]], dtype=f64), requires_grad=True)
    W1 = bp.tensor(  # noqa: N806  (the lecture's names)
        np.array([[0.2, -0.4], [0.7, 0.1], [-0.3, 0.5]], dtype=f64), requires_grad=True
    )
    b1 = bp.tensor(np.array([0.1, -0.2], dtype=f64), requires_grad=True)
    W2 = bp.tensor(np.array([[1.5], [-0.8]], dtype=f64), requires_grad=True)  # noqa: N806
    b2 = bp.tensor(np.array([0.05], dtype=f64), requires_grad=True)
    y = bp.tensor(np.array([[1.0]], dtype=f64))

    a = x @ W1 + b1
    h = bp.tanh(a)
    y_hat = h @ W2 + b2
    L = ((y_hat - y) ** 2).sum()  # noqa: N806
    names = {"x": x, "W1": W1, "b1": b1, "a": a, "h": h, "W2": W2, "b2": b2}
    names.update({"y_hat": y_hat, "L": L})
    return L, names


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parents[1] / "docs"
    out.mkdir(parents=True, exist_ok=True)

    L, names = build()  # noqa: N806
    before = bp.viz.graph(L, params=names, show_constants=True)
    L.backward(retain_graph=True)  # keep the graph so viz can compute δ of the intermediates
    after = bp.viz.graph(L, params=names, show_grads=True, show_constants=True)

    try:
        for stem, g in (("lecture-321", before), ("lecture-321-grads", after)):
            for fmt in ("dot", "png"):
                print(g.render(out / f"{stem}.{fmt}"))
    except RuntimeError as error:  # no Graphviz `dot`: bp.viz says what to install
        print(f"lecture_graph.py: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

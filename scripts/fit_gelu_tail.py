"""Fits the rational function behind float32 gelu's Phi (vnormal_cdf_d in
cpp/src/kernels/vector_kernels.inc) and prints its coefficients and its error.

    python scripts/fit_gelu_tail.py      # needs scipy (the examples extra brings it)

R(a) = Phi(-a) e^(a^2 / 2) = erfcx(a / sqrt 2) / 2 for a in [0, 14.5], as P5(a) / Q6(a) with
P's constant term pinned to 1/2 (so Phi(0) is exactly 1/2) and Q's to 1: linearised least
squares on the relative error at Chebyshev points, reweighted towards the largest errors
(Lawson's iteration), keeping the best fit. Then checks it on a dense grid."""

from __future__ import annotations

import numpy as np
import scipy.special

END = 14.5  # beyond it Phi(-a) is below float32's smallest subnormal
P_DEGREE, Q_DEGREE = 5, 6


def target(a):
    return 0.5 * scipy.special.erfcx(a / np.sqrt(2.0))


def fit(points: int = 6000, rounds: int = 40):
    k = np.arange(points)
    a = (1 - np.cos(np.pi * (k + 0.5) / points)) / 2 * END
    y, s = target(a), a / END  # s in [0, 1] keeps the system well conditioned
    p_basis = np.vander(s, P_DEGREE + 1, increasing=True)
    q_basis = np.vander(s, Q_DEGREE + 1, increasing=True)
    weight, q_before, best = np.ones_like(a), np.ones_like(a), None
    for _ in range(rounds):
        # 1/2 + P'(s) - y (1 + Q'(s)) = 0, scaled by the last round's y Q: the relative error
        system = np.hstack([p_basis[:, 1:], -y[:, None] * q_basis[:, 1:]]) / (y * q_before)[:, None]
        rhs = (y - 0.5) / (y * q_before)
        root = np.sqrt(weight)
        solution = np.linalg.lstsq(system * root[:, None], rhs * root, rcond=None)[0]
        p = np.concatenate([[0.5], solution[:P_DEGREE]])
        q = np.concatenate([[1.0], solution[P_DEGREE:]])
        q_before = q_basis @ q
        error = (p_basis @ p) / q_before / y - 1
        worst = np.abs(error).max()
        if best is None or worst < best[0]:
            best = (worst, p, q)
        weight = weight * (1 + 50 * np.abs(error) / worst)
        weight /= weight.mean()
    _, p, q = best
    # coefficients of a rather than s
    return p / END ** np.arange(P_DEGREE + 1), q / END ** np.arange(Q_DEGREE + 1)


def main() -> None:
    p, q = fit()
    a = np.linspace(0, END, 3_000_001)
    error = np.polyval(p[::-1], a) / np.polyval(q[::-1], a) / target(a) - 1
    print("P (a^0 first):", ", ".join(repr(float(c)) for c in p))
    print("Q (a^0 first):", ", ".join(repr(float(c)) for c in q))
    print(f"largest relative error on [0, {END}]: {np.abs(error).max():.3g}")
    print(f"smallest Q: {np.polyval(q[::-1], a).min():.3g} (no pole)")


if __name__ == "__main__":
    main()

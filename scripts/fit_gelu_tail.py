"""Fits the polynomials behind float32 gelu's Phi (Note [float32 gelu in float] in
cpp/src/kernels/vector_kernels.inc) and prints them as the C++ table, with their error.

    python scripts/fit_gelu_tail.py      # needs scipy (the examples extra brings it)

R(a) = Phi(-a) e^(a^2 / 2) = erfcx(a / sqrt 2) / 2 for a in [0, 14.5], one polynomial of
degree 8 in t = a - lo on each piece [lo, hi) of PIECES (the pieces the kernel tells apart by
the exponent and first mantissa bit of a + 1). Each is a least-squares fit of the relative error
at Chebyshev points over the piece stretched by a thousandth of its width on each side (a + 1
rounds, so a value just below a boundary can land in the next piece), and the coefficients are
rounded to float one at a time, constant term first, the rest refitted to what is left each
time, so that rounding the large terms is made up for by the small ones. Then checks every
piece on a dense grid, with the coefficients as floats evaluated in double."""

from __future__ import annotations

import numpy as np
import scipy.special

PIECES = [(0.0, 0.5), (0.5, 1.0), (1.0, 2.0), (2.0, 3.0), (3.0, 5.0), (5.0, 7.0), (7.0, 11.0),
          (11.0, 15.0)]  # fmt: skip
DEGREE = 8


def target(a):
    return 0.5 * scipy.special.erfcx(a / np.sqrt(2.0))


def fit_piece(lo: float, hi: float, points: int = 4000) -> list[float]:
    stretch = (hi - lo) * 1e-3
    s = np.cos(np.pi * (np.arange(points) + 0.5) / points)
    a = (lo + hi) / 2 + ((hi - lo) / 2 + stretch) * s
    a = a[a >= 0]
    t, y = a - lo, target(a)
    width = hi - lo  # fitted in powers of t / width, which keeps the system well conditioned
    basis = np.vander(t / width, DEGREE + 1, increasing=True) / y[:, None]  # relative error
    left, coefficients = np.ones_like(y), []  # what is left to fit, relative to y
    for j in range(DEGREE + 1):
        c = float(np.float32(np.linalg.lstsq(basis[:, j:], left, rcond=None)[0][0] / width**j))
        coefficients.append(c)
        left = left - c * width**j * basis[:, j]
    return coefficients


def main() -> None:
    worst = 0.0
    rows = []
    for lo, hi in PIECES:
        coefficients = fit_piece(lo, hi)
        a = np.linspace(lo, min(hi, 14.5), 200_001)
        error = np.abs(np.polyval(coefficients[::-1], a - lo) / target(a) - 1).max()
        worst = max(worst, error)
        print(f"[{lo:4}, {hi:4}): largest relative error {error:.2e}")
        rows.append(coefficients)
    print(f"largest relative error over [0, 14.5]: {worst:.2e} (half an ulp: 2^-24 = 5.96e-08)")
    print("\nconstexpr float kGeluTail[kGeluTailDegree + 1][8] = {  // [power of t][piece]")
    for j in range(DEGREE + 1):
        print("    {" + ", ".join(f"{float(np.float32(row[j]))!r}f" for row in rows) + "},")
    print("};")


if __name__ == "__main__":
    main()

"""nn.init's truncated normal, orthogonal and identity initialisers (the others are in
test_nn.py)."""

from __future__ import annotations

import bprop as bp
import bprop.nn as nn
import numpy as np
import pytest


def test_trunc_normal_stays_in_bounds_with_the_right_spread():
    bp.manual_seed(0)
    w = nn.init.trunc_normal_(bp.empty(20000, dtype=bp.float64), mean=1.0, std=0.5, a=0.5, b=2.0)
    values = w.numpy()
    assert values.min() >= 0.5 and values.max() <= 2.0
    # Truncated N(1, 0.25) to [0.5, 2] (alpha = -1, beta = 2): its mean is 1 + 0.5 (phi(-1) -
    # phi(2)) / (Phi(2) - Phi(-1)) = 1.1148.
    assert values.mean() == pytest.approx(1.1148, abs=0.01)
    with pytest.raises(ValueError, match=r"\[trunc_normal_\] needs a < b"):
        nn.init.trunc_normal_(bp.empty(3), a=1.0, b=-1.0)


@pytest.mark.parametrize("shape", [(3, 5), (5, 3), (4, 2, 3)])
def test_orthogonal_rows_or_columns_are_orthonormal(shape):
    w = nn.init.orthogonal_(bp.empty(*shape, dtype=bp.float64), gain=2.0).numpy()
    flat = w.reshape(shape[0], -1)
    small = flat @ flat.T if flat.shape[0] <= flat.shape[1] else flat.T @ flat
    np.testing.assert_allclose(small, 4.0 * np.eye(small.shape[0]), atol=1e-12)


def test_eye_and_parameters_keep_requires_grad():
    p = nn.Parameter(bp.zeros(2, 3))
    nn.init.eye_(p)
    np.testing.assert_array_equal(p.detach().numpy(), np.eye(2, 3))
    assert p.requires_grad and p.grad is None
    with pytest.raises(ValueError, match=r"\[eye_\] needs a 2-d tensor"):
        nn.init.eye_(bp.zeros(2, 2, 2))
    assert nn.init.calculate_gain("selu") == 0.75

"""The non-differentiable half of bprop/_math.py (the differentiable ops are rows of
test_ops.py's gradient table): float tests, comparisons, counts, random fills, Size."""

from __future__ import annotations

import math

import bprop as bp
import numpy as np
import pytest

VALUES = [1.0, math.nan, math.inf, -math.inf, 0.0, -2.5]


@pytest.mark.parametrize("name", ["isnan", "isinf", "isfinite"])
def test_float_tests_match_numpy(name):
    t = bp.tensor(VALUES)
    expected = getattr(np, name)(np.array(VALUES))
    np.testing.assert_array_equal(getattr(bp, name)(t).numpy(), expected)
    np.testing.assert_array_equal(getattr(t, name)().numpy(), expected)
    ints = getattr(bp, name)(bp.tensor([1, 2]))
    assert ints.dtype == bp.bool and ints.tolist() == [name == "isfinite"] * 2


def test_allclose_equal_and_count_nonzero_match_torch():
    torch = pytest.importorskip("torch")
    a, b = [[1.0, 2.0], [3.0, 4.0]], [[1.0, 2.0 + 1e-6], [3.0, 4.0]]
    for args in [(a, b), (a, [[1.0, 2.1], [3.0, 4.0]])]:
        assert bp.allclose(*map(bp.tensor, args)) == torch.allclose(*map(torch.tensor, args))
        assert bp.equal(*map(bp.tensor, args)) == torch.equal(*map(torch.tensor, args))
    assert bp.equal(bp.tensor(a), bp.tensor(a)) and not bp.equal(bp.zeros(2), bp.zeros(3))
    nan = bp.tensor([math.nan])
    assert not bp.allclose(nan, nan) and bp.allclose(nan, nan, equal_nan=True)
    x = [[0.0, 1.0, 2.0], [0.0, 0.0, 3.0]]
    assert bp.count_nonzero(bp.tensor(x)).item() == 3
    np.testing.assert_array_equal(
        bp.tensor(x).count_nonzero(dim=0).numpy(), torch.tensor(x).count_nonzero(dim=0).numpy()
    )


def test_random_fills_have_the_right_range_and_spread():
    bp.manual_seed(3)
    u = bp.empty(20000, dtype=bp.float64).uniform_(-2.0, 1.0)
    assert u.min().item() >= -2.0 and u.max().item() < 1.0
    assert u.mean().item() == pytest.approx(-0.5, abs=0.03)
    n = bp.zeros(20000).normal_(mean=3.0, std=0.5)
    assert n.mean().item() == pytest.approx(3.0, abs=0.02)
    assert n.std().item() == pytest.approx(0.5, abs=0.02)
    p = bp.full((20000,), 0.3)
    draws = bp.bernoulli(p)
    assert set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert draws.mean().item() == pytest.approx(0.3, abs=0.02)
    with pytest.raises(RuntimeError, match=r"\[bernoulli\] probabilities must be in \[0, 1\]"):
        bp.bernoulli(bp.tensor([0.5, 1.5]))


def test_fills_on_a_parameter_keep_it_a_leaf():
    w = bp.zeros(3, 2, requires_grad=True)
    w.uniform_(-0.1, 0.1)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    assert 0 < w.detach().abs().max().item() <= 0.1


def test_size_and_errors():
    s = bp.Size([2, 3, 4])
    assert s == (2, 3, 4) and s.numel() == 24 and isinstance(s, tuple)
    with pytest.raises(RuntimeError, match=r"\[dot\] inconsistent sizes"):
        bp.dot(bp.zeros(3), bp.zeros(4))
    with pytest.raises(RuntimeError, match=r"\[mv\] input must be 2-d"):
        bp.mv(bp.zeros(3), bp.zeros(3))
    with pytest.raises(TypeError, match=r"\[norm\] needs a float tensor"):
        bp.norm(bp.tensor([1, 2]))


def test_random_fills_follow_a_seeded_generator():
    g = bp.Generator().manual_seed(7)
    first = [bp.zeros(4).uniform_(generator=g), bp.zeros(4).normal_(generator=g)]
    first.append(bp.bernoulli(bp.full((4,), 0.5), generator=g))
    g.manual_seed(7)
    again = [bp.zeros(4).uniform_(generator=g), bp.zeros(4).normal_(generator=g)]
    again.append(bp.bernoulli(bp.full((4,), 0.5), generator=g))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.numpy(), b.numpy())

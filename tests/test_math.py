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


EINSUM_CASES = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 3, 4, 5), (2, 3, 6, 5)]),
    ("ij->ji", [(3, 4)]),
    ("ij->", [(3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("i,j->ij", [(3,), (4,)]),
    ("...ij,...jk", [(2, 3, 4), (4, 5)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 5)]),
    ("bn,anm,bm->ba", [(2, 3), (4, 3, 5), (2, 5)]),
    ("ji", [(3, 4)]),
    ("ij,kj->ik", [(1, 3), (4, 3)]),
    ("abc->b", [(2, 3, 4)]),
]


@pytest.mark.parametrize("equation,shapes", EINSUM_CASES, ids=[c[0] for c in EINSUM_CASES])
def test_einsum_matches_torch_values_and_gradients(equation, shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s) for s in shapes]
    ours = [bp.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = bp.einsum(equation, *ours), torch.einsum(equation, *theirs)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-12)
    weights = rng.standard_normal(tuple(ref.shape))
    (out * bp.tensor(weights)).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs):
        np.testing.assert_allclose(a.grad.numpy(), b.grad.numpy(), rtol=1e-12, atol=1e-12)


def test_einsum_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"\[einsum\] equation 'ij,jk->ik' has 2 operands, got 1"):
        bp.einsum("ij,jk->ik", bp.zeros(2, 2))
    with pytest.raises(ValueError, match=r"\[einsum\] subscript 'j' has sizes 3 and 4"):
        bp.einsum("ij,jk->ik", bp.zeros(2, 3), bp.zeros(4, 2))
    with pytest.raises(ValueError, match=r"\[einsum\] subscripts 'ij' name 2 dims"):
        bp.einsum("ij->i", bp.zeros(3))
    with pytest.raises(NotImplementedError, match=r"\[einsum\] a repeated subscript"):
        bp.einsum("ii->i", bp.zeros(3, 3))


ROUNDING_VALUES = [-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, -0.7, 0.7, 3.2, -3.8, 1e20, -3e38, math.inf,
                   -math.inf, math.nan, 4.5000001]  # fmt: skip


@pytest.mark.parametrize("name", ["trunc", "floor", "ceil", "round"])
def test_rounding_matches_numpy_for_every_float(name):
    for dtype in (bp.float64, bp.float32):
        values = np.array(ROUNDING_VALUES, dtype=np.float64 if dtype == bp.float64 else np.float32)
        t = bp.tensor(values)
        expected = getattr(np, name)(t.numpy())
        np.testing.assert_array_equal(getattr(bp, name)(t).numpy(), expected)
        np.testing.assert_array_equal(getattr(t, name)().numpy(), expected)
    np.testing.assert_array_equal(getattr(bp, name)(bp.tensor([3, -4])).numpy(), [3, -4])


def test_round_decimals_frac_and_integer_division_match_torch():
    torch = pytest.importorskip("torch")
    x = [1.2345, -2.5, 7.25, -7.75]
    np.testing.assert_allclose(
        bp.round(bp.tensor(x), decimals=2).numpy(), torch.round(torch.tensor(x), decimals=2).numpy()
    )
    np.testing.assert_allclose(bp.frac(bp.tensor(x)).numpy(), torch.frac(torch.tensor(x)).numpy())
    a, b = [-7.0, 7.0, -7.5, 7.5], [2.0, -2.0, 2.0, 2.0]
    for name in ("remainder", "fmod", "floor_divide"):
        ours = getattr(bp, name)(bp.tensor(a), bp.tensor(b)).numpy()
        np.testing.assert_allclose(ours, getattr(torch, name)(torch.tensor(a), torch.tensor(b)))
        ints = getattr(bp, name)(bp.tensor([-7, 7, 9]), 3)
        assert ints.dtype == bp.int64
        assert ints.tolist() == getattr(torch, name)(torch.tensor([-7, 7, 9]), 3).tolist()


def test_lerp_is_the_ema_update_and_differentiable():
    ema, p = bp.tensor([0.0, 1.0]), bp.tensor([1.0, 3.0])
    ema.lerp_(p, 0.1)
    np.testing.assert_allclose(ema.numpy(), [0.1, 1.2], rtol=1e-6)
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    bp.lerp(a, bp.tensor([3.0, 3.0]), 0.25).sum().backward()
    np.testing.assert_allclose(a.grad.numpy(), [0.75, 0.75])


def test_namespace_helpers():
    t = bp.tensor([1.0, 2.0])
    assert bp.is_tensor(t) and not bp.is_tensor([1.0])
    assert bp.is_floating_point(t) and not bp.tensor([1]).is_floating_point()
    assert bp.as_tensor(t) is t and bp.as_tensor(t, dtype=bp.float64).dtype == bp.float64
    assert bp.as_tensor([1, 2]).tolist() == [1, 2]
    assert bp.hstack([bp.zeros(2), bp.ones(3)]).tolist() == [0, 0, 1, 1, 1]
    assert bp.hstack([bp.zeros(2, 1), bp.ones(2, 2)]).shape == (2, 3)
    assert bp.vstack([bp.zeros(2), bp.ones(2)]).tolist() == [[0, 0], [1, 1]]


def test_like_factories_follow_input_shape_and_dtype():
    x = bp.zeros(2, 3, dtype=bp.float64)
    bp.manual_seed(0)
    u = bp.rand_like(x)
    assert u.shape == (2, 3) and u.dtype == bp.float64 and 0 <= u.min().item() < 1
    assert bp.randn_like(x, dtype=bp.float32).dtype == bp.float32
    ints = bp.randint_like(bp.zeros(100, dtype=bp.int64), 2, 4)
    assert ints.dtype == bp.int64 and set(ints.tolist()) <= {2, 3}
    assert bp.randint_like(x, 5).dtype == bp.float64
    e = bp.empty_like(x, requires_grad=True)
    assert e.shape == (2, 3) and e.requires_grad
    g = bp.Generator().manual_seed(4)
    a = bp.randn_like(x, generator=g)
    g.manual_seed(4)
    np.testing.assert_array_equal(a.numpy(), bp.randn_like(x, generator=g).numpy())
    with pytest.raises(RuntimeError, match=r"\[rand_like\].*cuda"):
        bp.rand_like(x, device="cuda")

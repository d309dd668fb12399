"""PyTorch behaviours a review of the drop-in work found missing: attention rows that may
attend to nothing, softmax's dtype= and implicit dim, dtype= on sum/mean/prod, scatter's
reduce='add', mse_loss's weight=."""

from __future__ import annotations

import warnings

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest


@pytest.mark.parametrize("kind", ["bool", "float"])
def test_sdpa_row_that_attends_to_nothing_is_zero_with_finite_gradients(kind):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    q = rng.standard_normal((2, 3, 4))
    allowed = np.ones((3, 3), dtype=bool)
    allowed[1] = False
    allowed[2, 0] = False
    if kind == "bool":
        ours_mask, their_mask = bp.tensor(allowed), torch.tensor(allowed)
    else:
        additive = np.where(allowed, 0.0, -np.inf)
        ours_mask, their_mask = bp.tensor(additive), torch.tensor(additive)
    ours = bp.tensor(q, requires_grad=True)
    theirs = torch.tensor(q, requires_grad=True)
    out = F.scaled_dot_product_attention(ours, ours, ours, attn_mask=ours_mask)
    ref = torch.nn.functional.scaled_dot_product_attention(theirs, theirs, theirs, their_mask)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy(), rtol=1e-10)
    assert np.all(out.detach().numpy()[:, 1] == 0)
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    assert np.isfinite(ours.grad.numpy()).all()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-9, atol=1e-12)


def test_functional_softmax_takes_dtype_and_the_legacy_implicit_dim():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(1).standard_normal((2, 3)).astype(np.float32)
    for name in ("softmax", "log_softmax"):
        ours = getattr(F, name)(bp.tensor(x), dim=-1, dtype=bp.float64)
        ref = getattr(torch.nn.functional, name)(torch.tensor(x), dim=-1, dtype=torch.float64)
        assert ours.dtype == bp.float64
        np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-12)
        with pytest.warns(UserWarning, match="Implicit dimension choice"):
            implicit = getattr(F, name)(bp.tensor(x))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = getattr(torch.nn.functional, name)(torch.tensor(x))
        np.testing.assert_allclose(implicit.numpy(), expected.numpy(), rtol=1e-6)


@pytest.mark.parametrize("name", ["sum", "mean", "prod"])
def test_reductions_take_dtype(name):
    torch = pytest.importorskip("torch")
    x = [[1.0, 2.0], [3.0, 4.5]]
    ours = getattr(bp, name)(bp.tensor(x), dim=0, dtype=bp.float64)
    ref = getattr(torch, name)(torch.tensor(x), dim=0, dtype=torch.float64)
    assert ours.dtype == bp.float64
    np.testing.assert_allclose(ours.numpy(), ref.numpy())
    assert getattr(bp.tensor([1, 2, 3]), name)(dtype=bp.float32).dtype == bp.float32


def test_scatter_reduce_add_matches_torch():
    torch = pytest.importorskip("torch")
    index = [[0, 0], [2, 1]]
    ours = bp.zeros(2, 3).scatter_(1, bp.tensor(index), bp.ones(2, 2), reduce="add")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates reduce= with a tensor src
        ref = torch.zeros(2, 3).scatter_(1, torch.tensor(index), torch.ones(2, 2), reduce="add")
    np.testing.assert_array_equal(ours.numpy(), ref.numpy())
    got = bp.scatter(bp.zeros(2, 3), 1, bp.tensor(index), 2.0, reduce="add")
    np.testing.assert_array_equal(got.numpy(), [[4, 0, 0], [0, 2, 2]])
    with pytest.raises(NotImplementedError, match=r"\[scatter\] reduce must be None or 'add'"):
        bp.scatter(bp.zeros(2, 3), 1, bp.tensor(index), 2.0, reduce="multiply")


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_weight_matches_torch(reduction):
    torch = pytest.importorskip("torch")
    x, t, w = [1.0, 2.0, 3.0], [0.5, 0.0, -1.0], [1.0, 0.0, 2.0]
    ours = F.mse_loss(bp.tensor(x), bp.tensor(t), reduction=reduction, weight=bp.tensor(w))
    ref = torch.nn.functional.mse_loss(
        torch.tensor(x), torch.tensor(t), reduction=reduction, weight=torch.tensor(w)
    )
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=1e-6)

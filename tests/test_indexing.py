"""Indexing (t[...]), gather, cat and stack.

Forward values against numpy (the same key applied to the same array), gradients against
np.add.at (a scatter that accumulates repeated indices, which is exactly the VJP of indexing),
views sharing storage, and the errors of out-of-range indices and mismatched shapes. The
table-driven checks of these ops (torch parity, finite differences, second order) are rows of
test_ops.py.
"""

from __future__ import annotations

import bprop as bp
import numpy as np
import pytest


def to_np(t) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


X = np.arange(60.0).reshape(3, 4, 5) * 0.5 - 7.0
MASK_3 = np.array([True, False, True])
MASK_34 = np.array(
    [[True, False, True, True], [False, False, False, False], [True, True, False, True]]
)
MASK_5 = np.array([False, True, True, False, True])
MASK_345 = (np.arange(60).reshape(3, 4, 5) % 3) == 1


def _t(m, a):
    """An index array as numpy (m is np) or as a tensor of m."""
    return np.asarray(a) if m is np else m.tensor(np.asarray(a))


# Each key is a function of the module (np or bp) so that tensor indices can be built per module.
KEYS = [
    # basic indexing
    pytest.param(lambda m: 1, id="int"),
    pytest.param(lambda m: -1, id="neg_int"),
    pytest.param(lambda m: (1, 2), id="two_ints"),
    pytest.param(lambda m: (-1, -2, -3), id="three_neg_ints"),
    pytest.param(lambda m: slice(1, 3), id="slice"),
    pytest.param(lambda m: slice(None, None, 2), id="slice_step"),
    pytest.param(lambda m: (slice(None), slice(1, None, 2)), id="slice_step_dim1"),
    pytest.param(lambda m: (slice(None), slice(None), slice(0, 5, 3)), id="slice_step_3"),
    pytest.param(lambda m: (slice(-2, None), ..., slice(None, None, 3)), id="neg_slice_ellipsis"),
    pytest.param(lambda m: slice(1, 100), id="slice_past_end"),
    pytest.param(lambda m: slice(2, 1), id="slice_empty"),
    pytest.param(lambda m: (..., 2), id="ellipsis_int"),
    pytest.param(lambda m: ..., id="ellipsis_only"),
    pytest.param(lambda m: None, id="none"),
    pytest.param(lambda m: (1, None, ..., None), id="int_none_ellipsis_none"),
    pytest.param(lambda m: (0, slice(None), 4), id="int_slice_int"),
    pytest.param(lambda m: (slice(None), None, 1), id="slice_none_int"),
    # advanced indexing
    pytest.param(lambda m: [0, 2, 0], id="list_repeated"),
    pytest.param(lambda m: [-1, 0], id="list_negative"),
    pytest.param(lambda m: _t(m, [2, 2, 1, 2]), id="tensor_repeated"),
    pytest.param(lambda m: _t(m, [[0, 1], [2, 0]]), id="tensor_2d"),
    pytest.param(lambda m: ([0, 2], [1, 3]), id="two_lists"),
    pytest.param(lambda m: (slice(None), [3, 0, 3]), id="slice_list"),
    pytest.param(lambda m: (slice(None), [0, 1], [4, 4]), id="adv_adjacent"),
    pytest.param(lambda m: ([0, 2], slice(None), [1, 3]), id="adv_separated"),
    pytest.param(lambda m: (1, [0, 3]), id="int_list"),
    pytest.param(lambda m: (_t(m, [[0], [2]]), _t(m, [1, 3, 1])), id="adv_broadcast"),
    pytest.param(lambda m: (..., [4, 0]), id="ellipsis_list"),
    pytest.param(lambda m: (slice(1, None), [2, 2]), id="slice_then_list"),
    pytest.param(lambda m: _t(m, 1), id="tensor_0d_int"),
    # boolean masks
    pytest.param(lambda m: _t(m, MASK_3), id="mask_dim0"),
    pytest.param(lambda m: _t(m, MASK_34), id="mask_2d"),
    pytest.param(lambda m: _t(m, MASK_345), id="mask_full"),
    pytest.param(lambda m: (..., _t(m, MASK_5)), id="ellipsis_mask"),
    pytest.param(lambda m: (slice(None), slice(None), _t(m, MASK_5)), id="slices_mask"),
    pytest.param(lambda m: MASK_3, id="numpy_mask"),
]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_getitem_values(key, dtype):
    a = X.astype(dtype)
    want = a[key(np)]
    got = bp.tensor(a)[key(bp)]
    assert tuple(got.shape) == want.shape
    assert str(got.dtype).endswith(dtype)
    np.testing.assert_array_equal(to_np(got), want)


@pytest.mark.parametrize("key", KEYS)
def test_getitem_gradient_scatters_back(key):
    """d<x[key], v>/dx = add.at(zeros, key, v): repeated indices accumulate."""
    rng = np.random.default_rng(0)
    x = bp.tensor(X, requires_grad=True)
    out = x[key(bp)]
    v = rng.standard_normal(tuple(out.shape))
    out.backward(gradient=bp.tensor(v))
    want = np.zeros_like(X)
    np.add.at(want, key(np), v)
    np.testing.assert_allclose(to_np(x.grad), want, rtol=0, atol=0)


@pytest.mark.parametrize("key", KEYS)
def test_getitem_vs_torch(key):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    x = bp.tensor(X, requires_grad=True)
    tx = torch.tensor(X, requires_grad=True)
    out = x[key(bp)]
    tout = tx[key(torch)]
    assert tuple(out.shape) == tuple(tout.shape)
    np.testing.assert_array_equal(to_np(out), tout.detach().numpy())
    v = rng.standard_normal(tuple(out.shape))
    out.backward(gradient=bp.tensor(v))
    tout.backward(gradient=torch.tensor(v))
    np.testing.assert_allclose(to_np(x.grad), tx.grad.numpy(), rtol=1e-15, atol=0)


def test_getitem_noncontiguous_input():
    base = bp.tensor(X, requires_grad=True)
    t = base.permute(2, 0, 1)[::2]  # (3, 3, 4), strides not row-major
    want = np.transpose(X, (2, 0, 1))[::2]
    np.testing.assert_array_equal(to_np(t), want)
    np.testing.assert_array_equal(to_np(t[:, 1, [0, 3]]), want[:, 1, [0, 3]])
    np.testing.assert_array_equal(to_np(t[..., 1::2][:, 0]), want[..., 1::2][:, 0])
    t[[0, 2, 2], 1].sum().backward()
    g = np.zeros((5, 3, 4))
    np.add.at(g[::2], ([0, 2, 2], 1), 1.0)
    np.testing.assert_array_equal(to_np(base.grad), np.transpose(g, (1, 2, 0)))


def test_getitem_on_expanded_input():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    e = x.expand(4, 3)
    got = e[1:, [0, 2, 2]]
    want = np.broadcast_to(np.array([1.0, 2.0, 3.0]), (4, 3))[1:, [0, 2, 2]]
    np.testing.assert_array_equal(to_np(got), want)
    got.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [3.0, 0.0, 6.0])


def test_repeated_index_accumulates_through_a_chain():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x[[0, 0, 0, 2]] * bp.tensor([1.0, 2.0, 3.0, 4.0])
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [6.0, 0.0, 4.0])


def test_mask_from_comparison():
    x = bp.tensor([[-1.0, 2.0], [3.0, -4.0]], requires_grad=True)
    y = x[x > 0]
    np.testing.assert_array_equal(to_np(y), [2.0, 3.0])
    (y**2).sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [[0.0, 4.0], [6.0, 0.0]])


def test_all_false_mask_gives_empty():
    x = bp.tensor(X, requires_grad=True)
    y = x[bp.tensor(np.zeros(3, dtype=bool))]
    assert tuple(y.shape) == (0, 4, 5)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), np.zeros_like(X))


# ---------------------------------------------------------------------------------------------
# views: basic indexing shares storage, advanced indexing copies
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [1, (slice(None), 2), (slice(1, None), slice(None, None, 2)), (..., 3), (None, 0)],
    ids=["int", "slice_int", "slice_step", "ellipsis", "none"],
)
def test_basic_indexing_returns_a_view(key):
    a = X.copy()
    base = bp.from_numpy(a)
    view = base[key]
    assert np.shares_memory(view.numpy(), a)
    a[...] = -a  # writes to the numpy array are seen through the view
    np.testing.assert_array_equal(to_np(view), a[key])


def test_advanced_indexing_copies():
    a = X.copy()
    base = bp.from_numpy(a)
    got = base[[0, 2]]
    mask = base[bp.tensor(MASK_3)]
    a[...] = 0.0
    np.testing.assert_array_equal(to_np(got), X[[0, 2]])
    np.testing.assert_array_equal(to_np(mask), X[MASK_3])


def test_view_of_a_view_strides():
    base = bp.tensor(np.arange(24.0).reshape(4, 6))
    v = base[1:, ::2][::2, 1:]
    np.testing.assert_array_equal(to_np(v), np.arange(24.0).reshape(4, 6)[1:, ::2][::2, 1:])
    assert not v.is_contiguous()
    assert v.contiguous().is_contiguous()
    np.testing.assert_array_equal(to_np(v.contiguous()), to_np(v))


# ---------------------------------------------------------------------------------------------
# indexing errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        pytest.param(lambda: 3, id="int_past_end"),
        pytest.param(lambda: -4, id="neg_int_past_start"),
        pytest.param(lambda: (0, 4), id="int_past_end_dim1"),
        pytest.param(lambda: (0, 0, -6), id="neg_int_dim2"),
        pytest.param(lambda: [0, 3], id="list_past_end"),
        pytest.param(lambda: [-4], id="list_neg_past_start"),
        pytest.param(lambda: bp.tensor([5]), id="tensor_past_end"),
        pytest.param(lambda: (slice(None), bp.tensor([0, 4])), id="tensor_past_end_dim1"),
        pytest.param(lambda: (0, 0, 0, 0), id="too_many_indices"),
        pytest.param(lambda: bp.tensor([True, False]), id="mask_wrong_length"),
        pytest.param(lambda: bp.tensor(np.ones((3, 5), dtype=bool)), id="mask_wrong_shape"),
        pytest.param(lambda: ([0, 1], [0, 1, 2]), id="adv_not_broadcastable"),
    ],
)
def test_getitem_errors(key):
    t = bp.tensor(X)
    with pytest.raises(IndexError):
        t[key()]


def test_getitem_float_index_rejected():
    t = bp.tensor(X)
    with pytest.raises((IndexError, TypeError)):
        t[bp.tensor([0.0, 1.0])]
    with pytest.raises((IndexError, TypeError)):
        t[1.5]


@pytest.mark.parametrize("step", [0, -1])
def test_getitem_nonpositive_step_rejected(step):
    with pytest.raises((ValueError, IndexError)):
        bp.tensor(X)[::step]


def test_getitem_on_0d_tensor():
    s = bp.tensor(2.5)
    assert to_np(s[...]) == 2.5
    assert tuple(s[None].shape) == (1,)
    with pytest.raises(IndexError):
        s[0]


def test_failed_getitem_leaves_gradients_untouched():
    x = bp.tensor(X, requires_grad=True)
    with pytest.raises(IndexError):
        x[[0, 7]]
    x[0].sum().backward()
    want = np.zeros_like(X)
    want[0] = 1.0
    np.testing.assert_array_equal(to_np(x.grad), want)


# ---------------------------------------------------------------------------------------------
# gather
# ---------------------------------------------------------------------------------------------

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("dtype", ["float32", "float64", "int64"])
def test_gather_values(dim, dtype):
    a = X.astype(dtype)
    shape = list(a.shape)
    size = shape[dim]
    shape[dim] = 6  # more picks than the dimension has: repeats are certain
    idx = RNG.integers(0, size, size=shape)
    want = np.take_along_axis(a, idx, axis=dim)
    for got in (
        bp.gather(bp.tensor(a), dim, bp.tensor(idx)),
        bp.tensor(a).gather(dim, bp.tensor(idx)),
    ):
        assert str(got.dtype).endswith(dtype)
        np.testing.assert_array_equal(to_np(got), want)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_gather_gradient_accumulates(dim):
    shape = list(X.shape)
    shape[dim] = 7
    idx = RNG.integers(0, X.shape[dim], size=shape)
    v = RNG.standard_normal(shape)
    x = bp.tensor(X, requires_grad=True)
    x.gather(dim, bp.tensor(idx)).backward(gradient=bp.tensor(v))
    want = np.zeros_like(X)
    d = dim % 3
    for pos in np.ndindex(*shape):
        target = list(pos)
        target[d] = idx[pos]
        want[tuple(target)] += v[pos]
    np.testing.assert_allclose(to_np(x.grad), want, rtol=1e-14, atol=1e-14)


def test_gather_noncontiguous_input_and_index():
    a = X[0]  # (4, 5)
    idx = np.array([[0, 3, 3, 1], [2, 2, 0, 1], [3, 0, 1, 2]])  # (3, 4)
    x = bp.tensor(a, requires_grad=True)
    got = x.T.gather(1, bp.tensor(idx.T.copy()).T)  # x.T: (5, 4); index (3, 4) non-contiguous
    want = np.take_along_axis(a.T[:3], idx, axis=1)
    np.testing.assert_array_equal(to_np(got), want)
    got.sum().backward()
    g = np.zeros((5, 4))
    for i in range(3):
        for j in range(4):
            g[i, idx[i, j]] += 1.0
    np.testing.assert_array_equal(to_np(x.grad), g.T)


def test_gather_empty_index():
    got = bp.tensor(X).gather(1, bp.tensor(np.zeros((3, 0, 5), dtype=np.int64)))
    assert tuple(got.shape) == (3, 0, 5)


@pytest.mark.parametrize(
    "idx",
    [
        pytest.param(np.array([[0, 4]]), id="past_end"),
        pytest.param(np.array([[0, -1]]), id="negative"),
    ],
)
def test_gather_index_out_of_range(idx):
    t = bp.tensor(np.ones((2, 4)))
    with pytest.raises((IndexError, ValueError), match="gather"):
        t.gather(1, bp.tensor(idx))


def test_gather_bad_arguments():
    t = bp.tensor(np.ones((2, 4)))
    with pytest.raises(IndexError):
        t.gather(2, bp.tensor([[0]]))
    with pytest.raises((ValueError, RuntimeError, IndexError), match="gather"):
        t.gather(1, bp.tensor([0, 1]))  # index rank differs from input rank
    with pytest.raises((ValueError, RuntimeError, IndexError), match="gather"):
        t.gather(1, bp.tensor([[0], [1], [0]]))  # index larger than input in dim 0
    with pytest.raises((TypeError, ValueError, RuntimeError), match="gather"):
        t.gather(1, bp.tensor([[0.0, 1.0]]))  # float index


# ---------------------------------------------------------------------------------------------
# cat and stack
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shapes, dim",
    [
        (((2, 3), (4, 3)), 0),
        (((2, 3), (2, 1), (2, 5)), 1),
        (((2, 3), (2, 1)), -1),
        (((3, 2, 4), (3, 1, 4), (3, 3, 4)), -2),
        (((0, 3), (2, 3), (0, 3)), 0),
        (((2, 0), (2, 3)), 1),
        (((5,),), 0),
        (((2, 3, 5), (2, 3, 7)), 2),
    ],
)
def test_cat_values_and_gradients(shapes, dim):
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal(s) for s in shapes]
    xs = [bp.tensor(a, requires_grad=True) for a in arrays]
    out = bp.cat(xs, dim=dim)
    want = np.concatenate(arrays, axis=dim)
    assert tuple(out.shape) == want.shape
    np.testing.assert_array_equal(to_np(out), want)
    v = rng.standard_normal(want.shape)
    out.backward(gradient=bp.tensor(v))
    splits = np.cumsum([s[dim] for s in shapes])[:-1]
    for x, g in zip(xs, np.split(v, splits, axis=dim)):
        np.testing.assert_array_equal(to_np(x.grad), g)


def test_cat_noncontiguous_and_int():
    a = np.arange(12).reshape(3, 4)
    got = bp.cat([bp.tensor(a).T, bp.tensor(a)[:, ::2].T], dim=0)
    assert got.dtype == bp.int64
    np.testing.assert_array_equal(to_np(got), np.concatenate([a.T, a[:, ::2].T]))


def test_cat_result_does_not_alias_inputs():
    a = np.ones((2, 2))
    t = bp.from_numpy(a)
    out = bp.cat([t, t])
    a[...] = 5.0
    np.testing.assert_array_equal(to_np(out), np.ones((4, 2)))


@pytest.mark.parametrize(
    "shapes, dim",
    [
        (((2, 3), (2, 4)), 0),
        (((2, 3), (3, 3)), 1),
        (((2, 3), (2, 3, 1)), 0),
        (((2, 3), (3,)), 0),
    ],
)
def test_cat_mismatched_shapes(shapes, dim):
    xs = [bp.zeros(*s) for s in shapes]
    with pytest.raises(ValueError, match="cat"):
        bp.cat(xs, dim=dim)


def test_cat_bad_dim_and_empty():
    with pytest.raises(IndexError):
        bp.cat([bp.zeros(2, 3), bp.zeros(2, 3)], dim=2)
    with pytest.raises(IndexError):
        bp.cat([bp.zeros(2, 3)], dim=-3)
    with pytest.raises((ValueError, RuntimeError)):
        bp.cat([])


def test_cat_and_stack_promote_like_torch():
    torch = pytest.importorskip("torch")
    for m_cat in ("cat", "stack"):
        for a, b in [
            (np.ones(2, np.float32), np.ones(2, np.float64)),
            (np.ones(2, np.int64), np.ones(2, np.float32)),
        ]:
            got = getattr(bp, m_cat)([bp.tensor(a), bp.tensor(b)])
            want = getattr(torch, m_cat)([torch.tensor(a), torch.tensor(b)])
            assert str(got.dtype).rsplit(".", 1)[-1] == str(want.dtype).rsplit(".", 1)[-1]


@pytest.mark.parametrize("dim", [0, 1, 2, -1, -2, -3])
def test_stack_values_and_gradients(dim):
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal((2, 3)) for _ in range(4)]
    xs = [bp.tensor(a, requires_grad=True) for a in arrays]
    out = bp.stack(xs, dim=dim)
    want = np.stack(arrays, axis=dim)
    assert tuple(out.shape) == want.shape
    np.testing.assert_array_equal(to_np(out), want)
    v = rng.standard_normal(want.shape)
    out.backward(gradient=bp.tensor(v))
    for i, x in enumerate(xs):
        np.testing.assert_array_equal(to_np(x.grad), np.take(v, i, axis=dim))


def test_stack_0d_and_same_tensor_twice():
    x = bp.tensor(1.5, requires_grad=True)
    out = bp.stack([x, x * 2.0, x])
    assert tuple(out.shape) == (3,)
    np.testing.assert_array_equal(to_np(out), [1.5, 3.0, 1.5])
    out.backward(gradient=bp.tensor([1.0, 10.0, 100.0]))
    assert to_np(x.grad) == 121.0


def test_stack_errors():
    with pytest.raises(ValueError, match="stack"):
        bp.stack([bp.zeros(2, 3), bp.zeros(3, 2)])
    with pytest.raises(ValueError, match="stack"):
        bp.stack([bp.zeros(2, 3), bp.zeros(2)])
    with pytest.raises(IndexError):
        bp.stack([bp.zeros(2, 3), bp.zeros(2, 3)], dim=3)
    with pytest.raises(IndexError):
        bp.stack([bp.zeros(2, 3)], dim=-4)
    with pytest.raises((ValueError, RuntimeError)):
        bp.stack([])


@pytest.mark.parametrize(
    "key",
    [
        lambda m: (m.tensor([1, 3]),),
        lambda m: (m.tensor([0, 1]), m.tensor([2, 0])),
        lambda m: (m.tensor([True, False, True, False]),),
    ],
    ids=["rows", "pairs", "row_mask"],
)
def test_assignment_through_tensor_indices_matches_torch(key):
    torch = pytest.importorskip("torch")
    ours, theirs = bp.zeros(4, 3), torch.zeros(4, 3)
    ours[key(bp)] = 5.0
    theirs[key(torch)] = 5.0
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    w = bp.ones(4, 3, requires_grad=True)
    y = w * 2.0
    y[key(bp)] = 0.0
    y.sum().backward()
    tw = torch.ones(4, 3, requires_grad=True)
    ty = tw * 2.0
    ty[key(torch)] = 0.0
    ty.sum().backward()
    np.testing.assert_array_equal(w.grad.numpy(), tw.grad.numpy())
    with pytest.raises(IndexError, match=r"\[index\] assignment mixing tensor indices"):
        ours[bp.tensor([1]), 1:] = 1.0

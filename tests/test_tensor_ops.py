"""Shapes, masks, scans, sorting and sampling (python/bprop/_manipulation.py, _sampling.py).

The gradients of the differentiable ops are checked by their rows in tests/test_ops.py; here:
forwards on more arguments and dtypes against PyTorch, errors (type and message), in-place
forms, sort/argsort/topk indices, and the sampling ops against statistical bounds.
"""

from __future__ import annotations

import math

import bprop as bp
import numpy as np
import pytest


def _torch():
    return pytest.importorskip("torch")


def _same(bp_result, torch_result):
    """bprop's result equals PyTorch's: shape, dtype name and values (tuples element-wise)."""
    if isinstance(torch_result, (tuple, list)):
        assert len(bp_result) == len(torch_result)
        for b, t in zip(bp_result, torch_result):
            _same(b, t)
        return
    assert tuple(bp_result.shape) == tuple(torch_result.shape)
    assert str(bp_result.dtype).rsplit(".", 1)[-1] == str(torch_result.dtype).rsplit(".", 1)[-1]
    np.testing.assert_allclose(bp_result.numpy(), torch_result.numpy(), rtol=1e-6, atol=1e-6)


A = np.arange(24, dtype=np.float32).reshape(2, 3, 4) * 0.5 - 3.0
MASK = np.array(
    [[True, False, True, False], [False, False, True, True], [True, True, False, False]]
)

# (id, call written once for m = bprop or torch, on a = a tensor of A's values)
FORWARD = [
    ("tril_3d", lambda m, a: m.tril(a)),
    ("tril_diag2", lambda m, a: a.tril(2)),
    ("tril_bool", lambda m, a: m.tril(m.ones(3, 3, dtype=m.bool))),
    ("tril_int", lambda m, a: m.tril(m.ones(4, 2, dtype=m.int64), -1)),
    ("triu_diag_neg", lambda m, a: m.triu(a, diagonal=-1)),
    ("triu_wide", lambda m, a: a[0].triu(3)),
    ("masked_fill_inf", lambda m, a: a.masked_fill(m.tensor(MASK), float("-inf"))),
    ("masked_fill_bcast", lambda m, a: m.masked_fill(a, m.tensor(MASK[0]), 7.0)),
    ("masked_fill_int_float_value", lambda m, a: a.long().masked_fill(m.tensor(MASK), 1.7)),
    ("masked_fill_0d_tensor", lambda m, a: a.masked_fill(m.tensor(MASK), m.tensor(2))),
    ("masked_fill_grows", lambda m, a: a[0, 0].masked_fill(m.tensor(MASK), 0.0)),
    ("split_int", lambda m, a: m.split(a, 2, dim=2)),
    ("split_uneven", lambda m, a: a.split(2, 1)),
    ("split_list", lambda m, a: a.split([1, 0, 3], -1)),
    ("split_bigger", lambda m, a: a.split(10)),
    ("split_empty_dim", lambda m, a: m.split(a[:, :0], 0, dim=1)),
    ("chunk_uneven", lambda m, a: m.chunk(a, 3, dim=2)),
    ("chunk_fewer", lambda m, a: a.chunk(3, -1)),  # 4 in chunks of 2: only two pieces
    ("chunk_more_than_size", lambda m, a: a.chunk(5)),
    ("chunk_empty", lambda m, a: m.chunk(a[:0], 3)),
    ("unbind_0", lambda m, a: m.unbind(a)),
    ("unbind_last", lambda m, a: a.unbind(-1)),
    ("narrow", lambda m, a: a.narrow(-1, 1, 3)),
    ("narrow_tensor_start", lambda m, a: m.narrow(a, 1, m.tensor(1), 2)),
    ("narrow_end", lambda m, a: a.narrow(2, 4, 0)),
    ("t_matrix", lambda m, a: a[1].t()),
    ("t_vector", lambda m, a: m.t(a[0, 0])),
    ("t_scalar", lambda m, a: a[0, 0, 0].t()),
    ("repeat", lambda m, a: a.repeat(1, 2, 1)),
    ("repeat_new_dims", lambda m, a: a[0, 0].repeat(2, 3, 1)),
    ("repeat_tuple_zero", lambda m, a: a.repeat((2, 0, 1))),
    ("repeat_scalar", lambda m, a: a[0, 0, 0].repeat(3)),
    ("masked_select", lambda m, a: a.masked_select(m.tensor(MASK))),
    ("masked_select_bcast", lambda m, a: m.masked_select(a[0, :, :1], m.tensor(MASK))),
    ("index_fill", lambda m, a: a.index_fill(2, m.tensor([3, 0]), -1.0)),
    ("index_fill_negative", lambda m, a: m.index_fill(a, 1, m.tensor([-1]), 5.0)),
    ("index_fill_0d_index", lambda m, a: a.index_fill(0, m.tensor(1), m.tensor(9.0))),
    ("index_fill_int", lambda m, a: a.long().index_fill(1, m.tensor([0, 0]), 3)),
    ("clamp_min", lambda m, a: m.clamp_min(a, 0.5)),
    ("clamp_min_tensor", lambda m, a: a.clamp_min(m.tensor([0.0, 1.0, -1.0, 2.0]))),
    ("clamp_max", lambda m, a: a.clamp_max(-1)),
    ("clamp_min_int", lambda m, a: a.long().clamp_min(2)),
    ("cumsum", lambda m, a: m.cumsum(a, 2)),
    ("cumsum_dim0", lambda m, a: a.cumsum(dim=0)),
    ("cumsum_long_dim", lambda m, a: m.cumsum(m.arange(100.0), 0)),
    ("cumsum_int", lambda m, a: a.long().cumsum(-1)),
    ("cumsum_bool", lambda m, a: m.cumsum(m.tensor(MASK), 1)),
    ("cumsum_dtype", lambda m, a: a.cumsum(1, dtype=m.float64)),
    ("cumsum_scalar", lambda m, a: m.cumsum(a[0, 0, 0], 0)),
    ("cumsum_empty", lambda m, a: m.cumsum(a[:, :0], 1)),
    ("flip", lambda m, a: m.flip(a, (0, 2))),
    ("flip_method_ints", lambda m, a: a.flip(1)),
    ("flip_keyword", lambda m, a: m.flip(a, dims=[-1])),
    ("flip_none", lambda m, a: m.flip(a, ())),
    ("flip_int", lambda m, a: a.long().flip(0, 1, 2)),
    ("roll", lambda m, a: m.roll(a, 1, 2)),
    ("roll_negative_big", lambda m, a: a.roll(-7, -1)),
    ("roll_flat", lambda m, a: m.roll(a, 5)),
    ("roll_flat_tuple", lambda m, a: a.roll((3,))),
    ("roll_dims", lambda m, a: a.roll((1, 2, -1), (0, 1, 2))),
    ("roll_same_dim_twice", lambda m, a: m.roll(a, [1, 2], [2, 2])),
    ("roll_bool", lambda m, a: m.roll(m.tensor(MASK), 1, 0)),
]


@pytest.mark.parametrize("fn", [f for _, f in FORWARD], ids=[i for i, _ in FORWARD])
def test_forward_against_torch(fn):
    torch = _torch()
    _same(fn(bp, bp.tensor(A)), fn(torch, torch.tensor(A)))


def test_pieces_are_views_sharing_storage():
    x = bp.arange(12.0).reshape(3, 4)
    first, second = x.split(2, dim=1)
    second.mul_(10.0)
    np.testing.assert_array_equal(x.numpy()[:, 2:], np.arange(12.0).reshape(3, 4)[:, 2:] * 10)
    x.narrow(0, 0, 1).zero_()
    assert x.numpy()[0].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert first.numpy()[0].tolist() == [0.0, 0.0]


def test_cumsum_gradient_is_the_reversed_cumsum():
    x = bp.tensor([[0.5, -1.0, 2.0, 0.25, 3.0]], dtype=bp.float64, requires_grad=True)
    v = np.array([[1.0, -2.0, 0.5, 4.0, -1.5]])
    (g,) = bp.grad((x.cumsum(1) * bp.tensor(v)).sum(), x)
    np.testing.assert_allclose(g.numpy(), np.cumsum(v[:, ::-1], 1)[:, ::-1], rtol=1e-12)


def test_masked_fill_tensor_value_gets_the_masked_gradient():
    x = bp.zeros(3, 4, requires_grad=True)
    value = bp.tensor(2.0, requires_grad=True)
    y = x.masked_fill(bp.tensor(MASK), value)
    (y * bp.arange(12.0).reshape(3, 4)).sum().backward()
    assert value.grad.item() == float(np.arange(12.0).reshape(3, 4)[MASK].sum())
    np.testing.assert_array_equal(
        x.grad.numpy(), np.where(MASK, 0.0, np.arange(12.0).reshape(3, 4))
    )


def test_index_fill_tensor_value_gradient_counts_each_filled_element():
    x = bp.ones(3, 2, requires_grad=True)
    value = bp.tensor(0.0, requires_grad=True)
    x.index_fill(0, bp.tensor([0, 2]), value).sum().backward()
    assert value.grad.item() == 4.0
    np.testing.assert_array_equal(x.grad.numpy(), [[0.0, 0.0], [1.0, 1.0], [0.0, 0.0]])


def test_in_place_forms_return_self():
    x = bp.tensor(A.copy())
    assert x.masked_fill_(bp.tensor(MASK), 0.0) is x
    np.testing.assert_array_equal(x.numpy(), np.where(MASK, 0.0, A))
    assert x.index_fill_(1, bp.tensor([1]), -2.0) is x
    assert (x.numpy()[:, 1] == -2.0).all()
    y = bp.tensor([-1.0, 0.5, 3.0])
    assert y.clamp_min_(0.0) is y and y.clamp_max_(1.0) is y
    assert y.tolist() == [0.0, 0.5, 1.0]


def test_masked_fill_in_place_on_a_non_leaf_keeps_gradients():
    a = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = a * 2.0
    y.masked_fill_(bp.tensor([False, True, False]), 0.0)
    y.sum().backward()
    assert a.grad.tolist() == [2.0, 0.0, 2.0]


def test_failing_in_place_calls_change_nothing():
    x = bp.tensor(A[0].copy())
    with pytest.raises(RuntimeError, match=r"\[masked_fill_\].*\(3, 4\)"):
        x.masked_fill_(bp.ones(2, 3, 4, dtype=bp.bool), 1.0)
    with pytest.raises(IndexError, match=r"\[index_fill_\]"):
        x.index_fill_(1, bp.tensor([0, 4]), 1.0)
    np.testing.assert_array_equal(x.numpy(), A[0])


# (id, call, exception type, message fragment) for bprop; PyTorch raises the same type.
ERRORS = [
    ("tril_1d", lambda m: m.tril(m.ones(3)), RuntimeError, r"\[tril\].*at least 2"),
    ("triu_1d", lambda m: m.ones(3).triu(), RuntimeError, r"\[triu\].*\(3,\)"),
    (
        "masked_fill_int_mask",
        lambda m: m.ones(3).masked_fill(m.tensor([1, 0, 1]), 0.0),
        RuntimeError,
        r"\[masked_fill\].*boolean",
    ),
    (
        "masked_fill_1d_value",
        lambda m: m.ones(3).masked_fill(m.tensor([True, False, True]), m.ones(1)),
        RuntimeError,
        r"\[masked_fill\].*0-dimensional.*\(1,\)",
    ),
    (
        "masked_fill_bad_broadcast",
        lambda m: m.ones(3).masked_fill(m.ones(2, dtype=m.bool), 0.0),
        RuntimeError,
        r"\[masked_fill\] shapes \(3,\) and \(2,\) do not broadcast",
    ),
    ("split_zero", lambda m: m.ones(3).split(0), RuntimeError, r"\[split\].*got 0"),
    ("split_negative", lambda m: m.ones(3).split(-1), RuntimeError, r"\[split\].*got -1"),
    (
        "split_sizes_sum",
        lambda m: m.split(m.ones(3, 2), [1, 1]),
        RuntimeError,
        r"\[split\].*\[1, 1\] sum to 2.*size 3",
    ),
    (
        "split_sizes_negative",
        lambda m: m.ones(3).split([4, -1]),
        RuntimeError,
        r"\[split\].*non-negative",
    ),
    ("split_0d", lambda m: m.split(m.tensor(1.0), 1), RuntimeError, r"\[split\].*0-d"),
    ("split_bad_dim", lambda m: m.ones(3).split(1, 1), IndexError, r"\[split\].*dimension 1"),
    ("chunk_zero", lambda m: m.ones(3).chunk(0), RuntimeError, r"\[chunk\].*got 0"),
    ("unbind_0d", lambda m: m.unbind(m.tensor(1.0)), IndexError, r"\[unbind\]"),
    ("unbind_bad_dim", lambda m: m.ones(2, 3).unbind(2), IndexError, r"\[unbind\].*\[-2, 1\]"),
    (
        "narrow_exceeds",
        lambda m: m.ones(2, 3).narrow(1, 2, 2),
        RuntimeError,
        r"\[narrow\] start \(2\) \+ length \(2\) exceeds dimension size \(3\)",
    ),
    (
        "narrow_start",
        lambda m: m.ones(2, 3).narrow(1, 4, 0),
        IndexError,
        r"\[narrow\] start out of range.*\[-3, 3\].*got 4",
    ),
    (
        "narrow_length",
        lambda m: m.narrow(m.ones(2, 3), 1, 0, -1),
        RuntimeError,
        r"\[narrow\] length must be non-negative",
    ),
    ("narrow_dim", lambda m: m.ones(2, 3).narrow(2, 0, 1), IndexError, r"\[narrow\].*dimension 2"),
    ("t_3d", lambda m: m.ones(2, 2, 2).t(), RuntimeError, r"\[t\].*\(2, 2, 2\)"),
    (
        "repeat_too_few",
        lambda m: m.ones(2, 3).repeat(2),
        RuntimeError,
        r"\[repeat\].*\(1\).*\(2, 3\)",
    ),
    ("repeat_negative", lambda m: m.ones(2).repeat(-1), RuntimeError, r"\[repeat\].*\(-1,\)"),
    (
        "masked_select_int_mask",
        lambda m: m.ones(3).masked_select(m.tensor([1, 0, 1])),
        RuntimeError,
        r"\[masked_select\].*boolean",
    ),
    (
        "masked_select_shapes",
        lambda m: m.masked_select(m.ones(2, 3), m.ones(2, 2, dtype=m.bool)),
        RuntimeError,
        r"\[masked_select\].*\(2, 3\) and \(2, 2\)",
    ),
    (
        "index_fill_out_of_range",
        lambda m: m.ones(2, 3).index_fill(1, m.tensor([3]), 0.0),
        IndexError,
        r"\[index_fill\].*size 3",
    ),
    (
        "index_fill_float_index",
        lambda m: m.ones(2, 3).index_fill(1, m.tensor([0.0]), 0.0),
        IndexError,
        r"\[index_fill\].*int64",
    ),
    (
        "index_fill_2d_index",
        lambda m: m.ones(2, 3).index_fill(1, m.tensor([[0]]), 0.0),
        RuntimeError,
        r"\[index_fill\].*\(1, 1\)",
    ),
    (
        "index_fill_1d_value",
        lambda m: m.ones(2, 3).index_fill(1, m.tensor([0]), m.ones(1)),
        RuntimeError,
        r"\[index_fill\].*0-dimensional",
    ),
    ("cumsum_bad_dim", lambda m: m.ones(2, 3).cumsum(2), IndexError, r"\[cumsum\].*\[-2, 1\]"),
    (
        "flip_repeated",
        lambda m: m.flip(m.ones(2, 3), (0, -2)),
        RuntimeError,
        r"\[flip\] dim 0 appears multiple times",
    ),
    ("flip_bad_dim", lambda m: m.ones(2).flip((1,)), IndexError, r"\[flip\].*dimension 1"),
    (
        "roll_two_shifts_no_dims",
        lambda m: m.roll(m.ones(2, 3), (1, 2)),
        RuntimeError,
        r"\[roll\] shifts and dimensions must align: 2 shifts",
    ),
    (
        "roll_misaligned",
        lambda m: m.ones(2, 3).roll((1, 2), (0,)),
        RuntimeError,
        r"\[roll\].*2 shifts and 1 dims",
    ),
    ("sort_bad_dim", lambda m: m.sort(m.ones(2, 3), 2), IndexError, r"\[sort\].*dimension 2"),
    ("argsort_bad_dim", lambda m: m.ones(3).argsort(-2), IndexError, r"\[argsort\]"),
    (
        "topk_too_many",
        lambda m: m.topk(m.ones(2, 3), 4),
        RuntimeError,
        r"\[topk\] selected index k out of range: k=4.*size 3",
    ),
    ("topk_negative", lambda m: m.ones(3).topk(-1), RuntimeError, r"\[topk\].*k=-1"),
]


@pytest.mark.parametrize("fn, error, message", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors(fn, error, message):
    with pytest.raises(error, match=message):
        fn(bp)
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        fn(torch)


# ---- sort, argsort, topk ----


def _ties_free(shape, seed):
    rng = np.random.default_rng(seed)
    return rng.permutation(int(np.prod(shape))).reshape(shape).astype(np.float64) * 0.37 - 5.0


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_and_argsort_match_torch(dim, descending):
    torch = _torch()
    data = _ties_free((3, 4, 5), dim + 2 + 10 * descending)
    result = bp.sort(bp.tensor(data), dim, descending)
    expected = torch.sort(torch.tensor(data), dim, descending)
    assert type(result).__name__ == "sort"
    _same(result.values, expected.values)
    _same(result.indices, expected.indices)
    _same(bp.tensor(data).argsort(dim=dim, descending=descending), expected.indices)
    values, indices = result  # unpacks like torch.return_types.sort
    assert values is result[0] and indices is result.indices


@pytest.mark.parametrize(
    "k, dim, largest", [(1, -1, True), (3, 1, True), (2, 0, False), (0, 2, True)]
)
def test_topk_matches_torch(k, dim, largest):
    torch = _torch()
    data = _ties_free((3, 4, 5), k)
    result = bp.tensor(data).topk(k, dim, largest=largest)
    expected = torch.topk(torch.tensor(data), k, dim, largest=largest)
    assert type(result).__name__ == "topk"
    _same(result.values, expected.values)
    _same(result.indices, expected.indices)


def test_topk_default_dim_is_the_last():
    data = _ties_free((2, 6), 3)
    values, indices = bp.topk(bp.tensor(data), 2)
    np.testing.assert_array_equal(indices.numpy(), np.argsort(-data, axis=1)[:, :2])
    np.testing.assert_array_equal(values.numpy(), -np.sort(-data, axis=1)[:, :2])


def test_sort_is_stable_on_ties():
    torch = _torch()
    data = np.array([[2.0, 1.0, 2.0, 1.0, 0.0, 2.0], [1.0, 1.0, 1.0, 3.0, 3.0, 0.0]])
    for descending in (False, True):
        expected = torch.sort(torch.tensor(data), descending=descending, stable=True)
        result = bp.sort(bp.tensor(data), descending=descending, stable=True)
        _same(result.indices, expected.indices)
        _same(bp.argsort(bp.tensor(data), descending=descending), expected.indices)
    ints = np.array([3, 1, 3, 3, 0, 1])
    np.testing.assert_array_equal(
        bp.tensor(ints).argsort().numpy(), np.argsort(ints, kind="stable")
    )


def test_sort_puts_nan_last_ascending_and_first_descending():
    torch = _torch()
    data = np.array([1.0, np.nan, -2.0, np.inf, np.nan, 0.5])
    for descending in (False, True):
        expected = torch.sort(torch.tensor(data), descending=descending, stable=True)
        result = bp.sort(bp.tensor(data), descending=descending)
        np.testing.assert_array_equal(result.values.numpy(), expected.values.numpy())
        np.testing.assert_array_equal(result.indices.numpy(), expected.indices.numpy())


def test_sort_of_0d_and_empty():
    result = bp.sort(bp.tensor(2.5))
    assert result.values.item() == 2.5 and result.indices.item() == 0
    empty = bp.sort(bp.zeros(3, 0), dim=1)
    assert tuple(empty.values.shape) == (3, 0) and empty.indices.dtype == bp.int64
    assert bp.topk(bp.tensor(1.0), 1).values.item() == 1.0


def test_sort_values_gradient_goes_back_to_where_each_value_came_from():
    x = bp.tensor([3.0, 1.0, 2.0], requires_grad=True)
    (x.sort(descending=True).values * bp.tensor([1.0, 10.0, 100.0])).sum().backward()
    assert x.grad.tolist() == [1.0, 100.0, 10.0]


# ---- Generator ----


def test_generator_seeding_and_state():
    g = bp.Generator()
    assert g.initial_seed() == 67280421310721  # PyTorch's default
    assert g.manual_seed(5) is g and g.initial_seed() == 5
    assert g.device == bp.device("cpu") and str(g.device) == "cpu"
    first = bp.randperm(20, generator=g)
    assert bp.randperm(20, generator=g).tolist() != first.tolist()
    assert bp.randperm(20, generator=g.manual_seed(5)).tolist() == first.tolist()
    state = g.get_state()
    after = bp.rand(4, generator=g).tolist()
    assert g.set_state(state) is g
    assert bp.rand(4, generator=g).tolist() == after
    assert g.manual_seed(-1).initial_seed() == 2**64 - 1
    seed = g.seed()
    assert isinstance(seed, int) and g.initial_seed() == seed
    assert bp.Generator(device="cpu").manual_seed(0).initial_seed() == 0


def test_generator_errors():
    g = bp.Generator()
    with pytest.raises(RuntimeError, match=r"\[manual_seed\].*float"):
        g.manual_seed(1.5)
    with pytest.raises(ValueError, match=r"\[manual_seed\]"):
        g.manual_seed(2**64)
    with pytest.raises(TypeError, match=r"\[set_state\]"):
        g.set_state(bp.zeros(7))
    with pytest.raises(RuntimeError, match=r"\[set_state\].*\(3,\)"):
        g.set_state(bp.zeros(3, dtype=bp.int64))
    with pytest.raises(RuntimeError, match=r"\[Generator\].*cuda"):
        bp.Generator("cuda")
    with pytest.raises(TypeError, match=r"\[randperm\] generator must be a bprop.Generator"):
        bp.randperm(3, generator=np.random.default_rng(0))


def test_generator_draws_leave_the_global_stream_alone():
    bp.manual_seed(11)
    expected = bp.rand(5).tolist()
    bp.manual_seed(11)
    g = bp.Generator().manual_seed(11)
    bp.rand(3, generator=g), bp.randn(3, generator=g), bp.randint(0, 5, (3,), generator=g)
    bp.randperm(7, generator=g), bp.multinomial(bp.ones(4), 2, generator=g)
    assert bp.rand(5).tolist() == expected


def test_factories_with_a_generator_are_reproducible_and_in_range():
    def draw(seed):
        g = bp.Generator().manual_seed(seed)
        return (
            bp.rand(2, 3, generator=g),
            bp.randn(1000, generator=g, dtype=bp.float64),
            bp.randint(3, 7, (500,), generator=g),
        )

    u, n, i = draw(1)
    u2, n2, i2 = draw(1)
    assert u.tolist() == u2.tolist() and n.tolist() == n2.tolist() and i.tolist() == i2.tolist()
    assert draw(2)[0].tolist() != u.tolist()
    assert u.dtype == bp.float32 and n.dtype == bp.float64 and i.dtype == bp.int64
    assert ((u.numpy() >= 0) & (u.numpy() < 1)).all()
    assert abs(n.numpy().mean()) < 0.15 and abs(n.numpy().std() - 1) < 0.1
    assert set(i.tolist()) == {3, 4, 5, 6}


# ---- randperm ----


@pytest.mark.parametrize("n", [0, 1, 2, 17, 1000])
def test_randperm_is_a_permutation(n):
    assert sorted(bp.randperm(n).tolist()) == list(range(n))
    g = bp.Generator().manual_seed(n)
    assert sorted(bp.randperm(n, generator=g).tolist()) == list(range(n))


def test_randperm_options_and_reproducibility():
    bp.manual_seed(3)
    a = bp.randperm(50)
    bp.manual_seed(3)
    assert bp.randperm(50).tolist() == a.tolist()
    assert a.tolist() != list(range(50))
    assert a.dtype == bp.int64
    f = bp.randperm(5, dtype=bp.float64, requires_grad=True, device="cpu")
    assert f.dtype == bp.float64 and f.requires_grad
    assert sorted(f.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bp.randperm(4, device=bp.device("cpu")).shape == (4,)
    with pytest.raises(RuntimeError, match=r"\[randperm\].*cuda"):
        bp.randperm(3, device="cuda")
    with pytest.raises(RuntimeError, match=r"\[randperm\] n must be non-negative, got -1"):
        bp.randperm(-1)
    with pytest.raises(RuntimeError, match=r"\[randperm\].*gradients"):
        bp.randperm(3, requires_grad=True)


def test_randperm_positions_are_uniform():
    # Each value lands in each of n positions with probability 1/n.
    n, trials = 4, 4000
    g = bp.Generator().manual_seed(0)
    counts = np.zeros((n, n))
    for perms in (bp.randperm(n), bp.randperm(n, generator=g)):
        assert sorted(perms.tolist()) == list(range(n))
    bp.manual_seed(0)
    for _ in range(trials):
        counts[np.arange(n), bp.randperm(n).numpy()] += 1
    sigma = math.sqrt(trials * (1 / n) * (1 - 1 / n))
    assert np.abs(counts - trials / n).max() < 5 * sigma


def test_randperm_is_captured_and_redrawn_on_replay():
    x = bp.arange(6.0)
    step = bp.compile(lambda x: x.index_select(0, bp.randperm(6)) * 1.0)
    draws = {tuple(step(x).tolist()) for _ in range(6)}
    assert all(sorted(d) == list(range(6)) for d in draws)
    assert len(draws) > 1


# ---- multinomial ----

P = np.array([0.1, 0.2, 0.3, 0.4, 0.0])


def _within_bounds(counts, probs, trials):
    sigma = np.sqrt(trials * probs * (1 - probs))
    assert (np.abs(counts - trials * probs) <= 5 * sigma + 1e-9).all(), (counts, trials * probs)


@pytest.mark.parametrize("use_generator", [False, True])
def test_multinomial_with_replacement_frequencies(use_generator):
    g = bp.Generator().manual_seed(1) if use_generator else None
    bp.manual_seed(1)
    trials = 20000
    draws = bp.multinomial(bp.tensor(P * 7.0), trials, replacement=True, generator=g)
    assert tuple(draws.shape) == (trials,) and draws.dtype == bp.int64
    counts = np.bincount(draws.numpy(), minlength=5)
    assert counts[4] == 0  # a zero weight is never drawn
    _within_bounds(counts, P, trials)


def test_multinomial_rows_are_separate_distributions():
    bp.manual_seed(2)
    weights = bp.tensor([[1.0, 0.0, 3.0], [0.0, 5.0, 0.0]], dtype=bp.float64)
    draws = bp.multinomial(weights, 4000, True)
    assert tuple(draws.shape) == (2, 4000)
    assert set(draws[1].tolist()) == {1}
    _within_bounds(np.bincount(draws[0].numpy(), minlength=3), np.array([0.25, 0, 0.75]), 4000)


def test_multinomial_without_replacement_has_no_repeats():
    bp.manual_seed(4)
    weights = bp.rand(6, 10) + 0.01
    draws = bp.multinomial(weights, 10)
    for row in draws.tolist():
        assert sorted(row) == list(range(10))
    some = bp.multinomial(bp.tensor([0.0, 1.0, 0.0, 2.0, 3.0]), 3)
    assert sorted(some.tolist()) == [1, 3, 4]  # the zero weights wait until the others are out


def test_multinomial_without_replacement_draws_in_proportion():
    # The first draw of each row follows the weights; the second excludes the first.
    trials = 6000
    bp.manual_seed(5)
    draws = bp.multinomial(bp.tensor(P).expand(trials, 5).contiguous(), 2).numpy()
    _within_bounds(np.bincount(draws[:, 0], minlength=5), P, trials)
    assert (draws[:, 0] != draws[:, 1]).all()
    # P(second = j) = sum_i p_i p_j / (1 - p_i)
    second = np.array([sum(P[i] * P[j] / (1 - P[i]) for i in range(5) if i != j) for j in range(5)])
    _within_bounds(np.bincount(draws[:, 1], minlength=5), second, trials)


def test_multinomial_is_reproducible():
    weights = bp.tensor([0.2, 0.5, 0.3])
    bp.manual_seed(9)
    a = bp.multinomial(weights, 20, True)
    bp.manual_seed(9)
    assert weights.multinomial(20, True).tolist() == a.tolist()
    g = bp.Generator()
    b = bp.multinomial(weights, 3, generator=g.manual_seed(9))
    assert bp.multinomial(weights, 3, generator=g.manual_seed(9)).tolist() == b.tolist()


@pytest.mark.parametrize(
    "weights, n, replacement, error, message",
    [
        ([0.5, -0.1, 0.6], 1, True, RuntimeError, r"`inf`, `nan` or element < 0"),
        ([0.5, float("nan")], 1, True, RuntimeError, r"`inf`, `nan` or element < 0"),
        ([0.5, float("inf")], 1, False, RuntimeError, r"`inf`, `nan` or element < 0"),
        ([0.0, 0.0], 1, True, RuntimeError, r"sum of probabilities <= 0"),
        ([[1.0, 1.0], [0.0, 0.0]], 1, True, RuntimeError, r"sum of probabilities <= 0"),
        ([0.5, 0.5], 0, True, RuntimeError, r"cannot sample n_sample <= 0 samples, got 0"),
        ([0.5, 0.5], -2, True, RuntimeError, r"n_sample <= 0 samples, got -2"),
        ([0.5, 0.5], 3, False, RuntimeError, r"without replacement: 3 samples from 2 categories"),
        ([[[0.5]]], 1, True, RuntimeError, r"1 or 2 dim, got shape \(1, 1, 1\)"),
        ([1, 2], 1, True, RuntimeError, r"floating point input, got int64"),
    ],
)
def test_multinomial_errors(weights, n, replacement, error, message):
    with pytest.raises(error, match=r"\[multinomial\] .*" + message):
        bp.multinomial(bp.tensor(weights), n, replacement)
    torch = pytest.importorskip("torch")
    with pytest.raises(error):
        torch.multinomial(torch.tensor(weights), n, replacement)

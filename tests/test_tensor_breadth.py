"""The breadth of PyTorch's tensor API that bprop/_extras.py adds, each against PyTorch:
values, and gradients where PyTorch's op is differentiable (more gradient checks, with
float64 central differences and second order, are rows of tests/test_ops.py)."""

# ruff: noqa: B023  (each loop's lambdas are called within that iteration)

from __future__ import annotations

import math

import bprop as bp
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def _np(t):
    return t.detach().numpy() if hasattr(t, "detach") else np.asarray(t)


def _pair(array, requires_grad=True):
    """The same float64 values as a bprop and a torch tensor."""
    array = np.asarray(array, dtype=np.float64)
    return (
        bp.tensor(array, requires_grad=requires_grad),
        torch.tensor(array, requires_grad=requires_grad),
    )


def _close(got, want, **tol):
    want = want.detach().numpy(force=True) if isinstance(want, torch.Tensor) else np.asarray(want)
    got = _np(got)
    assert got.shape == want.shape, (got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=tol.get("rtol", 1e-10), atol=tol.get("atol", 1e-12))


def _same_value_and_grad(fn, *arrays, torch_fn=None, tol=None):
    """fn(bp, *tensors) and fn(torch, *tensors) agree in value and in the gradient of the sum
    of the result times fixed weights."""
    torch_fn = torch_fn or fn
    pairs = [_pair(a) for a in arrays]
    got = fn(bp, *[p[0] for p in pairs])
    want = torch_fn(torch, *[p[1] for p in pairs])
    _close(got, want, **(tol or {}))
    weights = np.random.default_rng(0).uniform(0.5, 1.5, size=tuple(want.shape))
    (got * bp.tensor(weights)).sum().backward()
    (want * torch.tensor(weights)).sum().backward()
    for b, t in pairs:
        _close(b.grad, t.grad, **(tol or {}))


RNG = np.random.default_rng(15)
A34 = RNG.normal(size=(3, 4))
A234 = RNG.normal(size=(2, 3, 4))


# ---- in place ----


@pytest.mark.parametrize(
    "name",
    [
        "exp_",
        "sin_",
        "cos_",
        "tanh_",
        "sigmoid_",
        "neg_",
        "abs_",
        "relu_",
        "square_",
        "floor_",
        "ceil_",
        "round_",
        "trunc_",
    ],
)
def test_inplace_unary_values_grad_and_version(name):
    def fn(m, a):
        y = a * 1.5
        getattr(y, name)()
        return y

    _same_value_and_grad(fn, A34)
    x = bp.tensor(A34) * 1.0
    version = x._version
    assert getattr(x, name)() is x and x._version > version


@pytest.mark.parametrize("name", ["log_", "sqrt_", "reciprocal_"])
def test_inplace_unary_positive_domain(name):
    def fn(m, a):
        y = a * 1.0 + 2.0
        return getattr(y, name)()

    _same_value_and_grad(fn, np.abs(A34))


def test_inplace_on_a_leaf_that_requires_grad_raises():
    x = bp.ones(2, 2, requires_grad=True)
    for call in (lambda: x.exp_(), lambda: x.pow_(2), lambda: x.fill_diagonal_(0)):
        with pytest.raises(RuntimeError, match="leaf"):
            call()
    assert x.tolist() == [[1.0, 1.0], [1.0, 1.0]]


def test_pow_and_round_decimals_in_place():
    _same_value_and_grad(lambda m, a, b: (a * 1.0).pow_(b.abs() + 0.5), A34, A34 + 1)
    _same_value_and_grad(lambda m, a: (a * 10.0).round_(decimals=1), A34)
    _same_value_and_grad(lambda m, a: (a * 1.0).pow_(3), A34)


def test_index_add_scatter_add_index_copy_in_place():
    index = [2, 0]
    _same_value_and_grad(
        lambda m, a, s: (a * 1.0).index_add_(1, m.tensor(index), s, alpha=2.0),
        A34,
        RNG.normal(size=(3, 2)),
    )
    gather_index = np.array([[0, 1, 2, 0], [2, 2, 1, 1]])
    _same_value_and_grad(
        lambda m, a, s: (a * 1.0).scatter_add_(0, m.tensor(gather_index), s),
        A34,
        RNG.normal(size=(2, 4)),
    )
    _same_value_and_grad(
        lambda m, a, s: (a * 1.0).index_copy_(0, m.tensor([2, 0]), s),
        A34,
        RNG.normal(size=(2, 4)),
    )
    _same_value_and_grad(
        lambda m, a, s: m.index_copy(a, 1, m.tensor([3, 1]), s), A34, RNG.normal(size=(3, 2))
    )
    with pytest.raises(IndexError, match=r"\[index_copy\]"):
        bp.index_copy(bp.tensor(A34), 0, bp.tensor([0.5]), bp.tensor(A34[:1]))


def test_masked_scatter_():
    mask = np.array([[True, False, True, False], [False, False, True, True], [True] * 4])
    _same_value_and_grad(
        lambda m, a, s: (a * 1.0).masked_scatter_(m.tensor(mask), s), A34, RNG.normal(size=(12,))
    )
    with pytest.raises(RuntimeError, match=r"\[masked_scatter_\]"):
        bp.zeros(3, 4).masked_scatter_(bp.tensor(mask), bp.zeros(3))


@pytest.mark.parametrize(
    "shape,wrap", [((3, 4), False), ((7, 3), True), ((7, 3), False), ((3, 3, 3), False)]
)
def test_fill_diagonal_(shape, wrap):
    a = RNG.normal(size=shape)
    _same_value_and_grad(lambda m, x: (x * 1.0).fill_diagonal_(2.5, wrap=wrap), a)


def test_random_fills():
    bp.manual_seed(0)
    x = bp.zeros(2000).bernoulli_(0.25)
    assert set(np.unique(_np(x))) <= {0.0, 1.0} and 0.2 < float(x.mean()) < 0.3
    p = bp.tensor([0.0, 1.0, 0.0, 1.0])
    assert bp.zeros(4).bernoulli_(p).tolist() == [0.0, 1.0, 0.0, 1.0]
    r = bp.zeros(1000, dtype=bp.int64).random_(3, 7)
    assert set(np.unique(_np(r))) == {3, 4, 5, 6}
    assert set(np.unique(_np(bp.zeros(500).random_(2)))) == {0.0, 1.0}
    e = bp.zeros(20000, dtype=bp.float64).exponential_(2.0)
    assert (_np(e) >= 0).all() and abs(float(e.mean()) - 0.5) < 0.03
    with pytest.raises(RuntimeError, match=r"\[random_\]"):
        bp.zeros(3).random_(5, 2)
    g = bp.Generator().manual_seed(1)
    first = bp.zeros(5).exponential_(generator=g).tolist()
    g.manual_seed(1)
    assert bp.zeros(5).exponential_(generator=g).tolist() == first


# ---- shapes ----


def test_movedim_swap_unflatten_tile():
    _same_value_and_grad(lambda m, a: m.movedim(a, 0, -1), A234)
    _same_value_and_grad(lambda m, a: a.movedim((0, 1), (2, 0)), A234)
    _same_value_and_grad(lambda m, a: m.moveaxis(a, -1, 0), A234)
    _same_value_and_grad(lambda m, a: a.swapaxes(0, 2), A234)
    _same_value_and_grad(lambda m, a: m.swapdims(a, 1, 2), A234)
    _same_value_and_grad(lambda m, a: a.unflatten(2, (2, -1)), A234)
    _same_value_and_grad(lambda m, a: m.unflatten(a, 0, (1, 2)), A234)
    _same_value_and_grad(lambda m, a: a.tile((2,)), A34)
    _same_value_and_grad(lambda m, a: m.tile(a, (2, 1, 3)), A34)
    with pytest.raises(RuntimeError, match=r"\[unflatten\]"):
        bp.tensor(A234).unflatten(2, (3, 2))
    with pytest.raises(RuntimeError, match=r"\[movedim\]"):
        bp.tensor(A234).movedim((0, 1), 2)


def test_repeat_interleave():
    _same_value_and_grad(lambda m, a: a.repeat_interleave(2), A34)
    _same_value_and_grad(lambda m, a: m.repeat_interleave(a, 3, dim=1), A34)
    _same_value_and_grad(lambda m, a: a.repeat_interleave(m.tensor([1, 0, 2]), dim=0), A34)
    counts = [2, 0, 1]
    assert (
        bp.repeat_interleave(bp.tensor(counts)).tolist()
        == torch.repeat_interleave(torch.tensor(counts)).tolist()
    )
    with pytest.raises(RuntimeError, match=r"\[repeat_interleave\]"):
        bp.tensor(A34).repeat_interleave(bp.tensor([1, 2]), dim=0)


def test_broadcast_to_method_sum_to_size_mT():
    _same_value_and_grad(lambda m, a: a.broadcast_to((2, 3, 4)), A34[:1])
    assert bp.Tensor.broadcast_to is bp.broadcast_to
    _same_value_and_grad(lambda m, a: a.sum_to_size(3, 1), A234)
    _same_value_and_grad(lambda m, a: a.sum_to_size((1, 4)), A234)
    _same_value_and_grad(lambda m, a: a.mT, A234)
    _same_value_and_grad(lambda m, a: a.mH, A34)
    with pytest.raises(RuntimeError, match=r"\[sum_to_size\]"):
        bp.tensor(A34).sum_to_size(2, 4)


@pytest.mark.parametrize("k", [0, 1, -2])
def test_diag_diagonal_diag_embed_trace(k):
    _same_value_and_grad(lambda m, a: m.diag(a, k), A34[0])
    _same_value_and_grad(lambda m, a: a.diag(diagonal=k), A34)
    _same_value_and_grad(lambda m, a: m.diagonal(a, k, 0, 2), A234)
    _same_value_and_grad(lambda m, a: a.diagonal(offset=k, dim1=-1, dim2=1), A234)
    _same_value_and_grad(lambda m, a: m.diag_embed(a, k), A34)
    _same_value_and_grad(lambda m, a: a.diag_embed(offset=k, dim1=0, dim2=2), A34)
    _same_value_and_grad(lambda m, a: m.trace(a), A34)


def test_tril_triu_indices_meshgrid_cartesian_prod():
    for row, col, offset in [(3, 4, 0), (4, 3, -1), (3, 3, 2)]:
        assert (
            bp.tril_indices(row, col, offset).tolist()
            == torch.tril_indices(row, col, offset).tolist()
        )
        assert (
            bp.triu_indices(row, col, offset).tolist()
            == torch.triu_indices(row, col, offset).tolist()
        )
    for indexing in ("ij", "xy"):
        a, b, c = (RNG.normal(size=n) for n in (2, 3, 4))
        pairs = [_pair(v) for v in (a, b, c)]
        got = bp.meshgrid(*[p[0] for p in pairs], indexing=indexing)
        want = torch.meshgrid(*[p[1] for p in pairs], indexing=indexing)
        for g, w in zip(got, want):
            _close(g, w)
        weights = np.arange(24.0).reshape(tuple(want[0].shape))
        sum((g * bp.tensor(weights * (i + 1))).sum() for i, g in enumerate(got)).backward()
        sum((w * torch.tensor(weights * (i + 1))).sum() for i, w in enumerate(want)).backward()
        for b_, t_ in pairs:
            _close(b_.grad, t_.grad)
    _same_value_and_grad(lambda m, a, b: m.cartesian_prod(a, b), A34[0], A34[1, :2])


def test_kron_and_cdist():
    _same_value_and_grad(lambda m, a, b: m.kron(a, b), A34[:2, :3], A34[1:, 2:])
    _same_value_and_grad(lambda m, a, b: a.kron(b), A34[0], A234[:, :2, :2])
    x1, x2 = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 5, 4))
    for p in (2.0, 1.0, 3.0, 0.5, math.inf):
        _same_value_and_grad(lambda m, a, b: m.cdist(a, b, p=p), x1, x2)
    _same_value_and_grad(lambda m, a, b: m.cdist(a, b, p=0.0), x1, x2)
    same = A34[:2]  # zero distances: PyTorch's gradient there is zero
    _same_value_and_grad(lambda m, a, b: m.cdist(a, b), same, same)
    with pytest.raises(RuntimeError, match=r"\[cdist\]"):
        bp.cdist(bp.zeros(2, 3), bp.zeros(2, 4))


# ---- scans and reductions ----


def test_cumprod_with_zeros_logcumsumexp():
    a = A234.copy()
    a[0, 1, 1] = 0.0
    a[1, 2, 0] = 0.0
    a[1, 2, 2] = 0.0
    for dim in (0, 1, 2, -1):
        _same_value_and_grad(lambda m, x: m.cumprod(x, dim), a)
        _same_value_and_grad(lambda m, x: x.logcumsumexp(dim), a * 30)
    assert bp.tensor([True, True, False]).cumprod(0).tolist() == [1, 1, 0]
    assert bp.cumprod(bp.tensor([1, 2, 3]), 0, dtype=bp.float64).dtype == bp.float64


@pytest.mark.parametrize("name", ["cummax", "cummin"])
def test_cummax_cummin(name):
    a = np.array([[1.0, 3.0, 3.0, 2.0, 3.0], [2.0, 1.0, 1.0, 3.0, -1.0]])
    for dim in (0, 1):
        pb, pt = _pair(a)
        got, want = getattr(pb, name)(dim), getattr(torch, name)(pt, dim)
        _close(got.values, want.values)
        assert got.indices.tolist() == want.indices.tolist()
        weights = np.arange(1.0, 11.0).reshape(2, 5)
        (got.values * bp.tensor(weights)).sum().backward()
        (want.values * torch.tensor(weights)).sum().backward()
        _close(pb.grad, pt.grad)
    values, indices = getattr(bp, name)(bp.tensor([1.0, math.nan, 0.5, 2.0]), 0)
    want = getattr(torch, name)(torch.tensor([1.0, math.nan, 0.5, 2.0]), 0)
    _close(values, want.values.double().numpy().astype(np.float32))
    assert indices.tolist() == want.indices.tolist()


def test_diff():
    _same_value_and_grad(lambda m, a: m.diff(a), A34)
    _same_value_and_grad(lambda m, a: a.diff(n=2, dim=0), A34)
    _same_value_and_grad(
        lambda m, a, p, q: m.diff(a, 1, 1, prepend=p, append=q), A34, A34[:, :1], A34[:, :2]
    )
    assert bp.tensor([1, 4, 9]).diff().tolist() == [3, 5]
    assert bp.tensor([True, True, False]).diff().tolist() == [False, True]


def test_aminmax_nansum_nanmean():
    a = A34.copy()
    a[0, 1] = a[2, 3] = math.nan
    b, t = bp.tensor(A34), torch.tensor(A34)
    for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}):
        got, want = bp.aminmax(b, **kwargs), torch.aminmax(t, **kwargs)
        _close(got.min, want.min)
        _close(got.max, want.max)
    for kwargs in ({}, {"dim": 1}, {"dim": (0, 1), "keepdim": True}):
        _same_value_and_grad(lambda m, x: m.nansum(x, **kwargs), a)
        _same_value_and_grad(lambda m, x: x.nanmean(**kwargs), a)


def test_median():
    a = RNG.permutation(24).reshape(4, 6).astype(np.float64)  # distinct values: indices agree
    _same_value_and_grad(lambda m, x: m.median(x), a)
    for dim, keepdim in ((0, False), (1, True), (-1, False)):
        pb, pt = _pair(a)
        got, want = pb.median(dim, keepdim), torch.median(pt, dim, keepdim)
        _close(got.values, want.values)
        assert got.indices.tolist() == want.indices.tolist()
        got.values.sum().backward()
        want.values.sum().backward()
        _close(pb.grad, pt.grad)
    with_nan = np.array([[1.0, math.nan, 0.0], [2.0, 1.0, 3.0]])
    got, want = bp.median(bp.tensor(with_nan), 1), torch.median(torch.tensor(with_nan), 1)
    _close(got.values, want.values)
    assert got.indices.tolist() == want.indices.tolist()
    assert math.isnan(bp.tensor(with_nan).median().item())
    assert math.isnan(bp.tensor([]).median().item()) and math.isnan(torch.tensor([]).median())


def test_mode():
    a = np.array([[1.0, 2.0, 2.0, 1.0, 3.0], [4.0, 4.0, 5.0, 5.0, 5.0]])
    for dim, keepdim in ((1, False), (-1, True)):
        pb, pt = _pair(a)
        got, want = bp.mode(pb, dim, keepdim), torch.mode(pt, dim, keepdim)
        _close(got.values, want.values)
        assert got.indices.tolist() == want.indices.tolist()
        got.values.sum().backward()
        want.values.sum().backward()
        _close(pb.grad, pt.grad)


@pytest.mark.parametrize("interpolation", ["linear", "lower", "higher", "midpoint", "nearest"])
def test_quantile(interpolation):
    a = RNG.normal(size=(3, 5))
    q = [0.0, 0.3, 0.5, 0.9, 1.0]
    for kwargs in ({}, {"dim": 1}, {"dim": 0, "keepdim": True}, {"dim": None, "keepdim": True}):
        _same_value_and_grad(
            lambda m, x: m.quantile(x, 0.3, interpolation=interpolation, **kwargs), a
        )
        _same_value_and_grad(
            lambda m, x: x.quantile(
                m.tensor(q, dtype=m.float64), interpolation=interpolation, **kwargs
            ),
            a,
        )
    b = a.copy()
    b[0, 1] = b[2, :] = math.nan
    for name in ("quantile", "nanquantile"):
        got = getattr(bp, name)(bp.tensor(b), bp.tensor([0.25, 0.5], dtype=bp.float64), dim=1)
        want = getattr(torch, name)(
            torch.tensor(b), torch.tensor([0.25, 0.5], dtype=torch.float64), dim=1
        )
        _close(got, want)
    with pytest.raises(RuntimeError, match=r"\[quantile\]"):
        bp.quantile(bp.tensor(a), 1.5)


def test_std_mean_var_mean():
    for kwargs in (
        {},
        {"dim": 1},
        {"dim": 0, "keepdim": True, "correction": 0},
        {"unbiased": False},
    ):
        for name in ("std_mean", "var_mean"):
            _same_value_and_grad(lambda m, x: m.stack(list(getattr(m, name)(x, **kwargs))), A34)


# ---- elementwise ----


def test_isclose():
    a = np.array([1.0, 1.0 + 1e-7, math.nan, math.inf, -math.inf, 1.0, 0.0])
    b = np.array([1.0, 1.0, math.nan, math.inf, math.inf, 1.1, 1e-9])
    for kwargs in ({}, {"equal_nan": True}, {"rtol": 0.2, "atol": 0.0}):
        got = bp.isclose(bp.tensor(a), bp.tensor(b), **kwargs)
        assert got.tolist() == torch.isclose(torch.tensor(a), torch.tensor(b), **kwargs).tolist()
    assert bp.tensor([1, 2]).isclose(bp.tensor([1, 3])).tolist() == [True, False]


def test_nan_to_num():
    a = np.array([[1.0, math.nan, math.inf], [-math.inf, -2.0, 0.5]])
    for kwargs in ({}, {"nan": 1.5, "posinf": 9.0, "neginf": -9.0}):
        for dtype in (np.float32, np.float64):
            got = bp.nan_to_num(bp.tensor(a.astype(dtype)), **kwargs)
            want = torch.nan_to_num(torch.tensor(a.astype(dtype)), **kwargs)
            np.testing.assert_array_equal(_np(got), want.numpy())
        _same_value_and_grad(lambda m, x: x.nan_to_num(**kwargs), a)
        _same_value_and_grad(lambda m, x: (x * 1.0).nan_to_num_(**kwargs), a)


def test_elementwise_composed():
    p = RNG.uniform(0.05, 0.95, size=(3, 4))
    _same_value_and_grad(lambda m, x: m.logit(x), p)
    _same_value_and_grad(lambda m, x: x.logit(eps=0.2), p)
    _same_value_and_grad(lambda m, x: m.erfc(x), A34)
    for name in ("sinh", "cosh", "tan", "asinh"):
        _same_value_and_grad(lambda m, x: getattr(m, name)(x), A34)
        _same_value_and_grad(lambda m, x: getattr(x, name)(), A34)
    _same_value_and_grad(lambda m, x: m.acosh(x), 1.1 + np.abs(A34))
    _same_value_and_grad(lambda m, x: x.atanh(), np.tanh(A34))
    _same_value_and_grad(lambda m, x, y: m.xlogy(x, y), A34, np.abs(A34[0]) + 0.1)
    _same_value_and_grad(lambda m, x, y: x.hypot(y), A34, A34[::-1].copy())
    zero_x = np.array([0.0, 0.0, 2.0, 0.0])
    y = np.array([0.0, 1.0, 3.0, math.nan])
    got, want = (
        bp.xlogy(bp.tensor(zero_x), bp.tensor(y)),
        torch.xlogy(torch.tensor(zero_x), torch.tensor(y)),
    )
    _close(got, want)
    _close(bp.xlogy(2, bp.tensor(y)), torch.xlogy(2, torch.tensor(y)))
    signs = np.array([-1.5, -0.0, 0.0, 2.0, -math.inf])
    assert bp.signbit(bp.tensor(signs)).tolist() == torch.signbit(torch.tensor(signs)).tolist()
    assert bp.tensor([-3, 0, 2]).signbit().tolist() == [True, False, False]
    _same_value_and_grad(lambda m, x: m.sgn(x), A34)
    step = np.array([-1.0, 0.0, 2.0, 0.0])
    values = np.array([0.5, 0.25, 0.5, 0.75])
    got = bp.heaviside(bp.tensor(step), bp.tensor(values))
    _close(got, torch.heaviside(torch.tensor(step), torch.tensor(values)))


def test_more_inplace_unary_and_dtype_rule():
    for name in ("expm1_", "log1p_", "erf_", "sign_", "rsqrt_"):
        _same_value_and_grad(lambda m, a: getattr(a * 1.0 + 2.5, name)(), A34)
    with pytest.raises(RuntimeError, match=r"\[exp_\] result type float32 can't be cast"):
        bp.arange(3).exp_()
    x = bp.arange(3)
    assert x.abs_() is x and x.dtype == bp.int64


def test_addcmul_addcdiv_and_in_place():
    b = RNG.uniform(0.5, 2.0, size=(4,))
    _same_value_and_grad(lambda m, a, t1, t2: m.addcmul(a, t1, t2, value=0.5), A34, A34 + 1, b)
    _same_value_and_grad(lambda m, a, t1, t2: a.addcdiv(t1, t2, value=-2), A34, A34 + 1, b)
    _same_value_and_grad(lambda m, a, t1, t2: (a * 1.0).addcmul_(t1, t2), A34, A34 + 1, b)
    _same_value_and_grad(
        lambda m, a, t1, t2: (a * 1.0).addcdiv_(t1, t2, value=0.1), A34, A34 + 1, b
    )
    with pytest.raises(RuntimeError, match=r"\[addcdiv\]"):
        bp.addcdiv(bp.zeros(2), bp.tensor([1, 2]), bp.tensor([1, 1]))


def test_addmm_family():
    m1, m2 = RNG.normal(size=(3, 4)), RNG.normal(size=(4, 2))
    for kwargs in ({}, {"beta": 0.5, "alpha": 2.0}, {"beta": 0}):
        _same_value_and_grad(lambda m, a, x, y: m.addmm(a, x, y, **kwargs), A34[0, :2], m1, m2)
        _same_value_and_grad(lambda m, a, x, y: a.addmv(x, y, **kwargs), A34[:, 0], m1, A34[0])
        b1, b2 = RNG.normal(size=(2, 3, 4)), RNG.normal(size=(2, 4, 2))
        _same_value_and_grad(
            lambda m, a, x, y: m.baddbmm(a, x, y, **kwargs), RNG.normal(size=(3, 2)), b1, b2
        )
        _same_value_and_grad(
            lambda m, a, x, y: a.addbmm(x, y, **kwargs), RNG.normal(size=(3, 2)), b1, b2
        )
    with pytest.raises(RuntimeError, match=r"\[addmm\]"):
        bp.addmm(bp.zeros(2), bp.zeros(2), bp.zeros(2, 2))


def test_logaddexp_rot90_take_along_dim():
    _same_value_and_grad(lambda m, a, b: m.logaddexp(a, b), A34 * 40, A34[0] * 40)
    _same_value_and_grad(lambda m, a, b: a.logaddexp2(b), A34, A34[:, :1])
    for k, dims in ((1, (0, 1)), (2, (1, 2)), (3, (0, 2)), (-1, (2, 0)), (4, (0, 1))):
        _same_value_and_grad(lambda m, a: m.rot90(a, k, dims), A234)
    index = np.array([[0, 3], [1, 1], [2, 0]])
    _same_value_and_grad(lambda m, a: m.take_along_dim(a, m.tensor(index), dim=1), A34)
    _same_value_and_grad(lambda m, a: a.take_along_dim(m.tensor(index[:2, :1]), 0), A34)
    _same_value_and_grad(lambda m, a: m.take_along_dim(a, m.tensor([5, 0, 11])), A34)


def test_atleast_and_block_diag():
    for name in ("atleast_1d", "atleast_2d", "atleast_3d"):
        for shape in ((), (3,), (2, 3), (2, 3, 1)):
            got = getattr(bp, name)(bp.zeros(shape))
            assert tuple(got.shape) == tuple(getattr(torch, name)(torch.zeros(shape)).shape)
        got = getattr(bp, name)(bp.zeros(()), bp.zeros(2))
        want = getattr(torch, name)(torch.zeros(()), torch.zeros(2))
        assert [tuple(g.shape) for g in got] == [tuple(w.shape) for w in want]
    _same_value_and_grad(lambda m, a, b, c: m.block_diag(a, b, c), A34[:2, :3], A34[0], A34[1, 0])
    got = bp.block_diag(bp.tensor([[1, 2]]), bp.tensor([[0.5]]))
    want = torch.block_diag(torch.tensor([[1, 2]]), torch.tensor([[0.5]]))
    assert got.tolist() == want.tolist() and got.dtype == bp.float32


def test_type_as_ndimension_ravel():
    x = bp.tensor([1, 2])
    assert x.type_as(bp.tensor([1.5])).dtype == bp.float32 and x.type_as(x) is x
    assert bp.zeros(2, 3).ndimension() == torch.zeros(2, 3).ndimension() == 2
    _same_value_and_grad(lambda m, a: m.ravel(a.t()), A34)


def test_index_put_and_masked_scatter():
    rows, cols = [0, 2, 0], [1, 3, 1]  # a repeated position: written once, or added twice
    got = bp.zeros(3, 4).index_put((bp.tensor(rows), bp.tensor(cols)), bp.tensor([1.0, 2.0, 3.0]))
    want = torch.zeros(3, 4).index_put(
        (torch.tensor(rows), torch.tensor(cols)), torch.tensor([1.0, 2.0, 3.0])
    )
    _close(got, want)
    for accumulate in (False, True):
        _same_value_and_grad(
            lambda m, a, v: a.index_put((m.tensor(rows[1:]), m.tensor(cols[1:])), v, accumulate),
            A34,
            RNG.normal(size=(1,)),
        )
        _same_value_and_grad(
            lambda m, a, v: a.index_put((m.tensor(rows), m.tensor(cols)), v, accumulate=True),
            A34,
            RNG.normal(size=(3,)),
        )
        _same_value_and_grad(
            lambda m, a, v: (a * 1.0).index_put_((m.tensor([-1, 0]),), v, accumulate=accumulate),
            A34,
            RNG.normal(size=(4,)),
        )
    mask = np.array([[True, False, True, False]] * 3)
    _same_value_and_grad(lambda m, a, v: m.index_put(a, (m.tensor(mask),), v), A34, [2.5])
    with pytest.raises(IndexError, match=r"\[index_put\]"):
        bp.index_put(bp.zeros(3), (bp.tensor([3]),), bp.tensor(1.0))
    _same_value_and_grad(
        lambda m, a, s: m.masked_scatter(a, m.tensor(mask[0]), s), A34, RNG.normal(size=(9,))
    )


def test_products_and_statistics():
    _same_value_and_grad(lambda m, a: m.diagflat(a, -1), A34[:2, :2])
    _same_value_and_grad(lambda m, a, b: m.cross(a, b, dim=1), A34[:, :3], A34[:, 1:])
    _same_value_and_grad(lambda m, a, b: a.cross(b, dim=0), A34[:, :3].T, A34[:, 1:].T)
    _same_value_and_grad(lambda m, a: m.trapezoid(a), A34)
    _same_value_and_grad(lambda m, a: m.trapezoid(a, dx=0.5, dim=0), A34)
    _same_value_and_grad(lambda m, a, x: m.trapezoid(a, x), A34, [0.0, 1.0, 3.0, 4.5])
    _same_value_and_grad(lambda m, a, x: m.trapz(a, x, dim=1), A34, A34.cumsum(1))
    _same_value_and_grad(lambda m, a: m.cov(a), A34)
    _same_value_and_grad(lambda m, a: a.cov(correction=0), A34[0])
    fw, aw = np.array([1, 2, 1, 3]), np.array([0.5, 1.0, 2.0, 1.0])
    _same_value_and_grad(
        lambda m, a: m.cov(a, fweights=m.tensor(fw), aweights=m.tensor(aw, dtype=m.float64)), A34
    )
    _same_value_and_grad(lambda m, a: m.corrcoef(a), A34)
    _same_value_and_grad(lambda m, a, b: m.inner(a, b), A34, A34[:2])
    _same_value_and_grad(lambda m, a, b: a.inner(b), A234, A34[:2])
    _same_value_and_grad(
        lambda m, a, b: m.tensordot(a, b, 2), A234.reshape(3, 2, 4), A234.reshape(2, 4, 3)
    )
    _same_value_and_grad(lambda m, a, b: m.tensordot(a, b, ([0, 2], [2, 0])), A234, A234.T)
    _same_value_and_grad(lambda m, a, b: m.tensordot(a, b, 0), A34[0], A34[1, :2])
    _same_value_and_grad(lambda m, a, b: m.vdot(a, b), A34[0], A34[1])
    with pytest.raises(RuntimeError, match=r"\[cross\]"):
        bp.cross(bp.zeros(2, 4), bp.zeros(2, 4), dim=1)


def test_nanmedian_fmax_fmin_copysign_and_more():
    a = np.array([[1.0, math.nan, 3.0, 2.0, 5.0], [4.0, 0.0, math.nan, math.nan, 1.5]])
    _same_value_and_grad(lambda m, x: m.nanmedian(x), a)
    for dim in (1, -1):
        pb, pt = _pair(a)
        got, want = pb.nanmedian(dim, keepdim=True), torch.nanmedian(pt, dim, keepdim=True)
        _close(got.values, want.values)
        assert got.indices.tolist() == want.indices.tolist()
    x = np.array([1.0, math.nan, 3.0, math.nan, -2.0])
    y = np.array([2.0, 1.0, math.nan, math.nan, -3.0])
    for name in ("fmax", "fmin"):
        _same_value_and_grad(lambda m, p, q: getattr(m, name)(p, q), x, y)
    _same_value_and_grad(lambda m, p: m.copysign(p, m.tensor(A34[::-1].copy())), A34)
    signs = np.array([1.0, -2.0, 3.0, 0.0])
    got = bp.copysign(bp.tensor(signs), bp.tensor([-1.0, 1.0, -0.0, -3.0]))
    _close(got, torch.copysign(torch.tensor(signs), torch.tensor([-1.0, 1.0, -0.0, -3.0])))
    _close(bp.copysign(bp.tensor([1, -2]), -1.0), torch.copysign(torch.tensor([1, -2]), -1.0))
    _same_value_and_grad(lambda m, p: m.deg2rad(p), A34)
    _same_value_and_grad(lambda m, p: p.rad2deg(), A34)
    _same_value_and_grad(lambda m, p, q: m.float_power(p, q), np.abs(A34) + 0.5, A34[0])
    assert bp.float_power(bp.tensor([2, 3]), 2).dtype == bp.float64
    assert bp.positive(bp.tensor([1.0])).tolist() == [1.0]
    with pytest.raises(TypeError, match=r"\[positive\]"):
        bp.positive(bp.tensor([True]))
    _same_value_and_grad(lambda m, p: m.msort(p), A34)
    _close(bp.logspace(0, 2, 5), torch.logspace(0, 2, 5), rtol=1e-6)
    _close(
        bp.logspace(-1, 3, 4, base=2.0, dtype=bp.float64),
        torch.logspace(-1, 3, 4, base=2.0, dtype=torch.float64),
    )
    for name in ("greater", "greater_equal", "less", "less_equal", "not_equal"):
        got = getattr(bp.tensor([1, 2, 3]), name)(2)
        assert got.tolist() == getattr(torch.tensor([1, 2, 3]), name)(2).tolist()
    _same_value_and_grad(lambda m, p: m.absolute(p), A34)
    _same_value_and_grad(lambda m, p: p.arcsinh(), A34)
    _same_value_and_grad(lambda m, p: m.arccosh(p), np.abs(A34) + 1.5)
    _same_value_and_grad(lambda m, p: m.arctanh(p), np.tanh(A34))
    _close(bp.tensor(A34 * 3).fix(), torch.tensor(A34 * 3).fix())


def test_python_operators():
    for a_values, b_values in (([5, -5, 7], [2, 3, -3]), ([5.5, -5.0, 7.0], [2.0, 2.0, -3.0])):
        a, b = bp.tensor(a_values), bp.tensor(b_values)
        ta, tb = torch.tensor(a_values), torch.tensor(b_values)
        assert (a // b).tolist() == (ta // tb).tolist()
        assert (a // 2).tolist() == (ta // 2).tolist()
        assert (7 // b).tolist() == (7 // tb).tolist()
        assert (a % b).tolist() == (ta % tb).tolist()
        assert (a % 3).tolist() == (ta % 3).tolist()
        assert (7 % b).tolist() == (7 % tb).tolist()
        a //= 2
        ta //= 2
        assert a.tolist() == ta.tolist()
        a %= 3
        ta %= 3
        assert a.tolist() == ta.tolist()
    assert (+bp.tensor([1, -2])).tolist() == [1, -2]
    assert abs(bp.tensor([1, -2])).tolist() == [1, 2]
    got = np.ones((2, 3)) @ bp.ones(3, 2, dtype=bp.float64)
    assert got.tolist() == [[3.0, 3.0], [3.0, 3.0]]
    m = bp.tensor([True, True, False])
    m &= bp.tensor([True, False, False])
    assert m.tolist() == [True, False, False]
    m |= bp.tensor([False, False, True])
    m ^= bp.tensor([True, False, False])
    assert m.tolist() == [False, False, True]
    assert 2 in bp.tensor([1, 2]) and 3 not in bp.tensor([1, 2]) and 2.0 in bp.tensor([1.0, 2.0])
    assert list(reversed(bp.tensor([1, 2, 3])).tolist()) == [3, 2, 1]
    _close(bp.tensor(A34) // 0.5, torch.tensor(A34) // 0.5)
    _same_value_and_grad(lambda m, a: a % 0.7, A34)
    _close(1.5 % (bp.tensor(A34).abs() + 1), 1.5 % (torch.tensor(A34).abs() + 1))


# ---- counting and searching ----


def test_argwhere_unique_unique_consecutive():
    a = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, 3.0]])
    assert bp.argwhere(bp.tensor(a)).tolist() == torch.argwhere(torch.tensor(a)).tolist()
    v = np.array([3, 1, 2, 1, 3, 3, 0])
    for kwargs in (
        {},
        {"return_inverse": True},
        {"return_counts": True},
        {"return_inverse": True, "return_counts": True, "sorted": True},
    ):
        got = bp.unique(bp.tensor(v), **kwargs)
        want = torch.unique(torch.tensor(v), **kwargs)
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
        got = bp.tensor(v).unique_consecutive(**{k: x for k, x in kwargs.items() if k != "sorted"})
        want = torch.unique_consecutive(
            torch.tensor(v), **{k: x for k, x in kwargs.items() if k != "sorted"}
        )
        got, want = (got, want) if isinstance(want, tuple) else ((got,), (want,))
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
    m = np.array([[1, 2], [0, 1], [1, 2], [1, 2], [0, 1]])
    for dim in (0, 1):
        got = bp.unique(bp.tensor(m), dim=dim, return_inverse=True, return_counts=True)
        want = torch.unique(torch.tensor(m), dim=dim, return_inverse=True, return_counts=True)
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
        got = bp.unique_consecutive(bp.tensor(m), dim=dim, return_inverse=True, return_counts=True)
        want = torch.unique_consecutive(
            torch.tensor(m), dim=dim, return_inverse=True, return_counts=True
        )
        assert [g.tolist() for g in got] == [w.tolist() for w in want]
    f = bp.unique(bp.tensor([2.5, 1.0, 2.5]))
    assert f.dtype == bp.float32 and f.tolist() == [1.0, 2.5]


def test_bincount_histc():
    x = np.array([0, 3, 1, 1, 3, 3])
    w = np.array([0.5, 1.0, 2.0, 0.25, 1.0, 1.5])
    assert bp.bincount(bp.tensor(x)).tolist() == torch.bincount(torch.tensor(x)).tolist()
    assert (
        bp.tensor(x).bincount(minlength=7).tolist()
        == torch.bincount(torch.tensor(x), minlength=7).tolist()
    )
    for dtype in (np.float32, np.float64):
        got = bp.bincount(bp.tensor(x), bp.tensor(w.astype(dtype)))
        want = torch.bincount(torch.tensor(x), torch.tensor(w.astype(dtype)))
        assert got.dtype.name == str(want.dtype).split(".")[1]
        _close(got, want)
    with pytest.raises(RuntimeError, match=r"\[bincount\]"):
        bp.bincount(bp.tensor([-1, 2]))
    h = np.array([1.0, 2.0, 1.0, 4.0, 3.0, -1.0, 2.5])
    for kwargs in ({"bins": 4, "min": 0, "max": 3}, {"bins": 5}, {}):
        _close(bp.tensor(h).histc(**kwargs), torch.histc(torch.tensor(h), **kwargs))


def test_searchsorted_bucketize():
    seq = np.array([1.0, 3.0, 5.0, 7.0, 9.0])
    values = np.array([[3.0, 6.0, 9.0], [0.0, 1.0, 10.0]])
    for right in (False, True):
        got = bp.searchsorted(bp.tensor(seq), bp.tensor(values), right=right)
        want = torch.searchsorted(torch.tensor(seq), torch.tensor(values), right=right)
        assert got.tolist() == want.tolist()
        got = bp.bucketize(bp.tensor(values), bp.tensor(seq), right=right)
        want = torch.bucketize(torch.tensor(values), torch.tensor(seq), right=right)
        assert got.tolist() == want.tolist()
    rows = np.array([[1.0, 3.0, 5.0], [2.0, 4.0, 6.0]])
    got = bp.searchsorted(bp.tensor(rows), bp.tensor(values[:, :2]), side="right")
    want = torch.searchsorted(torch.tensor(rows), torch.tensor(values[:, :2]), side="right")
    assert got.tolist() == want.tolist()
    assert (
        bp.searchsorted(bp.tensor(seq), 4.0).tolist()
        == torch.searchsorted(torch.tensor(seq), 4.0).tolist()
    )
    with pytest.raises(RuntimeError, match=r"\[searchsorted\]"):
        bp.searchsorted(bp.tensor(rows), bp.tensor([1.0, 2.0, 3.0]))


# ---- constructors, memory formats, defaults, printing ----


def test_typed_constructors():
    for name in ("FloatTensor", "DoubleTensor", "LongTensor", "BoolTensor"):
        ours, theirs = getattr(bp, name), getattr(torch, name)
        assert ours(2, 3).shape == theirs(2, 3).shape
        assert ours(2, 3).dtype.name == str(theirs(2, 3).dtype).split(".")[1]
        data = [[1, 0, 2]]
        assert ours(data).tolist() == theirs(data).tolist()
        assert ours().shape == theirs().shape
        assert isinstance(ours(1), ours)
    assert isinstance(bp.zeros(2), bp.FloatTensor) and not isinstance(bp.zeros(2), bp.LongTensor)
    assert isinstance(bp.tensor([1]), bp.LongTensor)
    assert bp.FloatTensor([1.5, 2]).tolist() == [1.5, 2.0]


def test_memory_formats():
    x = bp.arange(6.0).reshape(2, 3).t()
    for name in ("contiguous_format", "preserve_format", "channels_last"):
        fmt = getattr(bp, name)
        assert isinstance(fmt, bp.memory_format) and repr(fmt) == f"bprop.{name}"
    y = x.to(bp.float64, memory_format=bp.contiguous_format)
    assert y.dtype == bp.float64 and y.tolist() == x.tolist()
    assert x.to(memory_format=bp.preserve_format).tolist() == x.tolist()


def test_default_device():
    bp.set_default_device("cpu")
    bp.set_default_device(None)
    assert bp.get_default_device() == bp.device("cpu")
    with pytest.raises(RuntimeError):
        bp.set_default_device("cuda")


def test_set_printoptions_matches_torch():
    values = np.array([[1.123456789, -20.5, 3e-3], [4.0, 5.5, 6.25]])
    cases = [
        {"precision": 2},
        {"sci_mode": True},
        {"sci_mode": False, "precision": 6},
        {"threshold": 5, "edgeitems": 1},
        {"profile": "short"},
        {"linewidth": 20},
    ]
    long_values = np.arange(30.0).reshape(3, 10) / 7
    try:
        for options in cases:
            bp.set_printoptions(**options)
            torch.set_printoptions(**options)
            for v in (values, long_values):
                assert repr(bp.tensor(v, dtype=bp.float32)) == repr(
                    torch.tensor(v, dtype=torch.float32)
                )
            bp.set_printoptions(profile="default", sci_mode=None)
            torch.set_printoptions(profile="default", sci_mode=None)
    finally:
        bp.set_printoptions(profile="default", sci_mode=None)
        torch.set_printoptions(profile="default", sci_mode=None)
    assert repr(bp.tensor([1.5, 2.0])) == "tensor([1.5000, 2.0000])"


@pytest.mark.parametrize(
    "fn",
    [
        lambda a, b: bp.cdist(a, b, p=3.0),
        lambda a, b: bp.cdist(a, b, p=1.5),
        lambda a, b: bp.logcumsumexp(a - b.sum(), 1),
        lambda a, b: bp.quantile(a, bp.tensor([0.2, 0.7], dtype=bp.float64), dim=0),
        lambda a, b: bp.kron(a, b),
    ],
    ids=["cdist_p3", "cdist_p1.5", "logcumsumexp", "quantile", "kron"],
)
def test_second_order_by_central_differences(fn):
    """Second derivatives (PyTorch's cdist has none for p != 2) against central differences."""
    a = bp.tensor(RNG.normal(size=(3, 4)), requires_grad=True)
    b = bp.tensor(RNG.normal(size=(2, 4)), requires_grad=True)
    assert bp.testing.gradcheck(fn, (a, b))
    assert bp.testing.gradgradcheck(fn, (a, b))

"""Property tests: random shapes, values, reductions, expression graphs and files.

Hypothesis draws the cases; the profile in conftest.py fixes the seed and the example count
("ci"), and HYPOTHESIS_PROFILE=thorough explores more. Forwards are checked against numpy
(float64 references) and always run; gradients are checked against torch.autograd with a
random upstream gradient, and skip when torch is not installed (the `torch` fixture).

Every gradient check also asserts that `.grad` has its leaf's shape, so the reduction of
broadcast gradients back to input shapes is part of each comparison.
"""

from __future__ import annotations

import math
import string
import warnings

import bprop as bp
import hypothesis.extra.numpy as hnp
import numpy as np
import oracles
import pytest
from hypothesis import assume, event, example, given
from hypothesis import strategies as st

# ---------------------------------------------------------------------------------------------
# tolerances, dtypes, value domains
# ---------------------------------------------------------------------------------------------

FLOATS = ["float32", "float64"]
BP_DTYPE = {"float32": bp.float32, "float64": bp.float64, "int64": bp.int64, "bool": bp.bool}
FWD_TOL = {"float32": {"rtol": 3e-5, "atol": 3e-6}, "float64": {"rtol": 1e-10, "atol": 1e-12}}
GRAD_TOL = {"float32": {"rtol": 1e-4, "atol": 1e-5}, "float64": {"rtol": 1e-10, "atol": 1e-12}}

# Value ranges where every op below is well conditioned: "nonzero" keeps divisors and powers'
# bases away from 0, "pos" keeps log/sqrt arguments away from 0.
DOMAINS = {
    "any": (-2.0, 2.0),
    "small": (-3.0, 3.0),
    "unit": (-1.0, 1.0),
    "pos": (0.5, 2.0),
    "gtm1": (-0.5, 2.0),
    "nonzero": None,
}


def elements(dtype: str, domain: str):
    width = 32 if dtype == "float32" else 64
    if domain == "nonzero":
        return st.one_of(st.floats(-2.0, -0.5, width=width), st.floats(0.5, 2.0, width=width))
    lo, hi = DOMAINS[domain]
    return st.floats(lo, hi, width=width)


def arrays(dtype: str, shape, domain: str = "any"):
    return hnp.arrays(np.dtype(dtype), shape, elements=elements(dtype, domain))


def shapes(min_dims=0, max_dims=4, min_side=0, max_side=4):
    return hnp.array_shapes(
        min_dims=min_dims, max_dims=max_dims, min_side=min_side, max_side=max_side
    )


def broadcastable(num_shapes: int):
    # Sides of at most 2 half of the time, so that zero-size dims come up often.
    return st.one_of(
        *[
            hnp.mutually_broadcastable_shapes(
                num_shapes=num_shapes, min_dims=0, max_dims=4, min_side=0, max_side=side
            )
            for side in (4, 2)
        ]
    )


@pytest.fixture(scope="module")
def torch():
    """torch for the gradient oracles; tests that take this fixture skip without it."""
    return pytest.importorskip("torch")


def to_np(t) -> np.ndarray:
    return np.asarray(t.detach().numpy() if hasattr(t, "detach") else t)


def check_forward(out, expected, dtype: str):
    """Shape, then dtype, then values (bprop's float32 against a float64 reference)."""
    expected = np.asarray(expected)
    assert tuple(out.shape) == expected.shape
    assert out.dtype == BP_DTYPE[dtype]
    np.testing.assert_allclose(to_np(out), expected, **FWD_TOL[dtype])


def check_grads(bp_leaves, torch_leaves, dtype: str):
    for i, (b, t) in enumerate(zip(bp_leaves, torch_leaves)):
        assert t.grad is not None
        assert b.grad is not None, f"leaf {i} got no gradient"
        assert tuple(b.grad.shape) == tuple(b.shape), f"leaf {i}: grad shape != input shape"
        assert b.grad.dtype == b.dtype
        np.testing.assert_allclose(
            to_np(b.grad), t.grad.numpy(), **GRAD_TOL[dtype], err_msg=f"leaf {i}"
        )


# Non-contiguous operands: the op sees a view (transposed, or every other element of a larger
# array), and gradients are compared on the leaf the view was taken from.
LAYOUTS = ["contiguous", "transposed", "strided"]


def leaf_data(arr: np.ndarray, layout: str) -> np.ndarray:
    """The array the leaf holds, such that `view(m, leaf, layout)` has `arr`'s values."""
    if layout == "transposed":
        return arr.transpose(tuple(reversed(range(arr.ndim)))).copy(order="C")
    if layout == "strided":
        base = np.full(tuple(2 * s for s in arr.shape), 7.0, dtype=arr.dtype)
        base[tuple(slice(None, None, 2) for _ in arr.shape)] = arr
        return base
    return arr


def view(m, leaf, layout: str, ndim: int):
    if layout == "transposed":
        return m.permute(leaf, tuple(reversed(range(ndim))))
    if layout == "strided":
        return leaf[tuple(slice(None, None, 2) for _ in range(ndim))]
    return leaf


def make_inputs(torch, arrays_, layouts):
    """Leaves in bprop and torch (requires_grad) and the operands the op is applied to."""
    bp_leaves, t_leaves, bp_ops, t_ops = [], [], [], []
    for arr, layout in zip(arrays_, layouts):
        data = leaf_data(arr, layout)
        b = bp.tensor(data, requires_grad=True)
        t = torch.tensor(data, requires_grad=True)
        bp_leaves.append(b)
        t_leaves.append(t)
        bp_ops.append(view(bp, b, layout, arr.ndim))
        t_ops.append(view(torch, t, layout, arr.ndim))
    return bp_leaves, t_leaves, bp_ops, t_ops


def backward_both(bp_out, t_out, g: np.ndarray):
    """Backpropagate the same upstream gradient `g` through both graphs."""
    bp_out.backward(bp.tensor(g))
    t_out.backward(t_out.new_tensor(g))


def upstream(data, dtype: str, shape):
    return data.draw(arrays(dtype, tuple(shape), "unit"), label="upstream gradient")


# ---------------------------------------------------------------------------------------------
# elementwise binary ops on broadcastable shapes
# ---------------------------------------------------------------------------------------------

# name: (fn(m, a, b), numpy reference, domains of a and b)
BINARY = {
    "add": (lambda m, a, b: m.add(a, b), np.add, ("any", "any")),
    "add_op": (lambda m, a, b: a + b, np.add, ("any", "any")),
    "sub": (lambda m, a, b: a - b, np.subtract, ("any", "any")),
    "mul": (lambda m, a, b: a * b, np.multiply, ("any", "any")),
    "div": (lambda m, a, b: a / b, np.divide, ("any", "nonzero")),
    "pow": (lambda m, a, b: a**b, np.power, ("pos", "any")),
    "maximum": (lambda m, a, b: m.maximum(a, b), np.maximum, ("any", "any")),
    "minimum": (lambda m, a, b: m.minimum(a, b), np.minimum, ("any", "any")),
}

COMPARISONS = {
    "eq": (lambda a, b: a == b, np.equal),
    "ne": (lambda a, b: a != b, np.not_equal),
    "lt": (lambda a, b: a < b, np.less),
    "le": (lambda a, b: a <= b, np.less_equal),
    "gt": (lambda a, b: a > b, np.greater),
    "ge": (lambda a, b: a >= b, np.greater_equal),
    "bp.lt": (lambda a, b: bp.lt(a, b), np.less),
    "bp.eq": (lambda a, b: bp.eq(a, b), np.equal),
}


def shape_events(*shapes_):
    """Shown by --hypothesis-show-statistics: how often the interesting cases come up."""
    event("zero-size" if any(0 in s for s in shapes_) else "non-empty")
    event("broadcasts" if len(set(shapes_)) > 1 else "same shapes")


def binary_case(data, name: str, dtype: str):
    sa, sb = data.draw(broadcastable(2), label="shapes").input_shapes
    shape_events(sa, sb)
    da, db = BINARY[name][2]
    a = data.draw(arrays(dtype, sa, da), label="a")
    b = data.draw(arrays(dtype, sb, db), label="b")
    return a, b


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_forward(name, dtype, data):
    fn, ref, _ = BINARY[name]
    a, b = binary_case(data, name, dtype)
    out = fn(bp, bp.tensor(a), bp.tensor(b))
    check_forward(out, ref(a.astype(np.float64), b.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(BINARY))
@given(data=st.data())
def test_binary_grad(name, dtype, data, torch):
    fn, _, _ = BINARY[name]
    a, b = binary_case(data, name, dtype)
    layouts = data.draw(st.tuples(st.sampled_from(LAYOUTS), st.sampled_from(LAYOUTS)))
    bl, tl, bo, to = make_inputs(torch, [a, b], layouts)
    out, t_out = fn(bp, *bo), fn(torch, *to)
    np.testing.assert_allclose(to_np(out), t_out.detach().numpy(), **FWD_TOL[dtype])
    backward_both(out, t_out, upstream(data, dtype, out.shape))
    check_grads(bl, tl, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(COMPARISONS))
@given(data=st.data())
def test_comparison_forward(name, dtype, data):
    fn, ref = COMPARISONS[name]
    sa, sb = data.draw(broadcastable(2)).input_shapes
    # A coarse grid of values, so that equal elements (ties) are common.
    grid = st.integers(-3, 3).map(lambda k: k / 2)
    a = data.draw(hnp.arrays(np.dtype(dtype), sa, elements=grid))
    b = data.draw(hnp.arrays(np.dtype(dtype), sb, elements=grid))
    out = fn(bp.tensor(a), bp.tensor(b))
    assert out.dtype == bp.bool
    np.testing.assert_array_equal(to_np(out), ref(a, b), strict=True)


def where_case(data, dtype):
    sc, sa, sb = data.draw(broadcastable(3)).input_shapes
    shape_events(sc, sa, sb)
    cond = data.draw(hnp.arrays(np.bool_, sc), label="cond")
    a = data.draw(arrays(dtype, sa), label="a")
    b = data.draw(arrays(dtype, sb), label="b")
    return cond, a, b


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_where_forward(dtype, data):
    cond, a, b = where_case(data, dtype)
    out = bp.where(bp.tensor(cond), bp.tensor(a), bp.tensor(b))
    check_forward(out, np.where(cond, a, b), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@given(data=st.data())
def test_where_grad(dtype, data, torch):
    cond, a, b = where_case(data, dtype)
    bl, tl, bo, to = make_inputs(torch, [a, b], ["contiguous", "transposed"])
    out = bp.where(bp.tensor(cond), *bo)
    t_out = torch.where(torch.tensor(cond), *to)
    backward_both(out, t_out, upstream(data, dtype, out.shape))
    check_grads(bl, tl, dtype)


# ---------------------------------------------------------------------------------------------
# elementwise unary ops
# ---------------------------------------------------------------------------------------------

UNARY = {
    "exp": (lambda m, x: m.exp(x), np.exp, "small"),
    "expm1": (lambda m, x: x.expm1(), np.expm1, "small"),
    "log": (lambda m, x: x.log(), np.log, "pos"),
    "log1p": (lambda m, x: x.log1p(), np.log1p, "gtm1"),
    "tanh": (lambda m, x: x.tanh(), np.tanh, "small"),
    "sigmoid": (lambda m, x: m.sigmoid(x), oracles.sigmoid, "small"),
    "relu": (lambda m, x: x.relu(), lambda x: np.maximum(x, 0.0), "any"),
    "abs": (lambda m, x: x.abs(), np.abs, "any"),
    "neg": (lambda m, x: -x, np.negative, "any"),
    "sqrt": (lambda m, x: x.sqrt(), np.sqrt, "pos"),
    "sin": (lambda m, x: x.sin(), np.sin, "small"),
    "cos": (lambda m, x: m.cos(x), np.cos, "small"),
    "erf": (lambda m, x: m.erf(x), oracles.erf, "any"),
    "sign": (lambda m, x: x.sign(), np.sign, "any"),
    "pow_scalar": (lambda m, x: x**2.5, lambda x: x**2.5, "pos"),
    "square": (lambda m, x: x**2, np.square, "any"),
    "reciprocal": (lambda m, x: 1.0 / x, lambda x: 1.0 / x, "nonzero"),
    "clamp": (lambda m, x: x.clamp(-0.5, 0.75), lambda x: np.clip(x, -0.5, 0.75), "any"),
    "affine": (lambda m, x: 3.0 - 0.5 * x, lambda x: 3.0 - 0.5 * x, "any"),
}


def unary_case(data, name, dtype):
    shape = data.draw(shapes(), label="shape")
    return data.draw(arrays(dtype, shape, UNARY[name][2]), label="x")


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_forward(name, dtype, data):
    fn, ref, _ = UNARY[name]
    x = unary_case(data, name, dtype)
    check_forward(fn(bp, bp.tensor(x)), ref(x.astype(np.float64)), dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(UNARY))
@given(data=st.data())
def test_unary_grad(name, dtype, data, torch):
    fn = UNARY[name][0]
    x = unary_case(data, name, dtype)
    layout = data.draw(st.sampled_from(LAYOUTS))
    bl, tl, bo, to = make_inputs(torch, [x], [layout])
    out, t_out = fn(bp, *bo), fn(torch, *to)
    backward_both(out, t_out, upstream(data, dtype, out.shape))
    check_grads(bl, tl, dtype)


# ---------------------------------------------------------------------------------------------
# reductions
# ---------------------------------------------------------------------------------------------


@st.composite
def reduce_dims(draw, ndim: int):
    """None (all dims), an int (maybe negative) or a tuple of distinct dims (maybe negative)."""
    kinds = ["none"] + (["int", "tuple"] if ndim > 0 else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "none":
        return None
    if kind == "int":
        return draw(st.integers(-ndim, ndim - 1))
    dims = draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
    return tuple(d - ndim if draw(st.booleans()) else d for d in dims)


def axes(dim, ndim: int) -> tuple[int, ...]:
    if dim is None or ndim == 0:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else dim
    return tuple(sorted(d % ndim for d in dims))


def reduced_count(shape, dim) -> int:
    return math.prod(shape[d] for d in axes(dim, len(shape)))


def torch_prod(torch, x, dim, keepdim):
    """torch.prod takes one int dim: reduce the dims one at a time, highest first."""
    if dim is None and not keepdim:
        return x.prod()
    for d in sorted(axes(dim, x.ndim), reverse=True):
        x = x.prod(dim=d, keepdim=keepdim)
    return x


def np_logsumexp(x, axis, keepdims):
    if x.size == 0 or 0 in [x.shape[d] for d in axis]:
        kept = tuple(1 if d in axis else s for d, s in enumerate(x.shape))
        out = np.full(kept, -np.inf)
        return out if keepdims else out.reshape([s for d, s in enumerate(x.shape) if d not in axis])
    return oracles.logsumexp(x, axis=axis, keepdims=keepdims)


# name: (bprop fn, torch fn, numpy ref(x, axis tuple, keepdims, correction), value domain,
#        whether the reduction has an identity (may reduce over zero elements))
def _spec(bp_fn, t_fn, ref, domain="any", identity=False, spread=False):
    return {
        "bp": bp_fn,
        "torch": t_fn,
        "ref": ref,
        "domain": domain,
        "identity": identity,
        "spread": spread,
    }


REDUCTIONS = {
    "sum": _spec(
        lambda x, d, k, c: x.sum(dim=d, keepdim=k),
        lambda torch, x, d, k, c: x.sum(dim=d, keepdim=k),
        lambda x, ax, k, c: np.sum(x, axis=ax, keepdims=k),
        identity=True,
    ),
    "bp.sum": _spec(
        lambda x, d, k, c: bp.sum(x, axis=d, keepdims=k),
        lambda torch, x, d, k, c: torch.sum(x, dim=d, keepdim=k),
        lambda x, ax, k, c: np.sum(x, axis=ax, keepdims=k),
        identity=True,
    ),
    "mean": _spec(
        lambda x, d, k, c: x.mean(dim=d, keepdim=k),
        lambda torch, x, d, k, c: x.mean(dim=d, keepdim=k),
        lambda x, ax, k, c: np.mean(x, axis=ax, keepdims=k),
    ),
    "prod": _spec(
        lambda x, d, k, c: x.prod(dim=d, keepdim=k),
        lambda torch, x, d, k, c: torch_prod(torch, x, d, k),
        lambda x, ax, k, c: np.prod(x, axis=ax, keepdims=k),
        identity=True,
    ),
    "amax": _spec(
        lambda x, d, k, c: x.amax(dim=d, keepdim=k),
        lambda torch, x, d, k, c: x.amax(dim=() if d is None else d, keepdim=k),
        lambda x, ax, k, c: np.amax(x, axis=ax, keepdims=k),
    ),
    "amin": _spec(
        lambda x, d, k, c: bp.amin(x, dim=() if d is None else d, keepdim=k),
        lambda torch, x, d, k, c: x.amin(dim=() if d is None else d, keepdim=k),
        lambda x, ax, k, c: np.amin(x, axis=ax, keepdims=k),
    ),
    "var": _spec(
        lambda x, d, k, c: x.var(dim=d, keepdim=k, correction=c),
        lambda torch, x, d, k, c: x.var(dim=d, keepdim=k, correction=c),
        lambda x, ax, k, c: np.var(x, axis=ax, keepdims=k, ddof=c),
    ),
    "std": _spec(
        lambda x, d, k, c: x.std(dim=d, keepdim=k, correction=c),
        lambda torch, x, d, k, c: x.std(dim=d, keepdim=k, correction=c),
        lambda x, ax, k, c: np.std(x, axis=ax, keepdims=k, ddof=c),
        spread=True,
    ),
    "logsumexp": _spec(
        lambda x, d, k, c: x.logsumexp(dim=axes(d, x.ndim), keepdim=k),
        lambda torch, x, d, k, c: x.logsumexp(dim=axes(d, x.ndim), keepdim=k),
        lambda x, ax, k, c: np_logsumexp(x, ax, k),
        domain="small",
        identity=True,
    ),
}


@st.composite
def reduction_cases(draw, name: str, dtype: str):
    spec = REDUCTIONS[name]
    shape = draw(shapes(max_side=3), label="shape")
    dim = draw(reduce_dims(len(shape)), label="dim")
    keepdim = draw(st.booleans(), label="keepdim")
    correction = draw(st.sampled_from([0, 1]), label="correction")
    count = reduced_count(shape, dim)
    event("reduces over zero elements" if count == 0 else f"dim is {type(dim).__name__}")
    if not spec["identity"]:
        assume(count > 0)
    if name in ("var", "std"):
        assume(count > correction)
    x = draw(arrays(dtype, shape, spec["domain"]), label="x")
    if spec["spread"]:
        # Distinct values along every axis (so the std is bounded away from 0, where its
        # gradient is infinite): add a ramp that strictly increases along each dim.
        x = (x * 0.02 + 0.1 * np.arange(x.size).reshape(shape)).astype(dtype)
    return x, dim, keepdim, correction


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_forward(name, dtype, data):
    spec = REDUCTIONS[name]
    x, dim, keepdim, c = data.draw(reduction_cases(name, dtype))
    out = spec["bp"](bp.tensor(x), dim, keepdim, c)
    expected = spec["ref"](x.astype(np.float64), axes(dim, x.ndim), keepdim, c)
    check_forward(out, expected, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(REDUCTIONS))
@given(data=st.data())
def test_reduction_grad(name, dtype, data, torch):
    spec = REDUCTIONS[name]
    x, dim, keepdim, c = data.draw(reduction_cases(name, dtype))
    layout = data.draw(st.sampled_from(LAYOUTS))
    bl, tl, bo, to = make_inputs(torch, [x], [layout])
    out = spec["bp"](bo[0], dim, keepdim, c)
    with warnings.catch_warnings():
        # torch warns on var/std of a zero-size input: "reduction factor" 0 / 0
        warnings.filterwarnings("ignore", r"(var|std)\(\): degrees of freedom")
        t_out = spec["torch"](torch, to[0], dim, keepdim, c)
    assert tuple(out.shape) == tuple(t_out.shape)
    backward_both(out, t_out, upstream(data, dtype, out.shape))
    check_grads(bl, tl, dtype)


@pytest.mark.parametrize("dtype", FLOATS)
def test_std_gradient_is_zero_where_std_is_zero(dtype):
    # Regression (found by test_reduction_grad[std]): sqrt(var) backpropagated 0 * inf = NaN
    # where all elements of a slice are equal; PyTorch's gradient there is 0.
    x = bp.tensor([[1.5, 1.5, 1.5], [1.0, 2.0, 4.0]], dtype=BP_DTYPE[dtype], requires_grad=True)
    x.std(dim=1).sum().backward()
    g = to_np(x.grad)
    np.testing.assert_array_equal(g[0], np.zeros(3))
    centered = np.array([1.0, 2.0, 4.0]) - 7.0 / 3.0
    expected = centered / (2.0 * np.sqrt((centered**2).sum() / 2.0))
    np.testing.assert_allclose(g[1], expected, **GRAD_TOL[dtype])
    single = bp.tensor([3.0], dtype=BP_DTYPE[dtype], requires_grad=True)
    single.std(correction=0).backward()
    assert single.grad.item() == 0.0


@st.composite
def along_dim_cases(draw, dtype):
    shape = draw(shapes(min_dims=0, max_side=3))
    ndim = len(shape)
    dim = draw(st.integers(-ndim, ndim - 1)) if ndim else draw(st.sampled_from([0, -1]))
    assume(ndim == 0 or shape[dim] > 0)
    # A coarse grid: ties are common, and the index must be the first occurrence.
    grid = st.integers(-2, 2).map(float)
    return draw(hnp.arrays(np.dtype(dtype), shape, elements=grid)), dim, draw(st.booleans())


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("which", ["max", "min"])
@given(data=st.data())
def test_max_min_along_dim(which, dtype, data):
    """values/indices vs numpy (ties: first occurrence); all of the gradient to that index."""
    x, dim, keepdim = data.draw(along_dim_cases(dtype))
    xt = bp.tensor(x, requires_grad=True)
    values, indices = getattr(xt, which)(dim=dim, keepdim=keepdim)
    arg = getattr(bp, f"arg{which}")(bp.tensor(x), dim=dim, keepdim=keepdim)
    if x.ndim == 0:
        exp_idx, exp_val = np.array(0), x
    else:
        np_arg = np.argmax if which == "max" else np.argmin
        idx_kept = np.expand_dims(np_arg(x, axis=dim), dim)  # also where the gradient goes
        exp_idx, exp_val = idx_kept, np.take_along_axis(x, idx_kept, axis=dim)
        if not keepdim:
            exp_idx, exp_val = exp_idx.squeeze(dim), exp_val.squeeze(dim)
    np.testing.assert_array_equal(to_np(values), exp_val, strict=True)
    np.testing.assert_array_equal(to_np(indices), exp_idx.astype(np.int64), strict=True)
    np.testing.assert_array_equal(to_np(arg), exp_idx.astype(np.int64), strict=True)
    g = np.arange(1.0, values.numel() + 1.0).reshape(values.shape).astype(dtype)
    values.backward(bp.tensor(g))
    expected = g.copy()
    if x.ndim > 0:
        expected = np.zeros_like(x)
        np.put_along_axis(expected, idx_kept, g if keepdim else np.expand_dims(g, dim), axis=dim)
    np.testing.assert_array_equal(to_np(xt.grad), expected, strict=True)


@pytest.mark.parametrize("which", ["max", "min", "argmax", "argmin"])
@pytest.mark.parametrize("keepdim", [False, True])
def test_extreme_index_of_0d_input_is_zero(which, keepdim):
    # Regression (found by test_max_min_along_dim): the index of a 0-d input along dim 0/-1
    # was read from uninitialised memory.
    x = bp.tensor(2.5)
    for dim in (0, -1):
        for _ in range(3):
            out = getattr(x, which)(dim=dim, keepdim=keepdim)
            index = out if which.startswith("arg") else out[1]
            assert index.shape == () and index.dtype == bp.int64 and index.item() == 0


@pytest.mark.parametrize("name", ["amax", "amin", "max", "min", "argmax", "argmin"])
@given(data=st.data())
def test_reductions_without_identity_reject_empty_input(name, data):
    """Reducing over zero elements raises ValueError naming the op (test_errors.py's rule)."""
    shape = data.draw(shapes(min_dims=1, max_side=3).filter(lambda s: 0 in s))
    x = bp.zeros(*shape)
    empty_dims = [d for d, s in enumerate(shape) if s == 0]
    d = data.draw(st.sampled_from(empty_dims))
    d = d - len(shape) if data.draw(st.booleans()) else d
    op = getattr(x, name)
    message = rf"^\[{name}\] (cannot reduce over a zero-size|of an empty)"
    with pytest.raises(ValueError, match=message):
        op(dim=d)
    with pytest.raises(ValueError, match=message):
        op()


# ---------------------------------------------------------------------------------------------
# random expression graphs (float64): values and gradients of every leaf against PyTorch
# ---------------------------------------------------------------------------------------------

# name: (arity, fn(m, *args))
GRAPH_OPS = {
    "add": (2, lambda m, a, b: a + b),
    "sub": (2, lambda m, a, b: a - b),
    "mul": (2, lambda m, a, b: a * b),
    "square": (1, lambda m, a: a * a),  # one node on two paths of the same op
    "tanh": (1, lambda m, a: a.tanh()),
    "sigmoid": (1, lambda m, a: m.sigmoid(a)),
    "exp": (1, lambda m, a: a.clamp(-3.0, 3.0).exp()),
    "affine": (1, lambda m, a: 0.5 * a - 1.0),
    "sum_keep": (1, None),  # sum over one dim, keepdim: broadcasts back in later binary ops
    "mean_keep": (1, None),
    "matmul": (2, lambda m, a, b: a @ b),
}


def shape_after(op: str, arg_shapes, dim=None):
    if op == "matmul":
        return (arg_shapes[0][0], arg_shapes[1][1])
    if op in ("sum_keep", "mean_keep"):
        s = list(arg_shapes[0])
        s[dim] = 1
        return tuple(s)
    return tuple(np.broadcast_shapes(*arg_shapes))


@st.composite
def programs(draw):
    """A random DAG: leaves 0..n_leaves-1, then ops over any earlier nodes (reuse allowed)."""
    n_leaves = draw(st.integers(1, 3), label="leaves")
    shape = draw(shapes(min_dims=1, max_dims=2, min_side=1, max_side=3), label="leaf shape")
    node_shapes = [shape] * n_leaves
    prog = []
    for _ in range(draw(st.integers(3, 12), label="ops")):
        op = draw(st.sampled_from(list(GRAPH_OPS)))
        node = st.integers(0, len(node_shapes) - 1)
        if op == "matmul":
            pairs = [
                (i, j)
                for i, si in enumerate(node_shapes)
                for j, sj in enumerate(node_shapes)
                if len(si) == 2 and len(sj) == 2 and si[1] == sj[0]
            ]
            if not pairs:
                op = "mul"
            else:
                args = draw(st.sampled_from(pairs))
        if op != "matmul":
            args = tuple(draw(node) for _ in range(GRAPH_OPS[op][0]))
        dim = None
        if op in ("sum_keep", "mean_keep"):
            dim = draw(st.integers(-len(node_shapes[args[0]]), len(node_shapes[args[0]]) - 1))
        prog.append((op, args, dim))
        node_shapes.append(shape_after(op, [node_shapes[a] for a in args], dim))
    return n_leaves, shape, prog


def run_program(m, leaves, prog):
    nodes = list(leaves)
    used = set()
    for op, args, dim in prog:
        xs = [nodes[a] for a in args]
        used.update(args)
        if op == "sum_keep":
            nodes.append(xs[0].sum(dim=dim, keepdim=True))
        elif op == "mean_keep":
            nodes.append(xs[0].mean(dim=dim, keepdim=True))
        else:
            nodes.append(GRAPH_OPS[op][1](m, *xs))
    # Every node nothing else consumed (every sink, unused leaves included) feeds the output,
    # so every leaf gets a gradient, some over many paths.
    sinks = [n for i, n in enumerate(nodes) if i not in used]
    if m is bp:
        event(f"{len(nodes) - len(sinks)} nodes with successors, {len(sinks)} sinks")
        event("matmul" if any(op == "matmul" for op, _, _ in prog) else "no matmul")
        uses = [a for _, args, _ in prog for a in args]
        event("a node on several paths" if len(uses) > len(set(uses)) else "a tree")
    out = sinks[0].sum()
    for i, s in enumerate(sinks[1:]):
        out = out + (s.mean() if i % 2 else s.sum())
    return nodes, out


@given(case=programs(), seed=st.integers(0, 2**32 - 1))
@example(  # b = a + a; c = b * b; d = tanh(b): b on three paths, a on two
    case=(1, (2, 3), [("add", (0, 0), None), ("square", (1,), None), ("tanh", (1,), None)]),
    seed=0,
).via("the multi-path chain rule")
def test_random_expression_graphs(case, seed, torch):
    n_leaves, shape, prog = case
    rng = np.random.default_rng(seed)
    arrs = [rng.uniform(-1.0, 1.0, shape) for _ in range(n_leaves)]
    t_leaves = [torch.tensor(a, requires_grad=True) for a in arrs]
    t_nodes, t_out = run_program(torch, t_leaves, prog)
    scale = max(float(n.detach().abs().max()) for n in t_nodes)
    assume(math.isfinite(scale) and scale < 1e6)
    t_out.backward()

    bp_leaves = [bp.tensor(a, requires_grad=True) for a in arrs]
    bp_nodes, out = run_program(bp, bp_leaves, prog)
    if seed % 2:  # the functional form half of the time
        grads = bp.grad(out, bp_leaves)
    else:
        out.backward()
        grads = [leaf.grad for leaf in bp_leaves]

    tol = {"rtol": 1e-9, "atol": 1e-12 * (1.0 + scale)}
    for i, (b, t) in enumerate(zip(bp_nodes, t_nodes)):
        assert tuple(b.shape) == tuple(t.shape), f"node {i}"
        np.testing.assert_allclose(to_np(b), t.detach().numpy(), **tol, err_msg=f"node {i}")
    np.testing.assert_allclose(out.item(), t_out.item(), **tol)
    for i, (g, t) in enumerate(zip(grads, t_leaves)):
        assert g is not None and tuple(g.shape) == shape
        gscale = 1.0 + float(t.grad.abs().max())
        np.testing.assert_allclose(
            to_np(g),
            t.grad.numpy(),
            rtol=1e-9,
            atol=1e-12 * gscale * (1.0 + scale),
            err_msg=f"gradient of leaf {i}",
        )


# ---------------------------------------------------------------------------------------------
# shape ops and slicing
# ---------------------------------------------------------------------------------------------


def prime_factors(n: int) -> list[int]:
    out, p = [], 2
    while n > 1:
        while n % p == 0:
            out.append(p)
            n //= p
        p += 1
    return out


@st.composite
def reshape_targets(draw, shape):
    n = math.prod(shape)
    if n == 0:  # -1 is ambiguous with zero elements: a shuffled shape, padded with 1s
        target = list(draw(st.permutations(shape))) + [1] * draw(st.integers(0, 2))
        return tuple(draw(st.permutations(target)))
    factors = draw(st.permutations(prime_factors(n)))
    k = draw(st.integers(0, len(factors)))
    cuts = sorted(draw(st.lists(st.integers(0, len(factors)), min_size=k, max_size=k)))
    bounds = [0, *cuts, len(factors)]
    target = [math.prod(factors[a:b]) for a, b in zip(bounds, bounds[1:])]
    if target and draw(st.booleans()):
        target[draw(st.integers(0, len(target) - 1))] = -1
    return tuple(target)


@st.composite
def expand_targets(draw, shape):
    lead = draw(st.lists(st.integers(0, 3), max_size=2))
    body = [
        draw(st.sampled_from([-1, 0, 1, 2, 3])) if s == 1 else draw(st.sampled_from([-1, s]))
        for s in shape
    ]
    return tuple(lead + body)


@st.composite
def index_keys(draw, shape):
    key = []
    for s in shape:
        kind = draw(st.sampled_from(["slice", "slice", "int", "full"] if s else ["slice"]))
        if kind == "int":
            key.append(draw(st.integers(-s, s - 1)))
        elif kind == "full":
            key.append(slice(None))
        else:
            bound = st.none() | st.integers(-s - 1, s + 1)
            key.append(slice(draw(bound), draw(bound), draw(st.none() | st.integers(1, 3))))
    if key and draw(st.booleans()):
        key.insert(draw(st.integers(0, len(key))), None)
    if len(key) > 1 and draw(st.booleans()):  # an Ellipsis for a run of full slices
        i = draw(st.integers(0, len(key) - 1))
        if isinstance(key[i], slice) and key[i] == slice(None):
            key[i] = Ellipsis
    return tuple(key)


def dims_of(shape, extra: int = 0):
    """A dim of `shape` (negative ones too); extra=1: one past either end, for unsqueeze."""
    return st.integers(-len(shape) - extra, len(shape) - 1 + extra)


# name: (draws the op's argument from the shape, fn(m, x, arg), numpy ref(x, arg))
SHAPE_OPS = {
    "reshape": (reshape_targets, lambda m, x, a: x.reshape(a), lambda x, a: x.reshape(a)),
    "bp.reshape": (reshape_targets, lambda m, x, a: m.reshape(x, a), np.reshape),
    "permute": (
        lambda shape: st.permutations(range(len(shape))).flatmap(
            lambda p: st.tuples(*[st.sampled_from([d, d - len(shape)]) for d in p])
        ),
        lambda m, x, a: x.permute(a),
        lambda x, a: x.transpose(a),
    ),
    "transpose": (
        lambda shape: st.tuples(dims_of(shape), dims_of(shape)),
        lambda m, x, a: x.transpose(*a),
        lambda x, a: np.swapaxes(x, *a),
    ),
    "expand": (
        expand_targets,
        lambda m, x, a: x.expand(a),
        lambda x, a: np.broadcast_to(
            x, tuple(s if s != -1 else x.shape[i - (len(a) - x.ndim)] for i, s in enumerate(a))
        ),
    ),
    "squeeze_dim": (
        lambda shape: dims_of(shape),
        lambda m, x, a: x.squeeze(a),
        lambda x, a: np.squeeze(x, a) if x.shape[a] == 1 else x,
    ),
    "squeeze_all": (lambda shape: st.none(), lambda m, x, a: x.squeeze(), np.squeeze),
    "unsqueeze": (
        lambda shape: dims_of(shape, extra=1),
        lambda m, x, a: x.unsqueeze(a),
        lambda x, a: np.expand_dims(x, a),
    ),
    "flatten": (lambda shape: st.none(), lambda m, x, a: m.flatten(x), np.ravel),
    "getitem": (index_keys, lambda m, x, a: x[a], lambda x, a: x[a]),
    "getitem_twice": (  # a view of a view
        index_keys,
        lambda m, x, a: x[a][..., ::2] if x[a].ndim else x[a],
        lambda x, a: x[a][..., ::2] if x[a].ndim else x[a],
    ),
}


def shape_case(data, name, dtype):
    draw_arg = SHAPE_OPS[name][0]
    min_dims = 1 if name in ("transpose", "squeeze_dim") else 0
    # Sides of 1 are common, for squeeze and expand to work on.
    sides = st.sampled_from([0, 1, 1, 2, 3, 4])
    shape = data.draw(st.lists(sides, min_size=min_dims, max_size=4).map(tuple), label="shape")
    x = data.draw(arrays(dtype, shape), label="x")
    arg = data.draw(draw_arg(shape), label="arg")
    return x, arg


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SHAPE_OPS))
@given(data=st.data())
def test_shape_op_forward(name, dtype, data):
    _, fn, ref = SHAPE_OPS[name]
    x, arg = shape_case(data, name, dtype)
    expected = np.asarray(ref(x, arg))
    out = fn(bp, bp.tensor(x), arg)
    assert tuple(out.shape) == expected.shape
    assert out.dtype == BP_DTYPE[dtype]
    np.testing.assert_array_equal(to_np(out), expected, strict=True)


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("name", list(SHAPE_OPS))
@given(data=st.data())
def test_shape_op_grad(name, dtype, data, torch):
    fn = SHAPE_OPS[name][1]
    x, arg = shape_case(data, name, dtype)
    layout = data.draw(st.sampled_from(LAYOUTS))
    bl, tl, bo, to = make_inputs(torch, [x], [layout])
    # An elementwise op after the view, so the gradient flows through a view of a view.
    out, t_out = fn(bp, bo[0], arg) * 2.0, fn(torch, to[0], arg) * 2.0
    assert tuple(out.shape) == tuple(t_out.shape)
    backward_both(out, t_out, upstream(data, dtype, out.shape))
    check_grads(bl, tl, dtype)


# ---------------------------------------------------------------------------------------------
# bp.save -> bp.load round trips
# ---------------------------------------------------------------------------------------------

NAMES = st.text(string.ascii_letters + string.digits + "._-/ ", min_size=1, max_size=12) | st.text(
    min_size=1, max_size=6
)
SAVE_DTYPES = {
    "float32": st.floats(width=32),
    "float64": st.floats(),
    "int64": st.integers(-(2**63), 2**63 - 1),
    "bool": st.booleans(),
}


@st.composite
def saved_tensors(draw):
    dtype = draw(st.sampled_from(list(SAVE_DTYPES)))
    shape = draw(shapes(max_dims=3))
    layout = draw(st.sampled_from(LAYOUTS))
    arr = draw(hnp.arrays(np.dtype(dtype), shape, elements=SAVE_DTYPES[dtype]))
    return arr, view(bp, bp.tensor(leaf_data(arr, layout)), layout, arr.ndim)


@given(
    items=st.dictionaries(
        NAMES.filter(lambda s: not s.startswith("__")), saved_tensors(), max_size=6
    )
)
def test_save_load_round_trip(items, tmp_path_factory):
    path = tmp_path_factory.mktemp("prop") / "t.safetensors"
    tensors = {name: t for name, (_, t) in items.items()}
    bp.save(tensors, path)
    back = bp.load(path)
    assert list(back) == list(tensors)
    for name, (arr, _) in items.items():
        t = back[name]
        assert t.dtype == BP_DTYPE[str(arr.dtype)], name
        assert tuple(t.shape) == arr.shape, name
        # Bit for bit: NaN payloads and the sign of zero survive.
        assert np.ascontiguousarray(t.numpy()).tobytes() == np.ascontiguousarray(arr).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.bool_])
def test_where_keeps_every_bit_of_the_value_it_picks(dtype):
    # The contiguous paths pick by bit masks: -0, NaN payloads and integers come out whole.
    n = 1000
    cond = np.random.default_rng(4).random(n) < 0.5
    if dtype in (np.float32, np.float64):
        bits = np.uint32 if dtype == np.float32 else np.uint64
        a = np.random.default_rng(5).standard_normal(n).astype(dtype)
        a[::7] = -0.0
        a[3::11] = np.array([0x7FC01234 if dtype == np.float32 else 0x7FF8000000001234],
                            dtype=bits).view(dtype)  # fmt: skip
        b = -a[::-1].copy()
    elif dtype == np.int64:
        bits = np.uint64
        a = np.random.default_rng(5).integers(-(2**62), 2**62, n)
        b = a[::-1].copy() ^ 0x5555
    else:
        bits = np.uint8
        a = np.random.default_rng(5).random(n) < 0.3
        b = ~a
    tc, ta, tb = bp.tensor(cond), bp.tensor(a), bp.tensor(b)
    for got, want in (
        (bp.where(tc, ta, tb), np.where(cond, a, b)),
        (bp.where(tc, ta, tb[5:6].expand(n)), np.where(cond, a, b[5])),
        (bp.where(tc, ta[7:8].expand(n), tb), np.where(cond, a[7], b)),
    ):
        assert np.array_equal(got.numpy().view(bits), want.astype(dtype).view(bits))

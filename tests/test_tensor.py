"""Tensor creation, conversion to and from numpy, attributes and repr."""

import gc

import bprop as bp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal


def arr(t):
    """The values of a tensor as a numpy array (requires_grad tensors are detached first)."""
    return np.asarray(t.detach())


def np_dtype(dtype):
    table = {bp.float32: np.float32, bp.float64: np.float64, bp.int64: np.int64, bp.bool: np.bool_}
    return table[dtype]


@pytest.fixture
def restore_default_dtype():
    old = bp.get_default_dtype()
    yield
    bp.set_default_dtype(old)


# ---------------------------------------------------------------- dtypes


def test_dtype_objects():
    for d in (bp.float32, bp.float64, bp.int64, bp.bool):
        assert isinstance(d, bp.dtype)
    assert repr(bp.float32) == "bprop.float32"
    assert repr(bp.float64) == "bprop.float64"
    assert repr(bp.int64) == "bprop.int64"
    assert repr(bp.bool) == "bprop.bool"
    assert bp.float32.is_floating_point and bp.float64.is_floating_point
    assert not bp.int64.is_floating_point and not bp.bool.is_floating_point
    assert bp.float32.itemsize == 4
    assert bp.float64.itemsize == 8
    assert bp.int64.itemsize == 8
    assert bp.bool.itemsize == 1
    assert bp.float32 == bp.float32 and bp.float32 != bp.float64


def test_default_dtype(restore_default_dtype):
    assert bp.get_default_dtype() == bp.float32
    assert bp.tensor(1.5).dtype == bp.float32
    bp.set_default_dtype(bp.float64)
    assert bp.get_default_dtype() == bp.float64
    assert bp.tensor(1.5).dtype == bp.float64
    assert bp.tensor([1.5, 2.0]).dtype == bp.float64
    assert bp.zeros(2).dtype == bp.float64
    assert bp.tensor(1).dtype == bp.int64  # ints are unaffected
    bp.set_default_dtype(bp.float32)
    assert bp.zeros(2).dtype == bp.float32


# ---------------------------------------------------------------- bp.tensor from Python data


@pytest.mark.parametrize(
    "data, dtype, shape",
    [
        (3, bp.int64, ()),
        (-7, bp.int64, ()),
        (2.5, bp.float32, ()),
        (True, bp.bool, ()),
        ([1, 2, 3], bp.int64, (3,)),
        ([1.0, 2.0], bp.float32, (2,)),
        ([1, 2.5], bp.float32, (2,)),
        ([True, False], bp.bool, (2,)),
        ([True, 2], bp.int64, (2,)),
        ([True, 2.5], bp.float32, (2,)),
        ([[1, 2], [3, 4], [5, 6]], bp.int64, (3, 2)),
        ([[[1.0], [2.0]]], bp.float32, (1, 2, 1)),
        ([[1, 2], [3, 4.5]], bp.float32, (2, 2)),
        ((1, 2, 3), bp.int64, (3,)),
        ([], bp.float32, (0,)),
    ],
)
def test_tensor_from_python_dtype_inference(data, dtype, shape):
    t = bp.tensor(data)
    assert t.dtype == dtype
    assert t.shape == shape
    assert isinstance(t.shape, tuple)
    expected = np.array(data, dtype=np_dtype(dtype))
    assert_array_equal(arr(t), expected)
    assert arr(t).dtype == np_dtype(dtype)


def test_tensor_scalar_values():
    assert bp.tensor(3).item() == 3
    assert bp.tensor(2.5).item() == 2.5
    assert bp.tensor(True).item() is True
    assert bp.tensor(3).ndim == 0
    assert bp.tensor(2**40).item() == 2**40
    assert bp.tensor(-(2**62)).item() == -(2**62)


def test_tensor_float_values_are_rounded_to_float32():
    t = bp.tensor([0.1, 1e-3, 1 / 3])
    assert_array_equal(arr(t), np.array([0.1, 1e-3, 1 / 3], dtype=np.float32))


@pytest.mark.parametrize(
    "data, dtype, expected",
    [
        ([1, 2], bp.float64, np.array([1.0, 2.0])),
        ([1, 2], bp.float32, np.array([1.0, 2.0], np.float32)),
        ([1.7, -1.7], bp.int64, np.array([1, -1])),
        ([0, 2, 0], bp.bool, np.array([False, True, False])),
        (0.1, bp.float64, np.array(0.1)),
        ([True, False], bp.float32, np.array([1.0, 0.0], np.float32)),
    ],
)
def test_tensor_explicit_dtype(data, dtype, expected):
    t = bp.tensor(data, dtype=dtype)
    assert t.dtype == dtype
    assert_array_equal(arr(t), expected)


def test_tensor_float64_keeps_full_precision():
    t = bp.tensor([0.1, 1 / 3], dtype=bp.float64)
    assert arr(t).tolist() == [0.1, 1 / 3]


def test_tensor_requires_grad_flag():
    t = bp.tensor([1.0, 2.0], requires_grad=True)
    assert t.requires_grad
    assert t.is_leaf
    assert t.grad is None
    assert t.grad_fn is None
    u = bp.tensor([1.0, 2.0])
    assert not u.requires_grad
    assert u.is_leaf
    u.requires_grad = True
    assert u.requires_grad
    v = bp.tensor([1.0]).requires_grad_()
    assert v.requires_grad
    v.requires_grad_(False)
    assert not v.requires_grad


def test_grad_is_settable():
    t = bp.tensor([1.0, 2.0], requires_grad=True)
    t.grad = bp.tensor([0.5, 0.25])
    assert_array_equal(arr(t.grad), [0.5, 0.25])
    t.grad = None
    assert t.grad is None


@pytest.mark.parametrize("bad", [[[1, 2], [3]], [[1, 2], 3], [[[1], [2]], [[3]]], [1, [2]]])
def test_ragged_raises_value_error(bad):
    with pytest.raises(ValueError, match="ragged|inhomogeneous"):
        bp.tensor(bad)


# ---------------------------------------------------------------- bp.tensor from numpy (copies)


@pytest.mark.parametrize(
    "np_dtype_, bp_dtype",
    [
        (np.float32, bp.float32),
        (np.float64, bp.float64),
        (np.int64, bp.int64),
        (np.int32, bp.int64),
        (np.bool_, bp.bool),
    ],
)
def test_tensor_from_numpy_dtype(np_dtype_, bp_dtype):
    a = (np.arange(6) % 3).astype(np_dtype_).reshape(2, 3)
    t = bp.tensor(a)
    assert t.dtype == bp_dtype
    assert t.shape == (2, 3)
    assert_array_equal(arr(t), a)


def _base(dtype):
    return (np.arange(2 * 3 * 5 * 4) * 3 - 100).astype(dtype).reshape(6, 5, 4)


VIEWS = {
    "c_order": lambda b: b,
    "fortran": lambda b: np.asfortranarray(b),
    "offset": lambda b: b[1:, 2:, 1:],
    "step_slices": lambda b: b[::2, 1::3, ::2],
    "negative_first": lambda b: b[::-1],
    "negative_last": lambda b: b[:, :, ::-1],
    "negative_steps": lambda b: b[::-2, 3::-2, ::-1],
    "transposed": lambda b: b.T,
    "permuted": lambda b: b.transpose(2, 0, 1),
    "transposed_2d": lambda b: b[0].T,
    "column": lambda b: b[:, 1, 2],
    "zero_stride": lambda b: np.broadcast_to(b[0, 0], (3, 4)),
    "mixed": lambda b: np.asfortranarray(b)[::-1, ::2].transpose(1, 2, 0),
}


@pytest.mark.parametrize("view", sorted(VIEWS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64, np.int32, np.bool_])
def test_tensor_from_strided_numpy_copies_values(view, dtype):
    base = _base(dtype)
    a = VIEWS[view](base)
    expected = np.array(a, copy=True)
    t = bp.tensor(a)
    assert t.shape == a.shape
    assert_array_equal(arr(t), expected)
    # The tensor owns a copy: later writes to the array (through the base) are not seen.
    base[...] = 0 if dtype is np.bool_ else 7
    assert_array_equal(arr(t), expected)


def test_tensor_from_numpy_independent_both_ways():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = bp.tensor(a)
    t.numpy()[0] = 100.0
    assert a[0] == 1.0
    a[1] = -5.0
    assert arr(t).tolist() == [100.0, 2.0, 3.0]


def test_tensor_from_numpy_0d_and_empty():
    t = bp.tensor(np.array(2.5))
    assert t.shape == () and t.dtype == bp.float64 and t.item() == 2.5
    e = bp.tensor(np.zeros((0, 3), dtype=np.float32))
    assert e.shape == (0, 3) and e.numel() == 0


def test_tensor_from_numpy_with_dtype_and_requires_grad():
    a = np.array([1.5, 2.5])
    t = bp.tensor(a, dtype=bp.float32, requires_grad=True)
    assert t.dtype == bp.float32 and t.requires_grad and t.is_leaf
    assert_array_equal(arr(t), a.astype(np.float32))


# ---------------------------------------------------------------- from_numpy / numpy() share memory


@pytest.mark.parametrize(
    "np_dtype_, bp_dtype",
    [(np.float32, bp.float32), (np.float64, bp.float64), (np.int64, bp.int64), (np.bool_, bp.bool)],
)
def test_from_numpy_dtype_and_values(np_dtype_, bp_dtype):
    a = (np.arange(12) % 5).astype(np_dtype_).reshape(3, 4)
    t = bp.from_numpy(a)
    assert t.dtype == bp_dtype
    assert t.shape == (3, 4)
    assert t.stride() == (4, 1)
    assert_array_equal(arr(t), a)


def test_from_numpy_shares_memory_both_ways():
    a = np.zeros((2, 3), dtype=np.float32)
    t = bp.from_numpy(a)
    a[0, 1] = 5.0
    assert arr(t)[0, 1] == 5.0
    assert t.tolist() == [[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]
    t.numpy()[1, 2] = -3.0
    assert a[1, 2] == -3.0
    assert np.shares_memory(a, t.numpy())


@pytest.mark.parametrize(
    "view",
    [
        lambda a: a[:, ::2],
        lambda a: a.T,
        lambda a: np.asfortranarray(a),
        lambda a: a[1:, 1:],
    ],
    ids=["step", "transposed", "fortran", "offset"],
)
def test_from_numpy_strided_shares_memory(view):
    a = view(np.arange(12, dtype=np.float64).reshape(3, 4))
    t = bp.from_numpy(a)
    assert t.shape == a.shape
    assert_array_equal(arr(t), a)
    a[0, 1] = -100.0
    assert arr(t)[0, 1] == -100.0
    t.numpy()[1, 0] = 55.0
    assert a[1, 0] == 55.0
    assert t.stride() == tuple(s // a.itemsize for s in a.strides)


def test_from_numpy_float64_shares_memory():
    a = np.arange(4, dtype=np.float64)
    t = bp.from_numpy(a)
    a[3] = 0.125
    assert t.tolist() == [0.0, 1.0, 2.0, 0.125]
    t.numpy()[0] = 9.5
    assert a[0] == 9.5


def test_from_numpy_keeps_array_alive():
    t = bp.from_numpy(np.arange(5, dtype=np.float64) * 2)
    gc.collect()
    assert t.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_numpy_shares_memory_with_tensor():
    t = bp.zeros(3)
    n = t.numpy()
    assert isinstance(n, np.ndarray)
    assert n.dtype == np.float32 and n.shape == (3,)
    n[0] = 1.5
    assert t.tolist() == [1.5, 0.0, 0.0]
    n2 = t.numpy()
    assert np.shares_memory(n, n2)
    assert n2[0] == 1.5


def test_numpy_of_transposed_view():
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    t = bp.tensor(a)
    tt = t.T
    assert tt.shape == (3, 2)
    assert_array_equal(tt.numpy(), a.T)
    tt.numpy()[2, 0] = 42.0  # element (0, 2) of t
    assert arr(t)[0, 2] == 42.0


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64, bp.int64, bp.bool])
def test_numpy_dtype(dtype):
    t = bp.ones(2, 2, dtype=dtype)
    n = t.numpy()
    assert n.dtype == np_dtype(dtype)
    assert_array_equal(n, np.ones((2, 2), dtype=np_dtype(dtype)))


# ------------------------------------------------- item / tolist / __array__ / dunders


def test_item():
    f = bp.tensor(2.5).item()
    assert isinstance(f, float) and f == 2.5
    i = bp.tensor(7).item()
    assert isinstance(i, int) and not isinstance(i, bool) and i == 7
    b = bp.tensor(False).item()
    assert isinstance(b, bool) and b is False
    assert bp.tensor([4.0]).item() == 4.0
    assert bp.tensor([[3]]).item() == 3
    assert bp.tensor(0.1).item() == float(np.float32(0.1))
    assert bp.tensor(0.1, dtype=bp.float64).item() == 0.1
    x = bp.tensor(1.5, requires_grad=True)
    assert (x * 2).item() == 3.0


def test_tolist():
    assert bp.tensor([[1, 2], [3, 4]]).tolist() == [[1, 2], [3, 4]]
    lst = bp.tensor([[1.5], [2.0]]).tolist()
    assert lst == [[1.5], [2.0]]
    assert all(isinstance(v[0], float) for v in lst)
    assert bp.tensor([True, False]).tolist() == [True, False]
    assert all(isinstance(v, bool) for v in bp.tensor([True, False]).tolist())
    assert all(type(v) is int for v in bp.tensor([1, 2]).tolist())
    assert bp.tensor(3.5).tolist() == 3.5
    assert bp.tensor([0.1]).tolist() == [float(np.float32(0.1))]
    assert bp.zeros(0).tolist() == []
    assert bp.tensor([[1, 2, 3], [4, 5, 6]]).T.tolist() == [[1, 4], [2, 5], [3, 6]]


def test_array_protocol():
    t = bp.tensor([[1.0, 2.0], [3.0, 4.0]])
    a = np.asarray(t)
    assert a.dtype == np.float32 and a.shape == (2, 2)
    assert_array_equal(a, [[1, 2], [3, 4]])
    a64 = np.asarray(t, dtype=np.float64)
    assert a64.dtype == np.float64
    assert_array_equal(a64, [[1, 2], [3, 4]])
    assert_array_equal(np.array(bp.tensor([1, 2])), np.array([1, 2]))
    assert np.array(bp.tensor([1, 2])).dtype == np.int64


def test_array_protocol_requires_grad():
    # As numpy() and PyTorch: a tensor that requires grad must be detached first.
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(x)
    assert_array_equal(np.asarray(x.detach()), [1.0, 2.0])
    y = x * 3
    with pytest.raises(RuntimeError, match="requires grad"):
        np.asarray(y)
    assert_allclose(np.sum(np.asarray(y.detach())), 9.0)


def test_len_float_int_bool():
    t = bp.zeros(4, 2)
    assert len(t) == 4
    with pytest.raises(TypeError):
        len(bp.tensor(1.0))
    assert float(bp.tensor(2.5)) == 2.5
    assert float(bp.tensor([2])) == 2.0
    assert int(bp.tensor(3.7)) == 3
    assert int(bp.tensor(-3.7)) == -3
    assert int(bp.tensor(5)) == 5
    assert bool(bp.tensor(1.0)) is True
    assert bool(bp.tensor(0.0)) is False
    assert bool(bp.tensor([0])) is False
    assert bool(bp.tensor(True)) is True
    with pytest.raises((ValueError, RuntimeError)):
        bool(bp.tensor([1.0, 2.0]))


# ---------------------------------------------------------------- factories


def _check(t, shape, dtype, values=None, requires_grad=False):
    assert t.shape == shape
    assert t.dtype == dtype
    assert t.requires_grad == requires_grad
    if values is not None:
        assert_array_equal(arr(t), np.broadcast_to(np.asarray(values), shape))


def test_zeros_ones_shapes():
    _check(bp.zeros(2, 3), (2, 3), bp.float32, 0.0)
    _check(bp.zeros((2, 3)), (2, 3), bp.float32, 0.0)
    _check(bp.zeros([4]), (4,), bp.float32, 0.0)
    _check(bp.zeros(()), (), bp.float32, 0.0)
    _check(bp.zeros(0, 3), (0, 3), bp.float32)
    _check(bp.ones(3), (3,), bp.float32, 1.0)
    _check(bp.ones((1, 2, 3)), (1, 2, 3), bp.float32, 1.0)
    _check(bp.ones(2, dtype=bp.int64), (2,), bp.int64, 1)
    _check(bp.zeros(2, dtype=bp.bool), (2,), bp.bool, False)
    _check(bp.ones(2, dtype=bp.float64), (2,), bp.float64, 1.0)
    _check(bp.zeros(2, 2, requires_grad=True), (2, 2), bp.float32, 0.0, requires_grad=True)
    assert bp.zeros(2, requires_grad=True).is_leaf


def test_empty():
    t = bp.empty(3, 4)
    assert t.shape == (3, 4) and t.dtype == bp.float32
    assert bp.empty((2,), dtype=bp.int64).dtype == bp.int64
    e = bp.empty(2, requires_grad=True)
    assert e.requires_grad and e.is_leaf


def test_full():
    _check(bp.full((2, 3), 7.5), (2, 3), bp.float32, 7.5)
    _check(bp.full((2,), 7.5, dtype=bp.float64), (2,), bp.float64, 7.5)
    _check(bp.full((2,), 3, dtype=bp.float32), (2,), bp.float32, 3.0)
    _check(bp.full((3,), 7), (3,), bp.int64, 7)  # PyTorch infers int64 from an int fill
    _check(bp.full((1,), True), (1,), bp.bool, True)
    _check(bp.full((), -1.25), (), bp.float32, -1.25)


def test_like_factories():
    base = bp.tensor([[1.0, 2.0, 3.0]], dtype=bp.float64, requires_grad=True)
    z = bp.zeros_like(base)
    _check(z, (1, 3), bp.float64, 0.0)
    o = bp.ones_like(base)
    _check(o, (1, 3), bp.float64, 1.0)
    f = bp.full_like(base, 2.5)
    _check(f, (1, 3), bp.float64, 2.5)
    i = bp.tensor([1, 2])
    _check(bp.zeros_like(i), (2,), bp.int64, 0)
    _check(bp.full_like(i, 9), (2,), bp.int64, 9)
    _check(bp.ones_like(bp.zeros(2, 3).T), (3, 2), bp.float32, 1.0)


def test_like_factories_keyword_overrides():
    base = bp.tensor([[1.0, 2.0, 3.0]], dtype=bp.float64)
    i = bp.tensor([1, 2])
    _check(bp.zeros_like(i, dtype=bp.float32), (2,), bp.float32, 0.0)
    _check(bp.ones_like(base, requires_grad=True), (1, 3), bp.float64, 1.0, requires_grad=True)


@pytest.mark.parametrize(
    "args, kwargs, expected, dtype",
    [
        ((5,), {}, [0, 1, 2, 3, 4], bp.int64),
        ((2, 6), {}, [2, 3, 4, 5], bp.int64),
        ((1, 10, 3), {}, [1, 4, 7], bp.int64),
        ((5, 0, -1), {}, [5, 4, 3, 2, 1], bp.int64),
        ((5.0,), {}, [0, 1, 2, 3, 4], bp.float32),
        ((0, 1, 0.25), {}, [0, 0.25, 0.5, 0.75], bp.float32),
        ((0.5, 3), {}, [0.5, 1.5, 2.5], bp.float32),
        ((4,), {"dtype": bp.float64}, [0, 1, 2, 3], bp.float64),
        ((1, 4), {"step": 2}, [1, 3], bp.int64),
        ((3, 3), {}, [], bp.int64),
    ],
)
def test_arange(args, kwargs, expected, dtype):
    t = bp.arange(*args, **kwargs)
    assert t.dtype == dtype
    assert t.shape == (len(expected),)
    assert_allclose(arr(t), np.array(expected, dtype=np.float64), rtol=0, atol=0)


def test_linspace():
    t = bp.linspace(0, 1, 5)
    assert t.dtype == bp.float32 and t.shape == (5,)
    assert_allclose(arr(t), [0, 0.25, 0.5, 0.75, 1.0], rtol=1e-6)
    t = bp.linspace(-1.0, 2.0, 4)
    assert_allclose(arr(t), [-1, 0, 1, 2], rtol=1e-6, atol=1e-6)
    assert arr(t)[-1] == 2.0 and arr(t)[0] == -1.0
    assert bp.linspace(3, 7, 1).tolist() == [3.0]
    assert bp.linspace(0, 1, 0).shape == (0,)
    t = bp.linspace(2, -2, 9)
    assert_allclose(arr(t), np.linspace(2, -2, 9), atol=1e-6)


def test_eye():
    _check(bp.eye(3), (3, 3), bp.float32, np.eye(3))
    _check(bp.eye(2, 4), (2, 4), bp.float32, np.eye(2, 4))
    _check(bp.eye(4, 2), (4, 2), bp.float32, np.eye(4, 2))
    _check(bp.eye(1), (1, 1), bp.float32, [[1.0]])


# ---------------------------------------------------------------- random


def test_rand_range_and_shape():
    bp.manual_seed(0)
    t = bp.rand(100, 50)
    assert t.shape == (100, 50) and t.dtype == bp.float32
    a = arr(t)
    assert a.min() >= 0.0 and a.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.02
    assert abs(a.var() - 1 / 12) < 0.01
    assert bp.rand((3, 2)).shape == (3, 2)
    assert bp.rand(4, dtype=bp.float64).dtype == bp.float64
    assert len(np.unique(a)) > 4900


def test_randn_statistics():
    bp.manual_seed(1)
    t = bp.randn(200, 100)
    assert t.shape == (200, 100) and t.dtype == bp.float32
    a = arr(t).astype(np.float64)
    assert abs(a.mean()) < 0.03
    assert abs(a.std() - 1.0) < 0.03
    assert (a < 0).mean() == pytest.approx(0.5, abs=0.02)
    assert np.isfinite(a).all()
    assert bp.randn((2, 2)).shape == (2, 2)


def test_randint():
    bp.manual_seed(2)
    t = bp.randint(3, 8, (1000,))
    assert t.dtype == bp.int64 and t.shape == (1000,)
    a = arr(t)
    assert a.min() >= 3 and a.max() < 8
    assert set(np.unique(a).tolist()) == {3, 4, 5, 6, 7}
    u = bp.randint(4, (20, 30))
    assert u.shape == (20, 30) and u.dtype == bp.int64
    b = arr(u)
    assert b.min() >= 0 and b.max() < 4
    assert set(np.unique(b).tolist()) == {0, 1, 2, 3}
    neg = arr(bp.randint(-5, -2, (200,)))
    assert neg.min() >= -5 and neg.max() <= -3


@pytest.mark.parametrize(
    "make",
    [
        lambda: bp.rand(3, 4),
        lambda: bp.randn(5),
        lambda: bp.randint(0, 100, (6,)),
        lambda: bp.randint(10, (2, 2)),
    ],
)
def test_manual_seed_reproducible(make):
    bp.manual_seed(1234)
    a = arr(make()).copy()
    b = arr(make()).copy()
    bp.manual_seed(1234)
    c = arr(make()).copy()
    d = arr(make()).copy()
    assert_array_equal(a, c)
    assert_array_equal(b, d)
    assert not np.array_equal(a, b)  # successive draws differ
    bp.manual_seed(4321)
    e = arr(make()).copy()
    assert not np.array_equal(a, e)  # another seed gives another stream


def test_manual_seed_sequence_across_kinds():
    bp.manual_seed(7)
    first = [arr(bp.rand(4)).copy(), arr(bp.randn(4)).copy(), arr(bp.randint(9, (4,))).copy()]
    bp.manual_seed(7)
    second = [arr(bp.rand(4)).copy(), arr(bp.randn(4)).copy(), arr(bp.randint(9, (4,))).copy()]
    for x, y in zip(first, second):
        assert_array_equal(x, y)
    bp.manual_seed(8)
    assert not np.array_equal(arr(bp.rand(4)), first[0])


# ---------------------------------------------------------------- attributes


def test_shape_ndim_size_numel_stride():
    t = bp.zeros(2, 3, 4)
    assert t.shape == (2, 3, 4)
    assert t.ndim == 3 and t.dim() == 3
    assert tuple(t.size()) == (2, 3, 4)
    assert t.size() == (2, 3, 4)
    assert t.size(0) == 2 and t.size(1) == 3 and t.size(-1) == 4
    assert t.numel() == 24
    assert t.stride() == (12, 4, 1)
    assert t.is_contiguous()
    s = bp.tensor(5.0)
    assert s.shape == () and s.ndim == 0 and s.numel() == 1 and s.stride() == ()
    e = bp.zeros(3, 0)
    assert e.numel() == 0 and e.shape == (3, 0)


def test_transposed_view_strides():
    t = bp.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    tt = t.T
    assert tt.shape == (3, 2)
    assert tt.stride() == (1, 3)
    assert not tt.is_contiguous()
    assert_array_equal(arr(tt), [[1, 4], [2, 5], [3, 6]])
    c = tt.contiguous()
    assert c.is_contiguous() and c.stride() == (2, 1)
    assert_array_equal(arr(c), arr(tt))
    p = bp.zeros(2, 3, 4).permute(2, 0, 1)
    assert p.shape == (4, 2, 3) and p.stride() == (1, 12, 4)
    tr = bp.zeros(2, 3, 4).transpose(0, 2)
    assert tr.shape == (4, 3, 2) and tr.stride() == (1, 4, 12)


def test_dtype_attribute():
    assert bp.tensor([1.0]).dtype == bp.float32
    assert bp.tensor([1]).dtype == bp.int64
    assert bp.tensor([1.0], dtype=bp.float64).dtype == bp.float64
    assert bp.tensor([True]).dtype == bp.bool


# ---------------------------------------------------------------- detach / data / clone / to


def test_detach_shares_storage():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    d = x.detach()
    assert not d.requires_grad
    assert d.is_leaf and d.grad_fn is None
    d.numpy()[1] = 20.0
    assert_array_equal(arr(x), [1.0, 20.0, 3.0])
    assert x.requires_grad


def test_detach_of_nonleaf():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None
    assert_array_equal(arr(d), [2.0, 4.0])
    d.numpy()[0] = -1.0
    assert arr(y)[0] == -1.0


def test_data_is_detached_alias():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    data = x.data
    assert not data.requires_grad
    data.numpy()[0] = 5.0
    assert arr(x)[0] == 5.0
    assert x.requires_grad and x.is_leaf


def test_clone_copies():
    a = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = bp.from_numpy(a)
    c = t.clone()
    assert c.shape == t.shape and c.dtype == t.dtype
    c.numpy()[0] = 100.0
    assert a[0] == 1.0
    a[1] = 50.0
    assert arr(c).tolist() == [100.0, 2.0, 3.0]
    ct = bp.tensor([[1, 2, 3], [4, 5, 6]]).T.clone()
    assert ct.tolist() == [[1, 4], [2, 5], [3, 6]]


def test_clone_is_differentiable():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    c = x.clone()
    assert c.requires_grad and not c.is_leaf and c.grad_fn is not None
    (c * 3).sum().backward()
    assert_array_equal(arr(x.grad), [3.0, 3.0])


@pytest.mark.parametrize(
    "src, dtype, expected",
    [
        ([1.5, -2.0], bp.float64, np.array([1.5, -2.0])),
        ([1.7, -1.7, 0.2], bp.int64, np.array([1, -1, 0])),
        ([0.0, 2.5, -1.0], bp.bool, np.array([False, True, True])),
        ([3, -4], bp.float32, np.array([3.0, -4.0], np.float32)),
        ([True, False], bp.int64, np.array([1, 0])),
        ([1.5, 2.5], bp.float32, np.array([1.5, 2.5], np.float32)),
    ],
)
def test_to_dtype(src, dtype, expected):
    t = bp.tensor(src)
    u = t.to(dtype)
    assert u.dtype == dtype
    assert u.shape == t.shape
    assert_array_equal(arr(u), expected)
    assert arr(u).dtype == expected.dtype


def test_float_double_long():
    t = bp.tensor([1.25, -2.75])
    assert t.double().dtype == bp.float64
    assert_array_equal(arr(t.double()), [1.25, -2.75])
    assert t.long().dtype == bp.int64
    assert t.long().tolist() == [1, -2]
    i = bp.tensor([1, 2])
    assert i.float().dtype == bp.float32
    assert i.float().tolist() == [1.0, 2.0]
    d = bp.tensor([0.1], dtype=bp.float64).float()
    assert arr(d)[0] == np.float32(0.1)


def test_to_does_not_alias_on_conversion():
    t = bp.tensor([1.0, 2.0])
    u = t.to(bp.float64)
    u.numpy()[0] = 9.0
    assert t.tolist() == [1.0, 2.0]


def test_to_dtype_is_differentiable():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x.to(bp.float64)
    assert y.requires_grad and y.dtype == bp.float64
    (y * y).sum().backward()
    assert x.grad.dtype == bp.float32
    assert_allclose(arr(x.grad), [2.0, 4.0])


# ---------------------------------------------------------------- repr

REPR_CASES = [
    ("ints", lambda m: m.tensor([1, 2, 3]), "tensor([1, 2, 3])"),
    ("ints_2d", lambda m: m.tensor([[1, -2], [30, 4]]), "tensor([[ 1, -2],\n        [30,  4]])"),
    ("int_floats", lambda m: m.tensor([1.0, 2.0]), "tensor([1., 2.])"),
    ("fractional", lambda m: m.tensor([0.5, 1.25]), "tensor([0.5000, 1.2500])"),
    (
        "fractional_signed",
        lambda m: m.tensor([1.5, -2.25, 3.0]),
        "tensor([ 1.5000, -2.2500,  3.0000])",
    ),
    (
        "float_2d",
        lambda m: m.tensor([[1.0, 2.0], [3.0, 4.0]]),
        "tensor([[1., 2.],\n        [3., 4.]])",
    ),
    ("zero_d_float", lambda m: m.tensor(3.0), "tensor(3.)"),
    ("zero_d_frac", lambda m: m.tensor(-0.5), "tensor(-0.5000)"),
    ("zero_d_int", lambda m: m.tensor(3), "tensor(3)"),
    ("bool", lambda m: m.tensor([True, False]), "tensor([ True, False])"),
    (
        "requires_grad",
        lambda m: m.tensor([1.0, 2.0], requires_grad=True),
        "tensor([1., 2.], requires_grad=True)",
    ),
    (
        "grad_fn_mul",
        lambda m: m.tensor([1.0], requires_grad=True) * 2,
        "tensor([2.], grad_fn=<MulBackward0>)",
    ),
    (
        "grad_fn_tanh",
        lambda m: m.tensor([[0.25]], requires_grad=True).tanh(),
        "tensor([[0.2449]], grad_fn=<TanhBackward0>)",
    ),
    (
        "float64",
        lambda m: m.tensor([1.0, 2.0], dtype=m.float64),
        "tensor([1., 2.], dtype=bprop.float64)",
    ),
    (
        "float64_0d",
        lambda m: m.tensor(2.0, dtype=m.float64),
        "tensor(2., dtype=bprop.float64)",
    ),
    (
        "float64_requires_grad",
        lambda m: m.tensor([0.5, 2.0], dtype=m.float64, requires_grad=True),
        "tensor([0.5000, 2.0000], dtype=bprop.float64, requires_grad=True)",
    ),
    ("empty_float", lambda m: m.tensor([]), "tensor([])"),
    ("empty_int", lambda m: m.zeros(0, dtype=m.int64), "tensor([], dtype=bprop.int64)"),
    ("empty_bool", lambda m: m.zeros(0, dtype=m.bool), "tensor([], dtype=bprop.bool)"),
    (
        "empty_2d_int",
        lambda m: m.zeros(2, 0, dtype=m.int64),
        "tensor([], size=(2, 0), dtype=bprop.int64)",
    ),
    ("inf_and_int_valued", lambda m: m.tensor([float("inf"), 2.0]), "tensor([inf, 2.])"),
    (
        "nonfinite_mixed",
        lambda m: m.tensor([float("nan"), float("inf"), -float("inf"), 1.0]),
        "tensor([nan, inf, -inf, 1.])",
    ),
    ("nan_and_frac", lambda m: m.tensor([float("nan"), 1.5]), "tensor([   nan, 1.5000])"),
    ("signed_zeros", lambda m: m.tensor([-0.0, 0.0]), "tensor([-0., 0.])"),
    ("large_range_sci", lambda m: m.tensor([1e10, 1.0]), "tensor([1.0000e+10, 1.0000e+00])"),
    (
        "summarized",
        lambda m: m.arange(2000),
        "tensor([   0,    1,    2,  ..., 1997, 1998, 1999])",
    ),
    (
        "transposed",
        lambda m: m.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]).T,
        "tensor([[1., 4.],\n        [2., 5.],\n        [3., 6.]])",
    ),
]


@pytest.mark.parametrize(
    "make, expected", [c[1:] for c in REPR_CASES], ids=[c[0] for c in REPR_CASES]
)
def test_repr_literal(make, expected):
    assert repr(make(bp)) == expected


@pytest.mark.parametrize("make", [c[1] for c in REPR_CASES], ids=[c[0] for c in REPR_CASES])
def test_repr_matches_torch(make):
    torch = pytest.importorskip("torch")
    expected = repr(make(torch)).replace("torch.", "bprop.")
    assert repr(make(bp)) == expected


def test_grad_fn_names():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    assert (x + x).grad_fn.name() == "AddBackward0"
    assert (x * x).grad_fn.name() == "MulBackward0"
    assert x.tanh().grad_fn.name() == "TanhBackward0"
    y = x * 2
    nxt = y.grad_fn.next_functions
    assert len(nxt) >= 1


def test_numpy_scalars_keep_their_dtype():
    t = bp.tensor(np.float64(0.1))
    assert t.dtype == bp.float64
    assert t.item() == 0.1


def test_numpy_arrays_with_odd_strides_or_byte_order_are_copied():
    record = np.zeros(3, dtype=[("a", "<f4"), ("b", "u1")])
    record["a"] = [1.5, 2.5, 3.5]
    np.testing.assert_array_equal(bp.tensor(record["a"]).numpy(), [1.5, 2.5, 3.5])
    swapped = np.arange(3, dtype=">f8")
    t = bp.tensor(swapped)
    assert t.dtype == bp.float64
    np.testing.assert_array_equal(t.numpy(), [0.0, 1.0, 2.0])


def test_uint64_values_beyond_int64_raise():
    with pytest.raises(ValueError, match="does not fit in int64"):
        bp.tensor(np.array([2**64 - 1], np.uint64))
    np.testing.assert_array_equal(bp.tensor(np.array([7], np.uint64)).numpy(), [7])

"""Issue 16, "silent garbage": out-of-range float -> int64 conversions raise, (log_)softmax over
a zero-size dimension gives an empty result, pointwise losses warn on broadcasting shapes, and
numpy's __array__ refuses a tensor that requires grad. Each as PyTorch does."""

import math
import warnings

import bprop as bp
import bprop.nn as nn
import bprop.nn.functional as F
import numpy as np
import pytest

OVERFLOW = "cannot be converted to type int64 without overflow"


# ---- float -> int64 out of range ----


@pytest.mark.parametrize("value", [1e30, -1e30, float("nan"), float("inf"), 2.0**63])
def test_full_int64_out_of_range_raises(value):
    with pytest.raises(RuntimeError, match=OVERFLOW) as info:
        bp.full((2,), value, dtype=bp.int64)
    assert str(info.value).startswith("[full]")


def test_full_like_and_new_full_int64_out_of_range_raise():
    base = bp.tensor([3, 4])
    with pytest.raises(RuntimeError, match=OVERFLOW):
        bp.full_like(base, 1e30)
    with pytest.raises(RuntimeError, match=OVERFLOW):
        base.new_full((2,), float("nan"))
    assert base.tolist() == [3, 4]


@pytest.mark.parametrize("data", [[1e30], [float("nan")], [1.0, -1e30], 1e30, [[2.0], [2.0**64]]])
def test_tensor_int64_out_of_range_raises(data):
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="cannot be converted to type int64"):
        torch.tensor(data, dtype=torch.int64)
    with pytest.raises(RuntimeError, match=OVERFLOW) as info:
        bp.tensor(data, dtype=bp.int64)
    assert str(info.value).startswith("[tensor]")


def test_fill_int64_out_of_range_raises_and_leaves_tensor_unchanged():
    t = bp.tensor([5, 6])
    for value in (1e30, float("nan"), -float("inf")):
        with pytest.raises(RuntimeError, match=OVERFLOW) as info:
            t.fill_(value)
        assert str(info.value).startswith("[fill_]")
        assert t.tolist() == [5, 6]


def test_int64_values_that_fit_still_convert():
    torch = pytest.importorskip("torch")
    low = -(2.0**63)
    assert bp.full((2,), low, dtype=bp.int64).tolist() == [-(2**63)] * 2
    assert bp.tensor([low, 3.0, -7.0], dtype=bp.int64).tolist() == [-(2**63), 3, -7]
    assert bp.tensor([2.0**62], dtype=bp.int64).tolist() == [2**62]
    assert bp.full((1,), 9.0e18, dtype=bp.int64).tolist() == [9 * 10**18]
    expected = torch.tensor([low, 2.0**62], dtype=torch.int64).tolist()
    assert bp.tensor([low, 2.0**62], dtype=bp.int64).tolist() == expected
    assert bp.full((2,), 7, dtype=bp.int64).tolist() == [7, 7]
    assert bp.zeros(2, dtype=bp.int64).fill_(2**62).tolist() == [2**62] * 2


def test_to_int64_of_nan_does_not_raise_as_torch():
    # PyTorch's .to(int64) is an unchecked cast (it gives INT64_MIN for NaN); bprop agrees.
    torch = pytest.importorskip("torch")
    expected = torch.tensor([float("nan")]).to(torch.int64).tolist()
    assert bp.tensor([float("nan")]).to(bp.int64).tolist() == expected


def test_arange_overflowing_size_raises_naming_the_size():
    with pytest.raises(RuntimeError, match=r"\[arange\] invalid size 100000000000000000000"):
        bp.arange(0, 1e20)
    with pytest.raises(RuntimeError, match="does not fit in int64"):
        bp.arange(1e19, 0.0, -1.0)
    assert bp.arange(0, 5.0).tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert bp.arange(0, 10, 3).tolist() == [0, 3, 6, 9]


# ---- (log_)softmax over a zero-size dimension ----


@pytest.mark.parametrize("shape,dim", [((2, 0), 1), ((2, 0), -1), ((0, 3), 0), ((0,), 0)])
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_over_zero_size_dimension_is_empty(shape, dim, name):
    torch = pytest.importorskip("torch")
    expected = getattr(torch, name)(torch.zeros(shape), dim)
    for fn in (getattr(bp, name), getattr(F, name), lambda x, d: getattr(x, name)(d)):
        x = bp.zeros(shape, requires_grad=True)
        y = fn(x, dim)
        assert y.shape == tuple(expected.shape)
        assert y.dtype == bp.float32
        y.sum().backward()
        assert x.grad is not None and x.grad.shape == shape


def test_softmax_module_and_dtype_on_empty_input():
    assert nn.Softmax(dim=1)(bp.zeros(3, 0)).shape == (3, 0)
    assert nn.LogSoftmax(dim=0)(bp.zeros(0, 2)).shape == (0, 2)
    y = bp.softmax(bp.zeros(2, 0), 1, dtype=bp.float64)
    assert y.shape == (2, 0) and y.dtype == bp.float64


def test_softmax_of_an_empty_integer_tensor_or_with_a_numpy_dim_is_empty():
    y = F.log_softmax(bp.zeros(3, 0, dtype=bp.int64), 1)
    assert y.shape == (3, 0) and y.dtype == bp.float32
    assert bp.zeros(3, 0).softmax(np.int64(1)).shape == (3, 0)


def test_softmax_on_empty_input_still_checks_dim():
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        bp.softmax(bp.zeros(2, 0), 2)


# ---- pointwise losses with broadcasting shapes ----

WARNING = (
    r"Using a target size \(\(4,\)\) that is different to the input size \(\(4, 1\)\)\. "
    r"This will likely lead to incorrect results due to broadcasting\. "
    r"Please ensure they have the same size\."
)


@pytest.mark.parametrize("name", ["mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_pointwise_loss_warns_and_broadcasts_as_torch(name, reduction):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((4, 1)), rng.standard_normal(4)
    with pytest.warns(UserWarning, match="that is different to the input size"):
        expected = getattr(torch.nn.functional, name)(
            torch.tensor(a), torch.tensor(b), reduction=reduction
        )
    x = bp.tensor(a, requires_grad=True)
    target = bp.tensor(b)
    with pytest.warns(UserWarning, match=WARNING):
        got = getattr(F, name)(x, target, reduction=reduction)
    assert got.shape == tuple(expected.shape)
    np.testing.assert_allclose(got.detach().numpy(), expected.numpy(), rtol=1e-12)
    assert target.tolist() == b.tolist()


def test_pointwise_loss_modules_warn_and_same_shapes_do_not():
    with pytest.warns(UserWarning, match="different to the input size"):
        nn.MSELoss()(bp.zeros(4, 1), bp.zeros(4))
    with pytest.warns(UserWarning, match="different to the input size"):
        nn.L1Loss()(bp.zeros(4, 1), bp.zeros(4))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss"):
            getattr(F, name)(bp.zeros(4, 1), bp.zeros(4, 1))


def test_binary_cross_entropy_size_mismatch_raises_as_torch():
    p = bp.full((4, 1), 0.5)
    t = bp.ones(4)
    with pytest.raises(ValueError, match=r"Using a target size \(\(4,\)\) that is different"):
        F.binary_cross_entropy(p, t)
    with pytest.raises(ValueError, match=r"Target size \(\(4,\)\) must be the same as input size"):
        F.binary_cross_entropy_with_logits(p, t)
    with pytest.raises(ValueError, match="must be the same as input size"):
        nn.BCEWithLogitsLoss()(p, t)
    assert p.tolist() == [[0.5]] * 4 and t.tolist() == [1.0] * 4
    value = F.binary_cross_entropy_with_logits(bp.zeros(4), t).item()
    assert math.isclose(value, math.log(2.0), rel_tol=1e-6)


# ---- numpy's __array__ on a tensor that requires grad ----


def test_array_protocol_refuses_tensor_that_requires_grad_as_numpy_does():
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="Can't call numpy"):
        np.asarray(torch.zeros(2, requires_grad=True))
    p = bp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(RuntimeError) as numpy_error:
        p.numpy()
    for convert in (np.asarray, np.array, np.exp, lambda t: np.asarray(t, dtype=np.float64)):
        with pytest.raises(RuntimeError) as info:
            convert(p)
        assert str(info.value) == str(numpy_error.value)
    assert p.requires_grad and p.tolist() == [1.0, 2.0] and p.grad is None


def test_array_protocol_works_once_detached_or_without_grad():
    p = bp.tensor([1.0, 2.0], requires_grad=True)
    np.testing.assert_allclose(np.exp(p.detach()), np.exp([1.0, 2.0]), rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(bp.tensor([3, 4])), [3, 4])
    with bp.no_grad():
        y = p * 2
    np.testing.assert_array_equal(np.asarray(y), [2.0, 4.0])


def test_tensor_from_a_list_holding_grad_tensors_takes_their_values_as_torch():
    torch = pytest.importorskip("torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = torch.tensor([torch.tensor(1.5, requires_grad=True), 2.0]).tolist()
    p = bp.tensor(1.5, requires_grad=True)
    got = bp.tensor([p, 2.0])
    assert got.tolist() == expected and not got.requires_grad
    assert p.requires_grad and p.is_leaf and p.item() == 1.5

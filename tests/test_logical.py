"""Logical ops and the &, |, ^, ~ operators, against PyTorch's results."""

from __future__ import annotations

import bprop as bp
import numpy as np
import pytest

A = [[True, False, True], [False, False, True]]
B = [[True, True, False], [False, True, True]]
X = [[0.0, 1.5, -2.0], [3.0, 0.0, 0.0]]


@pytest.mark.parametrize("name", ["logical_and", "logical_or", "logical_xor"])
def test_binary_logical_ops_match_torch(name):
    torch = pytest.importorskip("torch")
    for a, b in [(A, B), (X, A), (X, [1.0, 0.0, 2.0])]:
        expected = getattr(torch, name)(torch.tensor(a), torch.tensor(b)).numpy()
        got = getattr(bp, name)(bp.tensor(a), bp.tensor(b))
        assert got.dtype == bp.bool
        np.testing.assert_array_equal(got.numpy(), expected)
        np.testing.assert_array_equal(getattr(bp.tensor(a), name)(bp.tensor(b)).numpy(), expected)


def test_operators_on_bool_tensors():
    a, b = bp.tensor(A), bp.tensor(B)
    na, nb = np.array(A), np.array(B)
    np.testing.assert_array_equal((a & b).numpy(), na & nb)
    np.testing.assert_array_equal((a | b).numpy(), na | nb)
    np.testing.assert_array_equal((a ^ b).numpy(), na ^ nb)
    np.testing.assert_array_equal((~a).numpy(), ~na)
    np.testing.assert_array_equal((True & a).numpy(), na)
    np.testing.assert_array_equal(bp.logical_not(bp.tensor(X)).numpy(), np.logical_not(X))
    np.testing.assert_array_equal((~bp.tensor([0, 5, -3])).numpy(), ~np.array([0, 5, -3]))


@pytest.mark.parametrize("name", ["any", "all"])
def test_any_all_match_torch(name):
    torch = pytest.importorskip("torch")
    for data in (A, X, [[1.0, 2.0], [3.0, 4.0]]):
        t, ref = bp.tensor(data), torch.tensor(data)
        assert bool(getattr(bp, name)(t)) == bool(getattr(torch, name)(ref))
        for dim in (0, 1, -1):
            got = getattr(t, name)(dim=dim, keepdim=True)
            np.testing.assert_array_equal(got.numpy(), getattr(ref, name)(dim, keepdim=True))
            assert got.dtype == bp.bool
    empty = bp.zeros(0)
    assert not bool(empty.any()) and bool(empty.all())  # as torch: any([]) False, all([]) True


def test_bitwise_operators_refuse_non_bool_operands():
    with pytest.raises(TypeError, match=r"\[bitwise_and\] .*int64"):
        bp.tensor([1, 2]) & bp.tensor([3, 3])
    with pytest.raises(TypeError, match=r"\[bitwise_or\] .*float"):
        bp.tensor([True]) | 2.0
    with pytest.raises(TypeError, match=r"\[bitwise_not\] .*float32"):
        ~bp.tensor([1.0])

"""User mistakes raise the right exception, with the op and the shapes in the message, and a
failed call leaves everything the user owns (values, .grad, flags, graphs, modes) as it was."""

import re

import bprop as bp
import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal


def arr(t):
    return np.asarray(t.detach())


def snapshot(*tensors):
    """Everything observable about some tensors, to compare before and after a failed call."""
    out = []
    for t in tensors:
        grad = None if t.grad is None else arr(t.grad).copy()
        fn = None if t.grad_fn is None else t.grad_fn.name()
        out.append(
            (arr(t).copy(), t.shape, t.dtype, t.requires_grad, t.is_leaf, fn, grad, t.stride())
        )
    return out


def assert_same(before, after):
    assert len(before) == len(after)
    for b, a in zip(before, after):
        assert_array_equal(a[0], b[0])
        assert a[1:6] == b[1:6]
        if b[6] is None:
            assert a[6] is None
        else:
            assert a[6] is not None
            assert_array_equal(a[6], b[6])
        assert a[7] == b[7]


def contains(*parts):
    """A regex matching a message that contains every part, in any order."""
    return "".join(f"(?=.*{re.escape(p)})" for p in parts)


# ---------------------------------------------------------------- matmul


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: a @ b,
        lambda a, b: bp.matmul(a, b),
        lambda a, b: a.matmul(b),
    ],
    ids=["operator", "function", "method"],
)
def test_matmul_shape_mismatch(call):
    a = bp.zeros(3, 4)
    b = bp.zeros(5, 6)
    with pytest.raises(ValueError, match=contains("[matmul]", "(3, 4)", "(5, 6)", "4 != 5")):
        call(a, b)


def test_matmul_exact_message():
    with pytest.raises(ValueError) as info:
        bp.zeros(3, 4) @ bp.zeros(5, 6)
    assert "[matmul] shapes (3, 4) and (5, 6) are not aligned: 4 != 5" in str(info.value)


def test_matmul_mismatch_other_shapes():
    with pytest.raises(ValueError, match=contains("[matmul]", "(2, 3)", "(2, 3)", "3 != 2")):
        bp.ones(2, 3) @ bp.ones(2, 3)


def test_failed_matmul_changes_nothing():
    a = bp.tensor([[1.0, 2.0, 3.0, 4.0]] * 3, requires_grad=True)
    b = bp.tensor(np.arange(30, dtype=np.float32).reshape(5, 6), requires_grad=True)
    c = bp.tensor(np.ones((4, 2), dtype=np.float32), requires_grad=True)
    (a @ c).sum().backward()
    before = snapshot(a, b, c)
    with pytest.raises(ValueError):
        a @ b
    with pytest.raises(ValueError):
        (a * 2) @ b
    assert_same(before, snapshot(a, b, c))
    assert b.grad is None
    # The inputs still work, and gradients keep accumulating from where they were.
    (a @ c).sum().backward()
    assert_array_equal(arr(a.grad), np.full((3, 4), 4.0))
    assert_array_equal(arr(c.grad), 2 * np.array([[3.0] * 2, [6.0] * 2, [9.0] * 2, [12.0] * 2]))


# ---------------------------------------------------------------- broadcasting

BINARY = [
    ("add", lambda a, b: a + b),
    ("sub", lambda a, b: a - b),
    ("mul", lambda a, b: a * b),
    ("div", lambda a, b: a / b),
    ("pow", lambda a, b: a**b),
    ("add", lambda a, b: bp.add(a, b)),
    ("mul", lambda a, b: bp.mul(a, b)),
    ("add", lambda a, b: a.add(b)),
]


@pytest.mark.parametrize("name, call", BINARY, ids=[f"{n}{i}" for i, (n, _) in enumerate(BINARY)])
def test_broadcast_mismatch(name, call):
    a = bp.ones(2, 3)
    b = bp.ones(4)
    with pytest.raises(ValueError, match=contains(f"[{name}]", "(2, 3)", "(4,)", "broadcast")):
        call(a, b)


def test_broadcast_exact_message():
    with pytest.raises(ValueError) as info:
        bp.ones(2, 3) + bp.ones(4)
    assert "[add] shapes (2, 3) and (4,) cannot be broadcast" in str(info.value)


def test_broadcast_mismatch_reversed_and_3d():
    with pytest.raises(ValueError, match=contains("[add]", "(4,)", "(2, 3)")):
        bp.ones(4) + bp.ones(2, 3)
    with pytest.raises(ValueError, match=contains("[mul]", "(2, 3, 4)", "(3, 2)")):
        bp.ones(2, 3, 4) * bp.ones(3, 2)


@pytest.mark.parametrize(
    "call",
    [
        lambda a, b: a < b,
        lambda a, b: a <= b,
        lambda a, b: a > b,
        lambda a, b: a >= b,
        lambda a, b: a == b,
        lambda a, b: a != b,
    ],
    ids=["lt", "le", "gt", "ge", "eq", "ne"],
)
def test_comparison_broadcast_mismatch(call):
    with pytest.raises(ValueError, match=contains("(2, 3)", "(4,)")):
        call(bp.ones(2, 3), bp.ones(4))


def test_where_broadcast_mismatch():
    cond = bp.ones(2, 3) > 0
    with pytest.raises(ValueError, match=contains("[where]")):
        bp.where(cond, bp.ones(2, 3), bp.ones(4))
    with pytest.raises(ValueError, match=contains("[where]")):
        bp.where(bp.ones(5) > 0, bp.ones(2, 3), bp.ones(3))


def test_failed_broadcast_leaves_graph_usable():
    x = bp.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    bad = bp.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    before = snapshot(x, bad)
    for call in (lambda: x + bad, lambda: x * bad, lambda: x - bad, lambda: x / bad):
        with pytest.raises(ValueError):
            call()
    assert_same(before, snapshot(x, bad))
    y.backward()
    assert_array_equal(arr(x.grad), 2 * np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32))
    assert bad.grad is None


# ---------------------------------------------------------------- backward misuse


def test_nonscalar_backward_without_gradient():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    with pytest.raises(
        RuntimeError, match="grad can be implicitly created only for scalar outputs"
    ):
        y.backward()


def test_failed_nonscalar_backward_changes_nothing():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    (x * 1).sum().backward()
    y = x * x
    before = snapshot(x, y)
    with pytest.raises(RuntimeError):
        y.backward()
    assert_same(before, snapshot(x, y))
    # The graph was not freed by the failed call.
    y.backward(bp.tensor([1.0, 1.0]))
    assert_array_equal(arr(x.grad), [1.0 + 2.0, 1.0 + 4.0])


def test_backward_twice_through_freed_graph():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match=re.escape("retain_graph=True")):
        y.backward()


def test_failed_second_backward_keeps_first_grad():
    x = bp.tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x.tanh().sum()
    y.backward()
    before = snapshot(x)
    with pytest.raises(RuntimeError):
        y.backward()
    assert_same(before, snapshot(x))
    expected = 1 - np.tanh(np.array([1.0, 2.0, 3.0])) ** 2
    assert_allclose(arr(x.grad), expected, rtol=1e-5, atol=1e-6)


def test_failed_second_backward_does_not_accumulate_partially():
    # The add's gradient could reach x before the mul finds its saved tensors freed.
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = (x + x * x).sum()
    y.backward()
    before = snapshot(x)
    with pytest.raises(RuntimeError, match=re.escape("retain_graph=True")):
        y.backward()
    assert_same(before, snapshot(x))
    assert_array_equal(arr(x.grad), [3.0, 5.0])


def test_backward_gradient_shape_mismatch():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    with pytest.raises((ValueError, RuntimeError), match=contains("(3,)", "(2,)")):
        y.backward(bp.ones(3))
    assert x.grad is None
    y.backward(bp.ones(2))  # the graph survived the failed call
    assert_array_equal(arr(x.grad), [2.0, 2.0])
    with pytest.raises((ValueError, RuntimeError), match=contains("(5,)", "(2,)")):
        bp.grad(x * 3, x, grad_outputs=bp.ones(5))


def test_retain_graph_allows_second_backward():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert_array_equal(arr(x.grad), [4.0, 8.0])


def test_backward_on_tensor_not_requiring_grad():
    t = bp.tensor([1.0, 2.0])
    with pytest.raises(RuntimeError, match="does not require grad"):
        t.sum().backward()
    with pytest.raises(RuntimeError, match="does not require grad"):
        bp.tensor(3.0).backward()
    with bp.no_grad():
        y = (bp.tensor([1.0], requires_grad=True) * 2).sum()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_grad_on_output_not_requiring_grad():
    x = bp.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="does not require grad"):
        bp.grad(bp.tensor(1.0) * 2, x)


# ---------------------------------------------------------------- requires_grad on non-float


@pytest.mark.parametrize(
    "make",
    [
        lambda: bp.tensor([1, 2], requires_grad=True),
        lambda: bp.tensor([True, False], requires_grad=True),
        lambda: bp.tensor(3, requires_grad=True),
        lambda: bp.zeros(2, dtype=bp.int64, requires_grad=True),
        lambda: bp.ones(2, dtype=bp.bool, requires_grad=True),
        lambda: bp.arange(3).requires_grad_(),
        lambda: bp.tensor([1.0]).long().requires_grad_(True),
    ],
)
def test_int_bool_requires_grad(make):
    with pytest.raises(RuntimeError, match="floating point"):
        make()


@pytest.mark.parametrize("dtype", [bp.int64, bp.bool])
def test_failed_requires_grad_setter_changes_nothing(dtype):
    t = bp.tensor([1, 0, 1], dtype=dtype)
    before = snapshot(t)
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad = True
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad_()
    assert_same(before, snapshot(t))
    assert not t.requires_grad


# ---------------------------------------------------------------- dims and reshape


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.sum(dim=5),
        lambda t: t.sum(dim=-3),
        lambda t: t.sum(dim=2),
        lambda t: t.sum(dim=(0, 5)),
        lambda t: t.mean(dim=5),
        lambda t: t.mean(dim=-3),
        lambda t: t.sum(axis=7),
        lambda t: bp.sum(t, dim=5),
        lambda t: t.transpose(0, 2),
        lambda t: t.transpose(-3, 1),
        lambda t: t.size(2),
        lambda t: t.size(-3),
    ],
)
def test_bad_dim_index_error(call):
    t = bp.ones(2, 3)
    with pytest.raises(IndexError):
        call(t)


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.reshape(4, 4),
        lambda t: t.reshape((7,)),
        lambda t: t.reshape(4, -1),
        lambda t: bp.reshape(t, (5,)),
    ],
)
def test_reshape_wrong_numel(call):
    t = bp.ones(2, 3)
    with pytest.raises(ValueError, match=re.escape("[reshape]")) as info:
        call(t)
    msg = str(info.value)
    assert "(2, 3)" in msg or "6" in msg


def test_reshape_two_inferred_dims():
    with pytest.raises((ValueError, RuntimeError), match=re.escape("[reshape]")):
        bp.ones(2, 3).reshape(-1, -1)


def test_failed_shape_ops_change_nothing():
    x = bp.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], requires_grad=True)
    y = x * 2
    before = snapshot(x, y)
    with pytest.raises(IndexError):
        y.sum(dim=5)
    with pytest.raises(ValueError):
        y.reshape(4, 4)
    with pytest.raises(IndexError):
        y.transpose(0, 3)
    assert_same(before, snapshot(x, y))
    y.sum().backward()
    assert_array_equal(arr(x.grad), np.full((2, 3), 2.0))


def test_permute_bad_dims():
    t = bp.ones(2, 3)
    with pytest.raises((ValueError, RuntimeError, IndexError), match=re.escape("[permute]")):
        t.permute(0, 0)
    with pytest.raises((ValueError, RuntimeError, IndexError), match=re.escape("[permute]")):
        t.permute(0)
    with pytest.raises(IndexError):
        t.permute(0, 2)


@pytest.mark.parametrize(
    "call, name",
    [
        (lambda: bp.zeros(-1), None),
        (lambda: bp.ones(2, -3), None),
        (lambda: bp.arange(0, 5, 0), "arange"),
        (lambda: bp.randint(5, 5, (3,)), "randint"),
        (lambda: bp.linspace(0, 1, -1), "linspace"),
    ],
    ids=["zeros", "ones", "arange", "randint", "linspace"],
)
def test_bad_creation_arguments(call, name):
    with pytest.raises((ValueError, RuntimeError)) as info:
        call()
    if name is not None:
        assert f"[{name}]" in str(info.value)


def test_assign_grad_of_wrong_shape_or_dtype():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    x.grad = bp.tensor([0.5, 0.5])
    before = snapshot(x)
    with pytest.raises((ValueError, RuntimeError), match=contains("(3,)", "(2,)")):
        x.grad = bp.ones(3)
    with pytest.raises((TypeError, RuntimeError)):
        x.grad = bp.ones(2, dtype=bp.float64)
    with pytest.raises((TypeError, RuntimeError)):
        x.grad = bp.tensor([1, 2])
    assert_same(before, snapshot(x))


def test_requires_grad_false_on_non_leaf():
    y = bp.tensor([1.0], requires_grad=True) * 2
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False
    assert y.requires_grad and y.grad_fn is not None


# ---------------------------------------------------------------- bp.grad allow_unused


def test_grad_unused_input():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    z = bp.tensor([3.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="allow_unused"):
        bp.grad((x * x).sum(), [x, z])
    with pytest.raises(RuntimeError, match="allow_unused"):
        bp.autograd.grad((x * x).sum(), z)


def test_grad_unused_input_allowed():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    z = bp.tensor([3.0], requires_grad=True)
    gx, gz = bp.grad((x * x).sum(), [x, z], allow_unused=True)
    assert gz is None
    assert_array_equal(arr(gx), [2.0, 4.0])


def test_failed_grad_changes_nothing():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    z = bp.tensor([3.0], requires_grad=True)
    x.grad = bp.tensor([10.0, 20.0])
    before = snapshot(x, z)
    with pytest.raises(RuntimeError):
        bp.grad((x * x).sum(), [x, z])
    assert_same(before, snapshot(x, z))


# ---------------------------------------------------------------- in-place modification


def test_inplace_modification_of_saved_tensor():
    w = bp.tensor([1.0, -2.0, 3.0], requires_grad=True)
    loss = (w * w).sum()
    loss.backward(retain_graph=True)
    bp.optim.SGD([w], lr=0.5).step()
    grad_before = arr(w.grad).copy()
    w_before = arr(w).copy()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    assert_array_equal(arr(w), w_before)
    assert_array_equal(arr(w.grad), grad_before)


def test_failed_inplace_check_does_not_accumulate_partially():
    # v's gradient path has no saved tensors; w's does, and w was changed by step().
    w = bp.tensor([1.0, 2.0], requires_grad=True)
    v = bp.tensor([1.0, 1.0], requires_grad=True)
    loss = (v * 2).sum() + (w * w).sum()
    loss.backward(retain_graph=True)
    bp.optim.SGD([w], lr=0.1).step()
    before = snapshot(w, v)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()
    assert_same(before, snapshot(w, v))


# ---------------------------------------------------------------- conversions


@pytest.mark.parametrize(
    "make",
    [
        lambda: bp.tensor([1.0, 2.0]),
        lambda: bp.zeros(2, 2),
        lambda: bp.tensor([1, 2]),
        lambda: bp.zeros(0),
    ],
)
def test_item_on_multi_element(make):
    with pytest.raises((ValueError, RuntimeError)):
        make().item()


def test_numpy_on_requires_grad():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    before = snapshot(x)
    with pytest.raises(RuntimeError):
        x.numpy()
    with pytest.raises(RuntimeError):
        (x * 2).numpy()
    assert_same(before, snapshot(x))
    assert_array_equal(x.detach().numpy(), [1.0, 2.0])


@pytest.mark.parametrize(
    "a",
    [
        np.array([1 + 2j, 3j]),
        np.array([1 + 2j], dtype=np.complex64),
        np.array([1, "a"], dtype=object),
        np.array([None, None]),
    ],
    ids=["complex128", "complex64", "object_str", "object_none"],
)
def test_from_numpy_unsupported_dtype(a):
    with pytest.raises(TypeError):
        bp.from_numpy(a)


@pytest.mark.parametrize(
    "a",
    [np.array([1 + 2j, 3j]), np.array([1 + 2j], dtype=np.complex64)],
    ids=["complex128", "complex64"],
)
def test_tensor_unsupported_numpy_dtype(a):
    with pytest.raises(TypeError):
        bp.tensor(a)


@pytest.mark.parametrize("bad", [[[1, 2], [3]], [[1.0], [2.0, 3.0]], [[[1]], [2]]])
def test_ragged(bad):
    with pytest.raises(ValueError, match="ragged|inhomogeneous"):
        bp.tensor(bad)


# ---------------------------------------------------------------- modes survive errors


def test_no_grad_restored_after_exception():
    assert bp.is_grad_enabled()
    with pytest.raises(ValueError):
        with bp.no_grad():
            assert not bp.is_grad_enabled()
            bp.ones(3, 4) @ bp.ones(5, 6)
    assert bp.is_grad_enabled()


def test_no_grad_decorator_restored_after_exception():
    @bp.no_grad()
    def f():
        assert not bp.is_grad_enabled()
        return bp.ones(2, 3) + bp.ones(4)

    with pytest.raises(ValueError):
        f()
    assert bp.is_grad_enabled()


def test_enable_grad_restored_after_exception():
    with bp.no_grad():
        with pytest.raises(IndexError):
            with bp.enable_grad():
                assert bp.is_grad_enabled()
                bp.ones(2).sum(dim=3)
        assert not bp.is_grad_enabled()
    assert bp.is_grad_enabled()


def test_set_default_dtype_rejects_non_float():
    before = bp.get_default_dtype()
    with pytest.raises((TypeError, ValueError)):
        bp.set_default_dtype(bp.int64)
    assert bp.get_default_dtype() == before
    assert bp.tensor(1.5).dtype == before


@pytest.mark.parametrize(
    "make",
    [
        lambda: bp.ones(2**62),
        lambda: bp.zeros(2**40, 2**40),
        lambda: bp.eye(2**32),
        lambda: bp.linspace(0, 1, 2**62),
        lambda: bp.zeros(0).reshape(2**32, 2**32),
    ],
    ids=["ones", "zeros_2d", "eye", "linspace", "reshape_empty"],
)
def test_element_count_overflow_raises_instead_of_crashing(make):
    # Before: the byte count wrapped around to a tiny buffer under a huge shape (segfault).
    with pytest.raises((ValueError, MemoryError)):
        make()

"""Python protocols and small PyTorch methods on Tensor (issue 15): format and f-strings,
__index__, the legacy Tensor(...) constructor, pickle, copy and deepcopy (of tensors,
Parameters and Modules), == None, type(), int(), nelement, element_size, new_*, and the
grad-mode decorators (no_grad, enable_grad, inference_mode). Compared with PyTorch 2.13
where it behaves the same."""

from __future__ import annotations

import copy
import operator
import pickle

import bprop as bp
import numpy as np
import pytest

# ---- format and f-strings ----

_FORMAT_VALUES = [
    ("float", 1.23456, None),
    ("float", -0.5, None),
    ("int", 3, None),
    ("bool", True, None),
    ("float", [1.5], None),
    ("float", [[2.0]], None),
    ("float", [1.0, 2.0], None),
    ("int", [[1, 2], [3, 4]], None),
]
_SPECS = ["", ".4f", ".2e", ">10", "d", "+.1f", "08.3f"]


@pytest.mark.parametrize("kind, data, _", _FORMAT_VALUES, ids=lambda v: str(v))
def test_format_matches_torch(kind, data, _):
    torch = pytest.importorskip("torch")
    dtypes = {"float": (bp.float32, torch.float32), "int": (bp.int64, torch.int64)}
    dtypes["bool"] = (bp.bool, torch.bool)
    ours = bp.tensor(data, dtype=dtypes[kind][0])
    theirs = torch.tensor(data, dtype=dtypes[kind][1])
    for spec in _SPECS:
        try:
            expected = format(theirs, spec)
        except (TypeError, ValueError) as error:
            expected = type(error)
        if ours.numel() == 1 and ours.ndim > 0 and spec and expected is TypeError:
            # bprop formats one-element tensors of any shape (PyTorch: 0-d only).
            try:
                expected = format(theirs.item(), spec)
            except ValueError as error:
                expected = type(error)
        if isinstance(expected, type):
            with pytest.raises(expected):
                format(ours, spec)
        else:
            assert format(ours, spec) == expected, spec


def test_f_strings_of_a_loss():
    loss = (bp.tensor([0.25, 0.75], requires_grad=True) ** 2).mean()
    assert f"{loss:.4f}" == "0.3125"
    assert f"loss {loss.item():.2f} {loss:6.3f}" == "loss 0.31  0.312"
    assert f"{bp.tensor([7]):d}" == "7"
    with pytest.raises(TypeError, match=r"^\[format\] unsupported format string '.2f'"):
        f"{bp.ones(2):.2f}"  # noqa: B018


# ---- __index__ ----


def test_index_matches_torch():
    torch = pytest.importorskip("torch")
    for data, dtype in [(3, "int64"), ([3], "int64"), ([[3]], "int64"), (True, "bool")]:
        ours = bp.tensor(data, dtype=getattr(bp, dtype))
        theirs = torch.tensor(data, dtype=getattr(torch, dtype))
        assert operator.index(ours) == operator.index(theirs)
    for data, dtype in [(3.0, "float32"), ([1, 2], "int64"), ([], "int64")]:
        with pytest.raises(TypeError):
            operator.index(torch.tensor(data, dtype=getattr(torch, dtype)))
        with pytest.raises(TypeError, match=r"^\[__index__\] only integer tensors"):
            operator.index(bp.tensor(data, dtype=getattr(bp, dtype)))


def test_index_in_slices_range_lists_and_numpy():
    i, j = bp.tensor(1), bp.tensor([4])
    values = list(range(10))
    assert values[i:j] == [1, 2, 3]
    assert values[i] == 1
    assert list(range(i, j)) == [1, 2, 3]
    assert np.arange(10)[bp.tensor(5)] == 5
    assert np.arange(10)[i:j].tolist() == [1, 2, 3]
    assert bp.arange(10)[i:j].tolist() == [1, 2, 3]
    assert "abcdef"[i:j] == "bcd"
    assert hex(bp.tensor(255)) == "0xff"


# ---- the legacy constructor ----


def test_legacy_constructor_matches_torch():
    torch = pytest.importorskip("torch")
    for args in [([1.0, 2.0],), ([1, 2],), ([[True, False]],), ((2, 3),), ([],)]:
        ours, theirs = bp.Tensor(*args), torch.Tensor(*args)
        assert ours.dtype == bp.float32 and ours.tolist() == theirs.tolist(), args
    assert bp.Tensor(np.array([1, 2])).tolist() == [1.0, 2.0]
    assert bp.Tensor(np.array([1, 2])).dtype == bp.float32
    for args in [(2, 3), (4,), (0,)]:
        ours, theirs = bp.Tensor(*args), torch.Tensor(*args)
        assert ours.shape == tuple(theirs.shape) and ours.dtype == bp.float32
        assert not ours.requires_grad and ours.numpy().sum() == 0
    assert bp.Tensor().shape == tuple(torch.Tensor().shape) == (0,)
    with pytest.raises(TypeError):
        torch.Tensor(2.5)
    with pytest.raises(TypeError, match=r"^\[Tensor\]"):
        bp.Tensor(2.5)
    with pytest.raises(RuntimeError, match="CPU only"):
        bp.Tensor([1.0], device="cuda")


def test_legacy_constructor_follows_the_default_dtype():
    bp.set_default_dtype(bp.float64)
    try:
        assert bp.Tensor([1, 2]).dtype == bp.Tensor(2).dtype == bp.float64
    finally:
        bp.set_default_dtype(bp.float32)


def test_tensor_of_a_tensor_shares_memory_and_parameter_still_works():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = bp.Tensor(x)
    assert y.is_leaf and not y.requires_grad
    y[0] = 7.0  # shares x's memory, as torch.Tensor(x) does
    assert x.tolist() == [7.0, 2.0]
    p = bp.nn.Parameter(bp.ones(3))
    assert isinstance(p, bp.nn.Parameter) and p.requires_grad and p.tolist() == [1.0] * 3
    assert bp.nn.Parameter().shape == (0,)


# ---- == None ----


def test_comparison_with_none_like_torch():
    torch = pytest.importorskip("torch")
    for lib in (bp, torch):
        t = lib.tensor([1.0, 2.0])
        assert (t == None) is False  # noqa: E711
        assert (t != None) is True  # noqa: E711
        assert t is not None
    t = bp.tensor([1.0, 2.0])
    assert (t == t).tolist() == [True, True] and (t != 1.0).tolist() == [False, True]
    assert bp.nn.Parameter(bp.ones(1)) != None  # noqa: E711
    assert None in [None, t] and t in [None, t]


# ---- pickle, copy, deepcopy ----


@pytest.mark.parametrize(
    "make",
    [
        lambda: bp.tensor([[1.5, -2.0], [3.0, 4.25]]),
        lambda: bp.tensor(2.5, dtype=bp.float64),
        lambda: bp.tensor([1, 2, 3]),
        lambda: bp.tensor([True, False]),
        lambda: bp.zeros(0, 3),
        lambda: bp.arange(12.0).reshape(3, 4).transpose(0, 1)[1:],  # a strided view
        lambda: bp.tensor([1.0, 2.0], requires_grad=True),
    ],
    ids=["2d", "0d-f64", "int", "bool", "empty", "view", "requires-grad"],
)
def test_pickle_round_trip(make):
    x = make()
    x_grad = x.requires_grad
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        y = pickle.loads(pickle.dumps(x, protocol=protocol))
        assert type(y) is bp.Tensor
        assert y.shape == x.shape and y.dtype == x.dtype and y.tolist() == x.tolist()
        assert y.requires_grad == x_grad and y.is_leaf and y.grad is None
        assert not y._is_same(x)


def test_pickle_matches_torch_for_leaves_grads_and_non_leaves():
    torch = pytest.importorskip("torch")
    for lib in (bp, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.grad = lib.ones(2)
        y = pickle.loads(pickle.dumps(x))
        assert y.requires_grad and y.grad is None  # .grad is not pickled
        z = pickle.loads(pickle.dumps(x * 2))
        assert z.is_leaf and z.requires_grad and z.tolist() == [2.0, 4.0]


def test_pickle_parameter_and_state_dict():
    p = bp.nn.Parameter(bp.tensor([1.0, -1.0]))
    q = pickle.loads(pickle.dumps(p))
    assert type(q) is bp.nn.Parameter and q.requires_grad and q.tolist() == [1.0, -1.0]
    frozen = pickle.loads(pickle.dumps(bp.nn.Parameter(bp.ones(1), requires_grad=False)))
    assert type(frozen) is bp.nn.Parameter and not frozen.requires_grad
    model = bp.nn.Linear(3, 2)
    state = pickle.loads(pickle.dumps(model.state_dict()))
    assert list(state) == list(model.state_dict())
    for name, value in model.state_dict().items():
        assert state[name].tolist() == value.tolist()


def test_copy_is_shallow_as_in_torch():
    torch = pytest.importorskip("torch")
    for lib in (bp, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        x.grad = lib.ones(2)
        c = copy.copy(x)
        assert c is not x and c.is_leaf and c.requires_grad and c.grad is None
        c.data[0] = 5.0  # shares x's memory
        assert x.tolist() == [5.0, 2.0]
        d = copy.copy(x * 2)  # a non-leaf copies to a leaf
        assert d.is_leaf and d.requires_grad and d.grad_fn is None
    assert type(copy.copy(bp.nn.Parameter(bp.ones(1)))) is bp.nn.Parameter


def test_deepcopy_matches_torch():
    torch = pytest.importorskip("torch")
    for lib in (bp, torch):
        x = lib.tensor([1.0, 2.0], requires_grad=True)
        (x * x).sum().backward()
        d = copy.deepcopy(x)
        assert d.is_leaf and d.requires_grad and d.tolist() == [1.0, 2.0]
        assert d.grad.tolist() == [2.0, 4.0] and d.grad is not x.grad
        with lib.no_grad():
            d.mul_(10)
            d.grad.zero_()
        assert x.tolist() == [1.0, 2.0] and x.grad.tolist() == [2.0, 4.0]
        # The memo keeps one copy per tensor object.
        pair = copy.deepcopy([x, x])
        assert pair[0] is pair[1] and pair[0] is not x
        with pytest.raises(RuntimeError, match="graph leaves"):
            copy.deepcopy(x * 2)
    p = bp.nn.Parameter(bp.ones(2))
    assert type(copy.deepcopy(p)) is bp.nn.Parameter and copy.deepcopy(p).requires_grad


class _TiedModel(bp.nn.Module):
    """An embedding whose weight the output layer shares (a GPT's weight tying)."""

    def __init__(self) -> None:
        super().__init__()
        self.wte = bp.nn.Linear(3, 4, bias=False)
        self.head = bp.nn.Linear(4, 3)
        self.lm = bp.nn.Linear(3, 4, bias=False)
        self.lm.weight = self.wte.weight  # tied: one Parameter in two places

    def forward(self, x):
        return self.head(self.lm(x).tanh() + self.wte(x))


def test_deepcopy_of_a_model_is_independent_and_keeps_tying():
    model = _TiedModel()
    clone = copy.deepcopy(model)
    assert clone.lm.weight is clone.wte.weight  # still tied
    assert clone.wte.weight is not model.wte.weight
    assert len(list(clone.parameters())) == len(list(model.parameters())) == 3
    for (name, a), (_, b) in zip(model.state_dict().items(), clone.state_dict().items()):
        assert a.tolist() == b.tolist(), name
    x = bp.ones(2, 3)
    assert clone(x).tolist() == model(x).tolist()
    # Training the copy leaves the original alone (the EMA / best-model idiom).
    before = [p.tolist() for p in model.parameters()]
    opt = bp.optim.SGD(clone.parameters(), lr=0.5)
    clone(x).sum().backward()
    opt.step()
    assert [p.tolist() for p in model.parameters()] == before
    assert all(p.grad is None for p in model.parameters())
    assert clone.wte.weight.tolist() != before[0]


def test_deepcopy_of_a_model_matches_torch():
    torch = pytest.importorskip("torch")
    ours = bp.nn.Sequential(bp.nn.Linear(2, 3), bp.nn.Tanh(), bp.nn.Linear(3, 1))
    theirs = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    with torch.no_grad():
        for (_, t), (_, b) in zip(theirs.named_parameters(), ours.named_parameters()):
            t.copy_(torch.from_numpy(b.detach().numpy()))
    ours_copy, theirs_copy = copy.deepcopy(ours), copy.deepcopy(theirs)
    x = np.array([[0.5, -1.0], [2.0, 0.25]], dtype=np.float32)
    np.testing.assert_allclose(
        ours_copy(bp.tensor(x)).detach().numpy(),
        theirs_copy(torch.tensor(x)).detach().numpy(),
        rtol=1e-6,
    )


# ---- small methods ----


def test_type_matches_torch_with_bprops_prefix():
    torch = pytest.importorskip("torch")
    pairs = [(bp.float32, torch.float32), (bp.float64, torch.float64), (bp.int64, torch.int64)]
    pairs.append((bp.bool, torch.bool))
    for ours_dtype, torch_dtype in pairs:
        ours, theirs = bp.tensor([1.0, 0.0], dtype=ours_dtype), torch.tensor([1.0, 0.0])
        theirs = theirs.to(torch_dtype)
        assert ours.type() == theirs.type().replace("torch.", "bprop.")
        for target_ours, target_theirs in pairs:
            converted = ours.type(target_ours)
            assert converted.tolist() == theirs.type(target_theirs).tolist()
            assert (converted is ours) == (theirs.type(target_theirs) is theirs)
        name = theirs.type()
        assert ours.type(name).dtype == ours_dtype  # 'torch.X' names
        assert ours.type(name.replace("torch", "bprop")).dtype == ours_dtype
    with pytest.raises(ValueError):
        torch.zeros(1).type("foo")
    with pytest.raises(ValueError, match=r"^\[type\] invalid type: 'foo'"):
        bp.zeros(1).type("foo")


def test_dtype_casts():
    x = bp.tensor([1.7, -2.2, 0.0], requires_grad=True)
    y = x.int()
    assert y.dtype == bp.int64 and y.tolist() == [1, -2, 0]  # int64: bprop has no int32
    assert x.long().dtype == bp.int64 and x.double().dtype == bp.float64
    assert x.bool().tolist() == [True, True, False] and x.float() is x
    (x.double() * 2).sum().backward()
    assert x.grad.tolist() == [2.0, 2.0, 2.0]


def test_sizes_and_counts_match_torch():
    torch = pytest.importorskip("torch")
    pairs = [(bp.float32, torch.float32), (bp.float64, torch.float64), (bp.int64, torch.int64)]
    pairs.append((bp.bool, torch.bool))
    for ours_dtype, torch_dtype in pairs:
        ours, theirs = bp.zeros(2, 3, dtype=ours_dtype), torch.zeros(2, 3, dtype=torch_dtype)
        assert ours.element_size() == theirs.element_size()
        assert ours.nelement() == ours.numel() == theirs.nelement() == 6
        assert ours.dim() == theirs.dim() == 2
        assert ours.size() == tuple(theirs.size())
        assert ours.size(1) == ours.size(-1) == ours.size(dim=1) == theirs.size(-1) == 3


def test_new_factories_match_torch():
    torch = pytest.importorskip("torch")
    for lib in (bp, torch):
        base = lib.tensor([1.5, 2.5], dtype=lib.float64)
        made = {
            "zeros": base.new_zeros(2, 3),
            "zeros_tuple": base.new_zeros((2,)),
            "ones": base.new_ones(3),
            "empty": base.new_empty((2,)).zero_(),
            "full": base.new_full((2,), 3),
            "tensor": base.new_tensor([1, 2]),
            "tensor_dtype": base.new_tensor([1, 2], dtype=lib.int64),
            "zeros_dtype": base.new_zeros(2, dtype=lib.bool),
            "grad": base.new_ones(2, requires_grad=True),
            "device": base.new_zeros(1, device="cpu"),
        }
        summary = {
            k: (tuple(v.shape), str(v.dtype).split(".")[-1], v.tolist(), v.requires_grad)
            for k, v in made.items()
        }
        if lib is bp:
            ours = summary
        else:
            assert ours == summary
    with pytest.raises(RuntimeError, match=r"^\[new_zeros\] device 'cuda'"):
        bp.ones(1).new_zeros(2, device="cuda")
    with pytest.raises(RuntimeError, match=r"^\[new_tensor\] pin_memory=True"):
        bp.ones(1).new_tensor([1.0], pin_memory=True)


# ---- grad-mode decorators and inference_mode ----


def _decorated_grad_modes(lib):
    @lib.no_grad()
    def called():
        return lib.is_grad_enabled()

    @lib.no_grad
    def bare():
        return lib.is_grad_enabled()

    @lib.enable_grad()
    def enabled():
        return lib.is_grad_enabled()

    outside = (called(), bare(), lib.is_grad_enabled())
    with lib.no_grad():
        inside = (enabled(), lib.is_grad_enabled())
    return outside, inside


def test_no_grad_and_enable_grad_as_decorators_like_torch():
    torch = pytest.importorskip("torch")
    expected = ((False, False, True), (True, False))
    assert _decorated_grad_modes(bp) == _decorated_grad_modes(torch) == expected


def _inference_mode_states(lib):
    states = []

    def record():
        states.append((lib.is_grad_enabled(), lib.is_inference_mode_enabled()))

    with lib.inference_mode():
        record()
        with lib.inference_mode(False):
            record()
        record()
    with lib.no_grad(), lib.inference_mode(False):
        record()
    record()

    @lib.inference_mode
    def bare():
        record()
        return lib.ones(2, requires_grad=True) * 2

    @lib.inference_mode()
    def called():
        record()

    @lib.inference_mode(False)
    def off():
        record()

    states.append(bare().requires_grad)
    called()
    off()
    return states


def test_inference_mode_matches_torch():
    torch = pytest.importorskip("torch")
    ours = _inference_mode_states(bp)
    assert ours == _inference_mode_states(torch)
    assert ours[:2] == [(False, True), (True, False)]
    x = bp.ones(2, requires_grad=True)
    with bp.inference_mode():
        y = x * 3
    assert not y.requires_grad and y.tolist() == [3.0, 3.0]


def test_inference_mode_restores_on_error():
    with pytest.raises(ValueError), bp.inference_mode():
        raise ValueError("boom")
    assert bp.is_grad_enabled() and not bp.is_inference_mode_enabled()

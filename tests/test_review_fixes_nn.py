"""Review fixes of issue 15 in bprop.nn, each checked against PyTorch: load_state_dict's
errors, BatchNorm checkpoints without num_batches_tracked, Module.half/bfloat16, deepcopy of
parameters, bprop.nn.utils.rnn and packed sequences through RNN/GRU/LSTM."""

import copy

import bprop as bp
import numpy as np
import pytest
from bprop import nn
from bprop.nn.utils import rnn as R

torch = pytest.importorskip("torch")
TR = torch.nn.utils.rnn


def _b(a):
    return bp.tensor(np.asarray(a))


def _t(a):
    return torch.tensor(np.asarray(a))


def _same(x, y, tol=1e-6):
    np.testing.assert_allclose(
        x.detach().numpy(), y.detach().numpy(), rtol=tol, atol=tol, err_msg="bprop vs torch"
    )


def _copy_weights(bmod, tmod):
    bmod.load_state_dict({k: _b(v.detach().numpy()) for k, v in tmod.state_dict().items()})


# ---- 1. load_state_dict errors ---------------------------------------------------------------


def _torch_error(tmod, sd):
    with pytest.raises(RuntimeError) as info:
        tmod.load_state_dict(sd)
    return str(info.value)


def test_load_state_dict_missing_unexpected_is_runtime_and_key_error():
    b, t = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    before = b.weight.detach().numpy().copy()
    sd_b = {"weight": bp.zeros(3, 2), "extra": bp.zeros(1)}
    sd_t = {"weight": torch.zeros(3, 2), "extra": torch.zeros(1)}
    expected = _torch_error(t, sd_t)
    for kind in (RuntimeError, KeyError):
        with pytest.raises(kind) as info:
            b.load_state_dict(sd_b)
        message = str(info.value)
        assert message.startswith("[load_state_dict] Error(s) in loading state_dict for Linear:")
        assert message.split(":", 1)[1] == expected.split(":", 1)[1]
    np.testing.assert_array_equal(b.weight.detach().numpy(), before)  # nothing changed


def test_load_state_dict_size_mismatch_is_runtime_and_value_error():
    b, t = nn.Linear(2, 3), torch.nn.Linear(2, 3)
    before = b.bias.detach().numpy().copy()
    sd_b = {"weight": bp.zeros(3, 3), "bias": bp.ones(3)}
    sd_t = {"weight": torch.zeros(3, 3), "bias": torch.ones(3)}
    expected = _torch_error(t, sd_t)
    for kind in (RuntimeError, ValueError):
        with pytest.raises(kind) as info:
            b.load_state_dict(sd_b)
        message = str(info.value)
        assert "size mismatch for weight" in message and "(3, 3)" in message and "(3, 2)" in message
        assert "size mismatch for weight" in expected
    np.testing.assert_array_equal(b.bias.detach().numpy(), before)
    # non-strict: unexpected keys pass, a size mismatch still raises (as torch)
    with pytest.raises(RuntimeError, match="size mismatch"):
        t.load_state_dict({"weight": torch.zeros(1)}, strict=False)
    with pytest.raises(RuntimeError, match="size mismatch"):
        b.load_state_dict({"weight": bp.zeros(1)}, strict=False)


# ---- 2. BatchNorm without num_batches_tracked ------------------------------------------------


def test_batchnorm_loads_state_dict_without_num_batches_tracked():
    b, t = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3)
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    b(_b(x))
    t(_t(x))
    sd = {"weight": np.full(3, 2.0, np.float32), "bias": np.ones(3, np.float32)}
    sd["running_mean"] = np.arange(3, dtype=np.float32)
    sd["running_var"] = np.full(3, 4.0, np.float32)
    rb = b.load_state_dict({k: _b(v) for k, v in sd.items()}, strict=True)
    rt = t.load_state_dict({k: _t(v) for k, v in sd.items()}, strict=True)
    assert list(rb.missing_keys) == list(rt.missing_keys) == []
    assert list(rb.unexpected_keys) == list(rt.unexpected_keys) == []
    assert int(b.num_batches_tracked.item()) == int(t.num_batches_tracked.item()) == 1
    _same(b.running_var, t.running_var)
    b.eval()
    t.eval()
    _same(b(_b(x)), t(_t(x)))
    # other missing keys still count
    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "running_var"'):
        b.load_state_dict({k: _b(v) for k, v in sd.items() if k != "running_var"})


# ---- 3. Module.half / bfloat16 ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["half", "bfloat16"])
def test_module_half_bfloat16_refuse_and_change_nothing(name):
    m = nn.Linear(2, 2)
    before = m.weight
    with pytest.raises(TypeError) as info:
        getattr(m, name)()
    with pytest.raises(TypeError) as tensor_info:
        getattr(bp.zeros(2), name)()
    assert "not supported yet" in str(info.value)
    assert str(info.value).split("]", 1)[1] == str(tensor_info.value).split("]", 1)[1]
    assert m.weight is before and m.weight.dtype == bp.float32


# ---- 4. deepcopy drops Parameter.grad --------------------------------------------------------


def test_deepcopy_parameter_drops_grad_plain_leaf_keeps_it():
    b, t = nn.Linear(2, 2), torch.nn.Linear(2, 2)
    b(bp.ones(1, 2)).sum().backward()
    t(torch.ones(1, 2)).sum().backward()
    cb, ct = copy.deepcopy(b), copy.deepcopy(t)
    assert ct.weight.grad is None and cb.weight.grad is None
    assert isinstance(cb.weight, nn.Parameter) and cb.weight.requires_grad
    assert b.weight.grad is not None
    assert copy.deepcopy(b.weight).grad is None
    assert copy.deepcopy(t.weight).grad is None
    xb = bp.ones(2, requires_grad=True)
    xt = torch.ones(2, requires_grad=True)
    (xb * 3).sum().backward()
    (xt * 3).sum().backward()
    _same(copy.deepcopy(xb).grad, copy.deepcopy(xt).grad)


# ---- 5. bprop.nn.utils.rnn -------------------------------------------------------------------


def _seqs(lengths, features=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((n, features)) for n in lengths]


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_sequence(batch_first, side):
    seqs = _seqs([2, 4, 3])
    b = R.pad_sequence([_b(s) for s in seqs], batch_first, -1.0, side)
    t = TR.pad_sequence([_t(s) for s in seqs], batch_first, -1.0, side)
    _same(b, t)
    with pytest.raises(ValueError):
        R.pad_sequence([_b(s) for s in seqs], padding_side="middle")


@pytest.mark.parametrize("enforce_sorted", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_pad_roundtrip(enforce_sorted, batch_first):
    lengths = [4, 3, 3, 1] if enforce_sorted else [2, 4, 1, 3, 2, 4]  # ties keep their order
    seqs = _seqs(lengths)
    pb = R.pad_sequence([_b(s) for s in seqs], batch_first)
    pt = TR.pad_sequence([_t(s) for s in seqs], batch_first)
    kb = R.pack_padded_sequence(pb, lengths, batch_first, enforce_sorted)
    kt = TR.pack_padded_sequence(pt, torch.tensor(lengths), batch_first, enforce_sorted)
    assert isinstance(kb, R.PackedSequence) and isinstance(kb, tuple)
    _same(kb.data, kt.data)
    assert kb.batch_sizes.tolist() == kt.batch_sizes.tolist()
    for mine, theirs in ((kb.sorted_indices, kt.sorted_indices),
                         (kb.unsorted_indices, kt.unsorted_indices)):  # fmt: skip
        assert (mine is None) == (theirs is None)
        if mine is not None:
            assert mine.tolist() == theirs.tolist()
    ub, lb = R.pad_packed_sequence(kb, batch_first, 9.0, total_length=6)
    ut, lt = TR.pad_packed_sequence(kt, batch_first, 9.0, total_length=6)
    _same(ub, ut)
    assert lb.tolist() == lt.tolist() and lb.dtype == bp.int64
    for a, c in zip(R.unpad_sequence(ub, lb, batch_first), TR.unpad_sequence(ut, lt, batch_first)):
        _same(a, c)
    for a, c in zip(R.unpack_sequence(kb), TR.unpack_sequence(kt)):
        _same(a, c)


def test_pack_errors_and_gradient():
    seqs = _seqs([2, 3])
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        R.pack_sequence([_b(s) for s in seqs])
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        TR.pack_sequence([_t(s) for s in seqs])
    with pytest.raises(ValueError, match="total_length"):
        R.pad_packed_sequence(R.pack_sequence([_b(s) for s in seqs], False), total_length=1)
    # gradients flow through pad -> pack -> unpack
    xb = [_b(s).requires_grad_() for s in seqs]
    xt = [_t(s).requires_grad_() for s in seqs]
    w = np.arange(2 * 3 * 2).reshape(3, 2, 2)
    ob, _ = R.pad_packed_sequence(R.pack_sequence(xb, enforce_sorted=False))
    ot, _ = TR.pad_packed_sequence(TR.pack_sequence(xt, enforce_sorted=False))
    (ob * _b(w)).sum().backward()
    (ot * _t(w)).sum().backward()
    for a, c in zip(xb, xt):
        _same(a.grad, c.grad)


# ---- 5. packed sequences through RNN / GRU / LSTM ---------------------------------------------


@pytest.mark.parametrize(
    "kind, kwargs, lengths, enforce_sorted",
    [
        ("LSTM", {"num_layers": 2, "bidirectional": True}, [5, 3, 2], True),
        ("GRU", {}, [2, 5, 1, 3], False),
        ("RNN", {"bidirectional": True}, [1, 3, 2], False),
    ],
)
def test_rnn_packed_sequence_matches_torch(kind, kwargs, lengths, enforce_sorted):
    torch.manual_seed(0)
    t = getattr(torch.nn, kind)(3, 4, **kwargs).double()
    b = getattr(nn, kind)(3, 4, **kwargs).double()
    _copy_weights(b, t)
    rng = np.random.default_rng(1)
    seqs = _seqs(lengths, 3, seed=1)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    h0 = rng.standard_normal((layers, len(lengths), 4))
    xb = [_b(s).requires_grad_() for s in seqs]
    xt = [_t(s).requires_grad_() for s in seqs]
    pb = R.pack_sequence(xb, enforce_sorted=enforce_sorted)
    pt = TR.pack_sequence(xt, enforce_sorted=enforce_sorted)
    if kind == "LSTM":
        ob, (hb, cb) = b(pb, (_b(h0), _b(h0 * 2)))
        ot, (ht, ct) = t(pt, (_t(h0), _t(h0 * 2)))
        _same(cb, ct, 1e-10)
    else:
        ob, hb = b(pb, _b(h0))
        ot, ht = t(pt, _t(h0))
    assert isinstance(ob, R.PackedSequence)
    assert ob.batch_sizes.tolist() == ot.batch_sizes.tolist()
    _same(ob.data, ot.data, 1e-10)
    _same(hb, ht, 1e-10)  # each sequence's state after its own last step
    # the padded output matches too, and gradients through output and h_n agree
    ub, lb = R.pad_packed_sequence(ob, batch_first=True)
    ut, lt = TR.pad_packed_sequence(ot, batch_first=True)
    _same(ub, ut, 1e-10)
    assert lb.tolist() == lt.tolist() == lengths
    wu = np.linspace(-1, 1, ub.numel()).reshape(tuple(ub.shape))
    wh = np.linspace(1, 2, hb.numel()).reshape(tuple(hb.shape))
    ((ub * _b(wu)).sum() + (hb * _b(wh)).sum()).backward()
    ((ut * _t(wu)).sum() + (ht * _t(wh)).sum()).backward()
    for a, c in zip(xb, xt):
        _same(a.grad, c.grad, 1e-10)
    for (name, p), (tname, q) in zip(b.named_parameters(), t.named_parameters()):
        assert name == tname
        _same(p.grad, q.grad, 1e-10)


def test_rnn_packed_without_hx_and_batch_first_module():
    torch.manual_seed(0)
    t = torch.nn.GRU(2, 3, batch_first=True).double()
    b = nn.GRU(2, 3, batch_first=True).double()
    _copy_weights(b, t)
    seqs = _seqs([3, 1, 2])
    pb = R.pack_padded_sequence(R.pad_sequence([_b(s) for s in seqs], True), [3, 1, 2], True, False)
    pt = TR.pack_padded_sequence(
        TR.pad_sequence([_t(s) for s in seqs], True), torch.tensor([3, 1, 2]), True, False
    )
    ob, hb = b(pb)
    ot, ht = t(pt)
    _same(ob.data, ot.data, 1e-10)
    _same(hb, ht, 1e-10)
    # the unpacked last valid step of each sequence is its h_n (one layer, one direction)
    ub, lb = R.pad_packed_sequence(ob, batch_first=True)
    for i, n in enumerate(lb.tolist()):
        _same(ub[i, n - 1], hb[0, i])

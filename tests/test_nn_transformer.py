"""Module base features (buffers, apply, to, containers, state dicts) and the transformer
building blocks (Embedding, LayerNorm/GroupNorm/RMSNorm, scaled_dot_product_attention,
MultiheadAttention, the Transformer layers), against PyTorch: the torch module's state_dict is
copied into the bprop one (through numpy), then outputs and parameter gradients are compared."""

from __future__ import annotations

import copy
import math
import warnings
from collections import OrderedDict

import bprop as bp
import numpy as np
import pytest

nn = bp.nn
F = bp.nn.functional


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def copy_from_torch(theirs, ours) -> None:
    """Loads the torch module's state_dict into ours; the key lists must be equal."""
    state = theirs.state_dict()
    assert list(ours.state_dict()) == list(state)
    ours.load_state_dict({k: bp.tensor(v.detach().numpy().copy()) for k, v in state.items()})


def assert_close(ours, theirs, tol: float) -> None:
    assert tuple(ours.shape) == tuple(theirs.shape)
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=tol, atol=tol)


def backward_both(out, tout, seed: int = 0) -> None:
    """Backward of <out, v> with the same random v on both sides."""
    v = np.random.default_rng(seed).standard_normal(tuple(out.shape))
    out.backward(bp.tensor(v.astype(str(out.dtype).rsplit(".", 1)[-1])))
    import torch

    tout.backward(torch.tensor(v.astype(tout.detach().numpy().dtype)))


def assert_grads_close(ours, theirs, tol: float) -> None:
    mine = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        assert mine[name].grad is not None, name
        assert_close(mine[name].grad, p.grad, tol)


def pair(torch, shape, seed, dtype="float64", requires_grad=True):
    a = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    return (
        bp.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


# ---------------------------------------------------------------------------------------------
# Module: buffers, apply, to, state dicts, deepcopy
# ---------------------------------------------------------------------------------------------


class WithBuffers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("scale", bp.full((3,), 2.0))
        self.fc = nn.Linear(3, 2)
        self.register_buffer("mask", bp.tensor([True, False, True]), persistent=False)
        self.register_buffer("count", bp.tensor(0))
        self.bias2 = nn.Parameter(bp.zeros(2))

    def forward(self, x):
        return self.fc(x * self.scale) + self.bias2


def test_buffers_state_dict_order_matches_pytorch():
    torch = pytest.importorskip("torch")

    class Theirs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.register_buffer("scale", torch.full((3,), 2.0))
            self.fc = torch.nn.Linear(3, 2)
            self.register_buffer("mask", torch.tensor([True, False, True]), persistent=False)
            self.register_buffer("count", torch.tensor(0))
            self.bias2 = torch.nn.Parameter(torch.zeros(2))

    ours, theirs = WithBuffers(), Theirs()
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert list(ours.state_dict()) == ["bias2", "scale", "count", "fc.weight", "fc.bias"]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert len(list(ours.buffers())) == 3


def test_buffer_assignment_updates_the_buffer_and_loads():
    m = WithBuffers()
    m.scale = bp.tensor([1.0, 3.0, 5.0])
    assert m._buffers["scale"] is m.scale
    np.testing.assert_array_equal(m.state_dict()["scale"].numpy(), [1.0, 3.0, 5.0])
    other = WithBuffers()
    other.load_state_dict(m.state_dict())
    np.testing.assert_array_equal(other.scale.numpy(), [1.0, 3.0, 5.0])
    with pytest.raises(TypeError, match="buffer 'scale'"):
        m.scale = 3.0
    m.scale = None  # a buffer may be None; it then leaves the state dict
    assert "scale" not in m.state_dict()
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("fc", bp.zeros(1))
    with pytest.raises(KeyError, match='"."'):
        m.register_buffer("a.b", bp.zeros(1))
    with pytest.raises(TypeError, match="buffer 'x'"):
        m.register_buffer("x", [1.0])


def test_failed_load_changes_nothing_buffers_included():
    a, b = WithBuffers(), WithBuffers()
    state = a.state_dict()
    state["scale"] = bp.tensor([7.0, 7.0, 7.0])
    state["fc.bias"] = bp.zeros(5)  # wrong shape, after a good entry
    before = {k: v.numpy().copy() for k, v in b.state_dict().items()}
    with pytest.raises(ValueError, match="size mismatch for fc.bias"):
        b.load_state_dict(state)
    for k, v in b.state_dict().items():
        np.testing.assert_array_equal(v.numpy(), before[k])
    del state["fc.bias"]
    missing, unexpected = b.load_state_dict({**state, "extra": bp.zeros(1)}, strict=False)
    assert missing == ["fc.bias"] and unexpected == ["extra"]
    np.testing.assert_array_equal(b.scale.numpy(), [7.0, 7.0, 7.0])
    weight = bp.ones(2, 3)
    b.load_state_dict({**state, "fc.bias": bp.zeros(2), "fc.weight": weight}, assign=True)
    assert isinstance(b.fc.weight, nn.Parameter) and b.fc.weight.requires_grad
    assert b.scale is state["scale"]
    weight.fill_(3.0)  # the parameter shares the checkpoint tensor's memory
    assert float(b.fc.weight.sum()) == 18.0


def test_apply_visits_children_first_and_returns_self():
    model = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.ReLU(), nn.Linear(3, 1)))
    seen = []
    assert model.apply(lambda m: seen.append(type(m).__name__)) is model
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]

    def init(m):
        if isinstance(m, nn.Linear):
            nn.init.constant_(m.weight, 0.5)

    model.apply(init)
    assert all(
        float(p.sum()) == 0.5 * p.numel() for n, p in model.named_parameters() if "weight" in n
    )


def test_to_devices_and_dtypes():
    m = WithBuffers()
    weight = m.fc.weight
    assert m.to("cpu") is m and m.to(bp.device("cpu")) is m and m.cpu() is m
    assert m.to("cpu", non_blocking=True) is m and m.fc.weight is weight
    with pytest.raises(RuntimeError, match="cuda"):
        m.to("cuda")
    with pytest.raises(RuntimeError, match="CPU"):
        m.cuda()
    with pytest.raises(TypeError, match="floating point"):
        m.to(bp.int64)
    assert m.to(bp.float32) is m and m.fc.weight is weight  # no conversion, same objects
    assert m.double() is m
    assert m.fc.weight.dtype == bp.float64 and m.scale.dtype == bp.float64
    assert isinstance(m.fc.weight, nn.Parameter) and m.fc.weight.requires_grad
    assert m.count.dtype == bp.int64 and m.mask.dtype == bp.bool  # not floating: unchanged
    assert m.to(bp.zeros(1)) is m and m.fc.weight.dtype == bp.float32  # to(other tensor)
    m.to(dtype=bp.float64)
    assert [p.dtype for p in m.parameters()] == [bp.float64] * 3
    m.float()
    assert m.scale.dtype == bp.float32
    out = m(bp.ones(4, 3))
    assert out.dtype == bp.float32 and tuple(out.shape) == (4, 2)


def test_module_registration_helpers():
    m = nn.Sequential(nn.Linear(2, 3), nn.Sequential(nn.Tanh(), nn.Linear(3, 1)))
    assert m.get_submodule("1.1") is m[1][1]
    assert m.get_parameter("1.1.bias") is m[1][1].bias
    with pytest.raises(AttributeError):
        m.get_submodule("1.5")
    assert [n for n, _ in m.named_children()] == ["0", "1"]
    m.add_module("head", nn.Identity(3, unused=True))
    m.register_module("tail", nn.ReLU())
    assert list(m._modules) == ["0", "1", "head", "tail"]
    m.register_parameter("scale", nn.Parameter(bp.ones(1)))
    assert "scale" in m.state_dict()
    with pytest.raises(TypeError, match="Parameter or None"):
        m.register_parameter("w", bp.ones(1))
    del m.tail
    assert "tail" not in m._modules and not hasattr(m, "tail")
    assert m.requires_grad_(False) is m
    assert not any(p.requires_grad for p in m.parameters())
    x = bp.ones(2)
    assert nn.Identity()(x) is x
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")
    assert m.eval() is m and not m[1][0].training


def test_linear_device_dtype_and_reset_parameters():
    torch = pytest.importorskip("torch")
    lin = nn.Linear(3, 2, False, "cpu", bp.float64)
    assert lin.weight.dtype == bp.float64 and lin.bias is None
    assert list(lin._parameters) == list(torch.nn.Linear(3, 2, bias=False)._parameters)
    before = lin.weight.detach().numpy().copy()
    lin.reset_parameters()
    after = lin.weight.detach().numpy()
    assert not np.array_equal(before, after) and np.abs(after).max() <= 1 / math.sqrt(3)
    with pytest.raises(RuntimeError, match="CPU only"):
        nn.Linear(2, 2, device="cuda")


def test_deepcopy_is_independent():
    model = nn.Sequential(nn.Linear(3, 4), nn.LayerNorm(4))
    model.register_buffer("steps", bp.zeros(1))
    twin = copy.deepcopy(model)
    assert list(twin.state_dict()) == list(model.state_dict())
    for (name, p), q in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_array_equal(p.numpy(), q.numpy(), err_msg=name)
    with bp.no_grad():
        twin[0].weight.add_(1.0)
        twin.steps.add_(1.0)
    assert not np.allclose(twin[0].weight.detach().numpy(), model[0].weight.detach().numpy())
    assert float(model.steps.sum()) == 0.0
    assert isinstance(twin[0].weight, nn.Parameter) and twin[0].weight.requires_grad


# ---------------------------------------------------------------------------------------------
# containers
# ---------------------------------------------------------------------------------------------


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    first = layers[0]
    layers.append(nn.ReLU())
    layers.extend([nn.Tanh()])
    layers.insert(1, nn.Sigmoid())
    layers += [nn.Identity()]
    names = [type(m).__name__ for m in layers]
    assert names == ["Linear", "Sigmoid", "Linear", "Linear", "ReLU", "Tanh", "Identity"]
    assert list(layers._modules) == [str(i) for i in range(7)]
    assert len(layers) == 7 and layers[-1] is layers[6] and layers[0] is first
    assert isinstance(layers[1:3], nn.ModuleList) and len(layers[1:3]) == 2
    layers[1] = nn.GELU()
    assert isinstance(layers[1], nn.GELU)
    del layers[1]
    assert list(layers._modules) == [str(i) for i in range(6)] and layers[0] is first
    del layers[-3:]
    assert len(layers) == 3
    assert [n for n, _ in layers.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "2.weight", "2.bias",
    ]  # fmt: skip
    with pytest.raises(IndexError):
        layers[3]
    with pytest.raises(TypeError):
        layers.extend(nn.ReLU())


def test_module_dict_and_parameter_containers():
    d = nn.ModuleDict({"a": nn.Linear(1, 2)})
    d["b"] = nn.ReLU()
    d.update([("c", nn.Tanh())])
    assert list(d) == ["a", "b", "c"] and list(d.keys()) == ["a", "b", "c"]
    assert "b" in d and "z" not in d and len(d) == 3
    assert [type(v).__name__ for v in d.values()] == ["Linear", "ReLU", "Tanh"]
    assert isinstance(d.pop("b"), nn.ReLU) and list(d) == ["a", "c"]
    assert [k for k, _ in d.items()] == ["a", "c"]
    assert list(d.state_dict()) == ["a.weight", "a.bias"]

    plist = nn.ParameterList([bp.zeros(2), nn.Parameter(bp.ones(3))])
    plist.append(bp.ones(1))
    assert all(isinstance(p, nn.Parameter) for p in plist) and len(plist) == 3
    assert list(plist.state_dict()) == ["0", "1", "2"]
    pdict = nn.ParameterDict({"w": bp.zeros(2)})
    pdict["b"] = bp.ones(1)
    assert list(pdict) == ["w", "b"] and isinstance(pdict["b"], nn.Parameter)
    assert "w" in pdict and len(list(pdict.parameters())) == 2
    pdict.pop("w")
    assert list(pdict.keys()) == ["b"]


def test_sequential_from_ordered_dict_slicing_append():
    seq = nn.Sequential(OrderedDict([("fc", nn.Linear(2, 3)), ("act", nn.ReLU())]))
    assert list(seq.state_dict()) == ["fc.weight", "fc.bias"]
    head = seq[:1]
    assert isinstance(head, nn.Sequential) and list(head._modules) == ["fc"]
    assert head[0] is seq.fc and seq[-1] is seq.act
    assert seq.append(nn.Linear(3, 1)) is seq
    assert list(seq._modules) == ["fc", "act", "2"]
    assert tuple(seq(bp.ones(5, 2)).shape) == (5, 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.ModuleList([m.Linear(2, 2) for _ in range(3)] + [m.ReLU(), m.ReLU()]),
        lambda m: m.Sequential(OrderedDict([("emb", m.Embedding(9, 2, padding_idx=0))])),
        lambda m: m.ModuleDict({"norm": m.LayerNorm(4, bias=False), "gn": m.GroupNorm(2, 4)}),
        lambda m: m.Sequential(m.RMSNorm([2, 3]), m.Dropout(0.2), m.SiLU(), m.Identity()),
        lambda m: m.TransformerEncoder(m.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2),
        lambda m: m.MultiheadAttention(4, 2),
        lambda m: m.ModuleList(),
    ],
    ids=["module_list", "embedding", "module_dict", "norms", "encoder", "mha", "empty_list"],
)
def test_repr_matches_pytorch(make):
    torch = pytest.importorskip("torch")
    assert repr(make(nn)) == repr(make(torch.nn))


# ---------------------------------------------------------------------------------------------
# Embedding
# ---------------------------------------------------------------------------------------------


def test_embedding_matches_pytorch_padding_row_gets_no_gradient():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Embedding(6, 4, padding_idx=2, dtype=torch.float64)
    ours = nn.Embedding(6, 4, padding_idx=2, dtype=bp.float64)
    copy_from_torch(theirs, ours)
    idx = np.array([[0, 2, 5], [2, 2, 1]])
    out, tout = ours(bp.tensor(idx)), theirs(torch.tensor(idx))
    assert_close(out, tout, 1e-12)
    backward_both(out, tout)
    assert_grads_close(ours, theirs, 1e-12)
    np.testing.assert_array_equal(ours.weight.grad.numpy()[2], np.zeros(4))
    assert np.abs(ours.weight.grad.numpy()[0]).sum() > 0


def test_embedding_init_from_pretrained_and_errors():
    bp.manual_seed(0)
    emb = nn.Embedding(1000, 8, padding_idx=-1)
    w = emb.weight.detach().numpy()
    assert emb.padding_idx == 999 and np.all(w[999] == 0)
    assert abs(w[:999].mean()) < 0.05 and abs(w[:999].std() - 1.0) < 0.05  # N(0, 1)
    table = bp.tensor([[1.0, 2.0], [3.0, 4.0]])
    frozen = nn.Embedding.from_pretrained(table)
    assert not frozen.weight.requires_grad
    np.testing.assert_array_equal(frozen(bp.tensor([1, 0])).numpy(), [[3.0, 4.0], [1.0, 2.0]])
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    with pytest.raises(IndexError, match=r"\[embedding\] index 7 .* size 2"):
        frozen(bp.tensor([0, 7]))
    with pytest.raises(NotImplementedError, match="max_norm"):
        nn.Embedding(3, 2, max_norm=1.0)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(3, 2, padding_idx=3)
    with pytest.raises(RuntimeError, match="int64"):
        F.embedding(bp.tensor([0.0]), table)


# ---------------------------------------------------------------------------------------------
# normalisation
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda m, d: m.LayerNorm(4, dtype=d),
        lambda m, d: m.LayerNorm([3, 4], eps=1e-3, bias=False, dtype=d),
        lambda m, d: m.LayerNorm(4, elementwise_affine=False, dtype=d),
        lambda m, d: m.GroupNorm(1, 3, dtype=d),
        lambda m, d: m.GroupNorm(3, 3, affine=False, dtype=d),
        lambda m, d: m.GroupNorm(3, 3, dtype=d, bias=False),
        lambda m, d: m.RMSNorm(4, dtype=d),
        lambda m, d: m.RMSNorm([3, 4], eps=1e-4, dtype=d),
    ],
    ids=["ln", "ln_2d_nobias", "ln_noaffine", "gn1", "gn3_noaffine", "gn3_nobias", "rms", "rms_2d"],
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_norm_layers_match_pytorch(make, dtype):
    torch = pytest.importorskip("torch")
    theirs = make(torch.nn, getattr(torch, dtype))
    ours = make(nn, getattr(bp, dtype))
    tol = 1e-10 if dtype == "float64" else 1e-5
    # Non-trivial affine parameters, so that their gradients mean something.
    with torch.no_grad():
        for p in theirs.parameters():
            p.copy_(torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    copy_from_torch(theirs, ours)
    x, tx = pair(torch, (2, 3, 4), 2, dtype)
    out, tout = ours(x), theirs(tx)
    assert out.dtype == getattr(bp, dtype)
    assert_close(out, tout, tol)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, tol)
    assert_grads_close(ours, theirs, tol)


def test_norm_errors():
    with pytest.raises(RuntimeError, match="normalized_shape"):
        F.layer_norm(bp.ones(2, 3), (4,))
    with pytest.raises(RuntimeError, match="divisible"):
        F.group_norm(bp.ones(2, 3, 4), 2)
    with pytest.raises(ValueError, match="divisible"):
        nn.GroupNorm(2, 3)
    assert list(nn.LayerNorm(4, bias=False).state_dict()) == ["weight"]


def test_silu_module_matches_formula():
    x = bp.tensor([-2.0, 0.0, 1.5])
    want = x.numpy() / (1 + np.exp(-x.numpy()))
    np.testing.assert_allclose(nn.SiLU()(x).numpy(), want, rtol=1e-6)
    y = x.clone()
    assert F.silu(y, inplace=True) is y
    np.testing.assert_allclose(y.numpy(), want, rtol=1e-6)


@pytest.mark.parametrize(
    "make",
    [
        lambda m: m.ReLU(inplace=True),
        lambda m: m.LeakyReLU(0.2, inplace=True),
        lambda m: m.Softplus(beta=2.0, threshold=1.0),
        lambda m: m.Softmax(),
        lambda m: m.LogSoftmax(dim=-1),
        lambda m: m.GELU(approximate="tanh"),
        lambda m: m.Dropout(0.3, inplace=True).eval(),
    ],
    ids=["relu_", "leaky_relu_", "softplus", "softmax_dim_none", "log_softmax", "gelu", "drop"],
)
def test_activation_modules_match_pytorch(make):
    torch = pytest.importorskip("torch")
    a = np.random.default_rng(0).standard_normal((2, 3, 4))
    x, tx = bp.tensor(a), torch.tensor(a)
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        out = make(nn)(x)
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        tout = make(torch.nn)(tx)
    assert [str(w.message) for w in ours_warned] == [str(w.message) for w in theirs_warned]
    assert_close(out, tout, 1e-12)
    assert_close(x, tx, 0.0)  # in place exactly where torch is
    assert repr(make(nn)) == repr(make(torch.nn))


# ---------------------------------------------------------------------------------------------
# scaled_dot_product_attention
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"is_causal": True},
        {"scale": 0.25},
        {"attn_mask": "bool"},
        {"attn_mask": "float", "scale": 0.7},
    ],
    ids=["plain", "causal", "scale", "bool_mask", "float_mask"],
)
def test_sdpa_matches_pytorch(kwargs):
    torch = pytest.importorskip("torch")
    q, tq = pair(torch, (2, 3, 5, 4), 0)
    k, tk = pair(torch, (2, 3, 6, 4), 1)
    v, tv = pair(torch, (2, 3, 6, 2), 2)
    ours, theirs = dict(kwargs), dict(kwargs)
    if kwargs.get("attn_mask") == "bool":
        mask = np.random.default_rng(3).random((5, 6)) > 0.4
        mask[:, 0] = True
        ours["attn_mask"], theirs["attn_mask"] = bp.tensor(mask), torch.tensor(mask)
    elif kwargs.get("attn_mask") == "float":
        mask = np.random.default_rng(3).standard_normal((2, 1, 5, 6))
        ours["attn_mask"], theirs["attn_mask"] = bp.tensor(mask), torch.tensor(mask)
    out = F.scaled_dot_product_attention(q, k, v, **ours)
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, **theirs)
    assert_close(out, tout, 1e-12)
    backward_both(out, tout)
    for a, b in ((q, tq), (k, tk), (v, tv)):
        assert_close(a.grad, b.grad, 1e-12)


def test_sdpa_gqa_dropout_and_errors():
    torch = pytest.importorskip("torch")
    q, tq = pair(torch, (1, 4, 3, 2), 0)
    k, tk = pair(torch, (1, 2, 3, 2), 1)
    v, tv = pair(torch, (1, 2, 3, 2), 2)
    out = F.scaled_dot_product_attention(q, k, v, enable_gqa=True)
    tout = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, enable_gqa=True)
    assert_close(out, tout, 1e-12)
    dropped = F.scaled_dot_product_attention(q, q, q, dropout_p=1.0)
    np.testing.assert_array_equal(dropped.detach().numpy(), np.zeros((1, 4, 3, 2)))
    with pytest.raises(RuntimeError, match="is_causal"):
        F.scaled_dot_product_attention(q, q, q, attn_mask=bp.ones(3, 3), is_causal=True)
    with pytest.raises(RuntimeError, match="shapes"):
        F.scaled_dot_product_attention(q, k[..., :1], v)


# ---------------------------------------------------------------------------------------------
# MultiheadAttention
# ---------------------------------------------------------------------------------------------


def _mha_inputs(torch, batch_first, length=4, source=5, batch=2, embed=6, kdim=6, vdim=6):
    def shape(n, e):
        return (batch, n, e) if batch_first else (n, batch, e)

    return (
        pair(torch, shape(length, embed), 10),
        pair(torch, shape(source, kdim), 11),
        pair(torch, shape(source, vdim), 12),
    )


@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize(
    "case", ["plain", "bool_masks", "float_masks", "no_weights", "per_head", "zero_attn"]
)
def test_multihead_attention_matches_pytorch(batch_first, case):
    torch = pytest.importorskip("torch")
    options = {"add_zero_attn": case == "zero_attn", "batch_first": batch_first}
    theirs = torch.nn.MultiheadAttention(6, 2, dtype=torch.float64, **options)
    ours = nn.MultiheadAttention(6, 2, dtype=bp.float64, **options)
    with torch.no_grad():  # non-zero biases
        theirs.in_proj_bias.copy_(torch.linspace(-1, 1, 18, dtype=torch.float64))
    copy_from_torch(theirs, ours)
    (q, tq), (k, tk), (v, tv) = _mha_inputs(torch, batch_first)
    kw, tkw = {}, {}
    rng = np.random.default_rng(4)
    if case == "bool_masks":
        attn = rng.random((4, 5)) > 0.6
        attn[:, 1] = False
        padding = np.array([[False, False, True, False, True], [False] * 5])
        kw = {"attn_mask": bp.tensor(attn), "key_padding_mask": bp.tensor(padding)}
        tkw = {"attn_mask": torch.tensor(attn), "key_padding_mask": torch.tensor(padding)}
    elif case == "float_masks":
        attn = rng.standard_normal((2 * 2, 4, 5))
        padding = rng.standard_normal((2, 5))
        kw = {"attn_mask": bp.tensor(attn), "key_padding_mask": bp.tensor(padding)}
        tkw = {"attn_mask": torch.tensor(attn), "key_padding_mask": torch.tensor(padding)}
    elif case == "no_weights":
        kw = tkw = {"need_weights": False}
    elif case == "per_head":
        kw = tkw = {"average_attn_weights": False}
    out, weights = ours(q, k, v, **kw)
    tout, tweights = theirs(tq, tk, tv, **tkw)
    assert_close(out, tout, 1e-10)
    if tweights is None:
        assert weights is None
    else:
        assert_close(weights, tweights, 1e-10)
    backward_both(out, tout)
    assert_grads_close(ours, theirs, 1e-10)
    for a, b in ((q, tq), (k, tk), (v, tv)):
        assert_close(a.grad, b.grad, 1e-10)


def test_multihead_attention_kdim_vdim_unbatched_and_state_dict_keys():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.MultiheadAttention(6, 3, kdim=4, vdim=5, bias=False, dtype=torch.float64)
    ours = nn.MultiheadAttention(6, 3, kdim=4, vdim=5, bias=False, dtype=bp.float64)
    assert list(ours.state_dict()) == [
        "q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight",
    ]  # fmt: skip
    copy_from_torch(theirs, ours)
    q, tq = pair(torch, (4, 6), 0)  # unbatched (L, E)
    k, tk = pair(torch, (5, 4), 1)
    v, tv = pair(torch, (5, 5), 2)
    out, w = ours(q, k, v)
    tout, tw = theirs(tq, tk, tv)
    assert_close(out, tout, 1e-10)
    assert_close(w, tw, 1e-10)
    backward_both(out, tout)
    assert_grads_close(ours, theirs, 1e-10)
    default = nn.MultiheadAttention(8, 2)
    assert list(default.state_dict()) == list(torch.nn.MultiheadAttention(8, 2).state_dict())
    # PyTorch's init: Xavier-uniform in_proj_weight (bound sqrt(6 / (8 + 24))), zero biases.
    bound = math.sqrt(6.0 / 32)
    assert np.abs(default.in_proj_weight.detach().numpy()).max() <= bound
    assert np.abs(default.in_proj_weight.detach().numpy()).max() > 0.8 * bound
    assert not default.in_proj_bias.detach().numpy().any()
    assert not default.out_proj.bias.detach().numpy().any()


def test_multihead_attention_errors():
    with pytest.raises(ValueError, match="divisible"):
        nn.MultiheadAttention(6, 4)
    with pytest.raises(NotImplementedError, match="add_bias_kv"):
        nn.MultiheadAttention(6, 2, add_bias_kv=True)
    mha = nn.MultiheadAttention(6, 2)
    x = bp.ones(3, 1, 6)
    with pytest.raises(RuntimeError, match="is_causal"):
        mha(x, x, x, is_causal=True)
    with pytest.raises(RuntimeError, match="attn_mask has shape"):
        mha(x, x, x, attn_mask=bp.zeros(2, 3))
    causal = nn.Transformer.generate_square_subsequent_mask(3)
    out, _ = mha(x, x, x, attn_mask=causal, is_causal=True)
    assert tuple(out.shape) == (3, 1, 6)


# ---------------------------------------------------------------------------------------------
# Transformer layers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer_matches_pytorch(norm_first, batch_first):
    torch = pytest.importorskip("torch")
    options = {"dim_feedforward": 12, "dropout": 0.0, "norm_first": norm_first}
    options["batch_first"] = batch_first
    theirs = torch.nn.TransformerEncoderLayer(8, 2, dtype=torch.float64, **options)
    ours = nn.TransformerEncoderLayer(8, 2, dtype=bp.float64, **options)
    copy_from_torch(theirs, ours)
    x, tx = pair(torch, (2, 5, 8) if batch_first else (5, 2, 8), 0)
    above = np.triu(np.ones((5, 5), dtype=bool), 1)  # bool: True = do not attend
    mask, tmask = bp.tensor(above), torch.tensor(above)
    padding = np.array([[False, False, False, True, True], [False] * 5])
    out = ours(x, src_mask=mask, src_key_padding_mask=bp.tensor(padding))
    tout = theirs(tx, src_mask=tmask, src_key_padding_mask=torch.tensor(padding))
    assert_close(out, tout, 1e-10)
    backward_both(out, tout)
    assert_close(x.grad, tx.grad, 1e-10)
    assert_grads_close(ours, theirs, 1e-10)


def test_encoder_layer_gelu_bias_false_float32():
    torch = pytest.importorskip("torch")
    options = {"dim_feedforward": 16, "dropout": 0.0, "activation": "gelu", "bias": False}
    theirs = torch.nn.TransformerEncoderLayer(8, 4, **options)
    ours = nn.TransformerEncoderLayer(8, 4, **options)
    copy_from_torch(theirs, ours)
    x, tx = pair(torch, (3, 2, 8), 1, "float32")
    out, tout = ours(x), theirs(tx)
    assert_close(out, tout, 1e-5)
    backward_both(out, tout)
    assert_grads_close(ours, theirs, 1e-5)
    with pytest.raises(RuntimeError, match="relu/gelu"):
        nn.TransformerEncoderLayer(8, 2, activation="swish")


def test_encoder_stack_deep_copies_and_matches_pytorch():
    torch = pytest.importorskip("torch")
    layer = torch.nn.TransformerEncoderLayer(8, 2, 12, 0.0, dtype=torch.float64)
    theirs = torch.nn.TransformerEncoder(
        layer, 2, norm=torch.nn.LayerNorm(8, dtype=torch.float64), enable_nested_tensor=False
    )
    our_layer = nn.TransformerEncoderLayer(8, 2, 12, 0.0, dtype=bp.float64)
    ours = nn.TransformerEncoder(our_layer, 2, norm=nn.LayerNorm(8, dtype=bp.float64))
    assert ours.layers[0].linear1.weight is not ours.layers[1].linear1.weight
    assert ours.layers[0].linear1.weight is not our_layer.linear1.weight
    np.testing.assert_array_equal(
        ours.layers[1].linear1.weight.detach().numpy(), our_layer.linear1.weight.detach().numpy()
    )
    copy_from_torch(theirs, ours)
    x, tx = pair(torch, (4, 3, 8), 0)
    out, tout = ours(x), theirs(tx)
    assert_close(out, tout, 1e-10)
    backward_both(out, tout)
    assert_grads_close(ours, theirs, 1e-10)


@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")  # torch's fast-path note
@pytest.mark.parametrize("norm_first", [False, True])
def test_transformer_matches_pytorch(norm_first):
    torch = pytest.importorskip("torch")
    options = {
        "d_model": 8, "nhead": 2, "num_encoder_layers": 2, "num_decoder_layers": 1,
        "dim_feedforward": 10, "dropout": 0.0, "batch_first": True, "norm_first": norm_first,
    }  # fmt: skip
    theirs = torch.nn.Transformer(dtype=torch.float64, **options)
    ours = nn.Transformer(dtype=bp.float64, **options)
    copy_from_torch(theirs, ours)
    src, tsrc = pair(torch, (2, 5, 8), 0)
    tgt, ttgt = pair(torch, (2, 4, 8), 1)
    mask = nn.Transformer.generate_square_subsequent_mask(4, dtype=bp.float64)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(4, dtype=torch.float64)
    padding = np.array([[False] * 5, [False, False, False, False, True]])
    out = ours(src, tgt, tgt_mask=mask, memory_key_padding_mask=bp.tensor(padding))
    tout = theirs(tsrc, ttgt, tgt_mask=tmask, memory_key_padding_mask=torch.tensor(padding))
    assert_close(out, tout, 1e-10)
    backward_both(out, tout)
    assert_close(src.grad, tsrc.grad, 1e-10)
    assert_grads_close(ours, theirs, 1e-10)


def test_transformer_defaults_keys_and_init():
    torch = pytest.importorskip("torch")
    small = {"d_model": 8, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 2}
    small["batch_first"] = True  # (else torch warns about its nested-tensor fast path)
    ours, theirs = nn.Transformer(**small), torch.nn.Transformer(**small)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    mask = nn.Transformer.generate_square_subsequent_mask(3)
    tmask = torch.nn.Transformer.generate_square_subsequent_mask(3)
    assert mask.dtype == bp.float32
    np.testing.assert_array_equal(mask.numpy(), tmask.numpy())
    assert ours.encoder.layers[0].linear1.weight.shape == (2048, 8)  # dim_feedforward=2048
    assert ours.encoder.layers[0].dropout.p == 0.1
    # Xavier-uniform for every matrix: linear1's bound is sqrt(6 / (8 + 2048)).
    w = ours.encoder.layers[0].linear1.weight.detach().numpy()
    assert np.abs(w).max() <= math.sqrt(6 / 2056)
    with pytest.raises(RuntimeError, match="batch number"):
        ours(bp.ones(2, 3, 8), bp.ones(1, 3, 8))

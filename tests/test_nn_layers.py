"""Convolution, batch-norm, recurrent and loss layers against PyTorch.

Each module test builds the torch module, copies its state_dict into bprop's module (so the
keys must be PyTorch's), then compares outputs, input gradients and parameter gradients in
float64 (and float32 where noted). BatchNorm's running statistics are compared after several
training steps, and a compiled training step must update them exactly as the eager one."""

from __future__ import annotations

import math

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest
from bprop import nn

# PyTorch warns that its own 'same' padding with an even kernel copies the input
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same':UserWarning")

TOL = {"float64": {"rtol": 1e-10, "atol": 1e-10}, "float32": {"rtol": 1e-5, "atol": 1e-5}}


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def to_np(t) -> np.ndarray:
    return np.array(t.detach().numpy(), copy=True)


def flat(out) -> list:
    """A module's output as a flat list of tensors ((out, (h, c)) -> [out, h, c])."""
    if isinstance(out, (tuple, list)):
        return [t for o in out for t in flat(o)]
    return [out]


def copy_state(torch_module, bp_module) -> None:
    """torch's state_dict into bprop's module: the key lists must be equal, in order."""
    state = {k: bp.tensor(to_np(v)) for k, v in torch_module.state_dict().items()}
    assert list(state) == list(bp_module.state_dict())
    bp_module.load_state_dict(state)


def compare_module(torch, tm, bm, arrays, dtype="float64", call=None, bp_args=None):
    """Forward, input gradients and parameter gradients of bm against tm on the same inputs
    (a random cotangent on every output). call(module, *inputs) calls the module."""
    call = call or (lambda m, *xs: m(*xs))
    tm = tm.to(getattr(torch, dtype))
    bm = bm.to(getattr(bp, dtype))
    copy_state(tm, bm)
    tx = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    bx = [bp.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    touts, bouts = flat(call(tm, *tx)), flat(call(bm, *bx))
    assert len(touts) == len(bouts)
    r = rng(99)
    t_total, b_total = 0, 0
    for t, b in zip(touts, bouts):
        assert tuple(b.shape) == tuple(t.shape)
        assert str(b.dtype).rsplit(".", 1)[-1] == dtype
        np.testing.assert_allclose(to_np(b), to_np(t), **TOL[dtype])
        v = r.standard_normal(tuple(t.shape)).astype(dtype)
        t_total = t_total + (t * torch.tensor(v)).sum()
        b_total = b_total + (b * bp.tensor(v)).sum()
    t_total.backward()
    b_total.backward()
    for t, b in zip(tx, bx):
        np.testing.assert_allclose(to_np(b.grad), to_np(t.grad), **TOL[dtype])
    tparams = dict(tm.named_parameters())
    for name, p in bm.named_parameters():
        assert p.grad is not None, name
        np.testing.assert_allclose(to_np(p.grad), to_np(tparams[name].grad), **TOL[dtype])


# ---------------------------------------------------------------------------------------------
# functionals
# ---------------------------------------------------------------------------------------------

FUNCTIONAL_CASES = {
    "l1_loss": (lambda m, a, b: m.nn.functional.l1_loss(a, b), ((3, 4), (3, 4))),
    "l1_loss_none": (
        lambda m, a, b: m.nn.functional.l1_loss(a, b, reduction="none"),
        ((3, 4), (3, 4)),
    ),
    "l1_loss_weight": (
        lambda m, a, b, w: m.nn.functional.l1_loss(a, b, weight=w.abs()),
        ((3, 4), (3, 4), (3, 4)),
    ),
    "smooth_l1_loss": (
        lambda m, a, b: m.nn.functional.smooth_l1_loss(a, b * 2),
        ((4, 5), (4, 5)),
    ),
    "smooth_l1_loss_beta_sum": (
        lambda m, a, b: m.nn.functional.smooth_l1_loss(a, b, reduction="sum", beta=0.6),
        ((4, 5), (4, 5)),
    ),
    "smooth_l1_loss_beta0": (
        lambda m, a, b: m.nn.functional.smooth_l1_loss(a, b, beta=0.0),
        ((4, 5), (4, 5)),
    ),
    "binary_cross_entropy": (
        lambda m, a, b: m.nn.functional.binary_cross_entropy(a.sigmoid(), b.sigmoid()),
        ((3, 4), (3, 4)),
    ),
    "binary_cross_entropy_weight_none": (
        lambda m, a, b, w: m.nn.functional.binary_cross_entropy(
            a.sigmoid(), b.sigmoid(), weight=w.detach(), reduction="none"
        ),
        ((3, 4), (3, 4), (4,)),
    ),
    "pad_constant_3d": (
        lambda m, a: m.nn.functional.pad(a, (1, 2, 0, 1, 2, 0), value=0.5),
        ((2, 3, 4),),
    ),
    "pad_negative_crop": (lambda m, a: m.nn.functional.pad(a, (-1, 2, 1, -2)), ((3, 5, 4),)),
    "pad_reflect_2d": (
        lambda m, a: m.nn.functional.pad(a, (1, 2, 3, 1), mode="reflect"),
        ((2, 3, 5, 4),),
    ),
    "pad_replicate_1d": (
        lambda m, a: m.nn.functional.pad(a, (3, 1), mode="replicate"),
        ((2, 3, 4),),
    ),
    "pad_circular_2d_unbatched": (
        lambda m, a: m.nn.functional.pad(a, (2, 1, 1, 3), mode="circular"),
        ((2, 4, 3),),
    ),
    "normalize": (lambda m, a: m.nn.functional.normalize(a), ((3, 4, 2),)),
    "normalize_p1_last": (lambda m, a: m.nn.functional.normalize(a, p=1, dim=-1), ((3, 4),)),
    "normalize_p3": (lambda m, a: m.nn.functional.normalize(a, p=3.0, dim=0), ((3, 4),)),
    "conv1d": (
        lambda m, x, w, b: m.nn.functional.conv1d(x, w, b),
        ((2, 3, 9), (4, 3, 3), (4,)),
    ),
    "conv1d_stride_pad_dil_groups": (
        lambda m, x, w: m.nn.functional.conv1d(x, w, stride=2, padding=2, dilation=2, groups=2),
        ((2, 4, 11), (6, 2, 3)),
    ),
    "conv1d_same_even_kernel": (
        lambda m, x, w: m.nn.functional.conv1d(x, w, padding="same"),
        ((2, 3, 7), (2, 3, 4)),
    ),
    "conv1d_valid_unbatched": (
        lambda m, x, w: m.nn.functional.conv1d(x, w, padding="valid"),
        ((3, 7), (2, 3, 4)),
    ),
    "conv_transpose2d": (
        lambda m, x, w, b: m.nn.functional.conv_transpose2d(x, w, b),
        ((2, 3, 4, 5), (3, 2, 3, 2), (2,)),
    ),
    "conv_transpose2d_stride_pad_outpad": (
        lambda m, x, w: m.nn.functional.conv_transpose2d(
            x, w, stride=(2, 3), padding=(1, 2), output_padding=(1, 2)
        ),
        ((2, 3, 4, 3), (3, 2, 3, 4)),
    ),
    "conv_transpose2d_groups_dilation": (
        lambda m, x, w, b: m.nn.functional.conv_transpose2d(
            x, w, b, stride=2, padding=1, output_padding=1, groups=2, dilation=(2, 1)
        ),
        ((1, 4, 3, 4), (4, 3, 2, 3), (6,)),
    ),
    "conv_transpose2d_outpad_below_dilation": (
        lambda m, x, w: m.nn.functional.conv_transpose2d(
            x, w, padding=2, output_padding=2, dilation=3
        ),
        ((3, 4, 3), (3, 2, 2, 2)),
    ),
    "batch_norm_train": (
        lambda m, x, w, b: m.nn.functional.batch_norm(x, None, None, w, b, training=True),
        ((4, 3, 5), (3,), (3,)),
    ),
    "batch_norm_train_4d_noaffine": (
        lambda m, x: m.nn.functional.batch_norm(x, None, None, training=True, eps=1e-3),
        ((3, 2, 3, 2),),
    ),
    "batch_norm_eval": (
        lambda m, x, rm, rv, w: m.nn.functional.batch_norm(
            x, rm.detach(), rv.detach().abs() + 0.5, w
        ),
        ((4, 3), (3,), (3,), (3,)),
    ),
    "max_pool1d": (
        lambda m, x: m.nn.functional.max_pool1d(x, 3, stride=2, padding=1, dilation=1),
        ((2, 3, 9),),
    ),
    "max_pool1d_unbatched_dilation": (
        lambda m, x: m.nn.functional.max_pool1d(x, 2, dilation=2),
        ((3, 8),),
    ),
    "avg_pool1d": (lambda m, x: m.nn.functional.avg_pool1d(x, 3, 2, 1), ((2, 3, 8),)),
    "adaptive_avg_pool1d": (lambda m, x: m.nn.functional.adaptive_avg_pool1d(x, 3), ((2, 3, 7),)),
    "adaptive_avg_pool2d_uneven": (
        lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, (3, 2)),
        ((2, 3, 7, 5),),
    ),
    "adaptive_avg_pool2d_even_none": (
        lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, (2, None)),
        ((3, 6, 5),),
    ),
    "adaptive_avg_pool2d_1": (
        lambda m, x: m.nn.functional.adaptive_avg_pool2d(x, 1),
        ((2, 3, 4, 5),),
    ),
    "adaptive_max_pool2d": (
        lambda m, x: m.nn.functional.adaptive_max_pool2d(x, (2, 3)),
        ((2, 2, 5, 7),),
    ),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", sorted(FUNCTIONAL_CASES))
def test_functional_matches_pytorch(torch, case, dtype):
    fn, shapes = FUNCTIONAL_CASES[case]
    r = rng(len(case))
    arrays = [r.uniform(0.2, 1.5, s) * r.choice([-1.0, 1.0], s) for s in shapes]
    tx = [torch.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    bx = [bp.tensor(a.astype(dtype), requires_grad=True) for a in arrays]
    tout, bout = fn(torch, *tx), fn(bp, *bx)
    assert tuple(bout.shape) == tuple(tout.shape)
    assert str(bout.dtype) == str(tout.dtype).replace("torch", "bprop")
    np.testing.assert_allclose(to_np(bout), to_np(tout), **TOL[dtype])
    v = r.standard_normal(tuple(tout.shape)).astype(dtype)
    tout.backward(torch.tensor(v))
    bout.backward(bp.tensor(v))
    for t, b in zip(tx, bx):
        want = np.zeros(t.shape) if t.grad is None else to_np(t.grad)
        got = np.zeros(b.shape) if b.grad is None else to_np(b.grad)
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_batch_norm_updates_running_stats_as_pytorch(torch):
    r = rng(1)
    rm, rv = r.standard_normal(3), r.uniform(0.5, 2.0, 3)
    brm, brv, trm, trv = bp.tensor(rm), bp.tensor(rv), torch.tensor(rm), torch.tensor(rv)
    for momentum in (0.1, 0.5, 0.0):
        x = r.standard_normal((5, 3, 2))
        out = F.batch_norm(bp.tensor(x), brm, brv, training=True, momentum=momentum)
        want = torch.nn.functional.batch_norm(
            torch.tensor(x), trm, trv, training=True, momentum=momentum
        )
        np.testing.assert_allclose(to_np(out), to_np(want), **TOL["float64"])
        np.testing.assert_allclose(to_np(brm), to_np(trm), **TOL["float64"])
        np.testing.assert_allclose(to_np(brv), to_np(trv), **TOL["float64"])


def test_one_hot_matches_pytorch(torch):
    idx = np.array([[1, 0, 3], [2, 2, 0]])
    for classes in (-1, 4, 6):
        got = F.one_hot(bp.tensor(idx), classes)
        want = torch.nn.functional.one_hot(torch.tensor(idx), classes)
        assert got.dtype == bp.int64
        assert got.tolist() == want.tolist()
    assert F.one_hot(bp.tensor([0, 2]), num_classes=3).tolist() == [[1, 0, 0], [0, 0, 1]]


def test_smooth_l1_value_by_hand():
    x = bp.tensor([0.0, 0.0, 0.0])
    y = bp.tensor([0.5, 2.0, -1.0])
    # |d| < 1: 0.5 d^2; else |d| - 0.5
    assert F.smooth_l1_loss(x, y, reduction="none").tolist() == [0.125, 1.5, 0.5]
    assert F.l1_loss(x, y, reduction="sum").item() == 3.5


def test_legacy_size_average_and_reduce_map_to_reduction():
    a, b = bp.tensor([1.0, -2.0]), bp.tensor([0.0, 0.0])
    with pytest.warns(UserWarning, match="reduction='sum'"):
        assert F.l1_loss(a, b, size_average=False).item() == 3.0
    with pytest.warns(UserWarning):
        assert F.l1_loss(a, b, reduce=False).tolist() == [1.0, 2.0]
    with pytest.warns(UserWarning):
        assert nn.L1Loss(size_average=True).reduction == "mean"


# ---------------------------------------------------------------------------------------------
# convolution modules
# ---------------------------------------------------------------------------------------------

CONV_CASES = [
    ("Conv1d", dict(in_channels=3, out_channels=4, kernel_size=3), (2, 3, 8)),
    (
        "Conv1d",
        dict(in_channels=4, out_channels=2, kernel_size=3, stride=2, padding=1, groups=2),
        (2, 4, 9),
    ),
    ("Conv1d", dict(in_channels=3, out_channels=2, kernel_size=4, padding="same"), (2, 3, 7)),
    ("Conv1d", dict(in_channels=3, out_channels=2, kernel_size=3, bias=False), (3, 6)),
    (
        "Conv1d",
        dict(in_channels=2, out_channels=2, kernel_size=3, padding=2, padding_mode="reflect"),
        (2, 2, 6),
    ),
    (
        "Conv1d",
        dict(in_channels=2, out_channels=2, kernel_size=3, padding=1, padding_mode="circular"),
        (2, 2, 6),
    ),
    (
        "Conv2d",
        dict(in_channels=2, out_channels=3, kernel_size=(2, 3), padding="same", dilation=2),
        (2, 2, 6, 5),
    ),
    (
        "Conv2d",
        dict(in_channels=2, out_channels=3, kernel_size=3, padding=1, padding_mode="replicate"),
        (2, 2, 5, 5),
    ),
    ("ConvTranspose2d", dict(in_channels=3, out_channels=2, kernel_size=3), (2, 3, 4, 4)),
    (
        "ConvTranspose2d",
        dict(
            in_channels=4,
            out_channels=6,
            kernel_size=(3, 2),
            stride=(2, 3),
            padding=(1, 0),
            output_padding=(1, 2),
            groups=2,
        ),
        (2, 4, 3, 4),
    ),  # fmt: skip
    (
        "ConvTranspose2d",
        dict(in_channels=2, out_channels=2, kernel_size=2, stride=2, dilation=2, bias=False),
        (2, 3, 3),
    ),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, kwargs, shape", CONV_CASES)
def test_conv_modules_match_pytorch(torch, name, kwargs, shape, dtype):
    tm = getattr(torch.nn, name)(**kwargs)
    bm = getattr(nn, name)(**kwargs)
    x = rng(len(shape)).standard_normal(shape)
    compare_module(torch, tm, bm, [x], dtype)


def test_conv_transpose2d_output_size_picks_output_padding(torch):
    kwargs = dict(in_channels=2, out_channels=3, kernel_size=3, stride=2, padding=1)
    tm, bm = torch.nn.ConvTranspose2d(**kwargs), nn.ConvTranspose2d(**kwargs)
    x = rng(3).standard_normal((1, 2, 4, 5))
    for size in ([7, 9], [8, 10], [1, 3, 8, 9]):
        compare_module(torch, tm, bm, [x], call=lambda m, t, s=size: m(t, output_size=s))
    with pytest.raises(ValueError, match=r"\[ConvTranspose2d\] requested an output size"):
        bm(bp.tensor(x), output_size=[9, 9])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("Conv1d", dict(in_channels=6, out_channels=4, kernel_size=5, groups=2)),
        ("Conv2d", dict(in_channels=3, out_channels=8, kernel_size=(3, 2))),
        ("ConvTranspose2d", dict(in_channels=6, out_channels=8, kernel_size=3, groups=2)),
    ],
)
def test_conv_init_bounds_are_pytorchs(torch, name, kwargs):
    tm, bm = getattr(torch.nn, name)(**kwargs), getattr(nn, name)(**kwargs)
    assert tuple(bm.weight.shape) == tuple(tm.weight.shape)
    assert tuple(bm.bias.shape) == tuple(tm.bias.shape)
    fan_in = tm.weight.shape[1] * math.prod(tm.weight.shape[2:])
    bound = 1 / math.sqrt(fan_in)
    for p in (bm.weight, bm.bias):
        values = np.abs(to_np(p))
        assert values.max() <= bound and values.max() > 0.5 * bound


# ---------------------------------------------------------------------------------------------
# batch norm
# ---------------------------------------------------------------------------------------------

BN_CASES = [
    ("BatchNorm1d", dict(), (6, 3)),
    ("BatchNorm1d", dict(momentum=None), (4, 3, 5)),
    ("BatchNorm1d", dict(affine=False, momentum=0.3), (4, 3, 2)),
    ("BatchNorm2d", dict(eps=1e-3), (3, 3, 2, 4)),
    ("BatchNorm2d", dict(track_running_stats=False), (3, 3, 2, 2)),
    ("BatchNorm2d", dict(bias=False), (2, 3, 3, 2)),
    ("BatchNorm3d", dict(momentum=None), (2, 3, 2, 2, 2)),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, kwargs, shape", BN_CASES)
def test_batch_norm_modules_train_then_eval_as_pytorch(torch, name, kwargs, shape, dtype):
    tm = getattr(torch.nn, name)(3, **kwargs)
    bm = getattr(nn, name)(3, **kwargs)
    r = rng(7)
    if bm.weight is not None:  # start from non-trivial parameters
        tm.weight.data = torch.tensor(r.uniform(0.5, 1.5, 3), dtype=torch.float32)
    if bm.bias is not None:
        tm.bias.data = torch.tensor(r.standard_normal(3), dtype=torch.float32)
    for _ in range(4):
        compare_module(torch, tm, bm, [r.standard_normal(shape) * 2 + 1], dtype)
        # compare_module copies torch's state into bm before each call: copy it back out, so
        # the next step starts from the running statistics bm computed itself
        state = {k: torch.tensor(to_np(v)) for k, v in bm.state_dict().items()}
        tm.load_state_dict(state)
    tstate = tm.state_dict()
    for key, value in bm.state_dict().items():
        np.testing.assert_allclose(to_np(value), to_np(tstate[key]), **TOL[dtype])
    if bm.track_running_stats:
        assert bm.num_batches_tracked.dtype == bp.int64
        assert bm.num_batches_tracked.item() == 4
    tm.eval()
    bm.eval()
    compare_module(torch, tm, bm, [r.standard_normal(shape)], dtype)


def test_batch_norm_running_stats_over_several_steps(torch):
    """Both modules step on their own (no copying between steps): running stats agree."""
    for momentum in (0.1, None):
        tm = torch.nn.BatchNorm1d(4, momentum=momentum).double()
        bm = nn.BatchNorm1d(4, momentum=momentum, dtype=bp.float64)
        r = rng(5)
        for _ in range(6):
            x = r.standard_normal((8, 4)) * 3 - 1
            np.testing.assert_allclose(
                to_np(bm(bp.tensor(x))), to_np(tm(torch.tensor(x))), **TOL["float64"]
            )
        np.testing.assert_allclose(to_np(bm.running_mean), to_np(tm.running_mean), rtol=1e-12)
        np.testing.assert_allclose(to_np(bm.running_var), to_np(tm.running_var), rtol=1e-12)
        assert bm.num_batches_tracked.item() == 6
        bm.eval()
        tm.eval()
        x = r.standard_normal((3, 4))
        np.testing.assert_allclose(
            to_np(bm(bp.tensor(x))), to_np(tm(torch.tensor(x))), **TOL["float64"]
        )


def test_batch_norm_state_dict_and_reset():
    bn = nn.BatchNorm2d(2)
    assert list(bn.state_dict()) == [
        "weight", "bias", "running_mean", "running_var", "num_batches_tracked",
    ]  # fmt: skip
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert [n for n, _ in bn.named_buffers()] == [
        "running_mean", "running_var", "num_batches_tracked",
    ]  # fmt: skip
    bn(bp.randn(3, 2, 2, 2) + 3.0)
    assert bn.running_mean.tolist() != [0.0, 0.0]
    bn.reset_running_stats()
    assert bn.running_mean.tolist() == [0.0, 0.0]
    assert bn.running_var.tolist() == [1.0, 1.0]
    assert bn.num_batches_tracked.item() == 0
    assert list(nn.BatchNorm1d(3, affine=False, track_running_stats=False).state_dict()) == []


def test_batch_norm_running_stats_take_no_gradient():
    bn = nn.BatchNorm1d(3)
    x = bp.randn(4, 3, requires_grad=True)
    bn(x).sum().backward()
    assert not bn.running_mean.requires_grad and not bn.running_var.requires_grad
    assert x.grad is not None


def _bn_model(momentum):
    bp.manual_seed(3)
    net = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6, momentum=momentum), nn.ReLU(),
                        nn.Linear(6, 3))  # fmt: skip
    return net, bp.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)


@pytest.mark.parametrize("momentum", [0.1, None])
def test_compiled_step_updates_running_stats_as_eager(momentum):
    def step_for(net, opt):
        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            opt.step()
            return loss

        return step

    r = rng(11)
    data = [
        (bp.tensor(r.standard_normal((8, 5)).astype(np.float32) * 2 + 1),
         bp.tensor(r.integers(0, 3, 8)))
        for _ in range(5)
    ]  # fmt: skip
    eager_net, eager_opt = _bn_model(momentum)
    compiled_net, compiled_opt = _bn_model(momentum)
    eager, compiled = (
        step_for(eager_net, eager_opt),
        bp.compile(step_for(compiled_net, compiled_opt)),
    )
    for x, y in data:  # the first compiled call records, the next four replay
        assert eager(x, y).item() == compiled(x, y).item()
        for (name, a), (_, b) in zip(
            eager_net.state_dict().items(), compiled_net.state_dict().items()
        ):
            assert np.array_equal(to_np(a), to_np(b)), name
    assert compiled_net[1].num_batches_tracked.item() == 5
    assert len(compiled.signatures) == 1
    # eval mode uses the running statistics the replays accumulated
    eager_net.eval()
    compiled_net.eval()
    x = data[0][0]
    assert np.array_equal(to_np(eager_net(x)), to_np(compiled_net(x)))


# ---------------------------------------------------------------------------------------------
# recurrent layers
# ---------------------------------------------------------------------------------------------


def _hidden(r, mode, layers, batch, hidden):
    shape = (layers, hidden) if batch is None else (layers, batch, hidden)
    if mode == "LSTM":
        return (r.standard_normal(shape), r.standard_normal(shape))
    return r.standard_normal(shape)


RNN_CASES = [
    # (class, kwargs, sequence, batch (None: unbatched), with hx)
    ("RNN", dict(), 4, 2, False),
    ("RNN", dict(nonlinearity="relu", num_layers=2, bidirectional=True), 3, 2, True),
    ("RNN", dict(bias=False, batch_first=True), 3, 2, True),
    ("GRU", dict(), 4, 3, True),
    ("GRU", dict(num_layers=2, bidirectional=True), 4, 2, True),
    ("GRU", dict(num_layers=2, bidirectional=True, batch_first=True), 4, 2, False),
    ("GRU", dict(bias=False, num_layers=2), 3, None, True),
    ("LSTM", dict(), 4, 3, False),
    ("LSTM", dict(num_layers=2, bidirectional=True), 4, 2, True),
    ("LSTM", dict(num_layers=2, bidirectional=True, batch_first=True), 3, 2, True),
    ("LSTM", dict(bidirectional=True, batch_first=True), 3, None, True),
    ("LSTM", dict(num_layers=2, dropout=0.5), 3, 2, False),  # eval: no dropout
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name, kwargs, steps, batch, with_hx", RNN_CASES)
def test_recurrent_modules_match_pytorch(torch, name, kwargs, steps, batch, with_hx, dtype):
    tm = getattr(torch.nn, name)(3, 4, **kwargs)
    bm = getattr(nn, name)(3, 4, **kwargs)
    if kwargs.get("dropout"):
        tm.eval()
        bm.eval()
    r = rng(steps * 10 + (batch or 0))
    if batch is None:
        x = r.standard_normal((steps, 3))
    elif kwargs.get("batch_first"):
        x = r.standard_normal((batch, steps, 3))
    else:
        x = r.standard_normal((steps, batch, 3))
    arrays = [x]
    directions = 2 if kwargs.get("bidirectional") else 1
    layers = kwargs.get("num_layers", 1) * directions
    if with_hx:
        hx = _hidden(r, name, layers, batch, 4)
        arrays += list(hx) if name == "LSTM" else [hx]

    def call(m, x, *state):
        if not state:
            return m(x)
        return m(x, tuple(state) if name == "LSTM" else state[0])

    compare_module(torch, tm, bm, arrays, dtype, call=call)


@pytest.mark.parametrize("name", ["RNNCell", "GRUCell", "LSTMCell"])
@pytest.mark.parametrize("batch", [3, None])
@pytest.mark.parametrize("with_hx", [True, False])
def test_cells_match_pytorch(torch, name, batch, with_hx):
    tm, bm = getattr(torch.nn, name)(3, 5), getattr(nn, name)(3, 5)
    r = rng(4)
    x = r.standard_normal((3,) if batch is None else (batch, 3))
    arrays = [x]
    if with_hx:
        hx = _hidden(r, "LSTM" if name == "LSTMCell" else name, 1, batch, 5)
        hx = tuple(h[0] for h in hx) if name == "LSTMCell" else hx[0]
        arrays += list(hx) if name == "LSTMCell" else [hx]

    def call(m, x, *state):
        if not state:
            return m(x)
        return m(x, tuple(state) if name == "LSTMCell" else state[0])

    compare_module(torch, tm, bm, arrays, call=call)


def test_rnn_cell_relu_and_no_bias(torch):
    tm = torch.nn.RNNCell(3, 4, bias=False, nonlinearity="relu")
    bm = nn.RNNCell(3, 4, bias=False, nonlinearity="relu")
    compare_module(torch, tm, bm, [rng(8).standard_normal((2, 3))])


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("RNN", dict(num_layers=2, bidirectional=True, nonlinearity="relu")),
        ("GRU", dict(num_layers=3, bias=False)),
        ("LSTM", dict(num_layers=2, bidirectional=True)),
        ("RNNCell", dict()),
        ("GRUCell", dict(bias=False)),
        ("LSTMCell", dict()),
    ],
)
def test_recurrent_state_dict_keys_shapes_and_init_are_pytorchs(torch, name, kwargs):
    tm, bm = getattr(torch.nn, name)(5, 50, **kwargs), getattr(nn, name)(5, 50, **kwargs)
    tstate, bstate = tm.state_dict(), bm.state_dict()
    assert list(bstate) == list(tstate)
    assert [n for n, _ in bm.named_parameters()] == [n for n, _ in tm.named_parameters()]
    bound = 1 / math.sqrt(50)
    for key in tstate:
        assert tuple(bstate[key].shape) == tuple(tstate[key].shape), key
        values = np.abs(to_np(bstate[key]))
        assert values.max() <= bound and values.max() > 0.9 * bound, key


def test_recurrent_dropout_acts_between_layers_only_while_training():
    bp.manual_seed(0)
    lstm = nn.LSTM(3, 4, num_layers=2, dropout=0.5)
    x = bp.randn(5, 2, 3)
    lstm.eval()
    first, second = lstm(x)[0], lstm(x)[0]
    assert np.array_equal(to_np(first), to_np(second))
    lstm.train()
    bp.manual_seed(1)
    trained = lstm(x)[0]
    assert not np.allclose(to_np(trained), to_np(first))
    one_layer = nn.GRU(3, 4)  # no layer to drop between: training changes nothing
    assert np.array_equal(to_np(one_layer(x)[0]), to_np(one_layer.eval()(x)[0]))


def test_lstm_final_states_are_the_last_outputs():
    lstm = nn.LSTM(2, 3, num_layers=1, bidirectional=True, batch_first=True)
    out, (h, c) = lstm(bp.randn(2, 4, 2))
    assert tuple(out.shape) == (2, 4, 6) and tuple(h.shape) == (2, 2, 3)
    assert tuple(c.shape) == (2, 2, 3)
    np.testing.assert_array_equal(to_np(out[:, -1, :3]), to_np(h[0]))  # forward: last step
    np.testing.assert_array_equal(to_np(out[:, 0, 3:]), to_np(h[1]))  # reverse: first step


def test_recurrent_modules_move_with_double_and_flatten_parameters():
    gru = nn.GRU(2, 3, num_layers=2).double()
    gru.flatten_parameters()
    out, h = gru(bp.randn(4, 1, 2, dtype=bp.float64))
    assert out.dtype == bp.float64 and h.dtype == bp.float64
    assert len(gru.all_weights) == 2 and len(gru.all_weights[0]) == 4


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

TARGET = np.array([1, 0, 3, 1, 2])


def _loss_case(kind):
    r = rng(6)
    logits = r.standard_normal((5, 4))
    if kind == "class":
        return [logits], lambda m, x: m.tensor(TARGET)
    if kind == "prob":
        return [logits], lambda m, x: m.tensor(r.uniform(0, 1, (5, 4))).to(x.dtype)
    return [logits], lambda m, x: m.tensor(r.standard_normal((5, 4))).to(x.dtype)


LOSS_CASES = [
    ("CrossEntropyLoss", dict(), "class", None),
    ("CrossEntropyLoss", dict(ignore_index=3, reduction="sum", label_smoothing=0.2), "class", None),
    ("CrossEntropyLoss", dict(reduction="none"), "class", "weight"),
    ("NLLLoss", dict(), "class", "log_softmax"),
    ("NLLLoss", dict(ignore_index=1), "class", "weight+log_softmax"),
    ("MSELoss", dict(), "real", None),
    ("MSELoss", dict(reduction="sum"), "real", None),
    ("L1Loss", dict(reduction="none"), "real", None),
    ("L1Loss", dict(), "real", None),
    ("SmoothL1Loss", dict(beta=0.5), "real", None),
    ("SmoothL1Loss", dict(reduction="sum"), "real", None),
    ("BCEWithLogitsLoss", dict(), "prob", None),
    ("BCEWithLogitsLoss", dict(reduction="sum"), "prob", "weight+pos_weight"),
    ("BCELoss", dict(), "prob", "sigmoid"),
    ("BCELoss", dict(reduction="none"), "prob", "weight+sigmoid"),
]


@pytest.mark.parametrize("name, kwargs, kind, extra", LOSS_CASES)
def test_loss_modules_match_pytorch(torch, name, kwargs, kind, extra):
    extra = extra or ""
    weights = rng(2).uniform(0.5, 2.0, 4)
    t_kwargs, b_kwargs = dict(kwargs), dict(kwargs)
    if "weight" in extra.split("+"):
        t_kwargs["weight"], b_kwargs["weight"] = torch.tensor(weights), bp.tensor(weights)
    if "pos_weight" in extra:
        pw = weights[::-1].copy()
        t_kwargs["pos_weight"], b_kwargs["pos_weight"] = torch.tensor(pw), bp.tensor(pw)
    tm, bm = getattr(torch.nn, name)(**t_kwargs), getattr(nn, name)(**b_kwargs)
    assert list(bm.state_dict()) == list(tm.state_dict())
    arrays, target = _loss_case(kind)
    tt, bt = target(torch, torch.zeros(1, dtype=torch.float64)), None
    bt = bp.tensor(to_np(tt))

    def call(m, x, t):
        if "log_softmax" in extra:
            x = x.log_softmax(1) if hasattr(x, "log_softmax") else F.log_softmax(x, 1)
        if "sigmoid" in extra:
            x = x.sigmoid()
        return m(x, t)

    tx = torch.tensor(arrays[0], requires_grad=True)
    bx = bp.tensor(arrays[0], requires_grad=True)
    tout, bout = call(tm, tx, tt), call(bm, bx, bt)
    np.testing.assert_allclose(to_np(bout), to_np(tout), **TOL["float64"])
    v = rng(3).standard_normal(tuple(tout.shape))
    tout.backward(torch.tensor(v))
    bout.backward(bp.tensor(v))
    np.testing.assert_allclose(to_np(bx.grad), to_np(tx.grad), **TOL["float64"])


def test_loss_modules_are_exported_where_torch_keeps_them():
    from bprop.nn.modules.batchnorm import BatchNorm2d
    from bprop.nn.modules.conv import ConvTranspose2d
    from bprop.nn.modules.loss import CrossEntropyLoss
    from bprop.nn.modules.rnn import LSTM

    assert nn.CrossEntropyLoss is CrossEntropyLoss and nn.LSTM is LSTM
    assert nn.BatchNorm2d is BatchNorm2d and nn.ConvTranspose2d is ConvTranspose2d


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: nn.BatchNorm2d(3)(bp.randn(2, 3, 4)), ValueError, r"\[BatchNorm2d\] expected 4D"),
        (
            lambda: nn.BatchNorm1d(3)(bp.randn(2, 3, 4, 4)),
            ValueError,
            r"\[BatchNorm1d\] .*2D or 3D",
        ),
        (lambda: nn.BatchNorm1d(3)(bp.randn(2, 4)), ValueError, r"\[BatchNorm1d\] expected 3 chan"),
        (lambda: nn.BatchNorm1d(3)(bp.randn(1, 3)), ValueError, r"\[batch_norm\] Expected more"),
        (lambda: nn.LSTM(3, 4)(bp.randn(2, 2, 2, 3)), ValueError, r"\[LSTM\] Expected input to be"),
        (lambda: nn.GRU(3, 4)(bp.randn(5, 2, 2)), RuntimeError, r"\[GRU\] input.size\(-1\)"),
        (
            lambda: nn.GRU(3, 4)(bp.randn(5, 2, 3), bp.zeros(1, 3, 4)),
            RuntimeError,
            r"\[GRU\] Expected hidden size \(1, 2, 4\)",
        ),
        (
            lambda: nn.RNN(3, 4)(bp.randn(5, 3), bp.zeros(1, 2, 4)),
            RuntimeError,
            r"\[RNN\] For unbatched 2-D input, hx should also be 2-D",
        ),
        (lambda: nn.LSTM(3, 4)(bp.randn(5, 2, 3), bp.zeros(1, 2, 4)), TypeError, r"\[LSTM\] hx"),
        (lambda: nn.RNN(3, 4, nonlinearity="gelu"), ValueError, r"\[RNN\] Unknown nonlinearity"),
        (lambda: nn.GRU(3, 0), ValueError, r"\[GRU\] hidden_size must be greater than zero"),
        (lambda: nn.LSTM(3, 4, dropout=1.5), ValueError, r"\[LSTM\] dropout should be"),
        (lambda: nn.LSTM(3, 4, proj_size=2), NotImplementedError, r"\[LSTM\] proj_size"),
        (lambda: nn.GRUCell(3, 4)(bp.randn(2, 2, 3)), ValueError, r"\[GRUCell\] Expected input"),
        (lambda: nn.LSTMCell(3, 4)(bp.randn(2, 2)), RuntimeError, r"\[LSTMCell\] input has"),
        (lambda: F.conv1d(bp.randn(2, 3, 4, 4), bp.randn(2, 3, 3)), RuntimeError, r"\[conv1d\]"),
        (lambda: F.conv1d(bp.randn(2, 3, 4), bp.randn(2, 3)), RuntimeError, r"\[conv1d\] weight"),
        (
            lambda: F.conv_transpose2d(bp.randn(3, 4), bp.randn(3, 2, 2, 2)),
            RuntimeError,
            r"\[conv_transpose2d\] expected a 3-d",
        ),
        (
            lambda: F.conv_transpose2d(bp.randn(1, 4, 3, 3), bp.randn(3, 2, 2, 2)),
            RuntimeError,
            r"\[conv_transpose2d\] input has 4 channels",
        ),
        (
            lambda: F.conv_transpose2d(
                bp.randn(1, 3, 3, 3), bp.randn(3, 2, 2, 2), output_padding=1
            ),
            RuntimeError,
            r"\[conv_transpose2d\] .*output_padding",
        ),
        (lambda: nn.Conv1d(3, 4, 3, groups=2), ValueError, r"\[Conv1d\] in_channels"),
        (lambda: nn.Conv1d(4, 4, 3, stride=2, padding="same"), ValueError, r"\[Conv1d\] padding"),
        (lambda: nn.ConvTranspose2d(2, 2, 3, padding_mode="reflect"), ValueError, r"\[ConvTr"),
        (
            lambda: F.batch_norm(bp.randn(4, 3), bp.zeros(4), bp.ones(4)),
            RuntimeError,
            r"\[batch_norm\] running_mean should contain 3 elements",
        ),
        (lambda: F.l1_loss(bp.ones(2), bp.ones(2), reduction="avg"), ValueError, r"\[l1_loss\]"),
        (lambda: nn.MSELoss(reduction="avg"), ValueError, r"\[MSELoss\] reduction"),
        (
            lambda: F.binary_cross_entropy(bp.ones(2) * 0.5, bp.ones(3)),
            ValueError,
            r"\[binary_cross_entropy\]",
        ),
        (lambda: F.one_hot(bp.tensor([0, -1])), RuntimeError, r"\[one_hot\] .*non-negative"),
        (lambda: F.one_hot(bp.tensor([0, 3]), 3), RuntimeError, r"\[one_hot\] .*smaller"),
        (lambda: F.one_hot(bp.tensor([0.0])), RuntimeError, r"\[one_hot\] .*int64"),
        (lambda: F.pad(bp.ones(2, 3), (1, 2, 3)), ValueError, r"\[pad\] padding length"),
        (
            lambda: F.pad(bp.ones(1, 2, 3), (3, 0), mode="reflect"),
            RuntimeError,
            r"\[pad\] reflect padding",
        ),
        (
            lambda: F.pad(bp.ones(1, 1, 2, 3, 3), (1, 1, 1, 1, 1, 1, 1, 1), mode="replicate"),
            NotImplementedError,
            r"\[pad\] mode 'replicate'",
        ),
        (lambda: F.pad(bp.ones(2, 3), (1, 1), mode="wrap"), NotImplementedError, r"\[pad\] mode"),
    ],
)
def test_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_failed_batch_norm_changes_no_running_stats():
    bn = nn.BatchNorm1d(3)
    with pytest.raises(ValueError):
        bn(bp.randn(1, 3))
    assert bn.running_mean.tolist() == [0.0, 0.0, 0.0]
    assert bn.num_batches_tracked.item() == 0


# ---------------------------------------------------------------------------------------------
# padding modules
# ---------------------------------------------------------------------------------------------

PAD_CASES = [
    ("ZeroPad1d", (2,), (2, 3, 4)),
    ("ZeroPad2d", ((1, 0, 2, 3),), (2, 2, 3, 3)),
    ("ZeroPad3d", (1,), (1, 2, 2, 2, 2)),
    ("ConstantPad1d", ((2, 1), 0.5), (3, 4)),
    ("ConstantPad2d", (1, -2.0), (2, 3, 3)),
    ("ConstantPad3d", ((1, 0, 0, 1, 2, 0), 1.5), (1, 2, 2, 2)),
    ("ReflectionPad1d", (2,), (2, 2, 4)),
    ("ReflectionPad2d", ((1, 2, 2, 1),), (1, 2, 3, 4)),
    ("ReplicationPad1d", ((3, 1),), (2, 4)),
    ("ReplicationPad2d", (2,), (2, 2, 3)),
    ("CircularPad1d", (2,), (1, 2, 3)),
    ("CircularPad2d", ((1, 2, 0, 1),), (1, 1, 3, 3)),
]


@pytest.mark.parametrize("name, args, shape", PAD_CASES)
def test_padding_modules_match_pytorch(torch, name, args, shape):
    tm, bm = getattr(torch.nn, name)(*args), getattr(nn, name)(*args)
    assert bm.padding == tm.padding
    assert repr(bm) == repr(tm)
    compare_module(torch, tm, bm, [rng(1).standard_normal(shape)])


def test_padding_module_rejects_a_wrong_tuple():
    with pytest.raises(ValueError, match=r"\[ZeroPad2d\] padding must be an int or a 4-tuple"):
        nn.ZeroPad2d((1, 2))


def test_batch_norm_eps_must_be_positive_while_training():
    with pytest.raises(ValueError, match=r"\[batch_norm\] eps must be positive"):
        F.batch_norm(bp.randn(4, 3), None, None, training=True, eps=0.0)
    out = F.batch_norm(bp.ones(2, 3), bp.zeros(3), bp.ones(3), eps=0.0)
    assert out.tolist() == [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "constant"])
def test_compiled_step_with_padding_replays_as_eager(mode):
    def make():
        bp.manual_seed(4)
        conv = nn.Conv1d(2, 3, 3, padding=2, padding_mode="zeros" if mode == "constant" else mode)
        return conv, bp.optim.SGD(conv.parameters(), lr=0.1)

    def step_for(conv, opt):
        def step(x):
            opt.zero_grad()
            loss = (F.pad(conv(x), (1, 2), mode=mode) ** 2).mean()
            loss.backward()
            opt.step()
            return loss

        return step

    eager_conv, eager_opt = make()
    compiled_conv, compiled_opt = make()
    eager, compiled = (
        step_for(eager_conv, eager_opt),
        bp.compile(step_for(compiled_conv, compiled_opt)),
    )
    r = rng(12)
    for _ in range(3):
        x = bp.tensor(r.standard_normal((2, 2, 5)).astype(np.float32))
        assert eager(x).item() == compiled(x).item()
    assert np.array_equal(to_np(eager_conv.weight), to_np(compiled_conv.weight))


# ---------------------------------------------------------------------------------------------
# pooling and unflatten modules
# ---------------------------------------------------------------------------------------------

POOL_CASES = [
    ("MaxPool1d", (3,), dict(stride=1, padding=1), (2, 3, 7)),
    ("AvgPool1d", (2,), dict(), (2, 3, 7)),
    ("AdaptiveAvgPool1d", (4,), dict(), (2, 3, 9)),
    ("AdaptiveAvgPool2d", ((1, 1),), dict(), (2, 3, 4, 4)),
    ("AdaptiveAvgPool2d", (3,), dict(), (2, 3, 5, 7)),
    ("AdaptiveMaxPool2d", ((None, 2),), dict(), (2, 3, 4, 5)),
    ("Unflatten", (1, (2, -1)), dict(), (3, 8, 2)),
    ("Flatten", (0, 1), dict(), (3, 4, 2)),
    ("MaxPool2d", (3, 2, 1), dict(dilation=1), (2, 2, 6, 5)),
    ("AvgPool2d", (2,), dict(), (2, 2, 4, 5)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", POOL_CASES)
def test_pooling_modules_match_pytorch(torch, name, args, kwargs, shape):
    tm, bm = getattr(torch.nn, name)(*args, **kwargs), getattr(nn, name)(*args, **kwargs)
    compare_module(torch, tm, bm, [rng(2).standard_normal(shape)])
    assert repr(bm) == repr(tm)


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda: F.max_pool1d(bp.ones(2, 3, 4, 4), 2), RuntimeError, r"\[max_pool1d\] expected"),
        (lambda: F.max_pool1d(bp.ones(2, 3), 2, ceil_mode=True), NotImplementedError, "ceil_mode"),
        (lambda: nn.AvgPool1d(2, count_include_pad=False), NotImplementedError, "count_include"),
        (lambda: nn.MaxPool2d(2, return_indices=True), NotImplementedError, "return_indices"),
        (lambda: nn.AvgPool2d(2, divisor_override=3), NotImplementedError, "divisor_override"),
        (lambda: F.adaptive_avg_pool2d(bp.ones(3, 4), 2), RuntimeError, r"\[adaptive_avg_pool2d"),
        (lambda: F.adaptive_avg_pool2d(bp.ones(1, 3, 4), (2, 0)), RuntimeError, "positive"),
        (lambda: F.adaptive_avg_pool2d(bp.ones(1, 3, 4), (1, 2, 3)), ValueError, "2 elements"),
        (lambda: nn.Unflatten(1, 6), TypeError, r"\[Unflatten\] unflattened_size"),
        (lambda: nn.Unflatten(3, (2, 3))(bp.ones(2, 6)), IndexError, r"\[Unflatten\] dim 3"),
    ],
)
def test_pooling_errors_name_the_op(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("name", ["RNN", "GRU", "LSTM"])
def test_recurrent_gradients_pass_gradcheck_and_gradgradcheck(name):
    """Composed of differentiable ops: first and second order against finite differences."""
    module = getattr(nn, name)(2, 3, bidirectional=True, dtype=bp.float64)
    x = bp.tensor(rng(5).standard_normal((3, 2, 2)), requires_grad=True)
    h = bp.tensor(rng(6).standard_normal((2, 2, 3)), requires_grad=True)

    def fn(x, h):
        state = (h, h * 0.5) if name == "LSTM" else h
        return module(x, state)[0]

    assert bp.testing.gradcheck(fn, (x, h))
    assert bp.testing.gradgradcheck(fn, (x, h), random_directions=4)


def test_batch_norm_and_conv_transpose_pass_gradgradcheck():
    x = bp.tensor(rng(7).standard_normal((3, 2, 2, 2)), requires_grad=True)
    w = bp.tensor(rng(8).standard_normal((2, 2, 2, 2)), requires_grad=True)

    def fn(x, w):
        y = F.conv_transpose2d(x, w, stride=2, padding=1, output_padding=1)
        return F.batch_norm(y, None, None, training=True)

    assert bp.testing.gradcheck(fn, (x, w))
    assert bp.testing.gradgradcheck(fn, (x, w), random_directions=4)


@pytest.mark.parametrize("kwargs", [{}, {"affine": False}, {"bias": False}, {"momentum": None}])
def test_batchnorm_repr_matches_torch(kwargs):
    torch = pytest.importorskip("torch")
    assert repr(bp.nn.BatchNorm2d(4, **kwargs)) == repr(torch.nn.BatchNorm2d(4, **kwargs))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_three_trailing_dims_matches_torch(mode):
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(0).standard_normal((1, 2, 3, 4, 5))
    ours = bp.tensor(x, requires_grad=True)
    theirs = torch.tensor(x, requires_grad=True)
    pad = (1, 2, 2, 1, 1, 1)
    out, ref = F.pad(ours, pad, mode=mode), torch.nn.functional.pad(theirs, pad, mode=mode)
    np.testing.assert_allclose(out.detach().numpy(), ref.detach().numpy())
    (out * out).sum().backward()
    (ref * ref).sum().backward()
    np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-12)

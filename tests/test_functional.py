"""bprop.nn.functional against torch.nn.functional and numpy references.

The option sweeps (reductions, weights, ignore_index, label smoothing, conv2d stride / padding /
dilation / groups / bias, pooling windows) go through test_ops.py's table helper: forward and
gradients against numpy + float64 central differences and against PyTorch in float32 and
float64, then second order. The rest: stability at logits of +-1000, dropout's seeding and
scaling, and the errors.
"""

from __future__ import annotations

import importlib

import bprop as bp
import numpy as np
import oracles
import pytest
from test_ops import (
    FD_TOL,
    TOL,
    OpCase,
    case_data,
    central_differences,
    gradcheck,
    helper_test_op,
    second_order_np,
    to_np,
    vjp_np,
)

F = importlib.import_module("bprop.nn.functional")


def Fm(m):
    return importlib.import_module(f"{m.__name__}.nn.functional")


def T(m, a, like=None):
    """A constant tensor of module m; floating constants take the dtype of `like`."""
    t = m.tensor(np.asarray(a))
    return t if like is None else t.to(like.dtype)


TGT_4 = np.array([1, 0, 4, 1])
TGT_4_IGN = np.array([1, -100, 4, 2])
TGT_4_IGN2 = np.array([2, 0, 2, 3])  # with ignore_index=2
TGT_ND = np.array([[[0, 2], [1, 1], [2, 0]], [[1, 0], [0, 0], [2, 2]]])  # (N=2, d1=3, d2=2)
W_5 = np.array([0.5, 2.0, 1.0, 1.5, 0.25])
W_3 = np.array([1.5, 0.5, 2.0])
PROB_34 = np.array([[0.0, 0.3, 1.0, 0.5], [0.9, 0.1, 0.0, 1.0], [0.25, 0.75, 0.6, 0.2]])
POS_W_4 = np.array([0.5, 2.0, 1.0, 3.0])
W_34 = np.array([[1.0, 0.5, 2.0, 0.0], [1.5, 1.0, 1.0, 0.25], [0.5, 0.5, 3.0, 1.0]])

C = OpCase
FN_OPS = [
    # ---- cross_entropy ----
    C(
        "ce_mean",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4)),
        lambda a: oracles.cross_entropy(a, TGT_4),
        ((4, 5),),
    ),
    C(
        "ce_sum",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), reduction="sum"),
        lambda a: oracles.cross_entropy(a, TGT_4, reduction="sum"),
        ((4, 5),),
    ),
    C(
        "ce_none",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), reduction="none"),
        lambda a: oracles.cross_entropy(a, TGT_4, reduction="none"),
        ((4, 5),),
    ),
    C(
        "ce_weight",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), weight=T(m, W_5, a)),
        lambda a: oracles.cross_entropy(a, TGT_4, weight=W_5),
        ((4, 5),),
    ),
    C(
        "ce_weight_none",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), weight=T(m, W_5, a), reduction="none"),
        lambda a: oracles.cross_entropy(a, TGT_4, weight=W_5, reduction="none"),
        ((4, 5),),
    ),
    C(
        "ce_ignore_default",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4_IGN)),
        lambda a: oracles.cross_entropy(a, TGT_4_IGN),
        ((4, 5),),
    ),
    C(
        "ce_ignore_index",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4_IGN2), ignore_index=2),
        lambda a: oracles.cross_entropy(a, TGT_4_IGN2, ignore_index=2),
        ((4, 5),),
    ),
    C(
        "ce_ignore_weight",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4_IGN), weight=T(m, W_5, a)),
        lambda a: oracles.cross_entropy(a, TGT_4_IGN, weight=W_5),
        ((4, 5),),
    ),
    C(
        "ce_ignore_none",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4_IGN), reduction="none"),
        lambda a: oracles.cross_entropy(a, TGT_4_IGN, reduction="none"),
        ((4, 5),),
    ),
    C(
        "ce_smooth",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), label_smoothing=0.2),
        lambda a: oracles.cross_entropy(a, TGT_4, label_smoothing=0.2),
        ((4, 5),),
    ),
    C(
        "ce_smooth_none",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_4), reduction="none", label_smoothing=0.3),
        lambda a: oracles.cross_entropy(a, TGT_4, reduction="none", label_smoothing=0.3),
        ((4, 5),),
    ),
    C(
        "ce_smooth_weight_ignore",
        lambda m, a: Fm(m).cross_entropy(
            a, T(m, TGT_4_IGN), weight=T(m, W_5, a), label_smoothing=0.15
        ),
        lambda a: oracles.cross_entropy(a, TGT_4_IGN, weight=W_5, label_smoothing=0.15),
        ((4, 5),),
    ),
    C(
        "ce_unbatched",
        lambda m, a: Fm(m).cross_entropy(a, T(m, 3)),
        lambda a: oracles.cross_entropy(a, np.array(3)),
        ((5,),),
    ),
    C(
        "ce_nd",
        lambda m, a: Fm(m).cross_entropy(a, T(m, TGT_ND)),
        lambda a: oracles.cross_entropy(a, TGT_ND),
        ((2, 3, 3, 2),),
    ),
    C(
        "ce_nd_weight_smooth_none",
        lambda m, a: Fm(m).cross_entropy(
            a, T(m, TGT_ND), weight=T(m, W_3, a), reduction="none", label_smoothing=0.1
        ),
        lambda a: oracles.cross_entropy(
            a, TGT_ND, weight=W_3, reduction="none", label_smoothing=0.1
        ),
        ((2, 3, 3, 2),),
    ),
    C(
        "ce_noncontig",
        lambda m, a: Fm(m).cross_entropy(a.T, T(m, TGT_4)),
        lambda a: oracles.cross_entropy(a.T, TGT_4),
        ((5, 4),),
    ),
    C(
        "ce_prime_classes",
        lambda m, a: Fm(m).cross_entropy(a, T(m, np.array([10, 0, 6]))),
        lambda a: oracles.cross_entropy(a, np.array([10, 0, 6])),
        ((3, 11),),
    ),
    # ---- nll_loss ----
    C(
        "nll_weight_sum",
        lambda m, a: Fm(m).nll_loss(a, T(m, TGT_4), weight=T(m, W_5, a), reduction="sum"),
        lambda a: oracles.nll_loss(a, TGT_4, weight=W_5, reduction="sum"),
        ((4, 5),),
    ),
    C(
        "nll_ignore_weight_mean",
        lambda m, a: Fm(m).nll_loss(a, T(m, TGT_4_IGN), weight=T(m, W_5, a)),
        lambda a: oracles.nll_loss(a, TGT_4_IGN, weight=W_5),
        ((4, 5),),
    ),
    C(
        "nll_ignore_index",
        lambda m, a: Fm(m).nll_loss(a, T(m, TGT_4_IGN2), ignore_index=2, reduction="none"),
        lambda a: oracles.nll_loss(a, TGT_4_IGN2, ignore_index=2, reduction="none"),
        ((4, 5),),
    ),
    C(
        "nll_nd",
        lambda m, a: Fm(m).nll_loss(a, T(m, TGT_ND)),
        lambda a: oracles.nll_loss(a, TGT_ND),
        ((2, 3, 3, 2),),
    ),
    C(
        "nll_of_log_softmax",
        lambda m, a: Fm(m).nll_loss(Fm(m).log_softmax(a, dim=1), T(m, TGT_4)),
        lambda a: oracles.cross_entropy(a, TGT_4),
        ((4, 5),),
    ),
    # ---- mse_loss ----
    C("mse_mean", lambda m, a, b: Fm(m).mse_loss(a, b), oracles.mse_loss, ((3, 4), (3, 4))),
    C(
        "mse_sum",
        lambda m, a, b: Fm(m).mse_loss(a, b, reduction="sum"),
        lambda a, b: oracles.mse_loss(a, b, "sum"),
        ((2, 3, 5), (2, 3, 5)),
    ),
    C(
        "mse_none",
        lambda m, a, b: Fm(m).mse_loss(a, b, reduction="none"),
        lambda a, b: oracles.mse_loss(a, b, "none"),
        ((7,), (7,)),
    ),
    C("mse_0d", lambda m, a, b: Fm(m).mse_loss(a, b), oracles.mse_loss, ((), ())),
    # ---- binary_cross_entropy_with_logits ----
    C(
        "bce_mean",
        lambda m, a: Fm(m).binary_cross_entropy_with_logits(a, T(m, PROB_34, a)),
        lambda a: oracles.binary_cross_entropy_with_logits(a, PROB_34),
        ((3, 4),),
    ),
    C(
        "bce_target_grad",
        lambda m, a, y: Fm(m).binary_cross_entropy_with_logits(a, y.sigmoid()),
        lambda a, y: oracles.binary_cross_entropy_with_logits(a, oracles.sigmoid(y)),
        ((3, 4), (3, 4)),
    ),
    C(
        "bce_weight_sum",
        lambda m, a: Fm(m).binary_cross_entropy_with_logits(
            a, T(m, PROB_34, a), weight=T(m, W_34, a), reduction="sum"
        ),
        lambda a: oracles.binary_cross_entropy_with_logits(
            a, PROB_34, weight=W_34, reduction="sum"
        ),
        ((3, 4),),
    ),
    C(
        "bce_pos_weight_none",
        lambda m, a: Fm(m).binary_cross_entropy_with_logits(
            a, T(m, PROB_34, a), pos_weight=T(m, POS_W_4, a), reduction="none"
        ),
        lambda a: oracles.binary_cross_entropy_with_logits(
            a, PROB_34, pos_weight=POS_W_4, reduction="none"
        ),
        ((3, 4),),
    ),
    C(
        "bce_weight_pos_weight",
        lambda m, a: Fm(m).binary_cross_entropy_with_logits(
            a, T(m, PROB_34, a), weight=T(m, W_34[0], a), pos_weight=T(m, POS_W_4, a)
        ),
        lambda a: oracles.binary_cross_entropy_with_logits(
            a, PROB_34, weight=W_34[0], pos_weight=POS_W_4
        ),
        ((3, 4),),
    ),
    # ---- linear ----
    C("linear_1d", lambda m, x, w, b: Fm(m).linear(x, w, b), oracles.linear, ((3,), (5, 3), (5,))),
    C(
        "linear_4d_nobias",
        lambda m, x, w: Fm(m).linear(x, w),
        oracles.linear,
        ((2, 2, 3, 4), (5, 4)),
    ),
    C(
        "linear_noncontig_weight",
        lambda m, x, w, b: Fm(m).linear(x, w.T, b),
        lambda x, w, b: oracles.linear(x, w.T, b),
        ((4, 3), (3, 7), (7,)),
    ),
    # ---- activations ----
    C(
        "gelu_odd",
        lambda m, a: Fm(m).gelu(a * 3.0),
        lambda a: oracles.gelu(a * 3.0),
        ((3, 7),),
    ),
    C(
        "gelu_tanh_odd",
        lambda m, a: Fm(m).gelu(a * 3.0, approximate="tanh"),
        lambda a: oracles.gelu(a * 3.0, "tanh"),
        ((3, 7),),
    ),
    C(
        "softplus_threshold",
        lambda m, a: Fm(m).softplus(a * 30.0, threshold=20.0),
        lambda a: oracles.softplus(a * 30.0, 1.0, 20.0),
        ((4, 5),),
    ),
    C(
        "softplus_beta_half",
        lambda m, a: Fm(m).softplus(a, beta=0.5),
        lambda a: oracles.softplus(a, 0.5),
        ((4, 5),),
    ),
    C(
        "leaky_relu_0d",
        lambda m, a: Fm(m).leaky_relu(a, 0.1),
        lambda a: oracles.leaky_relu(a, 0.1),
        ((),),
    ),
    C("relu_0d", lambda m, a: Fm(m).relu(a), lambda a: np.maximum(a, 0.0), ((),)),
    C(
        "softmax_1d",
        lambda m, a: Fm(m).softmax(a, dim=0),
        lambda a: oracles.softmax(a, 0),
        ((7,),),
    ),
    C(
        "softmax_4d_dim1",
        lambda m, a: Fm(m).softmax(a, dim=1),
        lambda a: oracles.softmax(a, 1),
        ((2, 3, 2, 2),),
    ),
    C(
        "log_softmax_1d",
        lambda m, a: Fm(m).log_softmax(a, dim=-1),
        lambda a: oracles.log_softmax(a, -1),
        ((7,),),
    ),
    C(
        "log_softmax_noncontig",
        lambda m, a: Fm(m).log_softmax(a.transpose(0, 1), dim=1),
        lambda a: oracles.log_softmax(a.T, 1),
        ((5, 3),),
    ),
    # ---- conv2d ----
    C(
        "conv_bias",
        lambda m, x, w, b: Fm(m).conv2d(x, w, b),
        oracles.conv2d,
        ((2, 3, 5, 7), (4, 3, 3, 3), (4,)),
    ),
    C(
        "conv_stride2",
        lambda m, x, w: Fm(m).conv2d(x, w, stride=2),
        lambda x, w: oracles.conv2d(x, w, stride=2),
        ((1, 2, 7, 6), (3, 2, 3, 2)),
    ),
    C(
        "conv_stride_tuple_pad_tuple",
        lambda m, x, w, b: Fm(m).conv2d(x, w, b, stride=(2, 1), padding=(1, 2)),
        lambda x, w, b: oracles.conv2d(x, w, b, stride=(2, 1), padding=(1, 2)),
        ((2, 2, 5, 5), (3, 2, 3, 3), (3,)),
    ),
    C(
        "conv_dilation",
        lambda m, x, w: Fm(m).conv2d(x, w, dilation=2),
        lambda x, w: oracles.conv2d(x, w, dilation=2),
        ((1, 2, 7, 7), (2, 2, 3, 3)),
    ),
    C(
        "conv_dilation_tuple_pad",
        lambda m, x, w: Fm(m).conv2d(x, w, padding=2, dilation=(1, 2)),
        lambda x, w: oracles.conv2d(x, w, padding=2, dilation=(1, 2)),
        ((1, 1, 5, 6), (2, 1, 3, 2)),
    ),
    C(
        "conv_groups2",
        lambda m, x, w, b: Fm(m).conv2d(x, w, b, padding=1, groups=2),
        lambda x, w, b: oracles.conv2d(x, w, b, padding=1, groups=2),
        ((2, 4, 5, 5), (6, 2, 3, 3), (6,)),
    ),
    C(
        "conv_depthwise",
        lambda m, x, w: Fm(m).conv2d(x, w, stride=2, groups=3),
        lambda x, w: oracles.conv2d(x, w, stride=2, groups=3),
        ((1, 3, 6, 5), (3, 1, 2, 2)),
    ),
    C(
        "conv_1x1",
        lambda m, x, w, b: Fm(m).conv2d(x, w, b),
        oracles.conv2d,
        ((2, 3, 4, 5), (5, 3, 1, 1), (5,)),
    ),
    C(
        "conv_kernel_is_input",
        lambda m, x, w: Fm(m).conv2d(x, w),
        oracles.conv2d,
        ((2, 2, 3, 4), (3, 2, 3, 4)),
    ),
    C(
        "conv_noncontig_input",
        lambda m, x, w: Fm(m).conv2d(x.transpose(2, 3), w, padding=1),
        lambda x, w: oracles.conv2d(np.swapaxes(x, 2, 3), w, padding=1),
        ((1, 2, 6, 5), (2, 2, 3, 3)),
    ),
    # ---- pooling ----
    C(
        "maxpool_tuple",
        lambda m, x: Fm(m).max_pool2d(x, (3, 2), stride=(1, 2), padding=(1, 1)),
        lambda x: oracles.max_pool2d(x, (3, 2), (1, 2), (1, 1)),
        ((2, 2, 5, 6),),
    ),
    C(
        "maxpool_overlap",
        lambda m, x: Fm(m).max_pool2d(x, 3, stride=1),
        lambda x: oracles.max_pool2d(x, 3, 1),
        ((1, 3, 5, 5),),
    ),
    C(
        "maxpool_odd_floor",
        lambda m, x: Fm(m).max_pool2d(x, 2),
        lambda x: oracles.max_pool2d(x, 2),
        ((1, 1, 7, 5),),
    ),
    C(
        "avgpool_tuple",
        lambda m, x: Fm(m).avg_pool2d(x, (3, 2), stride=(1, 2), padding=(1, 1)),
        lambda x: oracles.avg_pool2d(x, (3, 2), (1, 2), (1, 1)),
        ((2, 2, 5, 6),),
    ),
    C(
        "avgpool_overlap",
        lambda m, x: Fm(m).avg_pool2d(x, 3, stride=1),
        lambda x: oracles.avg_pool2d(x, 3, 1),
        ((1, 3, 5, 5),),
    ),
    C(
        "avgpool_odd_floor",
        lambda m, x: Fm(m).avg_pool2d(x, 2),
        lambda x: oracles.avg_pool2d(x, 2),
        ((1, 1, 7, 5),),
    ),
    # ---- a small CNN: conv -> relu -> pool -> linear -> cross_entropy ----
    C(
        "small_cnn",
        lambda m, x, w, b, v: Fm(m).cross_entropy(
            Fm(m).linear(
                Fm(m).max_pool2d(Fm(m).relu(Fm(m).conv2d(x, w, b, padding=1)), 2).flatten(1), v
            ),
            T(m, np.array([2, 0])),
        ),
        lambda x, w, b, v: oracles.cross_entropy(
            oracles.linear(
                oracles.max_pool2d(np.maximum(oracles.conv2d(x, w, b, padding=1), 0), 2).reshape(
                    2, -1
                ),
                v,
            ),
            np.array([2, 0]),
        ),
        ((2, 1, 4, 4), (2, 1, 3, 3), (2,), (3, 8)),
    ),
]
FN_BY_ID = {c.id: c for c in FN_OPS}
assert len(FN_BY_ID) == len(FN_OPS)
FN_PARAMS = [pytest.param(c, id=c.id) for c in FN_OPS]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", FN_PARAMS)
def test_functional_vs_numpy(case, dtype):
    helper_test_op(case, dtype, "numpy")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", FN_PARAMS)
def test_functional_vs_torch(case, dtype):
    pytest.importorskip("torch")
    helper_test_op(case, dtype, "torch")


@pytest.mark.parametrize("case", FN_PARAMS)
def test_functional_gradcheck(case):
    arrays, v, _ = case_data(case)
    gradcheck(case, arrays, v)


@pytest.mark.parametrize("case", FN_PARAMS)
def test_functional_second_order(case):
    arrays, v, u = case_data(case)
    got = second_order_np(bp, case, arrays, v, u)

    def directional_first_order(xs):
        return float(sum(np.sum(g * ui) for g, ui in zip(vjp_np(bp, case, xs, v), u)))

    want = central_differences(directional_first_order, arrays)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, **FD_TOL, err_msg=f"{case.id}: input {i}")


@pytest.mark.parametrize("case", FN_PARAMS)
def test_functional_second_order_vs_torch(case):
    torch = pytest.importorskip("torch")
    arrays, v, u = case_data(case)
    got = second_order_np(bp, case, arrays, v, u)
    want = second_order_np(torch, case, arrays, v, u)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, **TOL["float64"], err_msg=f"{case.id}: input {i}")


# ---------------------------------------------------------------------------------------------
# numerics at extreme inputs
# ---------------------------------------------------------------------------------------------

EXTREME = np.array([[1000.0, -1000.0, 0.0], [-1000.0, -1000.0, -1000.0], [1000.0, 1000.0, -999.0]])
EXTREME_TGT = np.array([1, 2, 2])
BIG_01 = np.array([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.5]])

STABLE = [
    pytest.param(lambda m, x: Fm(m).log_softmax(x, dim=1), id="log_softmax"),
    pytest.param(lambda m, x: Fm(m).log_softmax(x, dim=0), id="log_softmax_dim0"),
    pytest.param(lambda m, x: Fm(m).softmax(x, dim=1), id="softmax"),
    pytest.param(lambda m, x: Fm(m).cross_entropy(x, T(m, EXTREME_TGT)), id="cross_entropy"),
    pytest.param(
        lambda m, x: Fm(m).cross_entropy(x, T(m, EXTREME_TGT), label_smoothing=0.1),
        id="cross_entropy_smooth",
    ),
    pytest.param(lambda m, x: Fm(m).softplus(x), id="softplus"),
    pytest.param(lambda m, x: Fm(m).softplus(x, beta=0.01), id="softplus_small_beta"),
    pytest.param(lambda m, x: Fm(m).sigmoid(x), id="F_sigmoid"),
    pytest.param(lambda m, x: x.sigmoid(), id="sigmoid"),
    pytest.param(lambda m, x: x.tanh(), id="tanh"),
    pytest.param(lambda m, x: m.logsumexp(x, dim=1), id="logsumexp"),
    pytest.param(lambda m, x: x.logsumexp(dim=(0, 1)), id="logsumexp_all"),
    pytest.param(
        lambda m, x: Fm(m).binary_cross_entropy_with_logits(x, T(m, BIG_01, x), reduction="none"),
        id="bce_with_logits",
    ),
    pytest.param(
        lambda m, x: Fm(m).binary_cross_entropy_with_logits(
            x, T(m, BIG_01, x), pos_weight=T(m, [2.0, 0.5, 1.0], x)
        ),
        id="bce_with_logits_pos_weight",
    ),
    pytest.param(lambda m, x: Fm(m).gelu(x), id="gelu"),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("fn", STABLE)
def test_stable_at_extreme_logits(fn, dtype):
    rng = np.random.default_rng(7)
    x = bp.tensor(EXTREME.astype(dtype), requires_grad=True)
    out = fn(bp, x)
    v = rng.standard_normal(tuple(out.shape)).astype(dtype)
    out.backward(gradient=bp.tensor(v))
    got, grad = to_np(out), to_np(x.grad)
    assert np.all(np.isfinite(got)), got
    assert np.all(np.isfinite(grad)), grad
    torch = pytest.importorskip("torch")
    tx = torch.tensor(EXTREME.astype(dtype), requires_grad=True)
    tout = fn(torch, tx)
    tout.backward(gradient=torch.tensor(v))
    np.testing.assert_allclose(got, tout.detach().numpy(), **TOL[dtype])
    np.testing.assert_allclose(grad, tx.grad.numpy(), **TOL[dtype])


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_extreme_values_exact(dtype):
    x = bp.tensor(np.array([[1000.0, -1000.0]], dtype=dtype), requires_grad=True)
    np.testing.assert_allclose(to_np(F.log_softmax(x, dim=1)), [[0.0, -2000.0]])
    np.testing.assert_allclose(to_np(F.softplus(x)), [[1000.0, 0.0]])
    np.testing.assert_allclose(to_np(x.sigmoid()), [[1.0, 0.0]])
    np.testing.assert_allclose(to_np(x.logsumexp(dim=1)), [1000.0])
    loss = F.cross_entropy(x, bp.tensor([1]))
    np.testing.assert_allclose(float(loss.item()), 2000.0)
    loss.backward()
    np.testing.assert_allclose(to_np(x.grad), [[1.0, -1.0]])


@pytest.mark.parametrize("op", ["sigmoid", "tanh"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_saturated_gradient_is_zero_not_nan(op, dtype):
    x = bp.tensor(np.array([-1000.0, -100.0, -50.0, 50.0, 100.0, 1000.0], dtype=dtype))
    x.requires_grad_(True)
    getattr(x, op)().sum().backward()
    g = to_np(x.grad)
    assert not np.any(np.isnan(g))
    np.testing.assert_allclose(g, 0.0, atol=1e-20)
    # second order too
    y = bp.tensor(np.array([-1000.0, 1000.0], dtype=dtype), requires_grad=True)
    (g1,) = bp.grad(getattr(y, op)().sum(), y, create_graph=True)
    (g2,) = bp.grad(g1.sum(), y)
    assert not np.any(np.isnan(to_np(g2)))


def test_nan_and_inf_propagate_through_functional():
    torch = pytest.importorskip("torch")
    vals = np.array([np.nan, np.inf, -np.inf, 0.0, 1.0])
    for name in ("relu", "leaky_relu", "gelu", "softplus", "sigmoid", "tanh"):
        got = to_np(getattr(F, name)(bp.tensor(vals)))
        want = getattr(torch.nn.functional, name)(torch.tensor(vals)).numpy()
        np.testing.assert_array_equal(got, want, err_msg=name)
    got = to_np(F.softmax(bp.tensor([[np.nan, 1.0], [1.0, 2.0]]), dim=1))
    assert np.all(np.isnan(got[0])) and np.all(np.isfinite(got[1]))


# ---------------------------------------------------------------------------------------------
# dropout
# ---------------------------------------------------------------------------------------------


def test_dropout_seeded_reproducible():
    x = bp.ones(50, 40)
    bp.manual_seed(123)
    a = to_np(F.dropout(x, 0.5))
    bp.manual_seed(123)
    b = to_np(F.dropout(x, 0.5))
    np.testing.assert_array_equal(a, b)
    bp.manual_seed(124)
    c = to_np(F.dropout(x, 0.5))
    assert not np.array_equal(a, c)
    d = to_np(F.dropout(x, 0.5))  # the generator moves on
    assert not np.array_equal(c, d)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_dropout_scaling_and_rate(p, dtype):
    bp.manual_seed(0)
    n = 20000
    x_np = np.random.default_rng(0).uniform(0.5, 2.0, n).astype(dtype)
    x = bp.tensor(x_np, requires_grad=True)
    y = F.dropout(x, p=p)
    assert y.dtype == x.dtype
    got = to_np(y)
    kept = got != 0
    np.testing.assert_allclose(got[kept], x_np[kept] / (1 - p), rtol=1e-6)
    frac = 1.0 - kept.mean()
    assert abs(frac - p) < 5 * np.sqrt(p * (1 - p) / n)
    y.backward(gradient=bp.ones(n, dtype=x.dtype))
    np.testing.assert_allclose(to_np(x.grad), kept / (1 - p), rtol=1e-6)


def test_dropout_eval_and_edge_probabilities():
    x_np = np.arange(1.0, 13.0).reshape(3, 4)
    x = bp.tensor(x_np, requires_grad=True)
    y = F.dropout(x, 0.7, training=False)
    np.testing.assert_array_equal(to_np(y), x_np)
    y.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), np.ones((3, 4)))
    np.testing.assert_array_equal(to_np(F.dropout(x, 0.0)), x_np)
    z = F.dropout(x, 1.0)
    np.testing.assert_array_equal(to_np(z), np.zeros((3, 4)))
    x.grad = None
    z.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), np.zeros((3, 4)))


def test_dropout_bad_probability():
    for p in (-0.1, 1.5):
        with pytest.raises(ValueError):
            F.dropout(bp.ones(3), p)


# ---------------------------------------------------------------------------------------------
# errors
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "target",
    [np.array([1, 5, 0]), np.array([1, -1, 0]), np.array([1, 17, 0])],
    ids=["past_end", "negative", "far"],
)
@pytest.mark.parametrize("loss", ["cross_entropy", "nll_loss"])
def test_out_of_range_class_target(loss, target):
    x = bp.randn(3, 5, requires_grad=True)
    with pytest.raises((IndexError, ValueError), match="cross_entropy|nll_loss"):
        getattr(F, loss)(x, bp.tensor(target))


def test_out_of_range_target_nd_and_unbatched():
    with pytest.raises((IndexError, ValueError), match="cross_entropy|nll_loss"):
        F.cross_entropy(bp.randn(2, 3, 4), bp.tensor([[0, 1, 3, 0], [0, 0, 0, 0]]))
    with pytest.raises((IndexError, ValueError), match="cross_entropy|nll_loss"):
        F.cross_entropy(bp.randn(5), bp.tensor(5))


def test_ignore_index_target_out_of_range_is_allowed():
    x = bp.tensor(np.zeros((2, 3)), requires_grad=True)
    loss = F.cross_entropy(x, bp.tensor([-100, 1]))
    np.testing.assert_allclose(float(loss.item()), np.log(3.0))
    loss = F.cross_entropy(x, bp.tensor([7, 1]), ignore_index=7, reduction="sum")
    np.testing.assert_allclose(float(loss.item()), np.log(3.0))


def test_cross_entropy_bad_arguments():
    x = bp.randn(4, 5)
    with pytest.raises((ValueError, RuntimeError, IndexError)):
        F.cross_entropy(x, bp.tensor([0, 1, 2]))  # batch mismatch
    with pytest.raises(ValueError):
        F.cross_entropy(x, bp.tensor([0, 1, 2, 3]), reduction="avg")
    with pytest.raises((ValueError, RuntimeError)):
        F.cross_entropy(x, bp.tensor([0, 1, 2, 3]), weight=bp.ones(3))  # weight size != C


def test_softmax_bad_dim():
    with pytest.raises(IndexError):
        F.softmax(bp.randn(2, 3), dim=2)
    with pytest.raises(IndexError):
        F.log_softmax(bp.randn(2, 3), dim=-3)


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: F.conv2d(bp.randn(1, 3, 5, 5), bp.randn(2, 2, 3, 3)), id="channels"),
        pytest.param(
            lambda: F.conv2d(bp.randn(1, 4, 5, 5), bp.randn(3, 2, 3, 3), groups=2), id="groups"
        ),
        pytest.param(
            lambda: F.conv2d(bp.randn(1, 1, 2, 2), bp.randn(3, 1, 3, 3)), id="kernel_too_big"
        ),
        pytest.param(
            lambda: F.conv2d(bp.randn(1, 1, 5, 5), bp.randn(3, 1, 3, 3), bp.randn(2)), id="bias"
        ),
        pytest.param(lambda: F.conv2d(bp.randn(1, 1, 5, 5), bp.randn(3, 3)), id="weight_rank"),
    ],
)
def test_conv2d_errors(call):
    with pytest.raises((ValueError, RuntimeError), match="conv2d"):
        call()


def test_pool_errors():
    with pytest.raises((ValueError, RuntimeError)):
        F.max_pool2d(bp.randn(1, 1, 5, 5), 2, padding=2)  # pad > kernel / 2
    with pytest.raises((ValueError, RuntimeError)):
        F.avg_pool2d(bp.randn(1, 1, 2, 2), 3)  # window larger than the input

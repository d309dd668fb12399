"""The breadth of bprop.nn against torch.nn: the remaining activations, distances, channel and
alpha dropout, interpolate / Upsample, pixel (un)shuffle, instance norm, Bilinear and the other
losses, as functions and modules: outputs and gradients (float64 and float32), reprs, running
statistics and errors."""

from __future__ import annotations

import math
import warnings

import bprop as bp
import bprop.nn as bnn
import bprop.nn.functional as BF
import numpy as np
import pytest

torch = pytest.importorskip("torch")
tnn = torch.nn
TF = torch.nn.functional

TOL = {"float64": dict(rtol=1e-10, atol=1e-12), "float32": dict(rtol=1e-5, atol=1e-6)}


def _arrays(shapes, seed, domain="any"):
    rng = np.random.default_rng(seed)
    out = []
    for shape in shapes:
        magnitude = rng.uniform(0.2, 1.8, shape)
        if domain == "pos":
            out.append(magnitude)
        else:
            out.append(magnitude * rng.choice([-1.0, 1.0], shape))
    return out


def _run(m, fn, arrays, dtype):
    """fn(m, *tensors) with m = bprop or torch; the output and every input's gradient of
    sum(out * g) for a fixed random g."""
    dt = getattr(m, dtype)
    xs = [m.tensor(a, dtype=dt, requires_grad=True) for a in arrays]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = fn(m, *xs)
    g = np.random.default_rng(7).standard_normal(tuple(out.shape))
    (out * m.tensor(g, dtype=dt)).sum().backward()
    grads = [None if x.grad is None else x.grad.detach().numpy() for x in xs]
    return out.detach().numpy(), grads


def F(m):
    return BF if m is bp else TF


T1 = np.array([[1.0, -1.0, -1.0, 1.0], [-1.0, 1.0, 1.0, 1.0], [1.0, -1.0, 1.0, -1.0]])
T01 = np.array([[1.0, 0.0, 0.0, 1.0], [0.0, 1.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
COUNTS = np.array([[0.0, 1.0, 3.0, 2.0], [5.0, 0.0, 1.0, 4.0], [2.0, 2.0, 0.0, 7.0]])
PROBS = np.array([[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.25, 0.25], [0.7, 0.1, 0.1, 0.1]])


def _const(m, a, dtype=None):
    t = m.tensor(a)
    return t if dtype is None else t.to(dtype)


# (id, fn(m, *inputs), input shapes, domain, gradient tolerance relaxed to 1e-7 relative where
# PyTorch's own backward rounds a constant through float32 even for float64)
CASES = [
    ("elu", lambda m, x: F(m).elu(x), ((3, 4),), "any", False),
    ("elu_alpha_large", lambda m, x: F(m).elu(x * 60.0, 0.5), ((3, 4),), "any", False),
    ("celu", lambda m, x: F(m).celu(x), ((3, 4),), "any", False),
    ("celu_alpha", lambda m, x: F(m).celu(x, 0.7), ((3, 4),), "any", True),
    ("selu", lambda m, x: F(m).selu(x), ((3, 4),), "any", False),
    ("relu6", lambda m, x: F(m).relu6(x * 5.0), ((3, 4),), "any", False),
    ("hardtanh", lambda m, x: F(m).hardtanh(x, -0.5, 1.2), ((3, 4),), "any", False),
    ("hardswish", lambda m, x: F(m).hardswish(x * 3.0), ((3, 4),), "any", False),
    ("hardsigmoid", lambda m, x: F(m).hardsigmoid(x * 3.0), ((3, 4),), "any", True),
    ("mish", lambda m, x: F(m).mish(x), ((3, 4),), "any", False),
    ("softsign", lambda m, x: F(m).softsign(x), ((3, 4),), "any", False),
    ("tanhshrink", lambda m, x: F(m).tanhshrink(x), ((3, 4),), "any", False),
    ("logsigmoid", lambda m, x: F(m).logsigmoid(x * 30.0), ((3, 4),), "any", False),
    ("softmin", lambda m, x: F(m).softmin(x, dim=1), ((3, 4),), "any", False),
    ("softmin_dtype", lambda m, x: F(m).softmin(x, 0, dtype=m.float64), ((3, 4),), "any", False),
    ("glu", lambda m, x: F(m).glu(x, 0), ((4, 3),), "any", False),
    ("threshold", lambda m, x: F(m).threshold(x, 0.5, -2.0), ((3, 4),), "any", False),
    ("prelu_channels", lambda m, x, w: F(m).prelu(x, w), ((2, 3, 4), (3,)), "any", False),
    ("prelu_single", lambda m, x, w: F(m).prelu(x, w), ((5,), (1,)), "any", False),
    ("rrelu_eval", lambda m, x: F(m).rrelu(x, 0.1, 0.4), ((3, 4),), "any", False),
    ("hardshrink", lambda m, x: F(m).hardshrink(x, 0.7), ((3, 4),), "any", False),
    ("softshrink", lambda m, x: F(m).softshrink(x, 0.7), ((3, 4),), "any", False),
    (
        "cosine_similarity",
        lambda m, a, b: F(m).cosine_similarity(a, b),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "cosine_similarity_bcast",
        lambda m, a, b: F(m).cosine_similarity(a, b, dim=-1, eps=1e-6),
        ((2, 3, 4), (4,)),
        "any",
        False,
    ),
    (
        "pairwise_distance",
        lambda m, a, b: F(m).pairwise_distance(a, b),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "pairwise_distance_p1_keepdim",
        lambda m, a, b: F(m).pairwise_distance(a, b, 1.0, keepdim=True),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "pairwise_distance_p3",
        lambda m, a, b: F(m).pairwise_distance(a, b, 3.0),
        ((4,), (4,)),
        "any",
        False,
    ),
    ("pdist", lambda m, x: F(m).pdist(x), ((4, 3),), "any", False),
    ("pdist_p1", lambda m, x: F(m).pdist(x, 1.0), ((4, 3),), "any", False),
    ("pixel_shuffle", lambda m, x: F(m).pixel_shuffle(x, 2), ((2, 8, 2, 3),), "any", False),
    ("pixel_shuffle_5d", lambda m, x: F(m).pixel_shuffle(x, 2), ((2, 1, 4, 2, 3),), "any", False),
    ("pixel_unshuffle", lambda m, x: F(m).pixel_unshuffle(x, 2), ((2, 3, 4, 6),), "any", False),
    (
        "instance_norm_affine",
        lambda m, x, w, b: F(m).instance_norm(x, weight=w, bias=b, eps=1e-3),
        ((2, 3, 4, 5), (3,), (3,)),
        "any",
        False,
    ),
    ("instance_norm_1d", lambda m, x: F(m).instance_norm(x), ((2, 3, 5),), "any", False),
    (
        "bilinear",
        lambda m, a, b, w, bias: F(m).bilinear(a, b, w, bias),
        ((2, 5, 3), (2, 5, 4), (6, 3, 4), (6,)),
        "any",
        False,
    ),
    (
        "bilinear_1d_nobias",
        lambda m, a, b, w: F(m).bilinear(a, b, w),
        ((3,), (4,), (2, 3, 4)),
        "any",
        False,
    ),
    (
        "kl_div_batchmean",
        lambda m, x: F(m).kl_div(x, _const(m, PROBS, x.dtype), reduction="batchmean"),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "kl_div_log_target_sum",
        lambda m, x, t: F(m).kl_div(x, t, reduction="sum", log_target=True),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "kl_div_mean",
        lambda m, x: F(m).kl_div(x, _const(m, PROBS, x.dtype)),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "kl_div_none",
        lambda m, x, t: F(m).kl_div(x, t, reduction="none"),
        ((3, 4), (3, 4)),
        "pos",
        False,
    ),
    (
        "huber_loss",
        lambda m, a, b: F(m).huber_loss(a, b, delta=0.8),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "huber_loss_weight",
        lambda m, a, b, w: F(m).huber_loss(a, b, "sum", 1.5, w),
        ((3, 4), (3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "soft_margin_loss",
        lambda m, x: F(m).soft_margin_loss(x * 30.0, _const(m, T1, x.dtype)),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "margin_ranking_loss",
        lambda m, a, b: F(m).margin_ranking_loss(
            a, b, _const(m, T1[0], a.dtype), margin=0.3, reduction="sum"
        ),
        ((4,), (4,)),
        "any",
        False,
    ),
    (
        "hinge_embedding_loss",
        lambda m, x: F(m).hinge_embedding_loss(x, _const(m, T1, x.dtype), 0.8),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "cosine_embedding_loss",
        lambda m, a, b: F(m).cosine_embedding_loss(
            a, b, _const(m, T1[:, 0]), margin=0.1, reduction="none"
        ),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "cosine_embedding_loss_1d",
        lambda m, a, b: F(m).cosine_embedding_loss(a, b, _const(m, -1)),
        ((4,), (4,)),
        "any",
        False,
    ),
    (
        "triplet_margin_loss",
        lambda m, a, p, n: F(m).triplet_margin_loss(a, p, n, margin=2.0),
        ((3, 4), (3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "triplet_margin_loss_swap_p1",
        lambda m, a, p, n: F(m).triplet_margin_loss(
            a, p, n, margin=2.0, p=1, swap=True, reduction="none"
        ),
        ((3, 4), (3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "poisson_nll_loss",
        lambda m, x: F(m).poisson_nll_loss(x, _const(m, COUNTS, x.dtype)),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "poisson_nll_loss_rate_full",
        lambda m, x: F(m).poisson_nll_loss(
            x, _const(m, COUNTS, x.dtype), log_input=False, full=True, reduction="sum"
        ),
        ((3, 4),),
        "pos",
        False,
    ),
    (
        "gaussian_nll_loss",
        lambda m, a, b, v: F(m).gaussian_nll_loss(a, b, v),
        ((3, 4), (3, 4), (3, 4)),
        "pos",
        False,
    ),
    (
        "gaussian_nll_loss_homoscedastic_full",
        lambda m, a, b, v: F(m).gaussian_nll_loss(a, b, v, full=True, reduction="sum"),
        ((3, 4), (3, 4), (3,)),
        "pos",
        False,
    ),
    (
        "gaussian_nll_loss_clamped",
        lambda m, a, b, v: F(m).gaussian_nll_loss(a, b, v, eps=0.9),
        ((3, 4), (3, 4), (3, 4)),
        "pos",
        False,
    ),
    (
        "gaussian_nll_loss_float_var",
        lambda m, a, b: F(m).gaussian_nll_loss(a, b, 0.5, reduction="none"),
        ((3, 4), (3, 4)),
        "any",
        False,
    ),
    (
        "multilabel_soft_margin_loss",
        lambda m, x, w: F(m).multilabel_soft_margin_loss(x, _const(m, T01, x.dtype), w),
        ((3, 4), (4,)),
        "any",
        False,
    ),
    (
        "multi_margin_loss",
        lambda m, x: F(m).multi_margin_loss(x, _const(m, [1, 0, 3])),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "multi_margin_loss_p2_weight",
        lambda m, x: F(m).multi_margin_loss(
            x,
            _const(m, [2, 0, 3]),
            p=2,
            margin=0.7,
            weight=_const(m, [0.5, 1.0, 2.0, 1.5], x.dtype),
            reduction="none",
        ),
        ((3, 4),),
        "any",
        False,
    ),
    (
        "multi_margin_loss_1d",
        lambda m, x: F(m).multi_margin_loss(x, _const(m, 2), reduction="sum"),
        ((4,),),
        "any",
        False,
    ),
]

INTERPOLATE = [
    ("nearest_size", dict(size=(5, 7)), (2, 2, 3, 5)),
    ("nearest_scale2", dict(scale_factor=2), (1, 2, 3, 5)),
    ("nearest_scale_pair", dict(scale_factor=(1.5, 0.5)), (1, 2, 3, 4)),
    ("nearest_down", dict(size=(2, 3)), (1, 2, 5, 5)),
    ("nearest_recompute", dict(scale_factor=1.7, recompute_scale_factor=True), (1, 1, 3, 5)),
    ("nearest_exact", dict(size=(5, 7), mode="nearest-exact"), (1, 2, 3, 5)),
    ("nearest_1d", dict(size=7), (2, 2, 3)),
    ("nearest_3d", dict(size=(3, 5, 2)), (1, 2, 3, 2, 4)),
    ("bilinear", dict(size=(5, 7), mode="bilinear"), (2, 2, 3, 5)),
    ("bilinear_scale", dict(scale_factor=(1.5, 0.6), mode="bilinear"), (1, 2, 4, 5)),
    ("bilinear_align", dict(size=(5, 7), mode="bilinear", align_corners=True), (1, 2, 3, 5)),
    ("bilinear_align_down", dict(size=(2, 1), mode="bilinear", align_corners=True), (1, 1, 4, 5)),
    (
        "bilinear_recompute",
        dict(scale_factor=1.7, mode="bilinear", recompute_scale_factor=True),
        (1, 1, 3, 5),
    ),
    ("linear", dict(size=7, mode="linear"), (2, 2, 5)),
    ("linear_align", dict(scale_factor=2.5, mode="linear", align_corners=True), (1, 2, 4)),
    ("trilinear", dict(scale_factor=1.5, mode="trilinear"), (1, 2, 3, 2, 4)),
    ("bicubic", dict(size=(5, 7), mode="bicubic"), (2, 2, 3, 5)),
    ("bicubic_scale", dict(scale_factor=(1.5, 0.7), mode="bicubic"), (1, 2, 4, 5)),
    ("bicubic_align", dict(size=(7, 4), mode="bicubic", align_corners=True), (1, 2, 3, 5)),
    ("area", dict(size=(2, 3), mode="area"), (1, 2, 5, 7)),
    ("area_1d", dict(scale_factor=0.5, mode="area"), (1, 2, 6)),
]


def _check_against_torch(fn, shapes, domain, dtype, relaxed_grad=False, seed=0):
    arrays = _arrays(shapes, seed, domain)
    out_b, grads_b = _run(bp, fn, arrays, dtype)
    out_t, grads_t = _run(torch, fn, arrays, dtype)
    assert out_b.shape == out_t.shape
    np.testing.assert_allclose(out_b, out_t, **TOL[dtype])
    grad_tol = dict(rtol=1e-7, atol=1e-9) if relaxed_grad and dtype == "float64" else TOL[dtype]
    for gb, gt in zip(grads_b, grads_t):
        if gt is None:
            assert gb is None or not np.any(gb)
        else:
            assert gb is not None
            np.testing.assert_allclose(gb, gt, **grad_tol)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_functional_against_torch(case, dtype):
    _, fn, shapes, domain, relaxed = case
    _check_against_torch(fn, shapes, domain, dtype, relaxed)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", INTERPOLATE, ids=[c[0] for c in INTERPOLATE])
def test_interpolate_against_torch(case, dtype):
    _, kwargs, shape = case
    _check_against_torch(lambda m, x: F(m).interpolate(x, **kwargs), (shape,), "any", dtype)


def test_second_order_through_composed_functions():
    """The VJPs are bprop ops, so they differentiate again."""
    for name, fn, shapes, domain in (
        ("mish", lambda m, x: F(m).mish(x).sum(), ((5,),), "any"),
        ("selu", lambda m, x: F(m).selu(x).sum(), ((5,),), "any"),
        ("bilinear_interp", lambda m, x: F(m).interpolate(x, size=(3, 4), mode="bilinear")
         .pow(2).sum(), ((1, 1, 2, 3),), "any"),
        ("cosine", lambda m, a, b: F(m).cosine_similarity(a, b, dim=0), ((4,), (4,)), "any"),
        ("logsigmoid", lambda m, x: F(m).logsigmoid(x).sum(), ((5,),), "any"),
    ):  # fmt: skip
        arrays = _arrays(shapes, 3, domain)
        hess = []
        for m in (bp, torch):
            xs = [m.tensor(a, requires_grad=True) for a in arrays]
            (g,) = m.autograd.grad(fn(m, *xs), xs[:1], create_graph=True)
            (h,) = m.autograd.grad(g.sum(), xs[:1])
            hess.append(h.detach().numpy())
        np.testing.assert_allclose(hess[0], hess[1], rtol=1e-9, atol=1e-12, err_msg=name)


# ---- modules ----


def _copy_params(bmod, tmod):
    """The torch module's parameters and buffers into the bprop module (state_dicts match)."""
    state = {k: bp.tensor(v.detach().numpy()) for k, v in tmod.state_dict().items()}
    bmod.load_state_dict(state)


MODULES = [
    ("ELU", (0.5,), ((3, 4),)),
    ("CELU", (), ((3, 4),)),
    ("SELU", (), ((3, 4),)),
    ("ReLU6", (), ((3, 4),)),
    ("Hardtanh", (-0.5, 0.7), ((3, 4),)),
    ("Hardswish", (), ((3, 4),)),
    ("Hardsigmoid", (), ((3, 4),)),
    ("Mish", (), ((3, 4),)),
    ("Softsign", (), ((3, 4),)),
    ("Tanhshrink", (), ((3, 4),)),
    ("LogSigmoid", (), ((3, 4),)),
    ("Softmin", (1,), ((3, 4),)),
    ("GLU", (), ((3, 4),)),
    ("Threshold", (0.2, -1.0), ((3, 4),)),
    ("PReLU", (), ((2, 3, 4),)),
    ("PReLU", (3, 0.1), ((2, 3, 4),)),
    ("Hardshrink", (0.6,), ((3, 4),)),
    ("Softshrink", (), ((3, 4),)),
    ("CosineSimilarity", (0,), ((3, 4), (3, 4))),
    ("PairwiseDistance", (1.0, 1e-6, True), ((3, 4), (3, 4))),
    ("PixelShuffle", (2,), ((1, 4, 2, 3),)),
    ("PixelUnshuffle", (2,), ((1, 1, 4, 6),)),
    ("Upsample", (None, 2, "bilinear"), ((1, 2, 3, 4),)),
    ("Upsample", ((4, 6),), ((1, 2, 3, 4),)),
    ("UpsamplingNearest2d", (None, 2), ((1, 2, 3, 4),)),
    ("UpsamplingBilinear2d", ((5, 5),), ((1, 2, 3, 4),)),
    ("InstanceNorm1d", (3,), ((2, 3, 5),)),
    ("InstanceNorm1d", (3, 1e-5, 0.1, True), ((3, 5),)),
    ("InstanceNorm2d", (3, 1e-5, 0.1, True), ((2, 3, 4, 5),)),
    ("InstanceNorm3d", (2,), ((1, 2, 3, 2, 4),)),
    ("Bilinear", (3, 4, 5), ((2, 3), (2, 4))),
    ("Bilinear", (3, 4, 5, False), ((3,), (4,))),
    ("HuberLoss", ("sum", 0.5), ((3, 4), (3, 4))),
    ("MarginRankingLoss", (0.2,), ((4,), (4,), (4,))),
    ("TripletMarginLoss", (1.5, 2.0, 1e-6, True), ((3, 4), (3, 4), (3, 4))),
    ("GaussianNLLLoss", (), ((3, 4), (3, 4), (3, 4))),
]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", MODULES, ids=[f"{c[0]}{i}" for i, c in enumerate(MODULES)])
def test_module_against_torch(case, dtype):
    name, args, shapes = case
    tmod = getattr(tnn, name)(*args)
    bmod = getattr(bnn, name)(*args)
    if dtype == "float64":
        tmod = tmod.double()
        bmod = bmod.double()
    _copy_params(bmod, tmod)
    arrays = _arrays(shapes, 11, "pos" if name == "GaussianNLLLoss" else "any")
    outs = []
    for m, mod in ((bp, bmod), (torch, tmod)):
        dt = getattr(m, dtype)
        xs = [m.tensor(a, dtype=dt, requires_grad=True) for a in arrays]
        out = mod(*xs)
        g = np.random.default_rng(5).standard_normal(tuple(out.shape))
        (out * m.tensor(g, dtype=dt)).sum().backward()
        params = {k: p.grad.numpy() for k, p in mod.named_parameters()}
        outs.append((out.detach().numpy(), [x.grad.numpy() for x in xs], params))
    (ob, gb, pb), (ot, gt, pt) = outs
    np.testing.assert_allclose(ob, ot, **TOL[dtype])
    # PyTorch's Hardsigmoid backward multiplies by float32(1/6) even in float64
    relaxed = name == "Hardsigmoid" and dtype == "float64"
    for a, b in zip(gb, gt):
        np.testing.assert_allclose(a, b, **(dict(rtol=1e-7) if relaxed else TOL[dtype]))
    assert pb.keys() == pt.keys()
    for k in pb:
        np.testing.assert_allclose(pb[k], pt[k], **TOL[dtype], err_msg=k)


LOSS_MODULES = [
    ("KLDivLoss", dict(reduction="batchmean"), lambda m, x: (x, _const(m, PROBS, x.dtype))),
    ("KLDivLoss", dict(reduction="sum", log_target=True), lambda m, x: (x, x.detach() * 0.5)),
    ("SoftMarginLoss", dict(), lambda m, x: (x, _const(m, T1, x.dtype))),
    ("HingeEmbeddingLoss", dict(margin=0.5), lambda m, x: (x, _const(m, T1, x.dtype))),
    (
        "CosineEmbeddingLoss",
        dict(margin=0.2),
        lambda m, x: (x, x.detach().flip(0), _const(m, T1[:, 0])),
    ),
    ("PoissonNLLLoss", dict(full=True), lambda m, x: (x, _const(m, COUNTS, x.dtype))),
    ("MultiLabelSoftMarginLoss", dict(), lambda m, x: (x, _const(m, T01, x.dtype))),
    ("MultiMarginLoss", dict(p=2, margin=0.5), lambda m, x: (x, _const(m, [3, 1, 0]))),
]


@pytest.mark.parametrize(
    "case", LOSS_MODULES, ids=[c[0] + str(i) for i, c in enumerate(LOSS_MODULES)]
)
def test_loss_modules_against_torch(case):
    name, kwargs, args = case
    results = []
    for m, mod in ((bp, getattr(bnn, name)(**kwargs)), (torch, getattr(tnn, name)(**kwargs))):
        x = m.tensor(_arrays(((3, 4),), 4)[0], requires_grad=True)
        loss = mod(*args(m, x))
        loss.backward()
        results.append((loss.detach().numpy(), x.grad.numpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-10, atol=1e-12)


def test_multilabel_soft_margin_and_multi_margin_weights_are_buffers():
    w = np.array([0.5, 1.0, 2.0, 1.5])
    for name in ("MultiLabelSoftMarginLoss", "MultiMarginLoss"):
        b = getattr(bnn, name)(weight=bp.tensor(w))
        t = getattr(tnn, name)(weight=torch.tensor(w))
        assert list(b.state_dict()) == list(t.state_dict()) == ["weight"]
        assert not list(b.parameters())


def test_instance_norm_running_stats_as_torch():
    arrays = _arrays(((2, 3, 5), (2, 3, 5)), 9)
    b = bnn.InstanceNorm1d(3, momentum=0.3, affine=True, track_running_stats=True).double()
    t = tnn.InstanceNorm1d(3, momentum=0.3, affine=True, track_running_stats=True).double()
    for a in arrays:
        b(bp.tensor(a))
        t(torch.tensor(a))
    for key in ("running_mean", "running_var"):
        np.testing.assert_allclose(
            getattr(b, key).numpy(), getattr(t, key).numpy(), rtol=1e-12, atol=1e-14
        )
    assert int(b.num_batches_tracked) == int(t.num_batches_tracked)
    b.eval()
    t.eval()
    x = arrays[0] * 2.0 + 1.0
    np.testing.assert_allclose(
        b(bp.tensor(x)).detach().numpy(), t(torch.tensor(x)).detach().numpy(), rtol=1e-10
    )
    # momentum=None: the running statistics stay as they are (PyTorch passes momentum 0)
    b2 = bnn.InstanceNorm2d(2, momentum=None, track_running_stats=True)
    b2(bp.randn(2, 2, 3, 3))
    assert b2.running_mean.tolist() == [0.0, 0.0] and b2.running_var.tolist() == [1.0, 1.0]


def test_instance_norm_unbatched_and_feature_warning():
    x = _arrays(((3, 4, 5),), 2)[0]
    got = bnn.InstanceNorm2d(3)(bp.tensor(x)).numpy()
    want = tnn.InstanceNorm2d(3)(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    with pytest.warns(UserWarning, match="does not match num_features"):
        bnn.InstanceNorm2d(4)(bp.tensor(x))


def test_prelu_parameters_and_reset():
    m = bnn.PReLU(3, init=0.1)
    assert m.weight.shape == (3,) and m.weight.tolist() == pytest.approx([0.1] * 3)
    with bp.no_grad():
        m.weight.fill_(2.0)
    m.reset_parameters()
    assert m.weight.tolist() == pytest.approx([0.1] * 3)
    assert bnn.PReLU(dtype=bp.float64).weight.dtype == bp.float64


def test_bilinear_initialisation_bounds():
    bp.manual_seed(0)
    m = bnn.Bilinear(4, 3, 2)
    assert m.weight.shape == (2, 4, 3) and m.bias.shape == (2,)
    bound = 1 / math.sqrt(4)
    assert float(m.weight.abs().max()) <= bound and float(m.bias.abs().max()) <= bound
    assert float(m.weight.abs().max()) > bound / 2
    assert bnn.Bilinear(4, 3, 2, bias=False).bias is None


# ---- random ops ----


@pytest.mark.parametrize(
    "fn,shape,batched",
    [
        (BF.dropout1d, (4, 6, 5), True),
        (BF.dropout1d, (6, 5), False),
        (BF.dropout2d, (4, 6, 2, 3), True),
        (BF.dropout3d, (2, 6, 2, 2, 3), True),
        (BF.dropout3d, (6, 2, 2, 3), False),
    ],
)
def test_channel_dropout_zeroes_whole_channels(fn, shape, batched):
    bp.manual_seed(1)
    p = 0.4
    x = bp.ones(*shape, dtype=bp.float64, requires_grad=True)
    y = fn(x, p)
    y.sum().backward()
    values = y.detach().numpy()
    channels = values.reshape(shape[0] * shape[1] if batched else shape[0], -1)
    for row in channels:
        assert np.all(row == 0.0) or np.allclose(row, 1.0 / (1.0 - p))
    kept = np.mean([row[0] != 0 for row in channels])
    assert 0.1 < kept < 0.95
    np.testing.assert_allclose(x.grad.numpy(), values)  # the gradient is the mask
    bp.manual_seed(1)
    np.testing.assert_array_equal(fn(x, p).detach().numpy(), values)  # the generator's draws
    assert fn(x, p, training=False) is x
    assert np.all(fn(x.detach(), 1.0).numpy() == 0.0)


def test_dropout2d_warns_as_torch_for_3d_and_other_ranks():
    with pytest.warns(UserWarning, match="assuming that channel-wise 1D dropout"):
        BF.dropout2d(bp.ones(2, 3, 4))
    with pytest.warns(UserWarning, match="Received a 2-D input to dropout2d"):
        BF.dropout2d(bp.ones(2, 3))


def test_dropout_modules_train_and_eval():
    bp.manual_seed(3)
    x = bp.ones(8, 16, 4)
    m = bnn.Dropout1d(0.5)
    assert (m(x).numpy() == 0).any()
    m.eval()
    assert np.all(m(x).numpy() == 1.0)
    y = bp.ones(8, 16, 4)
    bnn.Dropout1d(0.5, inplace=True)(y)
    assert (y.numpy() == 0).any() and set(np.unique(y.numpy())) <= {0.0, 2.0}


@pytest.mark.parametrize("feature", [False, True])
def test_alpha_dropout_values_and_moments(feature):
    bp.manual_seed(2)
    p = 0.3
    alpha = 1.6732632423543772 * 1.0507009873554805
    a = 1.0 / math.sqrt((alpha * alpha * p + 1) * (1 - p))
    fn = BF.feature_alpha_dropout if feature else BF.alpha_dropout
    x = bp.randn(64, 32, 8, dtype=bp.float64)
    y = fn(x, p, training=True).numpy()
    xv = x.numpy()
    kept = np.isclose(y, xv * a + alpha * a * p)
    dropped = np.isclose(y, alpha * a * (p - 1))
    assert np.all(kept | dropped)
    if feature:
        assert np.all(dropped.all(-1) | (~dropped).all(-1))  # whole channels
    assert 0.2 < dropped.mean() < 0.4
    assert abs(y.mean()) < 0.05 and abs(y.std() - 1.0) < 0.05  # SELU's fixed point kept
    assert fn(x, p) is x  # training defaults to False
    z = bnn.AlphaDropout(0.2)
    z.eval()
    assert z(x) is x


def test_rrelu_training_slopes_in_range():
    bp.manual_seed(4)
    x = bp.tensor(_arrays(((50, 40),), 1)[0])
    y = BF.rrelu(x, 0.1, 0.3, training=True).numpy()
    xv = x.numpy()
    assert np.array_equal(y[xv >= 0], xv[xv >= 0])
    ratio = y[xv < 0] / xv[xv < 0]
    assert ratio.min() >= 0.1 and ratio.max() <= 0.3 and ratio.std() > 0.03
    m = bnn.RReLU(0.1, 0.3)
    m.eval()
    np.testing.assert_allclose(m(x).numpy(), np.where(xv >= 0, xv, 0.2 * xv), rtol=1e-6)


# ---- reprs ----

REPRS = [
    ("ELU", ()),
    ("ELU", (0.5, True)),
    ("CELU", (2.0,)),
    ("SELU", ()),
    ("SELU", (True,)),
    ("ReLU6", ()),
    ("ReLU6", (True,)),
    ("Hardtanh", (-2.0, 3.0)),
    ("Hardtanh", (-2.0, 3.0, True)),
    ("Hardswish", ()),
    ("Hardsigmoid", (True,)),
    ("Mish", ()),
    ("Mish", (True,)),
    ("Softsign", ()),
    ("Tanhshrink", ()),
    ("LogSigmoid", ()),
    ("Softmin", (1,)),
    ("Softmin", ()),
    ("GLU", ()),
    ("Threshold", (0.1, 20.0)),
    ("Threshold", (0.1, 20, True)),
    ("PReLU", ()),
    ("PReLU", (3, 0.1)),
    ("Hardshrink", ()),
    ("Softshrink", (0.3,)),
    ("RReLU", ()),
    ("RReLU", (0.1, 0.3, True)),
    ("CosineSimilarity", ()),
    ("PairwiseDistance", ()),
    ("Dropout", ()),
    ("Dropout1d", ()),
    ("Dropout2d", (0.2, True)),
    ("Dropout3d", ()),
    ("AlphaDropout", (0.1,)),
    ("FeatureAlphaDropout", ()),
    ("Upsample", (None, 2)),
    ("Upsample", ((3, 4), None, "bilinear", True)),
    ("Upsample", (None, (2, 3))),
    ("Upsample", (5,)),
    ("UpsamplingNearest2d", (None, 2)),
    ("UpsamplingBilinear2d", ((4, 4),)),
    ("PixelShuffle", (2,)),
    ("PixelUnshuffle", (3,)),
    ("InstanceNorm1d", (3,)),
    ("InstanceNorm2d", (4, 1e-3, 0.2, True, True)),
    ("InstanceNorm3d", (2,)),
    ("Bilinear", (3, 4, 5)),
    ("Bilinear", (3, 4, 5, False)),
    ("KLDivLoss", ()),
    ("HuberLoss", ()),
    ("SoftMarginLoss", ()),
    ("MarginRankingLoss", ()),
    ("HingeEmbeddingLoss", ()),
    ("CosineEmbeddingLoss", ()),
    ("TripletMarginLoss", ()),
    ("PoissonNLLLoss", ()),
    ("GaussianNLLLoss", ()),
    ("MultiLabelSoftMarginLoss", ()),
    ("MultiMarginLoss", ()),
]


@pytest.mark.parametrize("name,args", REPRS)
def test_repr_equals_torch(name, args):
    assert repr(getattr(bnn, name)(*args)) == repr(getattr(tnn, name)(*args))


def test_repr_inside_sequential():
    def build(nn):
        return nn.Sequential(nn.Conv2d(4, 8, 3), nn.PixelShuffle(2), nn.Mish(), nn.Dropout2d(0.1))

    assert repr(build(bnn)) == repr(build(tnn))


# ---- errors: PyTorch's exception type, a message naming the op ----


def _x(m, *shape):
    return m.ones(*shape)


ERRORS = [
    ("celu", lambda m: F(m).celu(_x(m, 2), alpha=0.0)),
    ("hardtanh", lambda m: F(m).hardtanh(_x(m, 2), 2.0, 1.0)),
    ("Hardtanh", lambda m: (tnn if m is torch else bnn).Hardtanh(1.0, 0.0)),
    ("softshrink", lambda m: F(m).softshrink(_x(m, 2), -1.0)),
    ("glu", lambda m: F(m).glu(_x(m, 3, 3), 1)),
    ("glu", lambda m: F(m).glu(m.tensor(1.0))),
    ("prelu", lambda m: F(m).prelu(_x(m, 2, 3, 4), _x(m, 2))),
    ("pdist", lambda m: F(m).pdist(_x(m, 2, 3, 4))),
    ("pixel_shuffle", lambda m: F(m).pixel_shuffle(_x(m, 1, 5, 2, 2), 2)),
    ("pixel_unshuffle", lambda m: F(m).pixel_unshuffle(_x(m, 1, 1, 3, 4), 2)),
    ("interpolate", lambda m: F(m).interpolate(_x(m, 1, 1, 4), size=3, mode="bilinear")),
    ("interpolate", lambda m: F(m).interpolate(_x(m, 1, 1, 4, 4), size=3, align_corners=True)),
    ("interpolate", lambda m: F(m).interpolate(_x(m, 1, 1, 4, 4))),
    ("interpolate", lambda m: F(m).interpolate(_x(m, 1, 1, 4, 4), size=3, scale_factor=2)),
    ("interpolate", lambda m: F(m).interpolate(_x(m, 1, 1, 4, 4), size=(3, 3, 3))),
    (
        "interpolate",
        lambda m: F(m).interpolate(_x(m, 1, 1, 4, 4), size=3, recompute_scale_factor=True),
    ),
    ("dropout1d", lambda m: F(m).dropout1d(_x(m, 4), 0.5)),
    ("dropout", lambda m: F(m).dropout2d(_x(m, 2, 3, 4), 1.5)),
    ("Dropout2d", lambda m: (tnn if m is torch else bnn).Dropout2d(-0.1)),
    (
        "cosine_embedding_loss",
        lambda m: F(m).cosine_embedding_loss(_x(m, 2, 3, 4), _x(m, 2, 3, 4), _x(m, 2)),
    ),
    (
        "triplet_margin_loss",
        lambda m: F(m).triplet_margin_loss(_x(m, 2, 3), _x(m, 2, 3), _x(m, 2, 3), margin=0.0),
    ),
    ("triplet_margin_loss", lambda m: F(m).triplet_margin_loss(_x(m, 2, 3), _x(m, 2, 3), _x(m, 3))),
    ("TripletMarginLoss", lambda m: (tnn if m is torch else bnn).TripletMarginLoss(margin=-1.0)),
    ("multi_margin_loss", lambda m: F(m).multi_margin_loss(_x(m, 2, 3), m.tensor([0, 1]), p=3)),
    ("MultiMarginLoss", lambda m: (tnn if m is torch else bnn).MultiMarginLoss(p=3)),
    ("gaussian_nll_loss", lambda m: F(m).gaussian_nll_loss(_x(m, 2, 3), _x(m, 2, 3), _x(m, 3, 3))),
    ("gaussian_nll_loss", lambda m: F(m).gaussian_nll_loss(_x(m, 2, 3), _x(m, 2, 3), -_x(m, 2, 3))),
    ("gaussian_nll_loss", lambda m: F(m).gaussian_nll_loss(_x(m, 2, 3), _x(m, 2, 3), -1.0)),
    (
        "gaussian_nll_loss",
        lambda m: F(m).gaussian_nll_loss(_x(m, 2, 3), _x(m, 2, 3), _x(m, 2, 3), reduction="bad"),
    ),
    ("kl_div", lambda m: F(m).kl_div(_x(m, 2), _x(m, 2), reduction="bad")),
    ("huber_loss", lambda m: F(m).huber_loss(_x(m, 2), _x(m, 2), delta=-1.0)),
    ("huber_loss", lambda m: F(m).huber_loss(_x(m, 2), _x(m, 2), weight=_x(m, 3))),
    ("margin_ranking_loss", lambda m: F(m).margin_ranking_loss(_x(m, 3), _x(m, 3), _x(m, 3, 1))),
    ("soft_margin_loss", lambda m: F(m).soft_margin_loss(_x(m, 3), _x(m, 3), reduction="bad")),
    ("InstanceNorm1d", lambda m: (tnn if m is torch else bnn).InstanceNorm1d(3)(_x(m, 4))),
    (
        "InstanceNorm1d",
        lambda m: (tnn if m is torch else bnn).InstanceNorm1d(3, affine=True)(_x(m, 2, 4, 5)),
    ),
    ("instance_norm", lambda m: F(m).instance_norm(_x(m, 2, 3, 1))),
    ("Bilinear", lambda m: (tnn if m is torch else bnn).Bilinear(0, 2, 3)),
    ("bilinear", lambda m: F(m).bilinear(_x(m, 2, 3), _x(m, 2, 4), _x(m, 5, 3, 5))),
]


@pytest.mark.parametrize("op,call", ERRORS, ids=[f"{e[0]}{i}" for i, e in enumerate(ERRORS)])
def test_errors_as_torch(op, call):
    with pytest.raises(Exception) as want:
        call(torch)
    with pytest.raises(want.type) as got:
        call(bp)
    assert str(got.value).startswith(f"[{op}]"), str(got.value)


def test_failed_inplace_call_changes_nothing():
    x = bp.tensor([1.0, -2.0, 3.0])
    with pytest.raises(ValueError):
        BF.hardtanh(x, 2.0, 1.0, inplace=True)
    assert x.tolist() == [1.0, -2.0, 3.0]


@pytest.mark.parametrize(
    "fn", [BF.elu, BF.selu, BF.relu6, BF.hardswish, BF.hardsigmoid, BF.mish, BF.celu]
)
def test_inplace_overwrites_input(fn):
    a = _arrays(((3, 4),), 6)[0]
    x = bp.tensor(a)
    want = fn(bp.tensor(a)).numpy()
    out = fn(x, inplace=True)
    np.testing.assert_allclose(x.numpy(), want)
    np.testing.assert_allclose(out.numpy(), want)


def test_kl_div_mean_warns_and_softmin_without_dim_warns():
    with pytest.warns(UserWarning, match="batchmean"):
        BF.kl_div(bp.zeros(2, 3), bp.ones(2, 3) / 3)
    with pytest.warns(UserWarning, match="Implicit dimension choice for softmin"):
        out = BF.softmin(bp.zeros(2, 3))
    np.testing.assert_allclose(out.numpy(), np.full((2, 3), 1 / 3))


def test_upsample_deprecated_alias():
    x = bp.tensor(_arrays(((1, 1, 2, 3),), 0)[0])
    with pytest.warns(UserWarning, match="deprecated"):
        y = BF.upsample(x, scale_factor=2, mode="bilinear")
    np.testing.assert_array_equal(
        y.numpy(), BF.interpolate(x, scale_factor=2, mode="bilinear").numpy()
    )


SECOND_ORDER = [
    ("multi_margin_loss_p2", lambda x: BF.multi_margin_loss(x, bp.tensor([1, 0, 3]), p=2), (3, 4)),
    ("hardsigmoid", lambda x: BF.hardsigmoid(x * 3.0) * x, (3, 4)),
    (
        "trilinear",
        lambda x: BF.interpolate(x, scale_factor=1.5, mode="trilinear") ** 2,
        (1, 1, 2, 2, 3),
    ),
    ("pdist", lambda x: BF.pdist(x), (4, 3)),
    ("instance_norm_2d", lambda x: BF.instance_norm(x), (1, 2, 3, 3)),
    ("poisson_full", lambda x: BF.poisson_nll_loss(x, bp.tensor(COUNTS), False, True), (3, 4)),
    ("pixel_unshuffle", lambda x: BF.pixel_unshuffle(x, 2) ** 2, (1, 1, 4, 2)),
]


@pytest.mark.parametrize("case", SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order_by_central_differences(case):
    """Where PyTorch has no double backward (multi_margin_loss) or is used elsewhere: bprop's
    gradient of the gradient against central differences."""
    _, fn, shape = case
    x = bp.tensor(_arrays((shape,), 8, "pos" if case[0] == "poisson_full" else "any")[0])
    x.requires_grad_(True)
    assert bp.testing.gradgradcheck(fn, (x,), atol=1e-6, rtol=1e-5)


# ---- in-place variants, channel_shuffle, Softmax2d, and the last two losses ----


@pytest.mark.parametrize(
    "name,args",
    [
        ("relu_", ()),
        ("leaky_relu_", (0.2,)),
        ("elu_", (0.5,)),
        ("celu_", (1.5,)),
        ("selu_", ()),
        ("hardtanh_", (-0.5, 0.5)),
        ("rrelu_", (0.1, 0.3)),
        ("threshold_", (0.3, -1.0)),
    ],
)
def test_inplace_functions_as_torch(name, args):
    a = _arrays(((3, 4),), 12)[0]
    xb, xt = bp.tensor(a), torch.tensor(a)
    outb = getattr(BF, name)(xb, *args)
    getattr(TF, name)(xt, *args)
    assert outb is xb
    np.testing.assert_allclose(xb.numpy(), xt.numpy(), rtol=1e-12, atol=1e-15)


def test_channel_shuffle_and_module():
    a = _arrays(((2, 6, 2, 3),), 13)[0]
    _check_against_torch(lambda m, x: F(m).channel_shuffle(x, 3), ((2, 6, 2, 3),), "any", "float64")
    b = bnn.ChannelShuffle(2)(bp.tensor(a)).numpy()
    np.testing.assert_array_equal(b, tnn.ChannelShuffle(2)(torch.tensor(a)).numpy())
    assert repr(bnn.ChannelShuffle(2)) == repr(tnn.ChannelShuffle(2))
    with pytest.raises(RuntimeError, match=r"^\[channel_shuffle\]"):
        BF.channel_shuffle(bp.tensor(a), 4)


def test_softmax2d_as_torch():
    a = _arrays(((2, 3, 2, 2),), 14)[0]
    got = bnn.Softmax2d()(bp.tensor(a)).numpy()
    np.testing.assert_allclose(got, tnn.Softmax2d()(torch.tensor(a)).numpy(), rtol=1e-12)
    assert repr(bnn.Softmax2d()) == repr(tnn.Softmax2d())
    with pytest.raises(ValueError, match=r"^\[Softmax2d\]"):
        bnn.Softmax2d()(bp.ones(2, 3))


@pytest.mark.parametrize("swap", [False, True])
def test_triplet_margin_with_distance_loss_as_torch(swap):
    def fn(m, a, p, n):
        def cosine_distance(x, y):
            return 1.0 - F(m).cosine_similarity(x, y)

        return F(m).triplet_margin_with_distance_loss(
            a, p, n, distance_function=cosine_distance, margin=0.5, swap=swap, reduction="sum"
        )

    _check_against_torch(fn, ((3, 4), (3, 4), (3, 4)), "any", "float64")

    def default(m, a, p, n):
        mod = (bnn if m is bp else tnn).TripletMarginWithDistanceLoss(margin=1.5, swap=swap)
        return mod(a, p, n)

    _check_against_torch(default, ((3, 4), (3, 4), (3, 4)), "any", "float64")
    assert repr(bnn.TripletMarginWithDistanceLoss()) == repr(tnn.TripletMarginWithDistanceLoss())
    with pytest.raises(ValueError, match=r"^\[TripletMarginWithDistanceLoss\]"):
        bnn.TripletMarginWithDistanceLoss(margin=0.0)


ML_TARGET = np.array([[3, 0, -1, 1], [1, 2, 3, 0], [2, -1, 0, 0]])


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_multilabel_margin_loss_as_torch(reduction):
    def fn(m, x):
        return F(m).multilabel_margin_loss(x, m.tensor(ML_TARGET), reduction=reduction)

    _check_against_torch(fn, ((3, 4),), "any", "float64")
    _check_against_torch(fn, ((3, 4),), "any", "float32")

    def unbatched(m, x):
        return (bnn if m is bp else tnn).MultiLabelMarginLoss(reduction=reduction)(
            x, m.tensor([2, 0, -1, 3])
        )

    _check_against_torch(unbatched, ((4,),), "any", "float64")
    assert repr(bnn.MultiLabelMarginLoss()) == repr(tnn.MultiLabelMarginLoss())


@pytest.mark.parametrize(
    "name,padding,shape",
    [
        ("ReflectionPad3d", (1, 2, 0, 1, 2, 1), (2, 3, 4, 5, 6)),
        ("ReplicationPad3d", 2, (3, 4, 5, 6)),
        ("CircularPad3d", (1, 2, 3, 1, 2, 0), (1, 2, 4, 5, 6)),
    ],
)
def test_3d_padding_modules_as_torch(name, padding, shape):
    def fn(m, x):
        return getattr(bnn if m is bp else tnn, name)(padding)(x)

    _check_against_torch(fn, (shape,), "any", "float64")
    assert repr(getattr(bnn, name)(padding)) == repr(getattr(tnn, name)(padding))


def test_resampling_and_index_building_are_capturable_by_compile():
    """interpolate, pdist and the 3-d pads build their indices by tensor ops, so bp.compile
    records them: replays match eager steps."""

    def make():
        bp.manual_seed(0)
        model = bnn.Sequential(
            bnn.Conv2d(2, 4, 3, padding=1),
            bnn.Upsample(scale_factor=1.5, mode="bilinear"),
            bnn.Upsample(size=(4, 5), mode="bicubic"),
            bnn.Upsample(size=(3, 3)),
            bnn.ReplicationPad3d(1),
            bnn.Flatten(),
            bnn.Linear(6 * 5 * 5, 3),
        )
        return model, bp.optim.SGD(model.parameters(), lr=0.05)

    def stepper(model, opt):
        def step(x, y):
            opt.zero_grad()
            out = model(x)
            loss = BF.multi_margin_loss(out, y) + BF.pdist(out).mean() * 0.1
            loss.backward()
            opt.step()
            return loss

        return step

    x = bp.tensor(_arrays(((4, 2, 3, 3),), 21)[0], dtype=bp.float32)
    y = bp.tensor([0, 2, 1, 0])
    eager_model, eager_opt = make()
    eager = stepper(eager_model, eager_opt)
    compiled_model, compiled_opt = make()
    compiled = bp.compile(stepper(compiled_model, compiled_opt))
    for _ in range(3):
        assert float(compiled(x, y)) == float(eager(x, y))


# ---- affine_grid, grid_sample, gumbel_softmax ----


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("size", [(2, 3, 4, 5), (1, 1, 1, 3), (2, 1, 2, 3, 4)])
def test_affine_grid_against_torch(size, align_corners, dtype):
    dims = len(size) - 2
    _check_against_torch(
        lambda m, theta: F(m).affine_grid(theta, size, align_corners=align_corners),
        ((size[0], dims, dims + 1),),
        "any",
        dtype,
    )


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("padding_mode", ["zeros", "border", "reflection"])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_grid_sample_against_torch(mode, padding_mode, align_corners, dtype):
    rng = np.random.default_rng(17)
    x = rng.standard_normal((2, 3, 4, 5))
    grid = rng.uniform(-1.4, 1.4, (2, 3, 6, 2))  # some positions outside [-1, 1]
    results = []
    for m in (bp, torch):
        dt = getattr(m, dtype)
        xt = m.tensor(x, dtype=dt, requires_grad=True)
        gt = m.tensor(grid, dtype=dt, requires_grad=True)
        out = F(m).grid_sample(xt, gt, mode, padding_mode, align_corners)
        g = np.random.default_rng(3).standard_normal(tuple(out.shape))
        (out * m.tensor(g, dtype=dt)).sum().backward()
        grid_grad = np.zeros(grid.shape) if gt.grad is None else gt.grad.numpy()
        results.append((out.detach().numpy(), xt.grad.numpy(), grid_grad))
    for got, want in zip(*results):
        np.testing.assert_allclose(got, want, **TOL[dtype])


def test_grid_sample_identity_grid_and_second_order():
    x = bp.tensor(_arrays(((1, 2, 3, 4),), 5)[0])
    theta = bp.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]], dtype=bp.float64)
    grid = BF.affine_grid(theta, (1, 2, 3, 4), align_corners=False)
    same = BF.grid_sample(x, grid, align_corners=False)
    np.testing.assert_allclose(same.numpy(), x.numpy(), rtol=1e-12, atol=1e-14)
    g = bp.tensor(np.random.default_rng(2).uniform(-0.9, 0.9, (1, 2, 2, 2)), requires_grad=True)
    x.requires_grad_(True)
    assert bp.testing.gradgradcheck(
        lambda a, b: BF.grid_sample(a, b, align_corners=True) ** 2, (x, g), atol=1e-6, rtol=1e-5
    )


def test_grid_sample_and_affine_grid_errors_as_torch():
    cases = [
        (
            "grid_sample",
            lambda m: F(m).grid_sample(
                _x(m, 1, 1, 2, 2), _x(m, 1, 2, 2, 2), "cubic", "zeros", False
            ),
        ),
        (
            "grid_sample",
            lambda m: F(m).grid_sample(
                _x(m, 1, 1, 2, 2), _x(m, 1, 2, 2, 2), "bilinear", "wrap", False
            ),
        ),
        (
            "grid_sample",
            lambda m: F(m).grid_sample(_x(m, 1, 1, 2, 2), _x(m, 1, 2, 2), align_corners=False),
        ),
        ("affine_grid", lambda m: F(m).affine_grid(_x(m, 1, 2, 3), (1, 1, 2, 2, 2), False)),
        ("affine_grid", lambda m: F(m).affine_grid(_x(m, 1, 2, 3), (1, 1, 2), False)),
        ("affine_grid", lambda m: F(m).affine_grid(_x(m, 1, 2, 3), (1, 1, 0, 2), False)),
    ]
    for op, call in cases:
        with pytest.raises(Exception) as want:
            call(torch)
        with pytest.raises(want.type, match=rf"^\[{op}\]"):
            call(bp)
    with pytest.warns(UserWarning, match="align_corners=False since 1.3.0"):
        BF.grid_sample(bp.ones(1, 1, 2, 2), bp.zeros(1, 1, 1, 2))


@pytest.mark.parametrize("hard", [False, True])
def test_gumbel_softmax_samples(hard):
    bp.manual_seed(6)
    logits = bp.tensor(np.log([[0.1, 0.2, 0.7]] * 4000), requires_grad=True)
    y = BF.gumbel_softmax(logits, tau=0.5, hard=hard)
    values = y.detach().numpy()
    np.testing.assert_allclose(values.sum(-1), 1.0, rtol=1e-12)
    winners = np.bincount(values.argmax(-1), minlength=3) / 4000
    np.testing.assert_allclose(winners, [0.1, 0.2, 0.7], atol=0.03)  # Gumbel-max sampling
    if hard:
        assert set(np.unique(values)) == {0.0, 1.0}
    (y * bp.tensor([1.0, 2.0, 3.0], dtype=bp.float64)).sum().backward()
    assert logits.grad is not None and np.isfinite(logits.grad.numpy()).all()
    assert np.abs(logits.grad.numpy()).sum() > 0  # straight through: the soft sample's gradient


# ---- ctc_loss ----

CTC_TARGETS = np.array([[1, 2, 2], [3, 1, 0], [4, 4, 3]])
CTC_CASES = [
    ("mean", (6, 3, 5), CTC_TARGETS, [6, 5, 6], [3, 2, 3], {}),
    ("none", (6, 3, 5), CTC_TARGETS, [6, 5, 6], [3, 2, 3], dict(reduction="none")),
    ("sum_empty_target", (6, 3, 5), CTC_TARGETS, [6, 5, 6], [3, 0, 3], dict(reduction="sum")),
    ("concatenated", (6, 3, 5), np.array([1, 2, 2, 3, 1, 4, 4, 3]), [6, 5, 6], [3, 2, 3], {}),
    ("blank_last", (6, 3, 5), np.array([[1, 3, 3], [3, 1, 0], [0, 0, 1]]), [6, 5, 6], [3, 2, 3],
     dict(blank=4, reduction="none")),
    ("zero_infinity", (6, 3, 5), CTC_TARGETS, [6, 5, 2], [3, 2, 3],
     dict(reduction="none", zero_infinity=True)),
    ("unbatched", (6, 5), np.array([1, 2, 3]), [6], [3], {}),
]  # fmt: skip


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", CTC_CASES, ids=[c[0] for c in CTC_CASES])
def test_ctc_loss_against_torch(case, dtype):
    _, shape, targets, input_lengths, target_lengths, kwargs = case

    def fn(m, x):
        lp = F(m).log_softmax(x, x.ndim - 1)
        return F(m).ctc_loss(lp, m.tensor(targets), input_lengths, target_lengths, **kwargs)

    _check_against_torch(fn, (shape,), "any", dtype)


def test_ctc_loss_module_tensor_lengths_and_infinity():
    x = _arrays(((6, 3, 5),), 30)[0]
    losses = []
    for m, nn in ((bp, bnn), (torch, tnn)):
        lp = F(m).log_softmax(m.tensor(x), 2)
        loss = nn.CTCLoss(reduction="none")(
            lp, m.tensor(CTC_TARGETS), m.tensor([6, 5, 2]), m.tensor([3, 2, 3])
        )
        losses.append(loss.numpy())
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-12)
    assert np.isinf(losses[0][2])  # 2 frames cannot emit 3 labels
    assert repr(bnn.CTCLoss(blank=2)) == repr(tnn.CTCLoss(blank=2))
    with pytest.raises(RuntimeError, match=r"^\[ctc_loss\] Expected input_lengths"):
        BF.ctc_loss(bp.tensor(x), bp.tensor(CTC_TARGETS), [7, 5, 6], [3, 2, 3])


def test_a_small_super_resolution_program_trains_as_in_torch():
    """The same model code on torch.nn and bprop.nn (ESPCN-style: PReLU, InstanceNorm2d,
    PixelShuffle, bicubic skip connection, Dropout2d in eval, a Huber + cosine loss), the
    weights copied, three SGD steps: equal losses."""

    def build(nn):
        class Net(nn.Module):
            def __init__(self):
                super().__init__()
                self.body = nn.Sequential(
                    nn.Conv2d(1, 8, 3, padding=1),
                    nn.PReLU(8),
                    nn.InstanceNorm2d(8, affine=True),
                    nn.Conv2d(8, 4, 3, padding=1),
                    nn.Mish(),
                    nn.Dropout2d(0.2),
                    nn.PixelShuffle(2),
                )
                self.up = nn.Upsample(scale_factor=2, mode="bicubic", align_corners=False)

            def forward(self, x):
                return self.body(x) + self.up(x)

        return Net()

    tmodel = build(tnn).double()
    bmodel = build(bnn).double()
    _copy_params(bmodel, tmodel)
    tmodel.eval()
    bmodel.eval()
    low = _arrays(((2, 1, 4, 4),), 40)[0]
    high = _arrays(((2, 1, 8, 8),), 41)[0]
    losses = []
    for m, model in ((bp, bmodel), (torch, tmodel)):
        opt = m.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        x, y = m.tensor(low), m.tensor(high)
        trace = []
        for _ in range(3):
            opt.zero_grad()
            out = model(x)
            loss = F(m).huber_loss(out, y, delta=0.5) + (
                1 - F(m).cosine_similarity(out.flatten(1), y.flatten(1)).mean()
            )
            loss.backward()
            opt.step()
            trace.append(float(loss.detach()))
        losses.append(trace)
    np.testing.assert_allclose(losses[0], losses[1], rtol=1e-10)
    assert losses[0][2] < losses[0][0]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape,size", [((2, 5, 3), 3), ((2, 6, 3, 4), 4), ((1, 3, 2, 2, 2), 5)])
def test_local_response_norm_against_torch(shape, size, dtype):
    _check_against_torch(
        lambda m, x: F(m).local_response_norm(x, size, alpha=0.5, beta=0.6, k=1.5),
        (shape,),
        "any",
        dtype,
    )
    with pytest.raises(ValueError, match=r"^\[local_response_norm\]"):
        BF.local_response_norm(bp.ones(2, 3), 2)

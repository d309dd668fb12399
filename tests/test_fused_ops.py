"""The fused transformer ops (layer_norm, rms_norm, gelu, softmax): their plain backward runs fused
kernels and must agree with the VJP built of ops that create_graph uses; results must not
depend on the thread count or the input's layout. Values and gradients against PyTorch and
finite differences, and second order, are in the op table (tests/test_ops.py)."""

import math
import pathlib
import runpy

import bprop as bp
import numpy as np
import pytest

F = bp.nn.functional
rng = np.random.default_rng(11)


def norm_call(name, x, weight, bias):
    if name == "layer_norm":
        return F.layer_norm(x, (x.shape[-1],), weight, bias)
    return F.rms_norm(x, (x.shape[-1],), weight, eps=1e-5)


def norm_grads(name, x, weight, bias, g, create_graph):
    inputs = [t for t in (x, weight, bias) if t is not None]
    out = norm_call(name, x, weight, bias)
    return out, bp.autograd.grad(out, inputs, g, create_graph=create_graph)


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("width", [128, 61])
def test_norm_fused_backward_agrees_with_the_op_built_one(name, dtype, width):
    x = bp.tensor(rng.standard_normal((96, width)) * 2 + 0.5, dtype=dtype, requires_grad=True)
    weight = bp.tensor(rng.standard_normal(width), dtype=dtype, requires_grad=True)
    bias = (
        bp.tensor(rng.standard_normal(width), dtype=dtype, requires_grad=True)
        if name == "layer_norm"
        else None
    )
    g = bp.tensor(rng.standard_normal((96, width)), dtype=dtype)
    _, fused = norm_grads(name, x, weight, bias, g, create_graph=False)
    _, composed = norm_grads(name, x, weight, bias, g, create_graph=True)
    assert composed[0].requires_grad and not fused[0].requires_grad
    tolerance = 2e-5 if dtype == bp.float32 else 1e-12
    for got, want in zip(fused, composed):
        np.testing.assert_allclose(
            got.numpy(), want.detach().numpy(), rtol=tolerance, atol=tolerance
        )


@pytest.mark.parametrize("name", ["layer_norm", "rms_norm"])
def test_norm_results_are_the_same_bits_for_any_thread_count(name, restore_threads):
    # 2048 rows of 128: enough for the rows and the weight's column sums to split over threads.
    x = bp.tensor(rng.standard_normal((2048, 128)), requires_grad=True)
    weight = bp.tensor(rng.standard_normal(128), requires_grad=True)
    bias = bp.tensor(rng.standard_normal(128), requires_grad=True) if name == "layer_norm" else None
    g = bp.tensor(rng.standard_normal((2048, 128)))
    results = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        out, grads = norm_grads(name, x, weight, bias, g, create_graph=False)
        results.append([out.detach().numpy()] + [t.numpy() for t in grads])
    for one, two in zip(*results):
        assert np.array_equal(one, two)


def test_layer_norm_of_a_strided_input_equals_that_of_its_copy():
    base = rng.standard_normal((40, 24))
    x = bp.tensor(base, requires_grad=True)
    strided = x.T  # (24, 40), not contiguous
    copy = bp.tensor(base.T.copy(), requires_grad=True)
    g = bp.tensor(rng.standard_normal((24, 40)))
    a = F.layer_norm(strided, (40,))
    b = F.layer_norm(copy, (40,))
    assert np.array_equal(a.detach().numpy(), b.detach().numpy())
    a.backward(g)
    b.backward(g)
    assert np.array_equal(x.grad.numpy().T, copy.grad.numpy())


def test_layer_norm_takes_a_float64_weight_for_float32_input():
    x = bp.tensor(rng.standard_normal((5, 8)), dtype=bp.float32, requires_grad=True)
    weight = bp.tensor(rng.standard_normal(8), dtype=bp.float64, requires_grad=True)
    out = F.layer_norm(x, (8,), weight)
    assert out.dtype == bp.float32
    out.sum().backward()
    assert weight.grad.dtype == bp.float64 and x.grad.dtype == bp.float32
    xn = x.detach().numpy().astype(np.float64)
    xhat = (xn - xn.mean(-1, keepdims=True)) / np.sqrt(xn.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(out.detach().numpy(), xhat * weight.detach().numpy(), rtol=1e-5)
    np.testing.assert_allclose(weight.grad.numpy(), xhat.sum(0), rtol=1e-4, atol=1e-5)


def test_norm_of_empty_inputs_gives_empty_results_and_zero_parameter_gradients():
    x = bp.zeros((0, 6), requires_grad=True)
    weight = bp.ones(6, requires_grad=True)
    bias = bp.zeros(6, requires_grad=True)
    out = F.layer_norm(x, (6,), weight, bias)
    assert out.shape == (0, 6)
    out.sum().backward()
    assert x.grad.shape == (0, 6)
    assert np.array_equal(weight.grad.numpy(), np.zeros(6, np.float32))
    assert np.array_equal(bias.grad.numpy(), np.zeros(6, np.float32))


def test_norm_errors_name_the_op_and_shapes():
    x = bp.ones((3, 4))
    # RuntimeError, as PyTorch's
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] weight of shape \(5,\).*\(4,\)"):
        F.layer_norm(x, (4,), bp.ones(5))
    with pytest.raises(RuntimeError, match=r"\[rms_norm\] weight of shape \(3,\)"):
        F.rms_norm(x, (4,), bp.ones(3))
    with pytest.raises(TypeError, match=r"\[layer_norm\] needs a floating point input"):
        F.layer_norm(bp.ones((3, 4), dtype=bp.int64), (4,))
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] normalized_shape=\[5\]"):
        F.layer_norm(x, (5,))
    with pytest.raises(RuntimeError, match=r"\[layer_norm\] cannot normalize the last 3"):
        bp._core._layer_norm(x, 3, None, None, 1e-5)


# ---- gelu and erf (Note [float32 gelu in float], Note [float32 erf in double]) ----


def ulp_error(got, exact):
    """|got - exact| in units of the last place of exact rounded to float32."""
    unit = np.spacing(np.abs(exact.astype(np.float32))).astype(np.float64)
    unit = np.maximum(unit, float(np.finfo(np.float32).smallest_subnormal))
    return np.abs(got.astype(np.float64) - exact) / unit


def sweep():
    """float32 points across gelu's and erf's whole range: dense near 0 and through the
    tails, where exp(-x^2) decides the precision."""
    parts = [
        np.linspace(-16, 16, 400_001),
        np.linspace(-0.02, 0.02, 20_001),
        np.logspace(-30, 1.5, 5_000),
        -np.logspace(-30, 1.5, 5_000),
    ]
    return np.concatenate(parts).astype(np.float32)


def exact(function, x):
    return np.frompyfunc(function, 1, 1)(x.astype(np.float64)).astype(np.float64)


def test_float32_erf_and_gelu_are_within_4_ulp_of_the_exact_values():
    x = sweep()
    x64 = x.astype(np.float64)
    t = bp.tensor(x)
    assert ulp_error(bp.erf(t).numpy(), exact(math.erf, x)).max() <= 4
    cdf = 0.5 * exact(math.erfc, -x64 / math.sqrt(2))
    assert ulp_error(F.gelu(t).numpy(), x64 * cdf).max() <= 4
    u = math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)
    with np.errstate(over="ignore"):
        tanh_form = x64 / (1 + np.exp(-2 * u))
    assert ulp_error(F.gelu(t, approximate="tanh").numpy(), tanh_form).max() <= 4


def test_float32_gelu_gradient_is_accurate_to_the_scale_of_its_terms():
    # gelu' = Phi(x) + x phi(x) has a root near -0.75, where any rounding of its two terms
    # is a large relative error: the error is measured against the terms' size instead. The
    # backward is g times the slope the forward kept (Note [gelu's saved slope]).
    x = sweep()
    x64 = x.astype(np.float64)
    t = bp.tensor(x, requires_grad=True)
    F.gelu(t).sum().backward()
    cdf = 0.5 * exact(math.erfc, -x64 / math.sqrt(2))
    density_term = x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    scale = np.abs(cdf) + np.abs(density_term)
    error = np.abs(t.grad.numpy() - (cdf + density_term))
    # Below float32's normal range Phi(x) is itself subnormal: there the error is counted in
    # subnormal steps (16 of them) instead.
    floor = 16 * float(np.finfo(np.float32).smallest_subnormal)
    assert (error <= 4 * np.spacing(scale.astype(np.float32)) + floor).all()


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_at_infinities_and_nan(dtype, approximate):
    x = bp.tensor(
        [math.inf, -math.inf, math.nan, 0.0, -0.0, -50.0], dtype=dtype, requires_grad=True
    )
    y = F.gelu(x, approximate=approximate)
    y.sum().backward()
    values, grads = y.detach().numpy(), x.grad.numpy()
    # At -inf x Phi(x) is -inf * 0: NaN, as PyTorch gives; far below 0 the value is -0.
    assert values[0] == math.inf and math.isnan(values[1]) and math.isnan(values[2])
    assert values[3] == 0 and values[5] == 0 and np.signbit(values[5])
    assert math.isnan(grads[0]) and math.isnan(grads[1]) and math.isnan(grads[2])
    assert grads[3] == 0.5 and grads[5] == 0
    # Far below 0 the slope is +0 in both dtypes and forms, as PyTorch's (the float32 tanh
    # form's once came out -0 from -10 on: a tiny negative slope rounded).
    far = [-40.5, -1e30] + ([-12.0] if dtype == bp.float32 and approximate == "tanh" else [])
    far = bp.tensor(far, dtype=dtype, requires_grad=True)
    F.gelu(far, approximate=approximate).sum().backward()
    assert (far.grad.numpy() == 0).all() and not np.signbit(far.grad.numpy()).any()


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_fused_backward_agrees_with_the_op_built_one(dtype, approximate):
    x = bp.tensor(rng.standard_normal((64, 77)) * 3, dtype=dtype, requires_grad=True)
    g = bp.tensor(rng.standard_normal((64, 77)), dtype=dtype)
    (fused,) = bp.autograd.grad(F.gelu(x, approximate=approximate), [x], g)
    (composed,) = bp.autograd.grad(F.gelu(x, approximate=approximate), [x], g, create_graph=True)
    assert composed.requires_grad and not fused.requires_grad
    tolerance = 1e-5 if dtype == bp.float32 else 1e-13
    np.testing.assert_allclose(
        fused.numpy(), composed.detach().numpy(), rtol=tolerance, atol=tolerance
    )


def test_gelu_is_the_same_bits_for_any_thread_count_and_layout(restore_threads):
    base = rng.standard_normal((300, 400)).astype(np.float32) * 4
    g = bp.tensor(rng.standard_normal((400, 300)))
    results = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        x = bp.tensor(base, requires_grad=True)
        y = F.gelu(x.T)  # a strided input
        y.backward(g)
        results.append((y.detach().numpy(), x.grad.numpy()))
    copy = bp.tensor(base.T.copy())
    assert np.array_equal(results[0][0], results[1][0])
    assert np.array_equal(results[0][1], results[1][1])
    assert np.array_equal(results[0][0], F.gelu(copy).numpy())


def test_gelu_refuses_integers_and_unknown_forms():
    with pytest.raises(TypeError, match=r"\[gelu\] needs a floating point input"):
        F.gelu(bp.ones(3, dtype=bp.int64))
    with pytest.raises(ValueError, match=r"\[gelu\] approximate must be 'none' or 'tanh'"):
        F.gelu(bp.ones(3), approximate="fast")


# ---- scaled_dot_product_attention (tiled, online softmax: kernels/attention.cpp) ----


def attention_inputs(shape_q, shape_k, shape_v, dtype):
    return [
        bp.tensor(rng.standard_normal(shape), dtype=dtype, requires_grad=True)
        for shape in (shape_q, shape_k, shape_v)
    ]


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "lengths, head_dims",
    [((64, 64), (16, 16)), ((130, 130), (32, 32)), ((70, 200), (128, 64)), ((200, 70), (20, 20))],
)
def test_attention_matches_pytorch_across_tiles_and_head_dims(causal, lengths, head_dims):
    torch = pytest.importorskip("torch")
    (L, S), (E, Ev) = lengths, head_dims
    q, k, v = attention_inputs((2, 2, L, E), (2, 2, S, E), (2, 2, S, Ev), bp.float64)
    g = rng.standard_normal((2, 2, L, Ev))
    out = F.scaled_dot_product_attention(q, k, v, is_causal=causal)
    out.backward(bp.tensor(g))
    tq, tk, tv = (torch.tensor(t.detach().numpy(), requires_grad=True) for t in (q, k, v))
    want = torch.nn.functional.scaled_dot_product_attention(tq, tk, tv, is_causal=causal)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), atol=1e-12)
    for ours, theirs in ((q, tq), (k, tk), (v, tv)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), atol=1e-11)
    assert out.grad_fn.name() == "ScaledDotProductFlashAttentionForCpuBackward0"


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_attention_fused_backward_agrees_with_the_op_built_one(dtype, causal):
    q, k, v = attention_inputs((3, 70, 24), (3, 90, 24), (3, 90, 12), dtype)
    g = bp.tensor(rng.standard_normal((3, 70, 12)), dtype=dtype)
    fused = bp.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, is_causal=causal), [q, k, v], g
    )
    composed = bp.autograd.grad(
        F.scaled_dot_product_attention(q, k, v, is_causal=causal), [q, k, v], g, create_graph=True
    )
    tolerance = 2e-5 if dtype == bp.float32 else 1e-12
    for a, b in zip(fused, composed):
        assert b.requires_grad and not a.requires_grad
        np.testing.assert_allclose(a.numpy(), b.detach().numpy(), rtol=tolerance, atol=tolerance)


def test_attention_is_the_same_bits_for_any_thread_count_and_layout(restore_threads):
    base = [rng.standard_normal((12, 64, 4, 32)).astype(np.float32) for _ in range(3)]
    g = bp.tensor(rng.standard_normal((12, 4, 64, 32)).astype(np.float32))
    results = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        leaves = [bp.tensor(b, requires_grad=True) for b in base]
        q, k, v = (t.transpose(1, 2) for t in leaves)  # strided (B, H, T, E) views, as in a GPT
        out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        out.backward(g)
        results.append([out.detach().numpy()] + [t.grad.numpy() for t in leaves])
    for one, two in zip(*results):
        assert np.array_equal(one, two)
    contiguous = [bp.tensor(b.transpose(0, 2, 1, 3).copy()) for b in base]
    again = F.scaled_dot_product_attention(*contiguous, is_causal=True)
    assert np.array_equal(again.numpy(), results[0][0])


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize(
    "layout", ["split qkv", "heads outside batch", "outer dims apart", "3-d heads", "strided rows"]
)
def test_attention_reads_strided_views_in_place_and_matches_pytorch(causal, layout):
    torch = pytest.importorskip("torch")
    B, T, H, D = 2, 70, 3, 16
    g = rng.standard_normal((B, H, T, D))
    if layout == "split qkv":  # a GPT's heads: a (B, T, 3 H D) projection split and transposed
        base = bp.tensor(rng.standard_normal((B, T, 3 * H * D)), requires_grad=True)
        views = [p.view(B, T, H, D).transpose(1, 2) for p in base.split(H * D, dim=2)]
    elif layout == "heads outside batch":
        base = bp.tensor(rng.standard_normal((H, B, 3, T, D)), requires_grad=True)
        views = [base[:, :, i].transpose(0, 1) for i in range(3)]
    elif layout == "outer dims apart":  # two outer dimensions, one stride can't reach both
        base = bp.tensor(rng.standard_normal((2, H, B, 3, T, D)), requires_grad=True)
        views = [base[:, :, :, i].permute(0, 2, 1, 3, 4) for i in range(3)]
        g = rng.standard_normal((2, B, H, T, D))
    elif layout == "3-d heads":
        base = bp.tensor(rng.standard_normal((T, 3, B * H, D)), requires_grad=True)
        views = [base[:, i].transpose(0, 1) for i in range(3)]
        g = g.reshape(B * H, T, D)
    else:  # rows further apart than their values
        base = bp.tensor(rng.standard_normal((B, H, T, 3 * D)), requires_grad=True)
        views = [base[..., i * D : (i + 1) * D] for i in range(3)]
    out = F.scaled_dot_product_attention(*views, is_causal=causal)
    out.backward(bp.tensor(g))
    torch_base = torch.tensor(base.detach().numpy(), requires_grad=True)
    if layout == "split qkv":
        tviews = [p.view(B, T, H, D).transpose(1, 2) for p in torch_base.split(H * D, dim=2)]
    elif layout == "heads outside batch":
        tviews = [torch_base[:, :, i].transpose(0, 1) for i in range(3)]
    elif layout == "outer dims apart":
        tviews = [torch_base[:, :, :, i].permute(0, 2, 1, 3, 4) for i in range(3)]
    elif layout == "3-d heads":
        tviews = [torch_base[:, i].transpose(0, 1) for i in range(3)]
    else:
        tviews = [torch_base[..., i * D : (i + 1) * D] for i in range(3)]
    want = torch.nn.functional.scaled_dot_product_attention(*tviews, is_causal=causal)
    want.backward(torch.tensor(g))
    np.testing.assert_allclose(out.detach().numpy(), want.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(base.grad.numpy(), torch_base.grad.numpy(), atol=1e-11)
    if layout == "split qkv":  # out in (B, T, H, D) memory: merging the heads back is free
        assert out.transpose(1, 2).is_contiguous()


@pytest.mark.parametrize("scale", [0.0, -0.5, 0.3])
def test_float32_attention_with_any_scale_and_odd_key_counts_matches_float64(scale):
    # 7 keys: the vector kernels' padded tail; scale <= 0 turns its padding into NaN or inf
    q, k, v = (rng.standard_normal(shape) for shape in ((1, 2, 5, 4), (1, 2, 7, 4), (1, 2, 7, 3)))
    want = F.scaled_dot_product_attention(*(bp.tensor(t) for t in (q, k, v)), scale=scale)
    got = F.scaled_dot_product_attention(
        *(bp.tensor(t.astype(np.float32)) for t in (q, k, v)), scale=scale
    )
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)


def test_attention_with_a_mask_or_dropout_takes_the_composed_path():
    q, k, v = attention_inputs((2, 5, 4), (2, 6, 4), (2, 6, 3), bp.float64)
    # its own seed, and every query sees key 0: a row masked whole is 0 / 0 in the reference
    allowed = np.random.default_rng(3).random((5, 6)) > 0.3
    allowed[:, 0] = True
    mask = bp.tensor(allowed)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.grad_fn.name() != "ScaledDotProductFlashAttentionForCpuBackward0"
    scores = (q.detach().numpy() @ k.detach().numpy().swapaxes(-1, -2)) / 2.0
    weights = np.where(mask.numpy(), np.exp(scores), 0.0)
    weights /= weights.sum(-1, keepdims=True)
    np.testing.assert_allclose(out.detach().numpy(), weights @ v.detach().numpy(), atol=1e-12)


def test_attention_errors_name_the_op_and_shapes():
    q, k, v = attention_inputs((2, 5, 4), (2, 6, 4), (2, 6, 3), bp.float32)
    with pytest.raises(RuntimeError, match=r"\[scaled_dot_product_attention\] shapes query"):
        bp._core._scaled_dot_product_attention(q, k[:, :, :3], v, False, 1.0)
    with pytest.raises(TypeError, match=r"\[scaled_dot_product_attention\] query, key and value"):
        bp._core._scaled_dot_product_attention(q, k.double(), v, False, 1.0)


# ---- cross_entropy against class indices (Note [Fused cross_entropy] in ops/nn.cpp) ----


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_cross_entropy_fused_matches_pytorch_with_ignored_targets(reduction, dtype):
    torch = pytest.importorskip("torch")
    logits = rng.standard_normal((50, 65)) * 3
    target = rng.integers(0, 65, 50)
    target[[3, 17, 40]] = -100
    x = bp.tensor(logits, dtype=dtype, requires_grad=True)
    loss = F.cross_entropy(x, bp.tensor(target), reduction=reduction)
    assert loss.grad_fn.name() == "NllLossBackward0"
    g = rng.standard_normal(loss.shape)
    loss.backward(bp.tensor(g, dtype=dtype))
    tdtype = torch.float32 if dtype == bp.float32 else torch.float64
    tx = torch.tensor(logits, dtype=tdtype, requires_grad=True)
    want = torch.nn.functional.cross_entropy(tx, torch.tensor(target), reduction=reduction)
    want.backward(torch.tensor(g, dtype=tdtype))
    tolerance = 1e-5 if dtype == bp.float32 else 1e-12
    np.testing.assert_allclose(loss.detach().numpy(), want.detach().numpy(), rtol=tolerance)
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_cross_entropy_fused_backward_agrees_with_the_op_built_one(reduction):
    x = bp.tensor(rng.standard_normal((30, 11)), requires_grad=True)
    target = bp.tensor(np.where(rng.random(30) < 0.2, -100, rng.integers(0, 11, 30)))
    loss = F.cross_entropy(x, target, reduction=reduction)
    g = bp.tensor(rng.standard_normal(loss.shape))
    (fused,) = bp.autograd.grad(F.cross_entropy(x, target, reduction=reduction), [x], g)
    (composed,) = bp.autograd.grad(
        F.cross_entropy(x, target, reduction=reduction), [x], g, create_graph=True
    )
    assert composed.requires_grad and not fused.requires_grad
    np.testing.assert_allclose(fused.numpy(), composed.detach().numpy(), rtol=1e-5, atol=1e-6)
    x64 = bp.tensor(rng.standard_normal((6, 5)), dtype=bp.float64, requires_grad=True)
    t64 = bp.tensor([0, 4, -100, 2, 2, 1])
    f = lambda a: F.cross_entropy(a, t64, reduction=reduction)  # noqa: E731
    assert bp.testing.gradcheck(f, (x64,)) and bp.testing.gradgradcheck(f, (x64,))


def test_cross_entropy_all_ignored_mean_is_nan_and_bits_do_not_depend_on_threads(restore_threads):
    x = bp.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    assert math.isnan(F.cross_entropy(x, bp.tensor([-100] * 4)).item())
    big = bp.tensor(rng.standard_normal((4096, 65)).astype(np.float32), requires_grad=True)
    target = bp.tensor(rng.integers(0, 65, 4096))
    results = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        big.grad = None
        loss = F.cross_entropy(big, target)
        loss.backward()
        results.append((loss.item(), big.grad.numpy()))
    assert results[0][0] == results[1][0] and np.array_equal(results[0][1], results[1][1])


def test_cross_entropy_fused_path_checks_targets():
    x = bp.ones((3, 4))
    with pytest.raises(IndexError, match=r"\[cross_entropy\] target 4 is out of bounds"):
        F.cross_entropy(x, bp.tensor([0, 4, 1]))
    with pytest.raises(ValueError, match=r"\[cross_entropy\] target shape \(2,\)"):
        F.cross_entropy(x, bp.tensor([0, 1]))


# ---- the fused ops in a captured step ----


def small_gpt():
    """examples/char_gpt.py's GPT at a small size: layer_norm, causal attention, gelu,
    embedding and cross_entropy, all through the fused ops."""
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "char_gpt.py"
    gpt = runpy.run_path(str(path), run_name="small_gpt")["GPT"]
    bp.manual_seed(7)
    return gpt(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)


# ---- softmax and log_softmax along the last dimension (Note [Fused softmax] in ops/nn.cpp) ----


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_softmax_fused_matches_pytorch_on_every_row_width(name, dtype):
    torch = pytest.importorskip("torch")
    tdtype = torch.float32 if dtype == bp.float32 else torch.float64
    tolerance = 2e-6 if dtype == bp.float32 else 1e-13
    for width in [1, 2, 15, 16, 17, 33, 64, 65, 1000]:  # vector tails of every ISA
        logits = rng.standard_normal((7, width)) * 4
        g = rng.standard_normal((7, width))
        x = bp.tensor(logits, dtype=dtype, requires_grad=True)
        y = getattr(F, name)(x, dim=-1)
        assert y.grad_fn.name() == (
            "SoftmaxBackward0" if name == "softmax" else "LogSoftmaxBackward0"
        )
        y.backward(bp.tensor(g, dtype=dtype))
        tx = torch.tensor(logits, dtype=tdtype, requires_grad=True)
        want = getattr(torch.nn.functional, name)(tx, dim=-1)
        want.backward(torch.tensor(g, dtype=tdtype))
        np.testing.assert_allclose(
            y.detach().numpy(), want.detach().numpy(), rtol=tolerance, atol=tolerance
        )
        np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy(), rtol=1e-5, atol=tolerance * 4)


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_fused_rows_with_infinities_and_nan_match_pytorch(name):
    torch = pytest.importorskip("torch")
    inf, nan = math.inf, math.nan
    rows = [
        [0.0, -inf, 1.0, -inf],  # masked entries
        [-inf, -inf, -inf, -inf],  # nothing visible: NaN, as the math gives
        [inf, 0.0, 1.0, 2.0],
        [nan, 0.0, 1.0, 2.0],
        [1e4, 1e4 + 1, 1e4 - 1, -1e4],  # large logits: shifted before the exponentials
    ]
    for dtype, tdtype in [(bp.float32, torch.float32), (bp.float64, torch.float64)]:
        got = getattr(F, name)(bp.tensor(rows, dtype=dtype), dim=1).numpy()
        want = getattr(torch.nn.functional, name)(torch.tensor(rows, dtype=tdtype), dim=1).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)  # NaN where PyTorch's is


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_softmax_fused_backward_agrees_with_the_op_built_one(name, dtype):
    x = bp.tensor(rng.standard_normal((5, 3, 37)) * 2, dtype=dtype, requires_grad=True)
    g = bp.tensor(rng.standard_normal((5, 3, 37)), dtype=dtype)
    (fused,) = bp.autograd.grad(getattr(F, name)(x, -1), [x], g)
    (composed,) = bp.autograd.grad(getattr(F, name)(x, -1), [x], g, create_graph=True)
    assert composed.requires_grad and not fused.requires_grad
    tolerance = 1e-5 if dtype == bp.float32 else 1e-13
    np.testing.assert_allclose(
        fused.numpy(), composed.detach().numpy(), rtol=tolerance, atol=tolerance
    )
    x64 = bp.tensor(rng.standard_normal((4, 6)), dtype=bp.float64, requires_grad=True)
    f = lambda a: getattr(F, name)(a, -1)  # noqa: E731
    assert bp.testing.gradcheck(f, (x64,)) and bp.testing.gradgradcheck(f, (x64,))


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_softmax_is_the_same_bits_for_any_thread_count_layout_and_capture(name, restore_threads):
    base = rng.standard_normal((4096, 65)).astype(np.float32)
    g = bp.tensor(rng.standard_normal((4096, 65)).astype(np.float32))
    results = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        x = bp.tensor(base, requires_grad=True)
        y = getattr(F, name)(x, -1)
        y.backward(g)
        results.append((y.detach().numpy(), x.grad.numpy()))
    assert all(np.array_equal(a, b) for a, b in zip(results[0], results[1]))
    # a transposed view is made contiguous first: the same rows, the same bits
    xt = bp.tensor(np.ascontiguousarray(base.T)).T
    assert np.array_equal(getattr(F, name)(xt, -1).numpy(), results[0][0])
    x = bp.tensor(base, requires_grad=True)

    def step(grad):
        x.grad = None
        out = getattr(F, name)(x, -1)
        out.backward(grad)
        return out

    captured = bp.compile(step)
    for _ in range(2):
        out = captured(g)
        assert np.array_equal(out.detach().numpy(), results[0][0])
        assert np.array_equal(x.grad.numpy(), results[0][1])


def test_softmax_along_another_dimension_stays_composed():
    x = bp.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    assert F.softmax(x, dim=0).grad_fn.name() == "DivBackward0"
    assert F.softmax(x, dim=1).grad_fn.name() == "SoftmaxBackward0"
    np.testing.assert_allclose(
        F.softmax(x, dim=0).detach().numpy(), F.softmax(x.T, dim=1).detach().numpy().T, rtol=1e-12
    )


def test_a_captured_gpt_step_gives_the_eager_bits_over_50_steps():
    # counting mod 17 from random starts: the next token is learnable
    starts = rng.integers(0, 17, (50, 4, 1))
    tokens = (starts + np.arange(17)) % 17
    data = [(bp.tensor(t[:, :16]), bp.tensor(t[:, 1:])) for t in tokens]
    trained = []
    for captured in (False, True):
        model = small_gpt()
        optimizer = bp.optim.AdamW(model.parameters(), lr=1e-2)

        def step(x, y, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            loss = model(x, y)
            loss.backward()
            optimizer.step()
            return loss

        run = bp.compile(step) if captured else step
        losses = [run(x, y).item() for x, y in data]
        trained.append((losses, [p.detach().numpy().copy() for p in model.parameters()]))
    (eager_losses, eager_params), (captured_losses, captured_params) = trained
    assert eager_losses == captured_losses
    assert eager_losses[-1] < eager_losses[0] - 0.5  # it learns
    for a, b in zip(eager_params, captured_params):
        assert np.array_equal(a, b)


# ---- index_select / index_add along dim 0 (embedding): whole rows (kernels/rows.cpp) ----


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64, bp.int64, bp.bool])
def test_row_index_select_matches_the_strided_path(dtype):
    base = rng.standard_normal((9, 5)) * 4
    x = bp.tensor(base).to(dtype)
    index = bp.tensor([3, 0, 8, 3, 3, 1])
    rows = x.index_select(0, index)  # contiguous: whole rows
    strided = x.T.contiguous().T.index_select(0, index)  # also contiguous: same path
    via_transpose = x.T.index_select(1, index).T  # the element-wise path
    assert np.array_equal(rows.numpy(), via_transpose.numpy())
    assert np.array_equal(rows.numpy(), strided.numpy())
    assert np.array_equal(rows.numpy(), x.numpy()[[3, 0, 8, 3, 3, 1]])


def test_embedding_gradient_adds_repeated_rows_in_order(restore_threads):
    weight = bp.tensor(rng.standard_normal((7, 300)), requires_grad=True)
    index = bp.tensor(rng.integers(0, 7, (40, 3)))
    g = rng.standard_normal((40, 3, 300))
    grads = []
    for threads in (1, 2):
        bp.set_num_threads(threads)
        weight.grad = None
        F.embedding(index, weight).backward(bp.tensor(g))
        grads.append(weight.grad.numpy().copy())
    want = np.zeros((7, 300))
    np.add.at(want, index.numpy().reshape(-1), g.reshape(-1, 300))
    assert np.array_equal(grads[0], grads[1])
    np.testing.assert_allclose(grads[0], want, rtol=1e-12, atol=1e-12)
    base = bp.zeros((7, 300), dtype=bp.float64).T  # strided: the element-wise path
    strided = base.index_add(1, index.reshape(-1), bp.tensor(g.reshape(-1, 300)).T)
    assert np.array_equal(strided.T.numpy(), grads[0])


# ---- edge cases found in review ----


def test_attention_with_empty_values_gives_zero_gradients():
    q, k, _ = attention_inputs((2, 5, 4), (2, 6, 4), (2, 6, 0), bp.float32)
    v = bp.zeros((2, 6, 0), requires_grad=True)
    out = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert out.shape == (2, 5, 0)
    out.sum().backward()
    assert np.array_equal(q.grad.numpy(), np.zeros((2, 5, 4), np.float32))
    assert np.array_equal(k.grad.numpy(), np.zeros((2, 6, 4), np.float32))


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_slope_of_huge_finite_inputs_is_exactly_0_or_1(approximate):
    x = bp.tensor([1e20, -1e20, 3e38, -3e38, 41.0, -41.0], requires_grad=True)
    F.gelu(x, approximate=approximate).sum().backward()
    assert x.grad.numpy().tolist() == [1.0, 0.0, 1.0, 0.0, 1.0, 0.0]


def test_cross_entropy_op_built_gradient_of_all_ignored_targets_is_zero():
    x = bp.tensor(rng.standard_normal((3, 4)), requires_grad=True)
    target = bp.tensor([-100, -100, -100])
    (composed,) = bp.autograd.grad(F.cross_entropy(x, target), [x], create_graph=True)
    (fused,) = bp.autograd.grad(F.cross_entropy(x, target), [x])
    assert np.array_equal(composed.detach().numpy(), np.zeros((3, 4)))
    assert np.array_equal(fused.numpy(), np.zeros((3, 4)))

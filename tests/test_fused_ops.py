"""The fused transformer ops (layer_norm, rms_norm, gelu): their plain backward runs fused
kernels and must agree with the VJP built of ops that create_graph uses; results must not
depend on the thread count or the input's layout. Values and gradients against PyTorch and
finite differences, and second order, are in the op table (tests/test_ops.py)."""

import math

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


# ---- gelu and erf (float32 evaluated in double: Note [float32 erf and gelu in double]) ----


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
    # is a large relative error: the error is measured against the terms' size instead.
    x = sweep()
    x64 = x.astype(np.float64)
    t = bp.tensor(x, requires_grad=True)
    F.gelu(t).sum().backward()
    cdf = 0.5 * exact(math.erfc, -x64 / math.sqrt(2))
    density_term = x64 * np.exp(-0.5 * x64 * x64) / math.sqrt(2 * math.pi)
    scale = np.abs(cdf) + np.abs(density_term)
    error = np.abs(t.grad.numpy() - (cdf + density_term))
    assert (error <= 4 * np.spacing(scale.astype(np.float32)) + 1e-45).all()


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

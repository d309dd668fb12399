"""Tensor.retain_grad / register_hook, module hooks, the .data setter (and Module dtype
conversion through it), and the global generator's state; against PyTorch where the values
are deterministic."""

import bprop as bp
import bprop.nn as nn
import numpy as np
import pytest


def _mlp_intermediates(m, x_values, w1_values, w2_values):
    """A tiny MLP; returns the leaves, the intermediates (all retaining grad) and the loss."""
    x = m.tensor(x_values)
    w1 = m.tensor(w1_values, requires_grad=True)
    w2 = m.tensor(w2_values, requires_grad=True)
    h_pre = x @ w1
    h = h_pre.tanh()
    logits = h @ w2
    probs = logits.softmax(dim=1)
    loss = -(probs[:, 0].log()).mean()
    inner = [h_pre, h, logits, probs, loss]
    for t in inner:
        t.retain_grad()
    return (w1, w2), inner, loss


def test_retain_grad_on_mlp_intermediates_equals_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    xs, w1s, w2s = rng.normal(size=(4, 3)), rng.normal(size=(3, 5)), rng.normal(size=(5, 2))
    got = _mlp_intermediates(bp, xs, w1s, w2s)
    want = _mlp_intermediates(torch, xs, w1s, w2s)
    for _ in range(2):  # a second backward accumulates into the retained .grad as torch
        got[2].backward(retain_graph=True)
        want[2].backward(retain_graph=True)
        for b, t in zip(got[0] + tuple(got[1]), want[0] + tuple(want[1])):
            assert b.retains_grad == t.retains_grad
            np.testing.assert_allclose(b.grad.numpy(), t.grad.numpy(), rtol=1e-12, atol=1e-12)
    assert not got[0][0].retains_grad  # a leaf never "retains"


def test_non_retaining_intermediate_has_no_grad_and_leaf_retain_is_a_no_op():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    y.sum().backward()
    assert y.grad is None and not y.retains_grad
    x.retain_grad()
    assert not x.retains_grad and x.is_leaf
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])


def test_retain_grad_and_register_hook_refuse_tensors_without_grad():
    torch = pytest.importorskip("torch")
    for m, error in ((bp, RuntimeError), (torch, RuntimeError)):
        with pytest.raises(error, match="retain_grad on Tensor that has requires_grad=False"):
            m.zeros(2).retain_grad()
        with pytest.raises(error, match="register a hook on a tensor that doesn't require"):
            m.zeros(2).register_hook(lambda g: g)
    with pytest.raises(TypeError, match=r"\[register_hook\] hook must be callable"):
        bp.zeros(2, requires_grad=True).register_hook(3)


def _hooked(m):
    """Hooks that scale, replace and observe gradients, on leaves and intermediates."""
    x = m.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], requires_grad=True)
    w = m.tensor([[1.0, -2.0], [0.5, 0.3], [-1.5, 2.5]], requires_grad=True)
    seen = []
    h = x @ w
    h.register_hook(lambda g: g * 3)
    h.register_hook(lambda g: seen.append(g.detach().clone()))  # sees the tripled gradient
    a = h.tanh()
    a.register_hook(lambda g: g.clamp(min=0.0))
    a.retain_grad()
    x.register_hook(lambda g: g + 1)  # runs before accumulation into x.grad
    loss = (a * a).sum() - a[0, 1] * 4
    loss.backward()
    return x.grad, w.grad, a.grad, seen[0]


def test_hooks_modify_gradients_as_torch():
    torch = pytest.importorskip("torch")
    for b, t in zip(_hooked(bp), _hooked(torch)):
        np.testing.assert_allclose(b.numpy(), t.numpy(), rtol=1e-6, atol=1e-6)


def test_hook_order_removal_and_handles():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = x * 2
    calls = []
    first = y.register_hook(lambda g: calls.append("first"))
    y.register_hook(lambda g: calls.append("second"))
    leaf = x.register_hook(lambda g: calls.append("leaf") or g * 10)
    assert isinstance(first, bp.autograd.RemovableHandle)
    y.sum().backward(retain_graph=True)
    assert calls == ["first", "second", "leaf"]
    np.testing.assert_array_equal(x.grad.numpy(), [20.0, 20.0])
    first.remove()
    first.remove()  # twice is harmless
    leaf.remove()
    calls.clear()
    x.grad = None
    y.sum().backward()
    assert calls == ["second"]
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0])
    with x.register_hook(lambda g: g * 0):  # a context manager removes it on leaving
        pass
    (x * 1).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [3.0, 3.0])


def test_hooks_in_autograd_grad_as_torch():
    torch = pytest.importorskip("torch")
    for m in (bp, torch):
        x = m.tensor([1.0, 2.0], requires_grad=True)
        a = m.tensor([3.0, 4.0], requires_grad=True)
        y = x * 2
        calls = []
        y.register_hook(lambda g, calls=calls: calls.append(1) or g * 5)
        (gx,) = m.autograd.grad((y * a).sum(), x, retain_graph=True)
        np.testing.assert_array_equal(gx.numpy(), [30.0, 40.0])
        (gy,) = m.autograd.grad((y * a).sum(), y, retain_graph=True)  # the input's own hooks
        np.testing.assert_array_equal(gy.numpy(), [15.0, 20.0])
        (ga,) = m.autograd.grad((y * a).sum(), a)  # y's node does not run: no call
        assert len(calls) == 2


def test_hook_errors_propagate_and_bad_results_are_refused():
    x = bp.tensor([1.0, 2.0], requires_grad=True)

    def boom(g):
        raise ValueError("boom from a hook")

    y = x * 2
    y.register_hook(boom)
    with pytest.raises(ValueError, match="boom from a hook"):
        y.sum().backward()
    for hook, error, message in [
        (lambda g: g[:1], RuntimeError, "changed the size"),
        (lambda g: g.double(), RuntimeError, "changed the type"),
        (lambda g: 3, TypeError, "return a Tensor or None, got 'int'"),
    ]:
        y = x * 2
        y.register_hook(hook)
        with pytest.raises(error, match=message):
            y.sum().backward()


def test_hooks_with_create_graph_second_order_as_torch():
    torch = pytest.importorskip("torch")
    results = []
    for m in (bp, torch):
        x = m.tensor([0.5, -1.5, 2.0], dtype=m.float64, requires_grad=True)
        s = x.sin()
        s.register_hook(lambda g, x=x: g * x * x)  # the replacement depends on x
        x.register_hook(lambda g: g * 2)
        (g,) = m.autograd.grad((s * s).sum(), x, create_graph=True)
        assert g.requires_grad
        (gg,) = m.autograd.grad(g.sum(), x)
        results.append((g.detach().numpy(), gg.numpy()))
    for b, t in zip(*results):
        np.testing.assert_allclose(b, t, rtol=1e-12)


def _module_with_hooks(m):
    lin = m.nn.Linear(3, 2).double()
    with m.no_grad():
        lin.weight.copy_(m.tensor([[1.0, -2.0, 0.5], [0.25, 1.5, -1.0]], dtype=m.float64))
        lin.bias.copy_(m.tensor([0.1, -0.2], dtype=m.float64))
    log = []
    lin.register_forward_pre_hook(lambda mod, args: (args[0] * 2,))
    lin.register_forward_hook(lambda mod, args, out: out + 1)
    lin.register_forward_hook(
        lambda mod, args, kwargs, out: log.append(out) or None, with_kwargs=True
    )
    lin.register_forward_hook(lambda mod, args, out: log.append("first"), prepend=True)
    x = m.tensor([[1.0, 2.0, 3.0]], dtype=m.float64, requires_grad=True)
    out = lin(x)
    out.sum().backward()
    return out.detach(), x.grad, lin.weight.grad, log


def test_module_forward_hooks_modify_inputs_and_outputs_as_torch():
    torch = pytest.importorskip("torch")
    got, want = _module_with_hooks(bp), _module_with_hooks(torch)
    for b, t in zip(got[:3], want[:3]):
        np.testing.assert_allclose(b.numpy(), t.numpy(), rtol=1e-12)
    assert got[3][0] == want[3][0] == "first"
    np.testing.assert_allclose(got[3][1].detach().numpy(), want[3][1].detach().numpy())


def test_module_hook_removal_with_kwargs_pre_hook_and_always_call():
    lin = nn.Linear(2, 2)
    handle = lin.register_forward_hook(lambda mod, args, out: out * 0)
    x = bp.ones(1, 2)
    assert bp.equal(lin(x), lin(x) * 0)
    handle.remove()
    expected = x @ lin.weight.detach().T + lin.bias.detach()
    np.testing.assert_allclose(lin(x).detach().numpy(), expected.numpy(), rtol=1e-6)
    assert not np.allclose(expected.numpy(), 0.0)

    class Scale(nn.Module):
        def forward(self, x, factor=1.0):
            return x * factor

    mod = Scale()
    mod.register_forward_pre_hook(
        lambda module, args, kwargs: (args, {"factor": 3.0}), with_kwargs=True
    )
    np.testing.assert_array_equal(mod(bp.ones(2)).numpy(), [3.0, 3.0])
    bad = Scale()
    bad.register_forward_pre_hook(lambda module, args, kwargs: 5, with_kwargs=True)
    with pytest.raises(RuntimeError, match="must return None or a tuple"):
        bad(bp.ones(2))

    class Failing(nn.Module):
        def forward(self, x):
            raise ValueError("forward failed")

    called = []
    failing = Failing()
    failing.register_forward_hook(lambda m, a, o: called.append(o), always_call=True)
    failing.register_forward_hook(lambda m, a, o: called.append("not always"))
    with pytest.raises(ValueError, match="forward failed"):
        failing(bp.ones(1))
    assert called == [None]


def _full_backward(m):
    class Two(m.nn.Module):
        def forward(self, a, scale, b):
            return a * b * scale, a + b

    mod = Two()
    log = []

    def hook(module, grad_input, grad_output):
        log.append((grad_input, grad_output))
        return (grad_input[0] * 2, None, grad_input[2])

    mod.register_full_backward_hook(hook)
    mod.register_full_backward_pre_hook(lambda module, grad_output: (grad_output[0] * 10, None))
    a = m.tensor([1.0, 2.0], dtype=m.float64, requires_grad=True)
    b = m.tensor([3.0, -1.0], dtype=m.float64, requires_grad=True)
    p, q = mod(a, 0.5, b)
    (p.sum() + (q * q).sum()).backward()
    (gi, go) = log[0]
    return a.grad, b.grad, gi[0], gi[2], go[0], gi[1], go[1]


def test_module_full_backward_hooks_as_torch():
    torch = pytest.importorskip("torch")
    got, want = _full_backward(bp), _full_backward(torch)
    for b, t in zip(got[:5], want[:5]):
        np.testing.assert_allclose(b.numpy(), t.numpy(), rtol=1e-12)
    assert got[5] is None and want[5] is None  # the float argument
    assert got[6] is None and want[6] is None  # the pre-hook dropped q's gradient


def test_data_setter_keeps_identity_and_changes_dtype():
    p = bp.zeros(3, requires_grad=True)
    seen = []
    p.register_hook(lambda g: seen.append(g.dtype))
    same = p
    p.data = bp.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=bp.float64)
    assert same is p and p.is_leaf and p.requires_grad
    assert p.dtype == bp.float64 and tuple(p.shape) == (2, 2)
    (p * p).sum().backward()
    np.testing.assert_array_equal(p.grad.numpy(), [[2.0, 4.0], [6.0, 8.0]])
    assert seen == [bp.float64]  # the hook stayed
    other = bp.ones(2, 2, dtype=bp.float64)
    p.data = other
    with bp.no_grad():
        other.add_(1.0)  # shares other's storage
    np.testing.assert_array_equal(p.detach().numpy(), [[2.0, 2.0], [2.0, 2.0]])
    with pytest.raises(RuntimeError, match=r"\[data\] data set to a tensor that requires"):
        p.data = bp.zeros(3, dtype=bp.int64)
    assert p.dtype == bp.float64  # unchanged
    q = p * 2
    with pytest.raises(RuntimeError, match=r"\[data\] can't change the shape or dtype"):
        q.data = bp.zeros(3)
    plain = bp.zeros(2)
    plain.data = bp.arange(3)  # no grad: any dtype
    assert plain.dtype == bp.int64


def test_module_double_converts_parameters_in_place_and_optimizer_follows():
    torch = pytest.importorskip("torch")
    results = []
    for m in (bp, torch):
        m.manual_seed(0)
        model = m.nn.Linear(3, 1)
        with m.no_grad():
            model.weight.copy_(m.tensor([[0.5, -0.25, 1.0]]))
            model.bias.fill_(0.1)
        weight = model.weight
        opt = m.optim.SGD(model.parameters(), lr=0.1)
        x = m.tensor([[1.0, 2.0, 3.0]])
        model(x).sum().backward()
        model.double()
        assert model.weight is weight and weight.dtype == m.float64
        assert weight.grad.dtype == m.float64  # converted with its parameter
        opt.step()
        opt.zero_grad()
        model(x.double()).sum().backward()
        opt.step()
        results.append(model.weight.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12)


def test_optimizer_state_of_the_old_dtype_raises_clearly():
    model = nn.Linear(2, 1)
    for opt, name in [
        (bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9), "momentum_buffer"),
        (bp.optim.Adam(model.parameters(), lr=0.1), "exp_avg"),
    ]:
        model.float()
        before = model.weight.detach().clone()
        model(bp.ones(1, 2)).sum().backward()
        opt.step()  # makes float32 state
        model.double()
        opt.zero_grad()
        model(bp.ones(1, 2, dtype=bp.float64)).sum().backward()
        after_first = model.weight.detach().clone()
        with pytest.raises(RuntimeError, match=name + ".*create the optimizer again"):
            opt.step()
        assert bp.equal(model.weight.detach(), after_first)  # nothing changed
        assert not bp.equal(before.double(), after_first)
        opt.zero_grad()


def test_module_type_refuses_int_for_parameters_without_changing_anything():
    model = nn.Linear(2, 2)
    weight = model.weight
    with pytest.raises(RuntimeError, match="must be floating point"):
        model.type(bp.int64)
    assert model.weight is weight and weight.dtype == bp.float32
    assert model.bias.dtype == bp.float32


def test_rng_state_round_trips():
    bp.manual_seed(123)
    assert bp.initial_seed() == 123
    state = bp.get_rng_state()
    assert state.dtype == bp.int64 and tuple(state.shape) == (5,)
    a = (bp.rand(4), bp.randn(3), bp.randint(0, 100, (5,)))
    bp.set_rng_state(state)
    b = (bp.rand(4), bp.randn(3), bp.randint(0, 100, (5,)))
    for u, v in zip(a, b):
        assert bp.equal(u, v)
    with bp.random.fork_rng():
        inside = bp.rand(3)
    assert bp.equal(bp.rand(3), inside)  # the fork restored the state
    bp.random.manual_seed(7)
    assert bp.random.initial_seed() == 7
    first = bp.rand(2)
    bp.manual_seed(7)
    assert bp.equal(bp.rand(2), first)
    s = bp.seed()
    assert bp.initial_seed() == s and 0 <= s < 2**64
    after_seed = bp.random.get_rng_state()
    x = bp.randn(2)
    bp.random.set_rng_state(after_seed)
    assert bp.equal(bp.randn(2), x)


def test_rng_state_errors():
    state = bp.get_rng_state()
    with pytest.raises(TypeError, match=r"\[set_rng_state\] the state must be the int64"):
        bp.set_rng_state(bp.zeros(5))
    with pytest.raises(RuntimeError, match=r"must have shape \(5,\)"):
        bp.set_rng_state(bp.zeros(3, dtype=bp.int64))
    with pytest.raises(RuntimeError, match="all-zero"):
        bp.set_rng_state(bp.zeros(5, dtype=bp.int64))
    draw = bp.rand(2)
    bp.set_rng_state(state)
    assert bp.equal(bp.rand(2), draw)  # the failed calls changed nothing

"""bp.autograd.Function (custom ops with a hand-written backward) and bp.utils.checkpoint,
compared with torch.autograd.Function and torch.utils.checkpoint: values, first- and
second-order gradients, the ctx API, errors."""

from __future__ import annotations

import warnings

import bprop as bp
import numpy as np
import pytest

torch = pytest.importorskip("torch")


def functions(m):
    """The same custom Functions written against bprop or torch (m is the module)."""
    calls = []

    class Exp(m.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            y = x.exp()
            ctx.save_for_backward(y)
            return y

        @staticmethod
        def backward(ctx, grad):
            (y,) = ctx.saved_tensors
            return grad * y

    class MulAdd(m.autograd.Function):  # two tensor inputs and a number; records needs_input_grad
        @staticmethod
        def forward(ctx, x, alpha, y):
            ctx.save_for_backward(x, None, y)
            ctx.alpha = alpha
            calls.append(ctx.needs_input_grad)
            return x * y * alpha + y

        @staticmethod
        def backward(ctx, grad):
            x, nothing, y = ctx.saved_tensors
            assert nothing is None
            gx = grad * y * ctx.alpha if ctx.needs_input_grad[0] else None
            gy = grad * (x * ctx.alpha + 1) if ctx.needs_input_grad[2] else None
            return gx, None, gy

    class SinSquare(m.autograd.Function):  # two outputs
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x.sin(), x * x

        @staticmethod
        def backward(ctx, g_sin, g_square):
            (x,) = ctx.saved_tensors
            return g_sin * x.cos() + 2 * g_square * x

    class Relu(m.autograd.Function):  # a non-differentiable float output
        @staticmethod
        def forward(ctx, x):
            mask = (x > 0).to(x.dtype)
            ctx.mark_non_differentiable(mask)
            ctx.save_for_backward(mask)
            return x * mask, mask

        @staticmethod
        def backward(ctx, grad, grad_mask):
            (mask,) = ctx.saved_tensors
            assert float(grad_mask.abs().sum()) == 0.0
            return grad * mask

    return Exp, MulAdd, SinSquare, Relu, calls


def pair(values, requires_grad=True):
    a = np.asarray(values, dtype=np.float64)
    return (
        bp.tensor(a, requires_grad=requires_grad),
        torch.tensor(a, requires_grad=requires_grad),
    )


def close(b, t):
    assert b is not None and t is not None
    np.testing.assert_allclose(np.asarray(b.tolist()), t.detach().numpy(), rtol=1e-12, atol=1e-12)


# Each case: (which function, how to call it and make a scalar loss from its result).
CASES = {
    "exp": lambda F, xs: (F[0].apply(xs[0] * xs[1]) ** 2).sum(),
    "muladd": lambda F, xs: (F[1].apply(xs[0], 1.5, xs[1]) ** 2).sum(),
    "sinsquare": lambda F, xs: sum((o * o).sum() for o in F[2].apply(xs[0] * xs[1])),
    "sin_only": lambda F, xs: (F[2].apply(xs[0] * xs[1])[0] ** 3).sum(),
    "relu": lambda F, xs: (F[3].apply(xs[0] - 0.4)[0] ** 2 * xs[1]).sum(),
}


@pytest.mark.parametrize("case", list(CASES))
def test_values_and_first_and_second_order_gradients_match_torch(case):
    fb, ft = functions(bp), functions(torch)
    xb, xt = pair([0.3, -0.7, 1.2])
    yb, yt = pair([0.5, 2.0, -1.1])
    lb, lt = CASES[case](fb, [xb, yb]), CASES[case](ft, [xt, yt])
    close(lb, lt)
    gb = bp.autograd.grad(lb, [xb, yb], create_graph=True)
    gt = torch.autograd.grad(lt, [xt, yt], create_graph=True)
    for b, t in zip(gb, gt):
        close(b, t)
    # Second order: the gradient of a function of the gradients.
    sb = (gb[0] * gb[1]).sum() + (gb[0] ** 2).sum()
    st = (gt[0] * gt[1]).sum() + (gt[0] ** 2).sum()
    hb = bp.autograd.grad(sb, [xb, yb], allow_unused=True)
    ht = torch.autograd.grad(st, [xt, yt], allow_unused=True)
    for b, t in zip(hb, ht):
        if t is None:
            assert b is None or float(b.abs().sum()) == 0.0
        else:
            close(b, t)


def test_backward_accumulates_into_leaves_and_grad_fn_is_named():
    Exp = functions(bp)[0]
    x = bp.tensor([0.0, 1.0], requires_grad=True)
    y = Exp.apply(x)
    assert type(y.grad_fn).__name__ == "ExpBackward" or "ExpBackward" in repr(y.grad_fn)
    y.sum().backward()
    close(x.grad, torch.tensor([1.0, np.e]))


def test_needs_input_grad_matches_torch():
    fb, ft = functions(bp), functions(torch)
    xb, xt = pair([1.0, 2.0])
    yb, yt = pair([3.0, 4.0], requires_grad=False)
    (fb[1].apply(xb, 2.0, yb) ** 2).sum().backward()
    (ft[1].apply(xt, 2.0, yt) ** 2).sum().backward()
    assert fb[4] == ft[4] == [(True, False, False)]
    close(xb.grad, xt.grad)
    assert yb.grad is None


def test_no_graph_without_grad_and_forward_runs_under_no_grad():
    seen = []

    class Probe(bp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            seen.append(bp.is_grad_enabled())
            return x * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = bp.tensor([1.0], requires_grad=True)
    assert Probe.apply(x).requires_grad
    with bp.no_grad():
        assert not Probe.apply(x).requires_grad
    assert not Probe.apply(bp.tensor([1.0])).requires_grad
    assert seen == [False, False, False]


def test_an_exception_in_backward_propagates_with_its_type():
    class Boom(bp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x + 1

        @staticmethod
        def backward(ctx, grad):
            raise ValueError("boom in backward")

    x = bp.tensor([1.0, 2.0], requires_grad=True)
    with pytest.raises(ValueError, match="boom in backward"):
        Boom.apply(x).sum().backward()
    assert x.grad is None


def test_wrong_number_of_gradients_raises_torchs_error():
    def make(m):
        class Two(m.autograd.Function):
            @staticmethod
            def forward(ctx, x):
                return x * 3

            @staticmethod
            def backward(ctx, grad):
                return grad, grad

        return Two

    xt = torch.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients") as torch_error:
        make(torch).apply(xt).sum().backward()
    x = bp.tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="incorrect number of gradients") as error:
        make(bp).apply(x).sum().backward()
    assert "(expected 1, got 2)" in str(error.value) and "(expected 1, got 2)" in str(
        torch_error.value
    )


def test_second_backward_without_retain_graph_raises():
    Exp = functions(bp)[0]
    x = bp.tensor([1.0], requires_grad=True)
    y = Exp.apply(x).sum()
    y.backward(retain_graph=True)
    y.backward()
    close(x.grad, torch.tensor([2 * np.e]))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_once_differentiable_and_setup_context_and_mark_dirty():
    class Square(bp.autograd.Function):
        @staticmethod
        def forward(x):
            return x * x

        @staticmethod
        def setup_context(ctx, inputs, output):
            ctx.save_for_backward(inputs[0])

        @staticmethod
        @bp.autograd.once_differentiable
        def backward(ctx, grad):
            (x,) = ctx.saved_tensors
            return 2 * x * grad

    x = bp.tensor([3.0], requires_grad=True)
    (g,) = bp.autograd.grad(Square.apply(x), x, create_graph=True)
    close(g, torch.tensor([6.0]))
    assert not g.requires_grad

    class Dirty(bp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.mark_dirty(x)
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad

    with pytest.raises(NotImplementedError, match="mark_dirty"):
        Dirty.apply(bp.tensor([1.0], requires_grad=True))


def test_an_input_returned_as_is_is_not_changed():
    class Identity(bp.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return x

        @staticmethod
        def backward(ctx, grad):
            return grad * 5

    x = bp.tensor([1.0, 2.0], requires_grad=True)
    y = Identity.apply(x)
    assert x.grad_fn is None and y.grad_fn is not None
    y.sum().backward()
    close(x.grad, torch.tensor([5.0, 5.0]))


def test_applying_a_function_while_compile_records_raises():
    Exp = functions(bp)[0]
    w = bp.tensor([0.5, 0.25], requires_grad=True)

    def step(x):
        loss = (Exp.apply(x * w)).sum()
        loss.backward()
        return loss

    with pytest.raises(RuntimeError, match="custom autograd function"):
        bp.compile(step)(bp.tensor([1.0, 2.0]))


def test_checkpoint_matches_torch():
    from bprop.utils.checkpoint import checkpoint, checkpoint_sequential
    from torch.utils.checkpoint import checkpoint as torch_checkpoint
    from torch.utils.checkpoint import checkpoint_sequential as torch_sequential

    def f(m, x, y, scale=1.0):
        return (x.tanh() * y).sin() * scale

    xb, xt = pair([0.1, -0.5, 0.9])
    yb, yt = pair([1.5, 0.5, -2.0])
    ob = checkpoint(lambda a, b: f(bp, a, b, scale=2.0), xb, yb, use_reentrant=False)
    ot = torch_checkpoint(lambda a, b: f(torch, a, b, scale=2.0), xt, yt, use_reentrant=False)
    close(ob, ot)
    gb = bp.autograd.grad(ob.sum(), [xb, yb], create_graph=True)
    gt = torch.autograd.grad(ot.sum(), [xt, yt], create_graph=True)
    for b, t in zip(gb, gt):
        close(b, t)
    close(bp.autograd.grad(gb[0].sum(), xb)[0], torch.autograd.grad(gt[0].sum(), xt)[0])

    layers_b = [lambda v: v * 2, lambda v: v.tanh(), lambda v: v.exp(), lambda v: v - 1]
    layers_t = [lambda v: v * 2, lambda v: v.tanh(), lambda v: v.exp(), lambda v: v - 1]
    sb = checkpoint_sequential(layers_b, 2, xb, use_reentrant=False)
    st = torch_sequential(layers_t, 2, xt, use_reentrant=False)
    close(sb, st)
    sb.sum().backward()
    st.sum().backward()
    close(xb.grad, xt.grad)

    net = bp.nn.Sequential(bp.nn.Linear(3, 2), bp.nn.Tanh())
    x = bp.randn(4, 3)
    close(checkpoint_sequential(net, 2, x, use_reentrant=False), torch.tensor(net(x).tolist()))


def test_checkpoint_errors_and_warning_as_torch():
    from bprop.utils.checkpoint import checkpoint

    x = bp.tensor([1.0])
    with pytest.raises(ValueError, match="Unexpected keyword arguments: scale"):
        checkpoint(lambda v, scale: v * scale, x, use_reentrant=True, scale=2.0)
    close(checkpoint(lambda v, scale: v * scale, x, use_reentrant=False, scale=2.0),
          torch.tensor([2.0]))  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        checkpoint(lambda v: v, x)
    assert any("use_reentrant" in str(w.message) for w in caught)

"""bp.compile: a captured training step replays bit for bit like the eager step, records again
for a new input signature, keeps validating data, and refuses what it can't repeat."""

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest
from bprop import nn


def make(optimizer: str):
    bp.manual_seed(1)
    net = nn.Sequential(
        nn.Linear(20, 32), nn.Tanh(), nn.Linear(32, 32), nn.ReLU(), nn.Dropout(0.1),
        nn.Linear(32, 5),
    )  # fmt: skip
    if optimizer == "sgd":
        opt = bp.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = bp.optim.AdamW(net.parameters(), lr=0.01)
    return net, opt


def step_for(net, opt):
    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def batches(count, rows=16, seed=0):
    rng = np.random.default_rng(seed)
    return [
        (bp.tensor(rng.standard_normal((rows, 20)).astype(np.float32)),
         bp.tensor(rng.integers(0, 5, rows)))
        for _ in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_replay_is_bitwise_equal_to_eager_over_100_steps(optimizer):
    data = batches(100)
    net1, opt1 = make(optimizer)
    net2, opt2 = make(optimizer)
    eager, compiled = step_for(net1, opt1), bp.compile(step_for(net2, opt2))
    bp.manual_seed(7)  # dropout draws the same numbers in both runs
    eager_losses = [eager(x, y).item() for x, y in data]
    bp.manual_seed(7)
    compiled_losses = [compiled(x, y).item() for x, y in data]
    assert eager_losses == compiled_losses
    for p, q in zip(net1.parameters(), net2.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    assert compiled.launches > 0


def test_a_new_input_shape_records_again():
    net, opt = make("sgd")
    compiled = bp.compile(step_for(net, opt))
    small, large = batches(1, rows=8)[0], batches(1, rows=24)[0]
    first = compiled(*small)
    assert compiled(*large) is not first  # a second recording with its own outputs
    assert compiled(*small) is first  # the first recording, replayed
    assert len(compiled.signatures) == 2


def test_out_of_range_targets_are_caught_on_replay():
    net, opt = make("sgd")
    compiled = bp.compile(step_for(net, opt))
    x, y = batches(1)[0]
    compiled(x, y)
    bad = bp.tensor(np.full(16, 9))
    with pytest.raises(IndexError, match="target 9 is out of bounds"):
        compiled(x, bad)


@pytest.mark.parametrize(
    "body, message",
    [
        (lambda x: x.sum().item(), r"\.item\(\)"),
        (lambda x: x.numpy(), "numpy"),
        (lambda x: x[x > 0].sum(), "mask"),
        (lambda x: x + bp.tensor([1.0]), "numpy data"),
        (lambda x: float(x.sum()), r"\.item\(\)"),
    ],
    ids=["item", "numpy", "mask", "tensor_from_data", "float"],
)
def test_uncapturable_steps_raise_clear_errors(body, message):
    compiled = bp.compile(body)
    with pytest.raises(RuntimeError, match=message):
        compiled(bp.randn(4))


def test_compile_takes_tensors_only():
    compiled = bp.compile(lambda x: x * 2)
    with pytest.raises(TypeError, match="compile"):
        compiled(3.0)
    np.testing.assert_array_equal(compiled(bp.ones(2)).numpy(), [2.0, 2.0])
    np.testing.assert_array_equal(compiled(bp.full((2,), 3.0)).numpy(), [6.0, 6.0])


def test_two_recordings_of_one_model_stay_bitwise_equal_to_eager():
    # Each recording binds its own gradient buffers; replays must rebind them (see capture.h).
    net1, opt1 = make("sgd")
    net2, opt2 = make("sgd")
    eager, compiled = step_for(net1, opt1), bp.compile(step_for(net2, opt2))
    data = [b for pair in zip(batches(20, rows=16), batches(20, rows=5, seed=1)) for b in pair]
    bp.manual_seed(3)
    first = [eager(x, y).item() for x, y in data]
    bp.manual_seed(3)
    second = [compiled(x, y).item() for x, y in data]
    assert first == second
    for p, q in zip(net1.parameters(), net2.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())


def test_constants_made_inside_the_step_replay_their_values():
    # linspace/arange captured their arguments by reference once: replays read dead memory.
    w = bp.zeros(5, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)

    def step(x):
        opt.zero_grad()
        a, b = bp.linspace(0.0, 1.0, 5), bp.arange(0.0, 2.5, 0.5)
        ((w * x - a - b) ** 2).sum().backward()
        opt.step()
        return a, b

    compiled = bp.compile(step)
    compiled(bp.ones(5))
    a, b = compiled(bp.ones(5))
    np.testing.assert_allclose(a.numpy(), [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(b.numpy(), [0, 0.5, 1.0, 1.5, 2.0])


def test_tensors_from_outside_the_step_are_kept_alive():
    import gc

    holder = {"c": bp.full((6,), 2.0)}
    compiled = bp.compile(lambda x: (x * holder["c"]).sum())
    first = compiled(bp.ones(6)).item()
    holder["c"] = bp.full((6,), 100.0)  # the recorded one is no longer referenced from Python
    gc.collect()
    _ = [bp.randn(6) for _ in range(100)]
    assert compiled(bp.ones(6)).item() == first == 12.0


def test_optimizer_dropped_after_recording_stays_alive_for_replay():
    import gc

    p = bp.ones(3, requires_grad=True)
    holder = {"opt": bp.optim.Adam([p], lr=0.1)}

    def step(x):
        holder["opt"].zero_grad()
        (p * x).sum().backward()
        holder["opt"].step()
        return p

    compiled = bp.compile(step)
    compiled(bp.ones(3))
    holder["opt"] = None
    gc.collect()
    np.testing.assert_allclose(compiled(bp.ones(3)).detach().numpy(), [0.8, 0.8, 0.8], rtol=1e-6)


def test_zero_d_bool_index_and_nested_replay_are_refused():
    with pytest.raises(RuntimeError, match="0-d bool"):
        bp.compile(lambda x: x[x.sum() > 0])(bp.ones(3))
    inner = bp.compile(lambda x: x * 2)
    inner(bp.ones(2))
    with pytest.raises(RuntimeError, match="another capture"):
        bp.compile(lambda x: inner(x) + 1)(bp.ones(2))


@pytest.mark.parametrize("zero_grad", ["optimizer", "module"])
def test_zero_grad_replays_for_a_parameter_that_had_no_grad_when_recorded(zero_grad):
    # Code outside the recording (a hook, DistributedDataParallel's sync) may give a
    # parameter backward never reaches a .grad between replays: zero_grad must drop it.
    used, unused = nn.Linear(2, 1), nn.Linear(2, 1)
    model = nn.Sequential(used, unused)  # a container only: the step calls `used`
    opt = bp.optim.SGD(model.parameters(), lr=0.1)

    @bp.compile
    def step(x):
        (model if zero_grad == "module" else opt).zero_grad()
        used(x).sum().backward()
        opt.step()

    step(bp.ones(4, 2))
    assert unused.weight.grad is None
    for _ in range(2):
        before = unused.weight.detach().numpy().copy()
        unused.weight.grad = bp.ones(1, 2)  # as if set outside the step
        step(bp.ones(4, 2))
        assert unused.weight.grad is None
        np.testing.assert_array_equal(unused.weight.detach().numpy(), before)


# bp.compile(model) and torch.compile's keywords (issue 15).


def test_compiled_module_passes_through_to_the_model_as_pytorchs_optimized_module():
    bp.manual_seed(3)
    net = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    compiled = bp.compile(net)
    assert isinstance(compiled, nn.Module) and compiled._orig_mod is net
    x = bp.randn(5, 4)
    compiled.eval()
    assert not net.training and not compiled.training
    np.testing.assert_array_equal(compiled(x).detach().numpy(), net(x).detach().numpy())
    compiled.train()
    assert net.training and all(m.training for m in net.modules())
    net.eval()  # the mode is the model's, whichever object sets it
    assert not compiled.training
    assert [p is q for p, q in zip(compiled.parameters(), net.parameters())] == [True] * 4
    net.note = "kept"
    assert compiled.note == "kept"  # attributes the wrapper lacks come from the model
    assert compiled._modules["_orig_mod"] is net
    names = [name for name, _ in compiled.named_parameters()]
    assert names == ["_orig_mod." + name for name, _ in net.named_parameters()]
    # as in PyTorch, state_dict keys carry the _orig_mod. prefix
    assert list(compiled.state_dict()) == names
    other = nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5), nn.Linear(3, 2))
    other.load_state_dict(compiled._orig_mod.state_dict())
    twin = bp.compile(other)
    twin.load_state_dict(compiled.state_dict())
    twin.eval()
    np.testing.assert_array_equal(twin(x).detach().numpy(), net(x).detach().numpy())
    assert "OptimizedModule" in repr(compiled) and "(_orig_mod): Sequential" in repr(compiled)


def test_compiled_module_state_dict_keys_are_pytorchs():
    # torch 2.13: torch.compile(nn.Sequential(Linear, ReLU, Linear)).state_dict() has these
    # keys (asserting it here against torch itself costs 8 s of torch._dynamo import).
    ours = bp.compile(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
    assert list(ours.state_dict()) == [
        "_orig_mod.0.weight", "_orig_mod.0.bias", "_orig_mod.2.weight", "_orig_mod.2.bias",
    ]  # fmt: skip
    assert type(ours).__name__ == "OptimizedModule"


def test_a_compiled_module_trains_inside_a_compiled_step():
    net1, opt1 = make("sgd")
    net2, opt2 = make("sgd")
    eager = step_for(net1, opt1)
    compiled = bp.compile(step_for(bp.compile(net2), opt2))
    bp.manual_seed(4)
    first = [eager(x, y).item() for x, y in batches(5)]
    bp.manual_seed(4)
    second = [compiled(x, y).item() for x, y in batches(5)]
    assert first == second


def test_torch_compile_keywords_and_decorator_form():
    @bp.compile(mode="max-autotune", fullgraph=True, dynamic=False, backend="inductor")
    def double(x):
        return x * 2

    assert isinstance(double, bp.compile.__globals__["CompiledStep"])
    np.testing.assert_array_equal(double(bp.arange(3)).numpy(), [0, 2, 4])
    np.testing.assert_array_equal(double(bp.arange(3) + 1).numpy(), [2, 4, 6])  # replayed
    net = nn.Linear(2, 2)
    assert bp.compile(net, disable=True) is net
    decorated = bp.compile(mode="reduce-overhead")(net)
    assert decorated._orig_mod is net
    # PyTorch's errors, types and messages (torch.compile raises the same before compiling)
    with pytest.raises(RuntimeError, match="Unrecognized mode=fastest"):
        bp.compile(net, mode="fastest")
    with pytest.raises(RuntimeError, match="Either mode or options"):
        bp.compile(net, mode="default", options={"trace.enabled": True})
    with pytest.raises(TypeError, match=r"\[compile\] expects an nn.Module or a step"):
        bp.compile(42)


def test_clip_grad_norm_records_and_replays_like_eager_steps():
    # The clip coefficient is a tensor: replays with different gradients (some clipped,
    # some not) must match eager steps, which a frozen Python float would not.
    def run(compiled):
        bp.manual_seed(2)
        net = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
        opt = bp.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)

        def step(x, y):
            opt.zero_grad()
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            norm = nn.utils.clip_grad_norm_(net.parameters(), max_norm=0.5)
            opt.step()
            return loss, norm

        step = bp.compile(step) if compiled else step
        rng = np.random.default_rng(0)
        out = []
        for i in range(8):
            scale = 10.0 if i % 2 else 0.01  # large inputs: clipped; tiny ones: not
            x = bp.tensor((rng.standard_normal((10, 6)) * scale).astype(np.float32))
            y = bp.tensor(rng.integers(0, 3, 10))
            loss, norm = step(x, y)
            out.append((loss.item(), norm.item()))
        return out, [p.detach().numpy().copy() for p in net.parameters()]

    (eager, eager_params), (replayed, replayed_params) = run(False), run(True)
    norms = [n for _, n in eager]
    assert min(norms) < 0.5 < max(norms)  # both regimes were exercised
    np.testing.assert_allclose(replayed, eager, rtol=1e-6)
    for p, q in zip(eager_params, replayed_params):
        np.testing.assert_allclose(p, q, rtol=1e-6, atol=1e-7)


# nn.utils: the clipping a compiled step may record, and its neighbours, against PyTorch.


def test_clip_grad_value_and_norm_options_match_pytorch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    rows = [rng.standard_normal(5) * 3, rng.standard_normal((2, 3)) * 3]
    for norm_type in (2.0, 1.0, 3.0, 0.5, 0, float("inf"), -float("inf")):
        ours = [bp.zeros(*r.shape, dtype=bp.float64, requires_grad=True) for r in rows]
        theirs = [torch.zeros(r.shape, dtype=torch.float64, requires_grad=True) for r in rows]
        for p, q, r in zip(ours, theirs, rows):
            p.grad, q.grad = bp.tensor(r), torch.from_numpy(r.copy())
        total = nn.utils.clip_grad_norm_(iter(ours), 2.0, norm_type=norm_type, foreach=True)
        expected = torch.nn.utils.clip_grad_norm_(iter(theirs), 2.0, norm_type=norm_type)
        assert total.shape == () and total.item() == pytest.approx(expected.item(), rel=1e-12)
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
    p, q = bp.zeros(6, requires_grad=True), torch.zeros(6, requires_grad=True)
    values = np.array([-3.0, -0.5, 0.0, 0.2, 1.5, 9.0], np.float32)
    p.grad, q.grad = bp.tensor(values), torch.from_numpy(values.copy())
    assert nn.utils.clip_grad_value_(p, 1.0) is None
    torch.nn.utils.clip_grad_value_(q, 1.0)
    np.testing.assert_array_equal(p.grad.numpy(), q.grad.numpy())
    assert nn.utils.clip_grad_norm_([bp.zeros(2, requires_grad=True)], 1.0).item() == 0.0


def test_clip_grad_norm_refuses_a_nonfinite_norm_when_asked():
    p = bp.zeros(2, requires_grad=True)
    p.grad = bp.tensor([1.0, float("inf")])
    with pytest.raises(RuntimeError, match=r"\[clip_grad_norm_\] The total norm of order 2.0"):
        nn.utils.clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.numpy(), [1.0, float("inf")])  # unchanged
    assert np.isinf(nn.utils.clip_grad_norm_([p], 1.0).item())


def test_parameters_to_vector_and_back_match_pytorch():
    torch = pytest.importorskip("torch")
    net = nn.Sequential(nn.Linear(3, 2), nn.Linear(2, 1))
    vec = nn.utils.parameters_to_vector(net.parameters())
    twin = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Linear(2, 1))
    with torch.no_grad():
        for q, p in zip(twin.parameters(), net.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    expected = torch.nn.utils.parameters_to_vector(twin.parameters())
    np.testing.assert_array_equal(vec.detach().numpy(), expected.detach().numpy())
    vec.sum().backward()  # differentiable, as PyTorch's
    assert all(np.all(p.grad.numpy() == 1) for p in net.parameters())
    nn.utils.vector_to_parameters(bp.arange(11).float(), net.parameters())
    np.testing.assert_array_equal(net[0].weight.detach().numpy(), [[0, 1, 2], [3, 4, 5]])
    np.testing.assert_array_equal(net[1].bias.detach().numpy(), [10])
    with pytest.raises(TypeError, match="expected a Tensor"):
        nn.utils.vector_to_parameters([1.0], net.parameters())
    with pytest.raises(ValueError, match=r"shape \(5,\); the parameters hold 11"):
        nn.utils.vector_to_parameters(bp.zeros(5), net.parameters())


def test_a_replay_reuses_the_buffers_of_freed_intermediates(monkeypatch):
    # Note [Capture memory]: ten intermediates of 256 KiB, each freed after the next is made,
    # share two or three buffers, as in eager mode, instead of one each (the program as
    # recorded: BPROP_FUSION=0). Fused into one chain, the intermediates never reach memory,
    # and their slots get no buffer at all: one 256 KiB buffer is left, the chain's result.
    x = bp.randn(256, 256)

    def chain(x):
        y = x
        for i in range(10):
            y = (y * 0.5 + float(i)).tanh()
        return y.sum()

    eager = chain(x).item()
    block = 256 * 256 * 4
    for fusion, least, most in (("0", 2 * block, 4 * block), ("1", block, block + 4096)):
        monkeypatch.setenv("BPROP_FUSION", fusion)
        compiled = bp.compile(chain)
        assert compiled(x).item() == eager
        assert least <= compiled.buffer_bytes <= most, (fusion, compiled.buffer_bytes)
        x2 = bp.randn(256, 256)
        assert compiled(x2).item() == chain(x2).item()


def test_state_made_by_the_recorded_call_keeps_its_value_from_replay_to_replay():
    # The momentum buffers SGD makes in its first step, which is the recorded call, take the
    # buffers of the step's freed intermediates of their size (64 x 64 here) as in eager mode;
    # a replay writes those intermediates again before the update reads the momentum, so the
    # plan (Note [Capture memory]) gives each tensor alive at the end a buffer of its own.
    def make():
        bp.manual_seed(2)
        weight = bp.randn(64, 64, requires_grad=True)
        opt = bp.optim.SGD([weight], lr=0.01, momentum=0.9)

        def step(x):
            opt.zero_grad()
            hidden = (x @ weight).tanh() * 2.0
            loss = (hidden.exp() - hidden).mean()
            loss.backward()
            opt.step()
            return loss

        return step, weight

    rng = np.random.default_rng(3)
    inputs = [bp.tensor(rng.standard_normal((64, 64)).astype(np.float32)) for _ in range(6)]
    (eager_step, w1), (compiled_step, w2) = make(), make()
    compiled_step = bp.compile(compiled_step)
    eager = [eager_step(x).item() for x in inputs]
    compiled = [compiled_step(x).item() for x in inputs]
    assert compiled == eager
    assert np.array_equal(w1.detach().numpy(), w2.detach().numpy())


@pytest.mark.parametrize("outside_zero", ["set_to_none", "in_place"])
def test_gradients_accumulated_over_calls_match_eager(outside_zero):
    # Gradient accumulation: the step only adds to .grad; the optimizer steps and zeroes
    # outside it every few calls. Recorded with .grad None, a replay used to bind fresh
    # gradients where eager mode adds (Note [A .grad from before the recording]).
    def run(compiled):
        net, opt = make("sgd")

        def micro_step(x, y):
            (F.cross_entropy(net(x), y) / 3).backward()

        step = bp.compile(micro_step) if compiled else micro_step
        seen = []
        for i, (x, y) in enumerate(batches(12)):
            step(x, y)
            seen.append([p.grad.numpy().copy() for p in net.parameters()])
            if i % 3 == 2:
                opt.step()
                opt.zero_grad(set_to_none=outside_zero == "set_to_none")
        return seen, [p.detach().numpy().copy() for p in net.parameters()], step

    eager_grads, eager_params, _ = run(False)
    grads, params, step = run(True)
    for ours, theirs in zip(grads, eager_grads):
        for a, b in zip(ours, theirs):
            assert np.array_equal(a, b)
    for a, b in zip(params, eager_params):
        assert np.array_equal(a, b)
    # one recording per state of .grad the step found: None (or zeros in place) and its own
    assert sum(len(v) for v in step._recordings.values()) == 2


def test_a_capture_refuses_to_replay_when_a_grad_it_read_was_replaced():
    x = bp.tensor(np.arange(3.0, dtype=np.float32), requires_grad=True)
    capture = bp._core._Capture()
    capture.record(lambda: (x * 2).sum().backward())  # .grad None: bound fresh
    # now .grad is the gradient the recording bound: eager mode would add to it
    assert not capture.grads_as_recorded()
    with pytest.raises(RuntimeError, match=r"\[capture\] a parameter's .grad is not what it was"):
        capture.replay()
    x.grad = None
    assert capture.grads_as_recorded()
    capture.replay()
    assert np.array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])

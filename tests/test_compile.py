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

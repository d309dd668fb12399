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
    assert len(compiled._recordings) == 2


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

"""A captured step as a program (Note [Captured programs]) and the passes that rewrite it
(Note [Program passes]): dead launches dropped, elementwise chains fused, the memory plan
stretched to match; results bit for bit those of eager mode, and of BPROP_FUSION=0."""

import pathlib
import re
import runpy

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest
from bprop import nn

rng = np.random.default_rng(0)


def report(step) -> tuple[int, int, int, int, int, int]:
    """(recorded, dropped, fused, forwarded, pieces, epilogues) from the first line of
    step.describe()."""
    first = step.describe().splitlines()[0]
    found = re.match(
        r"# (\d+) instructions recorded, (\d+) unused launches dropped, (\d+) elementwise"
        r" launches fused into the next, (\d+) copies forwarded, (\d+) pieces added in place,"
        r" (\d+) elementwise launches joined into a product$",
        first,
    )
    assert found, first
    return tuple(int(g) for g in found.groups())


def mlp(seed=3, dtype=bp.float32):
    bp.manual_seed(seed)
    net = nn.Sequential(nn.Linear(24, 64), nn.ReLU(), nn.Linear(64, 64), nn.Tanh(),
                        nn.Linear(64, 6)).to(dtype)  # fmt: skip
    opt = bp.optim.SGD(net.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-3)

    def step(x, y):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y) + 1e-3 * (net[0].weight * net[0].weight).sum()
        loss.backward()
        opt.step()
        return loss

    return net, step


def mlp_batches(count, dtype=bp.float32):
    return [
        (bp.tensor(rng.standard_normal((32, 24))).to(dtype), bp.tensor(rng.integers(0, 6, 32)))
        for _ in range(count)
    ]


def train(captured: bool, data, dtype=bp.float32):
    net, step = mlp(dtype=dtype)
    run = bp.compile(step) if captured else step
    losses = [run(x, y).item() for x, y in data]
    return losses, [p.detach().numpy().copy() for p in net.parameters()], run


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_a_fused_mlp_step_gives_the_eager_bits_over_50_steps(dtype):
    data = mlp_batches(50, dtype)
    eager_losses, eager_params, _ = train(False, data, dtype)
    losses, params, step = train(True, data, dtype)
    assert losses == eager_losses
    for a, b in zip(eager_params, params):
        assert np.array_equal(a, b)
    recorded, dropped, fused, forwarded, pieces, epilogues = report(step)
    assert fused >= 2  # at least the two bias + activation pairs
    assert forwarded >= 3  # each weight's gradient written where .grad keeps it
    assert epilogues >= 2  # ... which then join the products they read
    assert "gemm_chain" in step.describe()
    assert step.launches == recorded - dropped - fused - forwarded - pieces - epilogues


def test_bprop_fusion_0_records_the_program_as_it_ran(monkeypatch):
    data = mlp_batches(5)
    _, fused_params, fused_step = train(True, data)
    monkeypatch.setenv("BPROP_FUSION", "0")
    _, plain_params, plain_step = train(True, data)
    recorded, dropped, fused, forwarded, pieces, epilogues = report(plain_step)
    assert (dropped, fused, forwarded, pieces, epilogues) == (0, 0, 0, 0, 0)
    assert "elementwise_chain" not in plain_step.describe()
    assert "gemm_chain" not in plain_step.describe()
    assert plain_step.launches == recorded > fused_step.launches
    for a, b in zip(fused_params, plain_params):
        assert np.array_equal(a, b)


def test_a_fused_step_gives_the_same_bits_for_any_thread_count():
    data = mlp_batches(10)
    before = bp.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            bp.set_num_threads(threads)
            results.append(train(True, data)[:2])
    finally:
        bp.set_num_threads(before)
    for losses, params in results[1:]:
        assert losses == results[0][0]
        for a, b in zip(results[0][1], params):
            assert np.array_equal(a, b)


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
def test_chains_over_rows_scalars_and_odd_sizes_match_eager(dtype):
    # 37 x 131: rows that are not a multiple of a block or of a vector; a bias row, a
    # scalar first operand (the scalar path of binary), unary steps with vector versions
    bias = bp.tensor(rng.standard_normal(131)).to(dtype)

    def body(x, z):
        a = (x * 0.5 + bias).tanh()
        b = (2.0 - a).exp() * z
        return (b / (1.0 + a.abs())).sqrt().neg() - bias

    step = bp.compile(body)
    for _ in range(3):
        x = bp.tensor(rng.standard_normal((37, 131))).to(dtype)
        z = bp.tensor(rng.standard_normal((37, 131))).to(dtype)
        out = step(x, z)
        assert np.array_equal(out.numpy(), body(x, z).numpy(), equal_nan=True)
    assert report(step)[2] >= 5
    assert step.describe().count("elementwise_chain") == 1  # one pass for the whole body


def test_unused_work_is_dropped_and_what_is_returned_is_kept():
    w = bp.tensor(rng.standard_normal((8, 8)).astype(np.float32), requires_grad=True)

    def step(x):
        unused = (x @ x).exp() + 1.0  # nothing reads it and it is not returned
        del unused
        kept = (x * 3.0).sin()
        w.grad = None
        (w * x).sum().backward()
        return kept

    compiled = bp.compile(step)
    x = bp.tensor(rng.standard_normal((8, 8)).astype(np.float32))
    assert np.array_equal(compiled(x).numpy(), (x * 3.0).sin().numpy())
    dropped = report(compiled)[1]
    assert dropped >= 2  # the gemm and the exp + add chain
    assert "gemm" not in compiled.describe()
    x2 = bp.tensor(rng.standard_normal((8, 8)).astype(np.float32))
    assert np.array_equal(compiled(x2).numpy(), (x2 * 3.0).sin().numpy())
    assert np.array_equal(w.grad.numpy(), x2.numpy())


def test_a_moved_launch_keeps_the_buffer_of_an_input_freed_while_recording():
    # v = u + 1 joins exp(v), so it runs after w was made; while recording, w took the buffer
    # u gave back. The plan must give w another buffer, or the chain reads w's values as u.
    m1 = bp.tensor(rng.standard_normal((16, 16)).astype(np.float32))
    m2 = bp.tensor(rng.standard_normal((16, 16)).astype(np.float32))

    def body(x, y):
        u = x @ m1
        v = u + 1.0
        del u
        w = y @ m2
        return v.exp() * w

    step = bp.compile(body)
    for _ in range(3):
        x = bp.tensor(rng.standard_normal((16, 16)).astype(np.float32))
        y = bp.tensor(rng.standard_normal((16, 16)).astype(np.float32))
        assert np.array_equal(step(x, y).numpy(), body(x, y).numpy())
    assert report(step)[2] >= 2


def test_the_gpt_step_fuses_and_stays_bitwise_equal_to_unfused(monkeypatch):
    path = pathlib.Path(__file__).resolve().parents[1] / "examples" / "char_gpt.py"
    gpt = runpy.run_path(str(path), run_name="small_gpt")["GPT"]
    tokens = (rng.integers(0, 17, (20, 4, 1)) + np.arange(17)) % 17
    data = [(bp.tensor(t[:, :16]), bp.tensor(t[:, 1:])) for t in tokens]
    results = []
    for fusion in ("1", "0"):
        monkeypatch.setenv("BPROP_FUSION", fusion)
        bp.manual_seed(7)
        model = gpt(vocab_size=17, block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
        optimizer = bp.optim.AdamW(model.parameters(), lr=1e-2)

        @bp.compile
        def step(x, y, model=model, optimizer=optimizer):
            optimizer.zero_grad()
            loss = model(x, y)
            loss.backward()
            optimizer.step()
            return loss

        losses = [step(x, y).item() for x, y in data]
        results.append((losses, [p.detach().numpy().copy() for p in model.parameters()], step))
    (fused_losses, fused_params, fused), (plain_losses, plain_params, plain) = results
    assert fused_losses == plain_losses
    for a, b in zip(fused_params, plain_params):
        assert np.array_equal(a, b)
    assert fused.launches < plain.launches
    # per layer the two residual adds join their projections, gelu's slope the gradient's
    assert report(fused)[5] == 3 * 2


@pytest.mark.parametrize("dtype", [bp.float32, bp.float64])
@pytest.mark.parametrize("threads", [1, 2, 3])
def test_products_take_their_elementwise_epilogue_with_eager_bits(dtype, threads):
    # Note [Program passes], 5, on every path of Note [GEMM epilogues]: rows split between
    # threads, k past a block and several blocks of rows (300 x 40 x 700); columns split
    # (8 x 400 x 700); one thread's whole product (300 x 40 x 40); a small product (5 x 4 x 3);
    # k split in two groups (40 x 100 x 700, Note [Products split along k]).
    def arrays(*shape):
        return bp.tensor(rng.standard_normal(shape)).to(dtype)

    w1, bias, w2 = arrays(40, 700), arrays(40), arrays(40, 40)
    w3, w4 = arrays(700, 400), arrays(3, 4)

    def body(x, y, t, s, e):
        h = F.gelu(x @ w1.t() + bias)  # a bias added to a product, gelu after it
        r = y + h @ w2  # a residual added to a product
        v = (t @ w3).relu()  # an activation
        z = (s @ w4).tanh() * 2.0  # a chain of two steps
        u = s @ w4  # read twice: stays a product of its own
        p = (e[:, :40].t() @ e[:, 40:]).relu()  # a weight gradient's shape
        return r, v, z, u * u.sum(), p

    before = bp.get_num_threads()
    bp.set_num_threads(threads)
    try:
        step = bp.compile(body)
        for _ in range(3):
            inputs = (
                arrays(300, 700),
                arrays(300, 40),
                arrays(8, 700),
                arrays(5, 3),
                arrays(700, 140),
            )
            got = [t.numpy().copy() for t in step(*inputs)]
            want = [t.numpy() for t in body(*inputs)]
            for g, w in zip(got, want):
                assert np.array_equal(g, w)
    finally:
        bp.set_num_threads(before)
    assert report(step)[5] == 5
    assert step.describe().count("gemm_chain") == 5


def test_a_product_returned_or_read_twice_keeps_its_own_launch():
    w = bp.tensor(rng.standard_normal((16, 16)).astype(np.float32))

    def body(x, y):
        kept = x @ w  # returned: its values must reach the caller as they are
        twice = y @ w  # read by two launches
        return kept, kept + 1.0, twice * twice.sum()

    step = bp.compile(body)
    for _ in range(2):
        x, y = (bp.tensor(rng.standard_normal((16, 16)).astype(np.float32)) for _ in range(2))
        for got, want in zip(step(x, y), body(x, y)):
            assert np.array_equal(got.numpy(), want.numpy())
    assert report(step)[5] == 0
    assert "gemm_chain" not in step.describe()


def test_profile_times_each_kind_of_instruction():
    data = mlp_batches(2)
    _, step = mlp()
    step = bp.compile(step)
    with pytest.raises(RuntimeError, match="not been called"):
        step.profile()
    step(*data[0])
    rows = step.profile(replays=3)
    names = [name for name, _, _ in rows]
    assert {"gemm", "SGD.step", "cross_entropy_forward"} <= set(names)
    assert len(names) == len(set(names))
    assert sum(count for _, count, _ in rows) == step.launches
    assert all(ms >= 0 for _, _, ms in rows) and sum(ms for _, _, ms in rows) > 0
    assert [ms for _, _, ms in rows] == sorted((ms for _, _, ms in rows), reverse=True)
    with pytest.raises(ValueError, match="at least one replay"):
        step.profile(0)
    with pytest.raises(TypeError, match="replays must be an int"):
        step.profile(2.5)


def test_profile_per_launch_times_each_instruction_in_program_order():
    data = mlp_batches(2)
    _, step = mlp()
    step = bp.compile(step)
    step(*data[0])
    rows = step.profile(replays=3, per_launch=True)
    program = [line for line in step.describe().splitlines() if not line.startswith("#")]
    assert [line for line, _ in rows] == program
    assert len(rows) == step.launches
    assert all(ms >= 0 for _, ms in rows) and sum(ms for _, ms in rows) > 0
    assert any(line.startswith("gemm(") for line, _ in rows)
    # the kinds' totals are the launches' sums (timed over other replays: only the counts agree)
    by_kind = {name: count for name, count, _ in step.profile(replays=1)}
    counted = {}
    for line, _ in rows:
        name = line.split("(")[0].split(" ")[0]
        counted[name] = counted.get(name, 0) + 1
    assert counted == by_kind
    with pytest.raises(ValueError, match="at least one replay"):
        step.profile(0, per_launch=True)
    with pytest.raises(TypeError, match="per_launch must be a bool"):
        step.profile(2, per_launch="yes")


@pytest.mark.parametrize("used", [(0, 1, 2), (0, 2)])
def test_the_gradient_of_split_pieces_adds_in_place_with_eager_bits_and_signed_zeros(used):
    # q, k, v split off one tensor: their gradients arrive zero-padded and are summed. The
    # pass adds each piece into one zero-filled sum instead, or, where the pieces cover it,
    # writes each piece plus zero into it without a zero fill; -0 pieces must come out +0,
    # as 0 + -0 does in eager mode.
    weights = rng.standard_normal((3, 5, 4)).astype(np.float32)
    weights[0, 1, 2] = weights[2, 0, 0] = -0.0
    w = [bp.tensor(x) for x in weights]
    x = bp.tensor(rng.standard_normal((5, 12)).astype(np.float32), requires_grad=True)

    def step(scale):
        x.grad = None
        pieces = x.split(4, dim=1)
        sum(((pieces[i] * w[i]) * scale).sum() for i in used).backward()
        return x.grad

    compiled = bp.compile(step)
    for value in (1.0, 2.5):
        scale = bp.tensor(value)
        got = compiled(scale).numpy().copy()
        want = step(scale).numpy()
        assert np.array_equal(got, want)
        assert np.array_equal(np.signbit(got), np.signbit(want))
        assert want[1, 2] == want[0, 8] == 0 and not np.signbit(want[[1, 0], [2, 8]]).any()
        if used == (0, 2):
            assert not want[:, 4:8].any()  # the unused piece's gradient: zeros
    assert report(compiled)[4] == len(used)
    program = compiled.describe()
    if len(used) == 3:  # covered: written as piece + 0, nothing zero-filled
        assert "zero_bytes" not in program and "add_scaled" not in program
        assert program.count("binary(0, 2, [5,4]") == 3
    else:
        assert "zero_bytes" in program and program.count("add_scaled") == 2


def test_overlapping_pieces_are_summed_as_recorded():
    x = bp.tensor(rng.standard_normal((4, 6)).astype(np.float32), requires_grad=True)
    a = bp.tensor(rng.standard_normal((4, 4)).astype(np.float32))
    b = bp.tensor(rng.standard_normal((4, 3)).astype(np.float32))

    def step():
        x.grad = None
        ((x[:, :4] * a).sum() + (x[:, 3:] * b).sum()).backward()  # column 3 in both
        return x.grad

    compiled = bp.compile(step)
    assert np.array_equal(compiled().numpy().copy(), step().numpy())
    assert report(compiled)[4] == 0


def test_an_intermediate_also_read_as_a_row_is_not_fused_away():
    def body(x):
        y = x.exp()
        return y + y[0]  # y whole, and its first row broadcast

    step = bp.compile(body)
    for _ in range(3):
        x = bp.tensor(rng.standard_normal((4, 3)).astype(np.float32))
        assert np.array_equal(step(x).numpy(), body(x).numpy())


def test_a_copy_into_a_tensor_from_outside_the_step_is_not_forwarded_past_a_read_of_it():
    buf = bp.tensor(np.arange(40, dtype=np.float32))
    view = buf[10:20]

    def body(x):
        y = x * 2.0
        total = buf.sum()  # reads all of buf, before the assignment below
        bp._core._assign(view, y)
        return total * 1.0

    step = bp.compile(body)
    expected = []
    for value in (1.0, 2.0, 3.0):
        expected.append(float(buf.sum().item()))
        assert step(bp.full((10,), value)).item() == expected[-1]
        assert np.array_equal(view.numpy(), np.full(10, 2 * value, np.float32))


def test_a_sum_that_reads_a_piece_twice_is_not_rewritten():
    w = bp.tensor(rng.standard_normal(6).astype(np.float32))

    def body(x):
        x = x.detach().requires_grad_()
        loss = (x[:3] * w[:3]).sum() + (x[3:] * w[3:]).sum()
        (g,) = bp.autograd.grad(loss, [x])
        return g + g

    step = bp.compile(body)
    for _ in range(3):
        x = bp.tensor(rng.standard_normal(6).astype(np.float32))
        assert np.array_equal(step(x).numpy(), body(x).numpy())
        assert np.array_equal(step(x).numpy(), 2 * w.numpy())

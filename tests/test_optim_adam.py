"""Adam, AdamW, optimizer state dicts and learning-rate schedulers, step by step against
PyTorch (skipped without torch) and by their definitions."""

import bprop as bp
import numpy as np
import pytest


def loss_of(w):
    return (w * w * w).sum() + (w * 2).sum()


@pytest.mark.parametrize(
    "name, options",
    [
        ("Adam", {}),
        ("Adam", {"weight_decay": 0.1}),
        ("AdamW", {}),
        ("AdamW", {"weight_decay": 0.3, "betas": (0.8, 0.9), "eps": 1e-6}),
    ],
    ids=["adam", "adam_l2", "adamw", "adamw_custom"],
)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_adam_matches_pytorch_step_by_step(name, options, dtype):
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(0).standard_normal((3, 4)).astype(dtype)
    wb = bp.tensor(w0, requires_grad=True)
    wt = torch.tensor(w0, requires_grad=True)
    ob = getattr(bp.optim, name)([wb], lr=0.01, **options)
    ot = getattr(torch.optim, name)([wt], lr=0.01, **options)
    tolerance = 1e-6 if dtype == "float32" else 1e-13
    for _ in range(25):
        for w, opt in ((wb, ob), (wt, ot)):
            opt.zero_grad()
            loss_of(w).backward()
            opt.step()
        np.testing.assert_allclose(wb.detach().numpy(), wt.detach().numpy(), rtol=tolerance,
                                   atol=tolerance)  # fmt: skip


def test_adam_first_step_by_definition():
    w = bp.tensor([2.0], dtype=bp.float64, requires_grad=True)
    opt = bp.optim.Adam([w], lr=0.1)
    (w * w).sum().backward()  # g = 4
    opt.step()
    # m = 0.4, v = 0.016; m_hat = 4, v_hat = 16: w -= 0.1 * 4 / (4 + 1e-8)
    assert w.item() == pytest.approx(2.0 - 0.1 * 4 / (4 + 1e-8), rel=1e-14)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"lr": -1.0}, "learning rate"),
        ({"betas": (1.0, 0.999)}, "beta parameter at index 0"),
        ({"betas": (0.9, -0.1)}, "beta parameter at index 1"),
        ({"eps": -1e-8}, "epsilon"),
        ({"weight_decay": -0.1}, "weight_decay"),
    ],
)
def test_adam_rejects_bad_hyper_parameters(options, message):
    with pytest.raises(ValueError, match=message):
        bp.optim.Adam([bp.ones(2, requires_grad=True)], **options)


def test_adam_rejects_non_leaf_parameters():
    x = bp.ones(2, requires_grad=True)
    with pytest.raises(ValueError, match="non-leaf"):
        bp.optim.Adam([x * 2])


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_optimizer_state_dict_round_trip_continues_identically(name):
    def make():
        w = bp.tensor(np.linspace(-1, 1, 6), requires_grad=True)
        extra = {"momentum": 0.9} if name == "SGD" else {}
        return w, getattr(bp.optim, name)([w], lr=0.05, **extra)

    w1, o1 = make()
    for _ in range(3):
        o1.zero_grad()
        loss_of(w1).backward()
        o1.step()
    w2, o2 = make()
    with bp.no_grad():
        w2.copy_(w1)
    o2.load_state_dict(o1.state_dict())
    for w, o in ((w1, o1), (w2, o2)):
        for _ in range(3):
            o.zero_grad()
            loss_of(w).backward()
            o.step()
    np.testing.assert_array_equal(w1.detach().numpy(), w2.detach().numpy())


def test_failed_optimizer_load_changes_nothing():
    w = bp.ones(3, requires_grad=True)
    opt = bp.optim.Adam([w], lr=0.1)
    opt.zero_grad()
    (w * w).sum().backward()
    opt.step()
    before = opt.state_dict()
    bad = opt.state_dict()
    bad["state"][0]["exp_avg"] = bp.zeros(5)
    bad["param_groups"][0]["lr"] = 0.5
    with pytest.raises(ValueError, match="exp_avg"):
        opt.load_state_dict(bad)
    assert opt.lr == 0.1
    np.testing.assert_array_equal(
        opt.state_dict()["state"][0]["exp_avg"].numpy(), before["state"][0]["exp_avg"].numpy()
    )


def test_param_groups_lr_writes_reach_the_optimizer():
    w = bp.ones(1, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    for group in opt.param_groups:
        group["lr"] = 0.5
    assert opt.lr == 0.5
    opt.zero_grad()
    w.sum().backward()
    opt.step()
    assert w.item() == pytest.approx(0.5)


@pytest.mark.parametrize("which", ["step", "cosine"])
def test_schedulers_match_pytorch(which):
    torch = pytest.importorskip("torch")
    ob = bp.optim.SGD([bp.ones(2, requires_grad=True)], lr=0.1)
    ot = torch.optim.SGD([torch.ones(2, requires_grad=True)], lr=0.1)
    if which == "step":
        sb = bp.optim.lr_scheduler.StepLR(ob, step_size=3, gamma=0.5)
        st = torch.optim.lr_scheduler.StepLR(ot, step_size=3, gamma=0.5)
    else:
        sb = bp.optim.lr_scheduler.CosineAnnealingLR(ob, T_max=7, eta_min=0.01)
        st = torch.optim.lr_scheduler.CosineAnnealingLR(ot, T_max=7, eta_min=0.01)
    for _ in range(16):
        ob.step()
        ot.step()
        sb.step()
        st.step()
        assert sb.get_last_lr()[0] == pytest.approx(st.get_last_lr()[0], rel=1e-12, abs=1e-15)


def test_optimizers_are_freed():
    import gc
    import weakref

    p = bp.ones(3, requires_grad=True)
    for cls in (bp.optim.SGD, bp.optim.Adam):
        ref = weakref.ref(cls([p], lr=0.1))
        gc.collect()
        assert ref() is None


def test_hyper_parameters_set_through_param_groups_and_state_dicts_take_effect():
    torch = pytest.importorskip("torch")
    w0 = np.linspace(-1, 1, 4)
    ours, theirs = bp.tensor(w0, requires_grad=True), torch.tensor(w0, requires_grad=True)
    ob, ot = bp.optim.SGD([ours], lr=0.1), torch.optim.SGD([theirs], lr=0.1, momentum=0.9)
    ob.param_groups[0]["momentum"] = 0.9
    for w, opt in ((ours, ob), (theirs, ot)):
        for _ in range(4):
            opt.zero_grad()
            loss_of(w).backward()
            opt.step()
    np.testing.assert_allclose(ours.detach().numpy(), theirs.detach().numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="momentum"):
        ob.param_groups[0]["momentum"] = -1.0


def test_loading_a_fresh_state_resets_the_optimizer():
    w = bp.ones(3, requires_grad=True)
    opt = bp.optim.Adam([w], lr=0.1)
    w.grad = bp.ones(3)
    opt.step()
    fresh = bp.optim.Adam([bp.ones(3, requires_grad=True)], lr=0.2, betas=(0.5, 0.6))
    opt.load_state_dict(fresh.state_dict())
    assert opt.state_dict()["state"] == {}
    assert opt.lr == 0.2 and opt.param_groups[0]["betas"] == (0.5, 0.6)


def _many_parameters(dtype_of_last="float64"):
    """Parameters of sizes that put the thread split inside them, a strided one, and one of
    another dtype, in one group (Note [Multi-tensor optimizer step])."""
    rng = np.random.default_rng(7)
    shapes = [(300, 200), (7,), (129, 257), (1,), (70001,)]
    values = [rng.standard_normal(s).astype("float32") for s in shapes]
    values.append(rng.standard_normal((40, 50)).astype("float32").T)  # strided
    values.append(rng.standard_normal((9, 3)).astype(dtype_of_last))
    return values


def _run_steps(lib, name, values, options, steps=4, late=1):
    """`steps` steps of lib's optimizer over tensors made from values; parameter `late` gets
    no gradient in the first two steps (its step count, and bias corrections, lag)."""
    if lib is bp:
        params = [bp.tensor(np.ascontiguousarray(v), requires_grad=True) for v in values]
        params[-2] = bp.tensor(np.ascontiguousarray(values[-2].T)).t().detach().requires_grad_()
        assert not params[-2].is_contiguous()
    else:
        params = [lib.tensor(np.ascontiguousarray(v), requires_grad=True) for v in values]
    opt = getattr(lib.optim, name)(params, lr=0.01, **options)
    for step in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            if i == late and step < 2:
                continue
            (p * p * p).sum().backward()
        opt.step()
    return [p.detach().numpy() for p in params]


OPTIMIZERS_OVER_MANY = [
    ("Adam", {"weight_decay": 0.1}),
    ("AdamW", {"weight_decay": 0.3}),
    ("SGD", {"momentum": 0.9, "weight_decay": 0.01}),
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("SGD", {}),
]


@pytest.mark.parametrize("name, options", OPTIMIZERS_OVER_MANY)
def test_one_step_over_many_parameters_matches_pytorch(name, options):
    torch = pytest.importorskip("torch")
    values = _many_parameters()
    ours = _run_steps(bp, name, values, options)
    theirs = _run_steps(torch, name, values, options)
    for i, (a, b) in enumerate(zip(ours, theirs)):
        assert a.dtype == b.dtype, i
        tolerance = 1e-5 if a.dtype == np.float32 else 1e-12
        np.testing.assert_allclose(a, b, rtol=tolerance, atol=tolerance, err_msg=f"parameter {i}")
        assert not np.array_equal(a, values[i]), f"parameter {i} was not updated"


@pytest.mark.parametrize("name, options", OPTIMIZERS_OVER_MANY)
def test_one_step_over_many_parameters_gives_the_same_bits_for_any_thread_count(name, options):
    values = _many_parameters()
    before = bp.get_num_threads()
    try:
        bp.set_num_threads(1)
        one = _run_steps(bp, name, values, options)
        bp.set_num_threads(2)
        two = _run_steps(bp, name, values, options)
    finally:
        bp.set_num_threads(before)
    for i, (a, b) in enumerate(zip(one, two)):
        np.testing.assert_array_equal(a, b, err_msg=f"parameter {i}")

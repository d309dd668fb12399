"""bp.optim parameter groups, RMSprop/Adagrad/Adadelta and the schedulers, against PyTorch:
the same problem from the same float64 weights, step by step, with two groups that differ in
their hyper-parameters; changing a group's lr mid-run, add_param_group, state dict round
trips, schedulers over several groups, the errors PyTorch raises, and bp.compile replays."""

import math

import bprop as bp
import numpy as np
import pytest
from optim_problem import TOL, assert_same, loss_of, optimizer, problem
from optim_problem import make_params as _make_params
from optim_problem import train as _train

torch = pytest.importorskip("torch")

INIT, X = problem(seed=0)


def make_params(lib):
    return _make_params(lib, INIT)


def train(lib, params, opt, steps, each=None):
    _train(lib, params, opt, steps, X, each)


CASES = [
    ("SGD", {"lr": 0.05}, [{"lr": 0.1, "weight_decay": 0.1}, {}]),
    ("SGD", {"lr": 0.05, "momentum": 0.9}, [{"nesterov": True}, {"dampening": 0.3, "lr": 0.01}]),
    ("SGD", {"lr": 0.02, "momentum": 0.5, "weight_decay": 0.01}, [{}, {"maximize": True}]),
    ("Adam", {"lr": 0.01}, [{"betas": (0.8, 0.99)}, {"lr": 0.03, "weight_decay": 0.1}]),
    ("Adam", {"lr": 0.01, "eps": 1e-6}, [{"maximize": True}, {"betas": (0.5, 0.9)}]),
    ("AdamW", {"lr": 0.01}, [{"weight_decay": 0.3}, {"betas": (0.7, 0.95), "lr": 0.02}]),
    ("RMSprop", {}, [{"lr": 0.02}, {"alpha": 0.9, "weight_decay": 0.05}]),
    ("RMSprop", {"lr": 0.01, "momentum": 0.8}, [{"centered": True}, {"eps": 1e-4}]),
    ("RMSprop", {"lr": 0.005, "centered": True, "alpha": 0.3},
     [{"weight_decay": 0.1, "maximize": True}, {"momentum": 0.5}]),
    ("Adagrad", {}, [{"lr": 0.1, "lr_decay": 0.05}, {"initial_accumulator_value": 0.3}]),
    ("Adagrad", {"lr": 0.05, "weight_decay": 0.1}, [{"eps": 1e-3}, {"maximize": True}]),
    ("Adadelta", {}, [{"rho": 0.5}, {"lr": 0.5, "weight_decay": 0.1}]),
    ("Adadelta", {"lr": 2.0, "eps": 1e-4}, [{}, {"rho": 0.99, "maximize": True}]),
]  # fmt: skip
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]


@pytest.mark.parametrize("name, defaults, groups", CASES, ids=IDS)
def test_two_groups_match_pytorch_step_by_step(name, defaults, groups):
    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, name, ours, defaults, groups)
    ot = optimizer(torch, name, theirs, defaults, groups)
    x, tx = bp.tensor(X), torch.tensor(X)
    for _ in range(12):
        for lib, params, opt, data in ((bp, ours, ob, x), (torch, theirs, ot, tx)):
            opt.zero_grad()
            loss_of(lib, params, data).backward()
            opt.step()
        assert_same(ours, theirs)
    # Every parameter moved: a group that silently did nothing would fail here.
    for p, key in zip(ours, ("w1", "b1", "w2")):
        assert not np.allclose(p.detach().numpy(), INIT[key])
    assert [sorted(g) for g in ob.param_groups] == [sorted(g) for g in ot.param_groups]


@pytest.mark.parametrize("name, defaults, groups", CASES[::2], ids=IDS[::2])
def test_changing_a_groups_hyper_parameters_mid_run(name, defaults, groups):
    def change(i, opt):
        if i == 3:
            opt.param_groups[1]["lr"] = opt.param_groups[1]["lr"] * 3
        if i == 6:
            opt.param_groups[0]["lr"] = 0.001
            opt.param_groups[0]["weight_decay"] = 0.2

    ours, theirs = make_params(bp), make_params(torch)
    train(bp, ours, optimizer(bp, name, ours, defaults, groups), 10, change)
    train(torch, theirs, optimizer(torch, name, theirs, defaults, groups), 10, change)
    assert_same(ours, theirs)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_add_param_group_mid_run(name):
    def run(lib):
        w1, b1, w2 = params = make_params(lib)
        opt = getattr(lib.optim, name)([w1, b1], lr=0.05)
        x = lib.tensor(X)
        for i in range(8):
            if i == 3:
                opt.add_param_group({"params": w2, "lr": 0.01, "weight_decay": 0.1})
            opt.zero_grad()
            loss_of(lib, params, x).backward()
            opt.step()
        return params, opt

    (ours, ob), (theirs, ot) = run(bp), run(torch)
    assert_same(ours, theirs)
    assert len(ob.param_groups) == 2 and ob.param_groups[1]["lr"] == 0.01
    assert ob.param_groups[1]["params"][0] is ours[2]
    sb, st = ob.state_dict(), ot.state_dict()
    assert [g["params"] for g in sb["param_groups"]] == [[0, 1], [2]]
    assert sorted(sb["state"]) == sorted(st["state"])


@pytest.mark.parametrize("name, defaults, groups", CASES, ids=IDS)
def test_state_dict_round_trip_resumes_like_uninterrupted(name, defaults, groups):
    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, name, ours, defaults, groups)
    ot = optimizer(torch, name, theirs, defaults, groups)
    train(bp, ours, ob, 4)
    train(torch, theirs, ot, 4)
    saved, reference = ob.state_dict(), ot.state_dict()
    # PyTorch's layout: state keyed by global index, the same keys and groups.
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]
    assert sorted(saved["state"]) == sorted(reference["state"])
    for index, entry in reference["state"].items():
        assert sorted(saved["state"][index]) == sorted(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(saved["state"][index][key]),
                                       value.numpy(), rtol=TOL, atol=TOL)  # fmt: skip
    for mine, theirs_group in zip(saved["param_groups"], reference["param_groups"]):
        assert mine.keys() == theirs_group.keys()
    # A new optimizer with other hyper-parameters, loaded, continues exactly.
    resumed = make_params(bp)
    with bp.no_grad():
        for p, q in zip(resumed, ours):
            p.copy_(q)
    other = getattr(bp.optim, name)(
        [{"params": resumed[:2], "lr": 0.9}, {"params": resumed[2:]}], lr=0.7
    )
    other.load_state_dict(saved)
    assert other.param_groups[0]["lr"] == ob.param_groups[0]["lr"]
    train(bp, ours, ob, 4)
    train(bp, resumed, other, 4)
    for p, q in zip(ours, resumed):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adadelta", "SGD", "Adam"])
def test_loading_pytorchs_state_dict(name):
    ours, theirs = make_params(bp), make_params(torch)
    options = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    ot = getattr(torch.optim, name)(theirs, lr=0.01, **options)
    train(torch, theirs, ot, 3)
    with bp.no_grad():
        for p, q in zip(ours, theirs):
            p.copy_(bp.tensor(q.detach().numpy()))
    state = ot.state_dict()
    converted = {
        "state": {i: {k: bp.tensor(v.numpy()) for k, v in e.items()}
                  for i, e in state["state"].items()},
        "param_groups": state["param_groups"],
    }  # fmt: skip
    ob = getattr(bp.optim, name)(ours, lr=0.5)
    ob.load_state_dict(converted)
    train(torch, theirs, ot, 3)
    train(bp, ours, ob, 3)
    assert_same(ours, theirs)


# ---------------------------------------------------------------- schedulers


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("MultiStepLR", {"milestones": [2, 5, 5, 9], "gamma": 0.3}),
    ("ExponentialLR", {"gamma": 0.9}),
    ("CosineAnnealingLR", {"T_max": 5, "eta_min": 0.001}),
    ("LinearLR", {"start_factor": 0.25, "total_iters": 6}),
    ("ConstantLR", {"factor": 0.5, "total_iters": 4}),
    ("LambdaLR", {"lr_lambda": [lambda e: 0.9**e, lambda e: 1 / (e + 1)]}),
    ("MultiplicativeLR", {"lr_lambda": lambda e: 0.95}),
    ("OneCycleLR", {"max_lr": [0.1, 0.05], "total_steps": 14}),
    ("OneCycleLR", {"max_lr": 0.1, "total_steps": 14, "three_phase": True,
                    "anneal_strategy": "linear"}),
    ("PolynomialLR", {"total_iters": 8, "power": 2.0}),
    ("CosineAnnealingWarmRestarts", {"T_0": 3, "T_mult": 2, "eta_min": 0.001}),
    ("SequentialLR", lambda L, o: L.SequentialLR(
        o, [L.LinearLR(o, 0.1, total_iters=3), L.CosineAnnealingLR(o, T_max=8)], milestones=[3])),
    ("ChainedScheduler", lambda L, o: L.ChainedScheduler(
        [L.ExponentialLR(o, 0.9), L.MultiStepLR(o, [4, 8], 0.5)])),
]  # fmt: skip
RESUMABLE = [s for s in SCHEDULERS if s[0] not in ("OneCycleLR", "LambdaLR", "MultiplicativeLR")]


def build(lib, opt, name, options):
    if callable(options):
        return options(lib.optim.lr_scheduler, opt)
    return getattr(lib.optim.lr_scheduler, name)(opt, **options)


@pytest.mark.parametrize("optimizer_name", ["SGD", "Adam", "RMSprop"])
@pytest.mark.parametrize(
    "name, options", SCHEDULERS, ids=[s[0] + str(i) for i, s in enumerate(SCHEDULERS)]
)
def test_schedulers_over_two_groups_match_pytorch(optimizer_name, name, options):
    extra = {"momentum": 0.9} if optimizer_name != "Adam" else {}
    groups = [{"lr": 0.1}, {"lr": 0.02}]
    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, optimizer_name, ours, extra, groups)
    ot = optimizer(torch, optimizer_name, theirs, extra, groups)
    sb, st = build(bp, ob, name, options), build(torch, ot, name, options)
    assert sb.get_last_lr() == st.get_last_lr()
    x, tx = bp.tensor(X), torch.tensor(X)
    for _ in range(13):
        for lib, params, opt, sched, data in ((bp, ours, ob, sb, x), (torch, theirs, ot, st, tx)):
            opt.zero_grad()
            loss_of(lib, params, data).backward()
            opt.step()
            sched.step()
        assert sb.get_last_lr() == pytest.approx(st.get_last_lr(), rel=1e-14, abs=1e-16)
        assert len(sb.get_last_lr()) == 2
        assert getattr(sb, "last_epoch", None) == getattr(st, "last_epoch", None)
        for gb, gt in zip(ob.param_groups, ot.param_groups):
            for key in ("momentum", "betas"):
                if key in gt:
                    assert gb[key] == pytest.approx(gt[key], rel=1e-14)
    assert_same(ours, theirs)


@pytest.mark.parametrize("name, options", RESUMABLE, ids=[s[0] for s in RESUMABLE])
def test_scheduler_state_dict_resumes(name, options):
    def fresh():
        opt = optimizer(bp, "SGD", make_params(bp), {"momentum": 0.5}, [{"lr": 0.1}, {"lr": 0.02}])
        return opt, build(bp, opt, name, options)

    opt, sched = fresh()
    for _ in range(4):
        sched.step()
    opt2, sched2 = fresh()
    opt2.load_state_dict(opt.state_dict())
    sched2.load_state_dict(sched.state_dict())
    assert getattr(sched2, "last_epoch", 4) == getattr(sched, "last_epoch", 4)
    assert sched2.get_last_lr() == sched.get_last_lr()
    for _ in range(5):
        sched.step()
        sched2.step()
        assert sched2.get_last_lr() == sched.get_last_lr()
    assert [g["lr"] for g in opt2.param_groups] == sched.get_last_lr()


def test_scheduler_resumed_with_last_epoch():
    opt = optimizer(bp, "SGD", make_params(bp), {}, [{"lr": 0.1}, {"lr": 0.02}])
    with pytest.raises(KeyError, match="initial_lr"):
        bp.optim.lr_scheduler.StepLR(opt, 2, last_epoch=3)
    ref = optimizer(torch, "SGD", make_params(torch), {}, [{"lr": 0.1}, {"lr": 0.02}])
    for o in (opt, ref):
        for g in o.param_groups:
            g["initial_lr"] = g["lr"]
    sb = bp.optim.lr_scheduler.ExponentialLR(opt, 0.5, last_epoch=3)
    st = torch.optim.lr_scheduler.ExponentialLR(ref, 0.5, last_epoch=3)
    assert sb.last_epoch == st.last_epoch == 4 and sb.get_last_lr() == st.get_last_lr()


def test_reduce_lr_on_plateau_over_groups():
    opts = [optimizer(lib, "SGD", make_params(lib), {}, [{"lr": 0.1}, {"lr": 0.02}])
            for lib in (bp, torch)]  # fmt: skip
    sb = bp.optim.lr_scheduler.ReduceLROnPlateau(
        opts[0], factor=0.5, patience=1, min_lr=[0.02, 0.0]
    )
    st = torch.optim.lr_scheduler.ReduceLROnPlateau(opts[1], factor=0.5, patience=1,
                                                    min_lr=[0.02, 0.0])  # fmt: skip
    for metric in [1.0, 0.9, 0.95, 0.97, 0.99, 0.5, 0.6, 0.7, 0.8, 0.9]:
        sb.step(bp.tensor(metric))
        st.step(metric)
        assert sb.get_last_lr() == st.get_last_lr()
    # Three reductions: the first group stops at its min_lr.
    assert sb.get_last_lr()[0] == 0.02 and math.isclose(sb.get_last_lr()[1], 0.02 / 8)


def test_one_cycle_too_many_steps_raises():
    opt = bp.optim.SGD(make_params(bp), lr=0.1, momentum=0.9)
    sched = bp.optim.lr_scheduler.OneCycleLR(opt, max_lr=0.5, total_steps=2)
    sched.step()
    sched.step()
    with pytest.raises(ValueError, match="Tried to step 3 times"):
        sched.step()


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta"])
def test_parameter_list_errors(name):
    cls = getattr(bp.optim, name)
    w1, b1, w2 = make_params(bp)
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([{"params": [w1, b1]}, {"params": [w2, w1]}])
    with pytest.raises(ValueError, match="duplicate parameters"):
        cls([w1, b1, w1])
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([])
    with pytest.raises(TypeError, match="can only optimize Tensors.*int"):
        cls([w1, 3])
    with pytest.raises(TypeError, match="iterable of Tensors or dicts"):
        cls(w1)
    with pytest.raises(TypeError, match="ordered collections"):
        cls([{"params": {w1}}])
    with pytest.raises(ValueError, match="learning rate"):
        cls([{"params": [w1]}, {"params": [w2], "lr": -1.0}])
    opt = cls([w1], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        opt.add_param_group({"params": [b1, w1]})
    with pytest.raises(TypeError, match="must be a dict"):
        opt.add_param_group([b1])
    assert len(opt.param_groups) == 1 and opt.param_groups[0]["params"] == [w1]
    with pytest.raises(ValueError, match="learning rate"):
        opt.param_groups[0]["lr"] = -0.5
    assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="parameter groups"):
        opt.load_state_dict(cls([{"params": [b1]}, {"params": [w2]}]).state_dict())
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(cls([b1, w2]).state_dict())


@pytest.mark.parametrize(
    "name, options, message",
    [
        ("RMSprop", {"alpha": -0.1}, "alpha"),
        ("RMSprop", {"momentum": -0.1}, "momentum"),
        ("RMSprop", {"eps": -1.0}, "epsilon"),
        ("Adagrad", {"lr_decay": -1.0}, "lr_decay"),
        ("Adagrad", {"initial_accumulator_value": -1.0}, "initial_accumulator_value"),
        ("Adadelta", {"rho": 1.5}, "rho"),
        ("Adadelta", {"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_new_optimizers_reject_bad_hyper_parameters(name, options, message):
    torch_cls, cls = getattr(torch.optim, name), getattr(bp.optim, name)
    with pytest.raises(ValueError):
        torch_cls([torch.ones(2, requires_grad=True)], **options)
    with pytest.raises(ValueError, match=rf"\[{name}\] invalid {message}"):
        cls([bp.ones(2, requires_grad=True)], **options)


def test_failed_load_changes_nothing():
    params = make_params(bp)
    opt = bp.optim.RMSprop([{"params": params[:2]}, {"params": params[2:], "lr": 0.5}])
    train(bp, params, opt, 2)
    before = {
        i: {k: v.numpy().copy() for k, v in e.items()} for i, e in opt.state_dict()["state"].items()
    }
    bad = opt.state_dict()
    bad["param_groups"][1]["lr"] = 0.1
    bad["state"][2] = dict(bad["state"][2], square_avg=bp.zeros(7))
    with pytest.raises(ValueError, match="square_avg"):
        opt.load_state_dict(bad)
    assert opt.param_groups[1]["lr"] == 0.5
    for i, entry in opt.state_dict()["state"].items():
        for k, v in entry.items():
            np.testing.assert_array_equal(v.numpy(), before[i][k])


def test_step_takes_a_closure_and_zero_grad_keeps_tensors():
    params = make_params(bp)
    opt = bp.optim.Adagrad(params, lr=0.1)
    x = bp.tensor(X)

    def closure():
        opt.zero_grad()
        loss = loss_of(bp, params, x)
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == pytest.approx(loss_of(torch, make_params(torch), torch.tensor(X)).item())
    opt.zero_grad(set_to_none=False)
    assert all(p.grad is not None and not p.grad.numpy().any() for p in params)
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    assert opt.state[params[0]]["sum"].shape == (3, 4)


# ---------------------------------------------------------------- bp.compile


CAPTURED = [CASES[1], CASES[3], CASES[8], CASES[9], CASES[12]]


@pytest.mark.parametrize("name, defaults, groups", CAPTURED, ids=[c[0] for c in CAPTURED])
def test_captured_steps_replay_like_eager_with_live_learning_rates(name, defaults, groups):
    def run(compiled):
        params = make_params(bp)
        opt = optimizer(bp, name, params, defaults, groups)

        def step(x):
            opt.zero_grad()
            loss = loss_of(bp, params, x)
            loss.backward()
            opt.step()
            return loss

        step = bp.compile(step) if compiled else step
        losses = []
        for i in range(8):
            if i == 4:  # a schedule written between steps reaches the replays
                opt.param_groups[0]["lr"] *= 0.5
                opt.param_groups[1]["lr"] = 0.001
            losses.append(step(bp.tensor(X * (1 + 0.1 * i))).item())
        return params, losses

    (eager, eager_losses), (captured, captured_losses) = run(False), run(True)
    assert eager_losses == captured_losses
    for p, q in zip(eager, captured):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


# ---------------------------------------------------------------- more


@pytest.mark.parametrize("name", ["RMSprop", "Adagrad", "Adadelta"])
def test_new_optimizers_in_float32(name):
    ours = [bp.tensor(INIT[k].astype(np.float32), requires_grad=True) for k in ("w1", "b1", "w2")]
    theirs = [torch.tensor(INIT[k].astype(np.float32), requires_grad=True)
              for k in ("w1", "b1", "w2")]  # fmt: skip
    options = [{"lr": 0.05}, {"weight_decay": 0.1}]
    ob = optimizer(bp, name, ours, {}, options)
    ot = optimizer(torch, name, theirs, {}, options)
    for lib, params, opt in ((bp, ours, ob), (torch, theirs, ot)):
        x = lib.tensor(X.astype(np.float32))
        for _ in range(10):
            opt.zero_grad()
            loss_of(lib, params, x).backward()
            opt.step()
    assert all(p.dtype == bp.float32 for p in ours)
    assert all(s["step"].dtype == bp.float32 for s in ob.state.values())
    assert_same(ours, theirs, tol=2e-5)


def test_a_subclass_written_for_torch_runs():
    def make(lib):
        class Momentum(lib.optim.Optimizer):
            def __init__(self, params, lr=0.1, beta=0.9):
                super().__init__(params, {"lr": lr, "beta": beta})

            def step(self, closure=None):
                with lib.no_grad():
                    for group in self.param_groups:
                        for p in group["params"]:
                            state = self.state[p]
                            if "buf" not in state:
                                state["buf"] = lib.zeros_like(p)
                            state["buf"].mul_(group["beta"]).add_(p.grad)
                            p.sub_(state["buf"] * group["lr"])

        return Momentum

    results = []
    for lib in (bp, torch):
        params = make_params(lib)
        opt = make(lib)([{"params": params[:2]}, {"params": params[2:], "lr": 0.01}], beta=0.5)
        train(lib, params, opt, 5)
        results.append((params, opt.state_dict()))
    assert_same(results[0][0], results[1][0])
    assert sorted(results[0][1]["state"]) == [0, 1, 2]
    assert results[0][1]["param_groups"][1]["lr"] == 0.01


def test_multi_group_state_dict_saves_and_loads(tmp_path):
    params = make_params(bp)
    opt = bp.optim.AdamW([{"params": params[:2], "weight_decay": 0.0}, {"params": params[2:]}])
    sched = bp.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10)
    train(bp, params, opt, 3)
    sched.step()
    bp.save({"optimizer": opt.state_dict()}, tmp_path / "ckpt.safetensors")
    back = bp.load(tmp_path / "ckpt.safetensors")["optimizer"]
    fresh = bp.optim.AdamW([{"params": params[:2]}, {"params": params[2:]}])
    fresh.load_state_dict(back)
    assert [g["lr"] for g in fresh.param_groups] == sched.get_last_lr()
    assert fresh.param_groups[0]["weight_decay"] == 0.0
    for key in ("exp_avg", "exp_avg_sq"):
        np.testing.assert_array_equal(
            fresh.state[params[2]][key].numpy(), opt.state[params[2]][key].numpy()
        )


def test_named_parameters_and_switching_adam_to_decoupled_decay():
    results = []
    for lib in (bp, torch):
        params = make_params(lib)
        named = [("w1", params[0]), ("b1", params[1])]
        opt = lib.optim.Adam(named, lr=0.01, weight_decay=0.5)
        opt.add_param_group({"params": [("w2", params[2])], "lr": 0.02})

        def switch(i, opt):
            if i == 2:  # Adam -> AdamW for the first group, state kept
                opt.param_groups[0]["decoupled_weight_decay"] = True

        train(lib, params, opt, 6, switch)
        results.append((params, opt.state_dict()))
    (ours, saved), (theirs, reference) = results
    assert_same(ours, theirs)
    assert [g["param_names"] for g in saved["param_groups"]] == [["w1", "b1"], ["w2"]]
    assert saved["param_groups"][0]["decoupled_weight_decay"] is True
    with pytest.raises(ValueError, match="all optimizer param groups should be with/without"):
        bp.optim.SGD([("w", ours[0])]).add_param_group({"params": [ours[1]]})


def test_group_update_is_checked_as_a_whole():
    w = bp.ones(2, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.1)
    opt.param_groups[0].update(momentum=0.9, nesterov=True)  # valid together, not one by one
    with pytest.raises(ValueError, match="learning rate"):
        opt.param_groups[0].update(lr=-1.0, momentum=0.5)
    assert opt.param_groups[0]["lr"] == 0.1 and opt.param_groups[0]["momentum"] == 0.9
    w.grad = bp.ones(2)
    opt.step()
    opt.step()  # nesterov: b = g, then b = 0.9 b + g; w -= lr (g + 0.9 b)
    np.testing.assert_allclose(w.detach().numpy(), 1 - 0.1 * 1.9 - 0.1 * (1 + 0.9 * 1.9), rtol=1e-6)


@pytest.mark.parametrize("name", ["SGD", "AdamW", "RMSprop", "Adagrad"])
def test_deepcopy_of_model_and_optimizer_trains_independently(name):
    import copy

    params = make_params(bp)
    opt = optimizer(bp, name, params, {"lr": 0.01}, [{"weight_decay": 0.1}, {"lr": 0.02}])
    train(bp, params, opt, 3)
    params2, opt2 = copy.deepcopy((params, opt))
    assert all(p is not q for p, q in zip(params, params2))
    assert opt2.param_groups[1]["params"][0] is params2[2]  # the model's copies
    train(bp, params, opt, 3)
    before = [p.detach().numpy().copy() for p in params]
    train(bp, params2, opt2, 3)
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    for p, b in zip(params, before):  # the copy's steps left the original alone
        np.testing.assert_array_equal(p.detach().numpy(), b)

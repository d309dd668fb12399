"""bp.optim's Adamax, NAdam, RAdam and bp.optim.swa_utils against PyTorch: the same problem
from the same float64 weights, step by step, with two parameter groups that differ in their
hyper-parameters; state dict round trips, PyTorch's errors, a bp.compile replay, and
AveragedModel / SWALR / update_bn."""

import bprop as bp
import numpy as np
import pytest
from optim_problem import TOL, assert_same, loss_of, optimizer, problem
from optim_problem import make_params as _make_params
from optim_problem import train as _train

torch = pytest.importorskip("torch")

INIT, X = problem(seed=1)


def make_params(lib):
    return _make_params(lib, INIT)


def train(lib, params, opt, steps, each=None):
    _train(lib, params, opt, steps, X, each)


CASES = [
    ("Adamax", {}, [{"lr": 0.01}, {"betas": (0.5, 0.9), "weight_decay": 0.1}]),
    ("Adamax", {"lr": 0.02, "eps": 1e-3}, [{"maximize": True}, {"betas": (0.3, 0.99)}]),
    ("NAdam", {}, [{"lr": 0.01, "momentum_decay": 0.1}, {"weight_decay": 0.1}]),
    ("NAdam", {"lr": 0.01, "weight_decay": 0.2, "decoupled_weight_decay": True},
     [{"betas": (0.6, 0.9)}, {"maximize": True, "eps": 1e-4}]),
    ("RAdam", {"lr": 0.01}, [{"betas": (0.5, 0.9)}, {"weight_decay": 0.1}]),
    ("RAdam", {"lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True},
     [{"maximize": True}, {"betas": (0.8, 0.5), "eps": 1e-3}]),
    ("ASGD", {"lr": 0.05}, [{"t0": 3, "lambd": 0.1}, {"weight_decay": 0.1, "alpha": 0.5}]),
    ("ASGD", {"lr": 0.03, "t0": 0}, [{"maximize": True}, {"lr": 0.1, "lambd": 0.01}]),
]  # fmt: skip
IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(CASES)]
NAMES = ["Adamax", "NAdam", "RAdam", "ASGD"]


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
    for p, key in zip(ours, ("w1", "b1", "w2")):
        assert np.abs(p.detach().numpy() - INIT[key]).max() > 1e-3
    assert [sorted(g) for g in ob.param_groups] == [sorted(g) for g in ot.param_groups]
    for gb, gt in zip(ob.param_groups, ot.param_groups):
        assert {k: v for k, v in gb.items() if k != "params"} == {
            k: v for k, v in gt.items() if k != "params"
        }


def test_radam_takes_both_branches():
    # beta2 = 0.5: rho_inf = 3, so rho_t <= 5 always (the plain branch); beta2 = 0.999 with
    # 10 steps stays below 5 too; beta2 = 0.9 crosses 5 after a few steps.
    for beta2 in (0.5, 0.9):
        ours, theirs = make_params(bp), make_params(torch)
        options = {"lr": 0.01, "betas": (0.8, beta2)}
        ob, ot = bp.optim.RAdam(ours, **options), torch.optim.RAdam(theirs, **options)
        train(bp, ours, ob, 10)
        train(torch, theirs, ot, 10)
        assert_same(ours, theirs)


@pytest.mark.parametrize("name, defaults, groups", CASES[::2], ids=IDS[::2])
def test_changing_a_groups_hyper_parameters_mid_run(name, defaults, groups):
    def change(i, opt):
        if i == 3:
            opt.param_groups[1]["lr"] = opt.param_groups[1]["lr"] * 3
            if "betas" in opt.param_groups[1]:
                opt.param_groups[1]["betas"] = (0.7, 0.95)
        if i == 6:
            opt.param_groups[0]["lr"] = 0.001
            opt.param_groups[0]["weight_decay"] = 0.2

    ours, theirs = make_params(bp), make_params(torch)
    train(bp, ours, optimizer(bp, name, ours, defaults, groups), 10, change)
    train(torch, theirs, optimizer(torch, name, theirs, defaults, groups), 10, change)
    assert_same(ours, theirs)


@pytest.mark.parametrize("name, defaults, groups", CASES, ids=IDS)
def test_state_dict_round_trip_resumes_like_uninterrupted(name, defaults, groups):
    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, name, ours, defaults, groups)
    ot = optimizer(torch, name, theirs, defaults, groups)
    train(bp, ours, ob, 4)
    train(torch, theirs, ot, 4)
    saved, reference = ob.state_dict(), ot.state_dict()
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1], [2]]
    assert sorted(saved["state"]) == sorted(reference["state"])
    for index, entry in reference["state"].items():
        assert list(saved["state"][index]) == list(entry)  # PyTorch's keys, in its order
        for key, value in entry.items():
            mine = saved["state"][index][key]
            assert str(mine.dtype).split(".")[-1] == str(value.dtype).split(".")[-1]
            np.testing.assert_allclose(np.asarray(mine), value.numpy(), rtol=TOL, atol=TOL)
    resumed = make_params(bp)
    with bp.no_grad():
        for p, q in zip(resumed, ours):
            p.copy_(q)
    other = getattr(bp.optim, name)(
        [{"params": resumed[:2], "lr": 0.9}, {"params": resumed[2:], "weight_decay": 0.5}],
        lr=0.7,
    )
    other.load_state_dict(saved)
    assert other.param_groups[1] == ob.param_groups[1] | {"params": resumed[2:]}
    train(bp, ours, ob, 4)
    train(bp, resumed, other, 4)
    for p, q in zip(ours, resumed):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("name", NAMES)
def test_loading_pytorchs_state_dict(name):
    ours, theirs = make_params(bp), make_params(torch)
    ot = getattr(torch.optim, name)(theirs, lr=0.01, weight_decay=0.05)
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


@pytest.mark.parametrize("name", NAMES)
def test_defaults_and_signature_match_pytorch(name):
    import inspect

    ours = inspect.signature(getattr(bp.optim, name).__init__).parameters
    theirs = inspect.signature(getattr(torch.optim, name).__init__).parameters
    assert list(ours) == list(theirs)
    for key, parameter in theirs.items():
        assert ours[key].default == parameter.default, key
        assert ours[key].kind == parameter.kind, key


BAD = [({"lr": -1.0}, "learning rate"), ({"eps": -1.0}, "epsilon"),
       ({"betas": (1.0, 0.9)}, "beta parameter at index 0"),
       ({"betas": (0.9, -0.1)}, "beta parameter at index 1"),
       ({"weight_decay": -0.1}, "weight_decay")]  # fmt: skip
BAD_CASES = [(name, options, message) for name in NAMES for options, message in BAD
             if name != "ASGD" or "eps" not in options and "betas" not in options]  # fmt: skip


@pytest.mark.parametrize("name, options, message", BAD_CASES)
def test_bad_hyper_parameters_raise_as_pytorch(name, options, message):
    with pytest.raises(ValueError):
        getattr(torch.optim, name)([torch.ones(2, requires_grad=True)], **options)
    with pytest.raises(ValueError, match=rf"\[{name}\] invalid {message}"):
        getattr(bp.optim, name)([bp.ones(2, requires_grad=True)], **options)
    opt = getattr(bp.optim, name)([bp.ones(2, requires_grad=True)])
    key = next(iter(options))
    before = opt.param_groups[0][key]
    with pytest.raises(ValueError):
        opt.param_groups[0][key] = options[key]
    assert opt.param_groups[0][key] == before


def test_nadam_momentum_decay_error():
    with pytest.raises(ValueError):
        torch.optim.NAdam([torch.ones(2, requires_grad=True)], momentum_decay=-1.0)
    with pytest.raises(ValueError, match=r"\[NAdam\] invalid momentum_decay"):
        bp.optim.NAdam([bp.ones(2, requires_grad=True)], momentum_decay=-1.0)


def test_nadam_state_has_a_float32_mu_product():
    params = make_params(bp)
    opt = bp.optim.NAdam(params)
    train(bp, params, opt, 2)
    mu_product = opt.state[params[0]]["mu_product"]
    assert mu_product.shape == () and mu_product.dtype == bp.float32
    mu = [0.9 * (1 - 0.5 * 0.96 ** (t * 4e-3)) for t in (1, 2)]
    assert mu_product.item() == pytest.approx(mu[0] * mu[1], rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_float32_matches_pytorch(name):
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
    assert_same(ours, theirs, tol=2e-5)


@pytest.mark.parametrize(
    "name, defaults, groups", [CASES[2], CASES[5], CASES[7]], ids=["NAdam", "RAdam", "ASGD"]
)
def test_captured_steps_replay_like_eager_with_live_hyper_parameters(name, defaults, groups):
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
        for i in range(10):
            if i == 4:  # written between steps: the replays read them
                opt.param_groups[0]["lr"] *= 0.5
                if "betas" in opt.param_groups[1]:
                    opt.param_groups[1]["betas"] = (0.7, 0.95)
            losses.append(step(bp.tensor(X * (1 + 0.1 * i))).item())
        return params, losses

    (eager, eager_losses), (captured, captured_losses) = run(False), run(True)
    assert eager_losses == captured_losses
    for p, q in zip(eager, captured):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


# ---------------------------------------------------------------- swa_utils


def make_net(lib):
    net = lib.nn.Sequential(lib.nn.Linear(3, 4), lib.nn.BatchNorm1d(4), lib.nn.Tanh(),
                            lib.nn.Linear(4, 2))  # fmt: skip
    rng = np.random.default_rng(2)
    with lib.no_grad():
        for p in net.parameters():
            p.copy_(lib.tensor(rng.standard_normal(tuple(p.shape))))
    return net.double()


def run_swa(lib, averaged_options, steps=6):
    net = make_net(lib)
    opt = lib.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    averaged = lib.optim.swa_utils.AveragedModel(net, **averaged_options(lib))
    x = lib.tensor(X)
    for i in range(steps):
        opt.zero_grad()
        (net(x * (1 + 0.1 * i)) ** 2).sum().backward()
        opt.step()
        averaged.update_parameters(net)
    return net, averaged


AVERAGES = {
    "swa": lambda lib: {},
    "swa-buffers": lambda lib: {"use_buffers": True},
    "ema-multi": lambda lib: {"multi_avg_fn": lib.optim.swa_utils.get_ema_multi_avg_fn(0.7)},
    "ema": lambda lib: {"avg_fn": lib.optim.swa_utils.get_ema_avg_fn(0.8)},
    "ema-buffers": lambda lib: {
        "multi_avg_fn": lib.optim.swa_utils.get_ema_multi_avg_fn(0.6), "use_buffers": True},
    "swa-multi": lambda lib: {"multi_avg_fn": lib.optim.swa_utils.get_swa_multi_avg_fn()},
    "custom": lambda lib: {"avg_fn": lambda a, c, n: a * 0.5 + c * 0.5},
}  # fmt: skip


@pytest.mark.parametrize("kind", list(AVERAGES))
def test_averaged_model_matches_pytorch(kind):
    (net, ours), (_, theirs) = run_swa(bp, AVERAGES[kind]), run_swa(torch, AVERAGES[kind])
    sb, st = ours.state_dict(), theirs.state_dict()
    assert list(sb) == list(st)
    for key, value in st.items():
        np.testing.assert_allclose(np.asarray(sb[key]), value.numpy(), rtol=TOL, atol=TOL,
                                   err_msg=key)  # fmt: skip
    assert ours.n_averaged.item() == 6 and ours.n_averaged.dtype == bp.int64
    # The average differs from the last weights: it really averages.
    assert not np.allclose(ours.module[0].weight.detach().numpy(), net[0].weight.detach().numpy())
    x = bp.tensor(X)
    ours.eval()
    theirs.eval()
    np.testing.assert_allclose(ours(x).detach().numpy(), theirs(torch.tensor(X)).detach().numpy(),
                               rtol=TOL, atol=TOL)  # fmt: skip


def test_averaged_model_errors_and_first_update_copies():
    net = make_net(bp)
    swa = bp.optim.swa_utils
    with pytest.raises(AssertionError, match="Only one of avg_fn and multi_avg_fn"):
        swa.AveragedModel(net, avg_fn=swa.get_ema_avg_fn(), multi_avg_fn=swa.get_ema_multi_avg_fn())
    for make in (swa.get_ema_avg_fn, swa.get_ema_multi_avg_fn):
        with pytest.raises(ValueError, match="Invalid decay value 1.5"):
            make(1.5)
    averaged = swa.AveragedModel(net, multi_avg_fn=swa.get_ema_multi_avg_fn(0.5))
    assert averaged.module is not net and averaged.n_averaged.item() == 0
    with bp.no_grad():
        for p in net.parameters():
            p.add_(1.0)
    averaged.update_parameters(net)
    for p, q in zip(averaged.parameters(), net.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


def test_update_bn_matches_pytorch():
    results = []
    for lib in (bp, torch):
        net = make_net(lib)
        net[1].momentum = 0.3
        net.eval()
        rng = np.random.default_rng(3)
        batches = [lib.tensor(rng.standard_normal((4, 3)) * (i + 1)) for i in range(4)]
        loader = [(b, lib.zeros(4)) for b in batches[:2]] + batches[2:]  # tuples or tensors
        lib.optim.swa_utils.update_bn(loader, net)
        results.append(net)
    ours, theirs = results
    assert not ours.training and ours[1].momentum == 0.3
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(np.asarray(ours.state_dict()[key]), value.numpy(), rtol=TOL,
                                   atol=TOL, err_msg=key)  # fmt: skip
    assert ours[1].num_batches_tracked.item() == 4
    # A model without BatchNorm is left alone (and the loader is not read).
    plain = bp.nn.Linear(3, 2)
    bp.optim.swa_utils.update_bn(iter(()), plain)


@pytest.mark.parametrize("strategy", ["cos", "linear"])
@pytest.mark.parametrize("anneal_epochs", [0, 1, 4])
def test_swalr_matches_pytorch(strategy, anneal_epochs):
    lrs = []
    for lib in (bp, torch):
        params = make_params(lib)
        opt = lib.optim.SGD([{"params": params[:2]}, {"params": params[2:], "lr": 0.3}], lr=0.1)
        sched = lib.optim.swa_utils.SWALR(opt, swa_lr=[0.05, 0.01], anneal_epochs=anneal_epochs,
                                          anneal_strategy=strategy)  # fmt: skip
        seen = [sched.get_last_lr()]
        for _ in range(7):
            opt.step()
            sched.step()
            seen.append(sched.get_last_lr())
        lrs.append((seen, [g["swa_lr"] for g in opt.param_groups], sched.state_dict()))
    (ours, ours_swa, saved), (theirs, theirs_swa, _) = lrs
    assert ours_swa == theirs_swa == [0.05, 0.01]
    for a, b in zip(ours, theirs):
        assert a == pytest.approx(b, rel=1e-14, abs=1e-16)
    assert ours[-1] == pytest.approx([0.05, 0.01])
    assert "anneal_func" not in saved and saved["anneal_epochs"] == anneal_epochs


def test_swalr_errors_and_state_dict():
    opt = bp.optim.SGD(make_params(bp), lr=0.1)
    swa = bp.optim.swa_utils
    with pytest.raises(ValueError, match="anneal_strategy must be one of"):
        swa.SWALR(opt, swa_lr=0.05, anneal_strategy="step")
    with pytest.raises(ValueError, match="anneal_epochs must be equal or greater than 0"):
        swa.SWALR(opt, swa_lr=0.05, anneal_epochs=-1)
    with pytest.raises(ValueError, match="anneal_epochs"):
        swa.SWALR(opt, swa_lr=0.05, anneal_epochs=2.5)
    sched = swa.SWALR(opt, swa_lr=0.05, anneal_epochs=5, anneal_strategy="linear")
    sched.step()
    sched.step()
    other = swa.SWALR(bp.optim.SGD(make_params(bp), lr=0.1), swa_lr=0.05)
    other.load_state_dict(sched.state_dict())
    assert other.anneal_func(0.25) == 0.25  # linear, restored from the name
    assert other.get_last_lr() == sched.get_last_lr()


# ---------------------------------------------------------------- Adam / AdamW amsgrad


AMSGRAD = [
    ("Adam", {"amsgrad": True, "lr": 0.05}, [{"betas": (0.5, 0.9)}, {"weight_decay": 0.1}]),
    ("Adam", {"lr": 0.05}, [{"amsgrad": True, "maximize": True}, {"eps": 1e-4}]),
    ("AdamW", {"amsgrad": True, "lr": 0.02}, [{"weight_decay": 0.3}, {"betas": (0.3, 0.95)}]),
    ("Adam", {"amsgrad": True, "lr": 0.02, "weight_decay": 0.1, "decoupled_weight_decay": True},
     [{}, {"amsgrad": False}]),
]  # fmt: skip
AMS_IDS = [f"{name}-{i}" for i, (name, _, _) in enumerate(AMSGRAD)]


def varying_train(lib, params, opt, steps, each=None):
    # A shrinking input: the second moments fall, so the running maximum matters.
    for i in range(steps):
        opt.zero_grad()
        loss_of(lib, params, lib.tensor(X * (1 - 0.08 * i))).backward()
        opt.step()
        if each is not None:
            each(i, opt)


@pytest.mark.parametrize("name, defaults, groups", AMSGRAD, ids=AMS_IDS)
def test_amsgrad_matches_pytorch(name, defaults, groups):
    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, name, ours, defaults, groups)
    ot = optimizer(torch, name, theirs, defaults, groups)
    varying_train(bp, ours, ob, 12)
    varying_train(torch, theirs, ot, 12)
    assert_same(ours, theirs)
    sb, st = ob.state_dict(), ot.state_dict()
    for index, entry in st["state"].items():
        assert list(sb["state"][index]) == list(entry)
        for key, value in entry.items():
            np.testing.assert_allclose(np.asarray(sb["state"][index][key]), value.numpy(),
                                       rtol=TOL, atol=TOL)  # fmt: skip
    assert any("max_exp_avg_sq" in e for e in sb["state"].values())


def test_amsgrad_maximum_matters():
    # beta2 = 0.9 with a shrinking input: the second moments fall below their maximum, and
    # the result differs from plain Adam's.
    name, defaults, groups = AMSGRAD[0]
    ours = make_params(bp)
    ob = optimizer(bp, name, ours, defaults, groups)
    varying_train(bp, ours, ob, 12)
    state = ob.state_dict()["state"][0]
    assert (state["max_exp_avg_sq"].numpy() > state["exp_avg_sq"].numpy() * 1.01).any()
    plain = make_params(bp)
    varying_train(bp, plain, optimizer(bp, name, plain, {**defaults, "amsgrad": False}, groups), 12)
    assert np.abs(plain[0].detach().numpy() - ours[0].detach().numpy()).max() > 1e-4


@pytest.mark.parametrize("name, defaults, groups", AMSGRAD[:3], ids=AMS_IDS[:3])
def test_amsgrad_state_dict_round_trip_and_live_changes(name, defaults, groups):
    def change(i, opt):
        if i == 2:
            opt.param_groups[0]["lr"] *= 0.5
            opt.param_groups[0]["betas"] = (0.7, 0.8)
            opt.param_groups[1]["weight_decay"] = 0.2

    ours, theirs = make_params(bp), make_params(torch)
    ob = optimizer(bp, name, ours, defaults, groups)
    ot = optimizer(torch, name, theirs, defaults, groups)
    varying_train(bp, ours, ob, 5, change)
    varying_train(torch, theirs, ot, 5, change)
    assert_same(ours, theirs)
    resumed = make_params(bp)
    with bp.no_grad():
        for p, q in zip(resumed, ours):
            p.copy_(q)
    other = getattr(bp.optim, name)([{"params": resumed[:2]}, {"params": resumed[2:]}], lr=0.7)
    other.load_state_dict(ob.state_dict())
    varying_train(bp, ours, ob, 4)
    varying_train(bp, resumed, other, 4)
    for p, q in zip(ours, resumed):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    # PyTorch's own state dict loads too.
    converted = {
        "state": {i: {k: bp.tensor(v.numpy()) for k, v in e.items()}
                  for i, e in ot.state_dict()["state"].items()},
        "param_groups": ot.state_dict()["param_groups"],
    }  # fmt: skip
    mine = make_params(bp)
    with bp.no_grad():
        for p, q in zip(mine, theirs):
            p.copy_(bp.tensor(q.detach().numpy()))
    loaded = getattr(bp.optim, name)([{"params": mine[:2]}, {"params": mine[2:]}])
    loaded.load_state_dict(converted)
    varying_train(bp, mine, loaded, 3)
    varying_train(torch, theirs, ot, 3)
    assert_same(mine, theirs)


def test_switching_amsgrad_off_keeps_the_moments_as_pytorch():
    def switch(i, opt):
        if i == 3:
            opt.param_groups[0]["amsgrad"] = False

    results = []
    for lib in (bp, torch):
        params = make_params(lib)
        opt = lib.optim.Adam([{"params": params[:2]}, {"params": params[2:]}], lr=0.05,
                             amsgrad=True)  # fmt: skip
        varying_train(lib, params, opt, 8, switch)
        results.append(params)
    assert_same(*results)


def test_amsgrad_captured_replays_like_eager():
    def run(compiled):
        params = make_params(bp)
        opt = optimizer(bp, "AdamW", params, {"amsgrad": True, "lr": 0.02},
                        [{}, {"amsgrad": False}])  # fmt: skip

        def step(x):
            opt.zero_grad()
            loss = loss_of(bp, params, x)
            loss.backward()
            opt.step()
            return loss

        step = bp.compile(step) if compiled else step
        losses = []
        for i in range(8):
            if i == 4:
                opt.param_groups[0]["lr"] *= 0.5
            losses.append(step(bp.tensor(X * (1 - 0.08 * i))).item())
        return params, losses

    (eager, eager_losses), (captured, captured_losses) = run(False), run(True)
    assert eager_losses == captured_losses
    for p, q in zip(eager, captured):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


# ---------------------------------------------------------------- groups, copies


@pytest.mark.parametrize("name", NAMES)
def test_add_param_group_mid_run_and_deepcopy(name):
    import copy

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
    assert sorted(ob.state_dict()["state"]) == sorted(ot.state_dict()["state"]) == [0, 1, 2]
    params2, opt2 = copy.deepcopy((ours, ob))
    assert opt2.param_groups[1]["params"][0] is params2[2]
    train(bp, ours, ob, 3)
    train(bp, params2, opt2, 3)
    for p, q in zip(ours, params2):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())


@pytest.mark.parametrize("name", [*NAMES, "Adam"])
def test_parameter_list_errors(name):
    cls = getattr(bp.optim, name)
    extra = {"amsgrad": True} if name == "Adam" else {}
    w1, b1, w2 = make_params(bp)
    with pytest.raises(ValueError, match="more than one parameter group"):
        cls([{"params": [w1, b1]}, {"params": [w2, w1]}], **extra)
    with pytest.raises(ValueError, match="empty parameter list"):
        cls([], **extra)
    with pytest.raises(TypeError, match="can only optimize Tensors"):
        cls([w1, 3], **extra)
    opt = cls([w1], lr=0.1, **extra)
    with pytest.raises(ValueError, match="learning rate"):
        opt.param_groups[0]["lr"] = -0.5
    assert opt.param_groups[0]["lr"] == 0.1
    with pytest.raises(ValueError, match="doesn't match the size"):
        opt.load_state_dict(cls([b1, w2], **extra).state_dict())

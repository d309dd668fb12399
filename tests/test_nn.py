"""bprop.nn modules and SGD's full update math, against PyTorch where it is installed."""

import bprop as bp
import numpy as np
import pytest
from bprop import nn


def mlp():
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 4), nn.ReLU(), nn.Linear(4, 2))


def test_modules_register_parameters_in_order():
    net = mlp()
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    shapes = [p.shape for p in net.parameters()]
    assert shapes == [(5, 3), (5,), (4, 5), (4,), (2, 4), (2,)]
    for p in net.parameters():
        assert isinstance(p, nn.Parameter) and isinstance(p, bp.Tensor)
        assert p.is_leaf and p.requires_grad
    assert len(net) == 5 and isinstance(net[1], nn.Tanh)
    assert len(list(net.children())) == 5 and len(list(net.modules())) == 6


def test_linear_matches_functional_and_pytorch_init_bounds():
    bp.manual_seed(0)
    layer = nn.Linear(100, 7)
    bound = 1 / np.sqrt(100)
    w = layer.weight.detach().numpy()
    assert np.all(np.abs(w) <= bound) and w.std() > bound / 3  # spread over U(-b, b)
    x = bp.randn(4, 100)
    np.testing.assert_allclose(
        layer(x).detach().numpy(),
        x.numpy() @ w.T + layer.bias.detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    assert nn.Linear(3, 2, bias=False).bias is None
    with pytest.raises(ValueError, match="Linear"):
        nn.Linear(-1, 2)


def test_train_eval_zero_grad_and_repr():
    net = mlp()
    assert net.training and all(m.training for m in net.modules())
    net.eval()
    assert not any(m.training for m in net.modules())
    net(bp.randn(2, 3)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(float(p.grad.abs().sum()) == 0.0 for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())
    assert "(0): Linear(in_features=3, out_features=5, bias=True)" in repr(net)


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="Sequential"):
        nn.Sequential(nn.ReLU(), lambda x: x)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"momentum": 0.9},
        {"momentum": 0.9, "nesterov": True},
        {"momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01},
        {"weight_decay": 0.1},
    ],
    ids=["plain", "momentum", "nesterov", "dampening_wd", "weight_decay"],
)
def test_sgd_update_math_matches_pytorch(options):
    torch = pytest.importorskip("torch")
    w0 = np.random.default_rng(0).standard_normal((3, 4))
    results = []
    for lib in (bp, torch):
        w = lib.tensor(w0, requires_grad=True)
        opt = (bp.optim.SGD if lib is bp else torch.optim.SGD)([w], lr=0.1, **options)
        for _ in range(6):
            opt.zero_grad()
            ((w * w).sum() * 0.5 + (w * 3).sum()).backward()
            opt.step()
        results.append(w.detach().numpy())
    np.testing.assert_allclose(results[0], results[1], rtol=1e-12, atol=1e-12)


def test_sgd_momentum_by_hand():
    w = bp.tensor([1.0], dtype=bp.float64, requires_grad=True)
    opt = bp.optim.SGD([w], lr=0.5, momentum=0.9)
    expected, buffer = 1.0, None
    for _ in range(3):
        opt.zero_grad()
        (w * w).sum().backward()  # gradient 2w
        g = 2 * expected
        buffer = g if buffer is None else 0.9 * buffer + g
        expected -= 0.5 * buffer
        opt.step()
        assert w.item() == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"nesterov": True}, "Nesterov"),
        ({"momentum": 0.9, "nesterov": True, "dampening": 0.1}, "Nesterov"),
        ({"momentum": -0.1}, "momentum"),
        ({"weight_decay": -1.0}, "weight_decay"),
    ],
)
def test_sgd_rejects_bad_options(options, message):
    with pytest.raises(ValueError, match=message):
        bp.optim.SGD([bp.ones(2, requires_grad=True)], lr=0.1, **options)


def test_mlp_trains_with_momentum():
    bp.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))
    opt = bp.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    x = bp.randn(64, 2)
    y = (x[:, :1] * x[:, 1:]).tanh()
    losses = []
    for _ in range(150):
        loss = nn.functional.mse_loss(net(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]


def test_layers_match_pytorch_with_the_same_weights():
    torch = pytest.importorskip("torch")
    bp.manual_seed(1)
    ours = nn.Sequential(
        nn.Conv2d(2, 4, 3, stride=1, padding=1), nn.GELU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 4, 3, padding=1, groups=2), nn.LeakyReLU(0.2), nn.AvgPool2d(2),
        nn.Flatten(), nn.Linear(16, 5), nn.Softmax(dim=1),
    )  # fmt: skip
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, stride=1, padding=1), torch.nn.GELU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(4, 4, 3, padding=1, groups=2), torch.nn.LeakyReLU(0.2),
        torch.nn.AvgPool2d(2), torch.nn.Flatten(), torch.nn.Linear(16, 5), torch.nn.Softmax(dim=1),
    )  # fmt: skip
    assert [p.shape for p in ours.parameters()] == [tuple(p.shape) for p in theirs.parameters()]
    with torch.no_grad():
        for p, q in zip(ours.parameters(), theirs.parameters()):
            q.copy_(torch.from_numpy(p.detach().numpy()))
    x = np.random.default_rng(0).standard_normal((3, 2, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(
        ours(bp.tensor(x)).detach().numpy(), theirs(torch.from_numpy(x)).detach().numpy(),
        rtol=1e-5, atol=1e-6,
    )  # fmt: skip


def test_default_initialisation_bounds_match_pytorch():
    bp.manual_seed(2)
    conv = nn.Conv2d(3, 8, 5)
    bound = 1 / np.sqrt(3 * 5 * 5)
    for p in (conv.weight, conv.bias):
        v = p.detach().numpy()
        assert np.all(np.abs(v) <= bound) and np.abs(v).max() > 0.5 * bound


def test_dropout_module_follows_train_and_eval():
    bp.manual_seed(3)
    layer = nn.Dropout(0.5)
    x = bp.ones(10_000)
    y = layer(x).numpy()
    assert 0.45 < (y == 0).mean() < 0.55 and set(np.unique(y)) <= {0.0, 2.0}
    layer.eval()
    np.testing.assert_array_equal(layer(x).numpy(), x.numpy())
    with pytest.raises(ValueError, match="Dropout"):
        nn.Dropout(1.5)


def test_init_functions_have_the_right_spread():
    bp.manual_seed(4)
    w = bp.empty(200, 300)
    nn.init.xavier_uniform_(w)
    assert np.abs(w.numpy()).max() <= np.sqrt(6 / 500) + 1e-7
    nn.init.kaiming_normal_(w, nonlinearity="relu")
    assert abs(w.numpy().std() - np.sqrt(2 / 300)) < 0.01 * np.sqrt(2 / 300) * 10
    nn.init.constant_(w, 0.25)
    assert np.all(w.numpy() == 0.25)
    nn.init.normal_(w, 1.0, 0.5)
    assert abs(w.numpy().mean() - 1.0) < 0.01 and abs(w.numpy().std() - 0.5) < 0.01
    assert nn.init.calculate_gain("tanh") == pytest.approx(5 / 3)
    with pytest.raises(ValueError, match="fan"):
        nn.init.xavier_uniform_(bp.empty(3))


def test_init_works_on_parameters_that_require_grad():
    layer = nn.Linear(4, 3)
    nn.init.zeros_(layer.weight)
    assert np.all(layer.weight.detach().numpy() == 0) and layer.weight.requires_grad


def test_clip_grad_norm_matches_pytorch():
    torch = pytest.importorskip("torch")
    g = np.random.default_rng(5).standard_normal((2, 6)) * 10
    for norm_type in (2.0, 1.0, float("inf")):
        ours = [bp.zeros(6, dtype=bp.float64, requires_grad=True) for _ in range(2)]
        theirs = [torch.zeros(6, dtype=torch.float64, requires_grad=True) for _ in range(2)]
        for p, q, row in zip(ours, theirs, g):
            p.grad = bp.tensor(row)
            q.grad = torch.from_numpy(row.copy())
        total = nn.utils.clip_grad_norm_(ours, 3.0, norm_type)
        expected = torch.nn.utils.clip_grad_norm_(theirs, 3.0, norm_type)
        assert float(total) == pytest.approx(float(expected))
        for p, q in zip(ours, theirs):
            np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)


def test_state_dict_round_trip_and_failed_load_changes_nothing():
    a, b = mlp(), mlp()
    b.load_state_dict(a.state_dict())
    for p, q in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(p.detach().numpy(), q.detach().numpy())
    before = [p.detach().numpy().copy() for p in b.parameters()]
    broken = dict(a.state_dict())
    broken["4.weight"] = bp.zeros(7, 7)  # wrong shape, after good entries
    with pytest.raises(ValueError, match="size mismatch for 4.weight"):
        b.load_state_dict(broken)
    for p, old in zip(b.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), old)
    partial = {k: v for k, v in a.state_dict().items() if k != "0.bias"}
    with pytest.raises(KeyError, match="0.bias"):
        b.load_state_dict(partial)
    missing, unexpected = b.load_state_dict(partial, strict=False)
    assert missing == ["0.bias"] and unexpected == []

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

"""bp.Trainer: epochs on the captured step equal the same loop run eagerly; validation,
callbacks, evaluate, predict, history and its plot."""

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest
from bprop import nn


def data(rows=100, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 6)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.int64) + (x[:, 2] > 1).astype(np.int64)
    return x, y


def make():
    bp.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3))
    return model, bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def eager_fit(model, opt, x, y, epochs, batch_size, seed):
    rng = np.random.default_rng(seed)
    xt, yt = bp.tensor(x), bp.tensor(y)
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(order), batch_size):
            idx = bp.tensor(order[start : start + batch_size])
            opt.zero_grad()
            F.cross_entropy(model(xt.index_select(0, idx)), yt.index_select(0, idx)).backward()
            opt.step()


def test_fit_equals_the_eager_loop_bit_for_bit():
    x, y = data()  # 100 rows: 3 full batches of 32 and a remainder of 4
    m1, o1 = make()
    history = bp.Trainer(m1, F.cross_entropy, o1).fit(
        x, y, epochs=4, batch_size=32, seed=5, progress=False
    )
    m2, o2 = make()
    eager_fit(m2, o2, x, y, epochs=4, batch_size=32, seed=5)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())
    assert len(history.epochs) == 4 and not history.interrupted
    assert all(0.0 <= a <= 1.0 for a in history.accuracy)


def test_validation_callbacks_evaluate_predict_and_plot(tmp_path):
    x, y = data(200)
    xv, yv = data(60, seed=1)
    model, opt = make()
    trainer = bp.Trainer(model, F.cross_entropy, opt)
    seen = []

    def stop_after_three(epoch, logs):
        seen.append((epoch, round(logs["loss"], 6)))
        return epoch < 3

    history = trainer.fit(x, y, epochs=10, batch_size=16, validation_data=(xv, yv),
                          callbacks=[stop_after_three], progress=False)  # fmt: skip
    assert [e for e, _ in seen] == [1, 2, 3] and len(history.epochs) == 3
    assert history.loss[-1] < history.loss[0]
    assert all(v is not None for v in history.val_accuracy)
    result = trainer.evaluate(xv, yv)
    assert result["accuracy"] == pytest.approx(history.val_accuracy[-1])
    predictions = trainer.predict(xv)
    assert predictions.shape == (60, 3)
    accuracy = (predictions.numpy().argmax(1) == yv).mean()
    assert accuracy == pytest.approx(result["accuracy"])
    pytest.importorskip("matplotlib")
    history.plot(tmp_path / "history.png")
    assert (tmp_path / "history.png").stat().st_size > 1000


def test_fit_regression_without_accuracy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = (x.sum(axis=1, keepdims=True) * 0.5).astype(np.float32)
    bp.manual_seed(1)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    trainer = bp.Trainer(model, F.mse_loss, bp.optim.Adam(model.parameters(), lr=0.02))
    history = trainer.fit(x, y, epochs=30, batch_size=16, progress=False)
    assert history.accuracy[0] is None
    assert history.loss[-1] < 0.2 * history.loss[0]


def test_fit_rejects_mismatched_data():
    model, opt = make()
    trainer = bp.Trainer(model, F.cross_entropy, opt)
    with pytest.raises(ValueError, match="rows"):
        trainer.fit(np.zeros((10, 6), np.float32), np.zeros(9, np.int64), progress=False)


def test_ctrl_c_stops_cleanly_with_the_model_intact():
    x, y = data(64)
    model, opt = make()
    trainer = bp.Trainer(model, F.cross_entropy, opt)

    def interrupt(epoch, logs):
        if epoch == 2:
            raise KeyboardInterrupt

    history = trainer.fit(x, y, epochs=5, batch_size=16, callbacks=[interrupt], progress=False)
    assert history.interrupted and len(history.epochs) == 2
    assert all(np.isfinite(p.detach().numpy()).all() for p in model.parameters())
    assert trainer.evaluate(x, y)["accuracy"] >= 0.0  # the model still works


def test_a_new_optimizer_is_used_and_empty_evaluation_is_refused():
    x, y = data(64)
    model, opt = make()
    trainer = bp.Trainer(model, F.cross_entropy, opt)
    trainer.fit(x, y, epochs=1, batch_size=16, progress=False)
    trainer.optimizer = bp.optim.SGD(model.parameters(), lr=0.0)
    before = [p.detach().numpy().copy() for p in model.parameters()]
    trainer.fit(x, y, epochs=1, batch_size=16, progress=False)
    for p, old in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.detach().numpy(), old)
    with pytest.raises(ValueError, match="non-empty"):
        trainer.evaluate(np.zeros((0, 6), np.float32), np.zeros(0, np.int64))


def test_the_last_partial_batch_is_kept_and_weighted_by_its_rows():
    # drop_last=False: 100 rows in batches of 32 train on 32, 32, 32 and 4 rows; the epoch's
    # loss is the mean of the batches' losses weighted by their rows.
    x, y = data()
    m1, o1 = make()
    history = bp.Trainer(m1, F.cross_entropy, o1).fit(
        x, y, epochs=3, batch_size=32, seed=2, progress=False
    )
    m2, o2 = make()
    rng = np.random.default_rng(2)
    xt, yt = bp.tensor(x), bp.tensor(y)
    expected = []
    for _ in range(3):
        order = rng.permutation(len(x))
        total = 0.0
        for start in range(0, len(order), 32):
            idx = bp.tensor(order[start : start + 32])
            o2.zero_grad()
            loss = F.cross_entropy(m2(xt.index_select(0, idx)), yt.index_select(0, idx))
            loss.backward()
            o2.step()
            total += loss.item() * idx.shape[0]
        expected.append(total / len(x))
    assert history.loss == pytest.approx(expected, rel=1e-12)
    for p, q in zip(m1.parameters(), m2.parameters()):
        assert np.array_equal(p.detach().numpy(), q.detach().numpy())


def test_data_that_requires_grad_are_constants_of_the_step():
    x, y = data(rows=64)
    m1, o1 = make()
    xt = bp.tensor(x, requires_grad=True)
    bp.Trainer(m1, F.cross_entropy, o1).fit(xt, y, epochs=2, batch_size=16, progress=False)
    assert xt.grad is None  # the recorded step must not backpropagate into the data
    m2, o2 = make()
    bp.Trainer(m2, F.cross_entropy, o2).fit(x, y, epochs=2, batch_size=16, progress=False)
    for p1, p2 in zip(m1.parameters(), m2.parameters()):
        np.testing.assert_array_equal(p1.detach().numpy(), p2.detach().numpy())


def test_a_model_that_returns_no_tensor_is_refused_by_name():
    x, y = data(rows=32)
    model, opt = make()

    class TwoOutputs(nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = model

        def forward(self, inputs):
            return self.inner(inputs), inputs

    def loss(output, target):
        return F.cross_entropy(output[0], target)

    trainer = bp.Trainer(TwoOutputs(), loss, opt)
    with pytest.raises(TypeError, match=r"\[Trainer\] the model must return one Tensor.*tuple"):
        trainer.fit(x, y, epochs=1, batch_size=16, progress=False)

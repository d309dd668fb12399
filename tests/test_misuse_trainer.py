"""bp.Trainer misuse: fit, evaluate and predict check every argument before the first step.
Each bad argument raises the right exception type with a message naming the argument, and
the model's parameters and the optimizer's state are bit-for-bit what they were."""

import os

import bprop as bp
import bprop.nn.functional as F
import numpy as np
import pytest
from bprop import nn


def data(rows=40, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((rows, 6)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
    return x, y


def trained_trainer(loss_fn=F.cross_entropy):
    """A Trainer after one epoch, so the optimizer has momentum state to lose."""
    bp.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 3))
    opt = bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = bp.Trainer(model, loss_fn, opt)
    x, y = data()
    trainer.fit(x, y, epochs=1, batch_size=16, progress=False)
    return trainer


def snapshot(trainer):
    """Copies of every parameter, buffer and optimizer state tensor, and the rest as is."""

    def copy(value):
        if isinstance(value, bp.Tensor):
            return value.detach().numpy().copy()
        if isinstance(value, dict):
            return {k: copy(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [copy(v) for v in value]
        return value

    return [copy(trainer.model.state_dict()), copy(trainer.optimizer.state_dict())]


def assert_same(before, after):
    if isinstance(before, np.ndarray):
        assert isinstance(after, np.ndarray) and before.dtype == after.dtype
        assert before.shape == after.shape and before.tobytes() == after.tobytes()
    elif isinstance(before, dict):
        assert before.keys() == after.keys()
        for k in before:
            assert_same(before[k], after[k])
    elif isinstance(before, list):
        assert len(before) == len(after)
        for b, a in zip(before, after):
            assert_same(b, a)
    else:
        assert before == after


def check_refused(trainer, method, error, name, *args, **kwargs):
    before = snapshot(trainer)
    assert before[1]["state"], "the optimizer should hold momentum state"
    with pytest.raises(error) as info:
        getattr(trainer, method)(*args, **kwargs)
    message = str(info.value)
    assert message.startswith(f"[Trainer.{method}]"), message
    assert name in message, message
    assert_same(before, snapshot(trainer))
    return message


X, Y = data()
XV, YV = data(12, seed=1)

FIT_CASES = [
    # (id, kwargs replacing the good ones, exception, argument named)
    ("batch_size_zero", {"batch_size": 0}, ValueError, "batch_size"),
    ("batch_size_negative", {"batch_size": -4}, ValueError, "batch_size"),
    ("batch_size_float", {"batch_size": 8.0}, TypeError, "batch_size"),
    ("batch_size_bool", {"batch_size": True}, TypeError, "batch_size"),
    ("batch_size_str", {"batch_size": "8"}, TypeError, "batch_size"),
    ("epochs_negative", {"epochs": -1}, ValueError, "epochs"),
    ("epochs_float", {"epochs": 2.5}, TypeError, "epochs"),
    ("epochs_bool", {"epochs": True}, TypeError, "epochs"),
    ("seed_float", {"seed": 1.5}, TypeError, "seed"),
    ("shuffle_str", {"shuffle": "yes"}, TypeError, "shuffle"),
    ("progress_int", {"progress": 2}, TypeError, "progress"),
    ("X_scalar", {"X": np.float32(1.0)}, ValueError, "X"),
    ("X_scalar_tensor", {"X": bp.tensor(1.0)}, ValueError, "X"),
    ("X_not_array", {"X": {"a": 1}}, TypeError, "X"),
    ("X_strings", {"X": ["a", "b"]}, TypeError, "X"),
    ("X_none", {"X": None}, TypeError, "X"),
    ("X_int32", {"X": X.astype(np.int32)}, TypeError, "X"),
    ("X_empty", {"X": X[:0], "y": Y[:0]}, ValueError, "X"),
    ("y_scalar", {"y": np.int64(1)}, ValueError, "y"),
    ("y_fewer_rows", {"y": Y[:-1]}, ValueError, "rows"),
    ("X_fewer_rows", {"X": X[:-3]}, ValueError, "rows"),
    ("val_not_pair", {"validation_data": (XV,)}, TypeError, "validation_data"),
    ("val_triple", {"validation_data": (XV, YV, YV)}, TypeError, "validation_data"),
    ("val_not_tuple", {"validation_data": XV}, TypeError, "validation_data"),
    ("val_length_mismatch", {"validation_data": (XV, YV[:-2])}, ValueError, "validation_data"),
    ("val_features", {"validation_data": (XV[:, :5], YV)}, ValueError, "validation_data[0]"),
    (
        "val_float_targets",
        {"validation_data": (XV, YV.astype(np.float32))},
        TypeError,
        "validation_data[1]",
    ),  # fmt: skip
    (
        "val_class_out_of_range",
        {"validation_data": (XV, YV + 3)},
        ValueError,
        "validation_data[1]",
    ),  # fmt: skip
    ("float_targets", {"y": Y.astype(np.float32)}, TypeError, "y"),
    ("class_out_of_range", {"y": np.where(Y == 2, 3, Y)}, ValueError, "y"),
    ("class_negative", {"y": np.where(Y == 2, -1, Y)}, ValueError, "y"),
    ("callbacks_not_callable", {"callbacks": [1]}, TypeError, "callbacks"),
    ("callbacks_function", {"callbacks": lambda e, logs: None}, TypeError, "callbacks"),
]


@pytest.mark.parametrize(
    "kwargs,error,name", [c[1:] for c in FIT_CASES], ids=[c[0] for c in FIT_CASES]
)
def test_fit_refuses_bad_arguments_before_training(kwargs, error, name):
    trainer = trained_trainer()
    args = {"X": X, "y": Y, "epochs": 2, "batch_size": 16, "validation_data": (XV, YV),
            "progress": False, **kwargs}  # fmt: skip
    check_refused(trainer, "fit", error, name, **args)


def test_fit_refuses_a_checkpoint_it_cannot_write(tmp_path):
    trainer = trained_trainer()
    good = {"epochs": 2, "batch_size": 16, "progress": False}
    missing = tmp_path / "no" / "such" / "dir" / "model.bp"
    message = check_refused(trainer, "fit", ValueError, "checkpoint", X, Y, checkpoint=missing,
                            **good)  # fmt: skip
    assert "does not exist" in message
    check_refused(trainer, "fit", ValueError, "checkpoint", X, Y, checkpoint=tmp_path, **good)
    check_refused(trainer, "fit", TypeError, "checkpoint", X, Y, checkpoint=3, **good)
    check_refused(trainer, "fit", ValueError, "checkpoint", X, Y,
                  checkpoint=str(tmp_path / "a\0b"), **good)  # fmt: skip
    if os.geteuid() != 0:  # root writes anywhere
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        try:
            check_refused(trainer, "fit", ValueError, "checkpoint", X, Y,
                          checkpoint=locked / "model.bp", **good)  # fmt: skip
        finally:
            locked.chmod(0o700)
    assert not list(tmp_path.rglob("*.bp"))


def test_nll_loss_module_and_ignore_index():
    trainer = trained_trainer(nn.CrossEntropyLoss(ignore_index=-1))
    # ignore_index is allowed among the targets; another negative index is not.
    trainer.fit(X, np.where(Y == 2, -1, Y), epochs=1, batch_size=16, progress=False)
    trainer.fit(X, Y, epochs=1, batch_size=16, progress=False)  # momentum state again
    check_refused(trainer, "fit", ValueError, "y", X, np.where(Y == 2, -2, Y), progress=False)

    bp.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 3), nn.LogSoftmax(dim=1))
    opt = bp.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    trainer = bp.Trainer(model, F.nll_loss, opt)
    trainer.fit(X, Y, epochs=1, batch_size=16, progress=False)
    check_refused(trainer, "fit", TypeError, "int64", X, Y.astype(np.float64), progress=False)


def test_float_targets_are_fine_for_a_regression_loss():
    bp.manual_seed(0)
    model = nn.Linear(6, 1)
    trainer = bp.Trainer(model, F.mse_loss, bp.optim.SGD(model.parameters(), lr=0.01))
    history = trainer.fit(X, X[:, :1] * 2.0, epochs=2, batch_size=16, progress=False)
    assert len(history.loss) == 2 and history.accuracy == [None, None]
    # epochs=0 trains nothing and is allowed (Keras)
    again = bp.Trainer(model, F.mse_loss, trainer.optimizer)
    assert again.fit(X, X[:, :1], epochs=0, progress=False).epochs == []


EVAL_CASES = [
    ("evaluate", (X, Y), {"batch_size": 0}, ValueError, "batch_size"),
    ("evaluate", (X, Y), {"batch_size": 2.0}, TypeError, "batch_size"),
    ("evaluate", (X, Y), {"batch_size": False}, TypeError, "batch_size"),
    ("evaluate", (X, Y[:-1]), {}, ValueError, "rows"),
    ("evaluate", (np.float32(1.0), Y), {}, ValueError, "X"),
    ("evaluate", (X, Y.astype(np.float32)), {}, TypeError, "y"),
    ("evaluate", (X, Y + 3), {}, ValueError, "y"),
    ("evaluate", ("abc", Y), {}, TypeError, "X"),
    ("predict", (X,), {"batch_size": 0}, ValueError, "batch_size"),
    ("predict", (X,), {"batch_size": -1}, ValueError, "batch_size"),
    ("predict", (X,), {"batch_size": 1.5}, TypeError, "batch_size"),
    ("predict", (np.float32(1.0),), {}, ValueError, "X"),
    ("predict", (object(),), {}, TypeError, "X"),
]


@pytest.mark.parametrize(
    "method,args,kwargs,error,name",
    EVAL_CASES,
    ids=[f"{c[0]}-{i}" for i, c in enumerate(EVAL_CASES)],
)
def test_evaluate_and_predict_refuse_bad_arguments(method, args, kwargs, error, name):
    trainer = trained_trainer()
    trainer.model.train()
    check_refused(trainer, method, error, name, *args, **kwargs)


def test_good_arguments_of_other_types_still_work():
    trainer = trained_trainer()
    history = trainer.fit(
        bp.tensor(X), Y.tolist(), epochs=np.int64(1), batch_size=np.int64(100), shuffle=False,
        validation_data=[XV, YV], callbacks=iter([lambda e, logs: None]), progress=False,
    )  # fmt: skip
    assert len(history.epochs) == 1 and history.val_accuracy[0] is not None
    assert trainer.predict(X, batch_size=np.int64(7)).shape == (40, 3)

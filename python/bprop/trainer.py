"""bp.Trainer: the SGD training loop, with epochs run in C++ on a captured step.

    trainer = bp.Trainer(model, F.cross_entropy, bp.optim.SGD(model.parameters(), lr=0.1))
    history = trainer.fit(X, y, epochs=10, batch_size=64, validation_data=(X_val, y_val))
    history.plot("loss.png")

The epochs run in C++: bp.Trainer drives bprop::Trainer (bprop/trainer.h), the loop C++
apps use. The step (zero_grad, forward, loss, backward, optimizer step) is captured once per
batch shape (see bprop.compile); every later batch of that shape is copied into the captured
buffers and replayed from C++ with the GIL released. How batches are formed (the last partial
batch is kept) is in the Trainer class's docstring. Results are those of the same loop run
eagerly. Ctrl-C stops after the current batch: the model is intact and fit() returns the
history so far, with history.interrupted set.

Data-parallel (bprop.distributed, under mpiexec): pass a DistributedDataParallel model (or
distributed=True, which wraps the model). Each rank then trains on its share of every global
batch (DistributedSampler's split of the shared permutation: batch_size is per rank), and the
gradients are averaged across ranks after each backward. zero_grad + forward + backward is
captured and replayed as above; after each replay the C++ loop calls back into Python for the
gradient all-reduce and the optimizer step (which MPI needs outside the capture). Only rank 0
shows progress and writes the checkpoint (fit's checkpoint=path, saved atomically after each
epoch); reported losses are averaged over the ranks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _core
from ._core import Tensor
from .autograd import no_grad

if TYPE_CHECKING:
    import os

    import numpy.typing as npt

    from .distributed import DistributedDataParallel
    from .nn import Module
    from .optim import SGD, Adam

    _Data = Tensor | npt.ArrayLike

__all__ = ["Trainer", "History"]


def _tensor_output(model: Callable[[Tensor], Any]) -> Callable[[Tensor], Tensor]:
    """model, refusing an output that is not one Tensor (the loop passes it to the loss
    and counts the rows it gets right) with an error that says so."""

    def forward(inputs: Tensor) -> Tensor:
        output = model(inputs)
        if not isinstance(output, Tensor):
            raise TypeError(
                "[Trainer] the model must return one Tensor (passed to the loss function), "
                f"got {type(output).__name__}; wrap it to return the tensor the loss takes"
            )
        return output

    return forward


class History:
    """Per-epoch metrics: loss, accuracy, val_loss, val_accuracy (None where not measured)."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, Any]] = []
        self.interrupted = False

    # history.loss, history.val_accuracy, ...: one entry per epoch.
    def __getattr__(self, name: str) -> list[Any]:
        if name.startswith("_") or name in ("epochs", "interrupted"):
            raise AttributeError(name)
        return [epoch.get(name) for epoch in self.epochs]

    def plot(self, path: str | os.PathLike[str]) -> None:
        """Loss (and accuracy, when measured) per epoch, as a PNG (needs matplotlib)."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        has_accuracy = any(e.get("accuracy") is not None for e in self.epochs)
        fig, axes = plt.subplots(
            1, 2 if has_accuracy else 1, figsize=(10 if has_accuracy else 5, 3.5)
        )
        axes = np.atleast_1d(axes)
        x = range(1, len(self.epochs) + 1)
        for ax, metric in zip(axes, ["loss", "accuracy"]):
            ax.plot(x, getattr(self, metric), label="train")
            if any(e.get(f"val_{metric}") is not None for e in self.epochs):
                ax.plot(x, getattr(self, f"val_{metric}"), label="validation")
            ax.set_xlabel("epoch")
            ax.set_ylabel(metric)
            ax.legend()
        fig.tight_layout()
        fig.savefig(path, dpi=100)
        plt.close(fig)


# Argument checks: fit, evaluate and predict check every argument before the first step, so
# a bad one raises (TypeError for a wrong type, ValueError for a wrong value, naming the
# argument) and leaves the model and the optimizer exactly as they were.


def _check_int(op: str, name: str, value: Any, minimum: int) -> int:
    """value as an int >= minimum; a bool, a float or a non-number is refused."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"[{op}] {name} must be an int, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"[{op}] {name} must be >= {minimum}, got {value}")
    return int(value)


def _check_bool(op: str, name: str, value: Any) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"[{op}] {name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _check_data(op: str, name: str, data: Any) -> Tensor:
    """data (a Tensor, a numpy array or nested lists of numbers) as a Tensor with at least one
    dimension: its rows. A scalar or an empty batch is refused."""
    if isinstance(data, Tensor):
        tensor = data
    else:
        if not isinstance(data, (np.ndarray, list, tuple, np.generic, int, float)):
            raise TypeError(
                f"[{op}] {name} must be a Tensor or an array, got {type(data).__name__}"
            )
        try:
            array = np.asarray(data)
        except ValueError as error:  # ragged lists
            raise ValueError(f"[{op}] {name} is not a rectangular array: {error}") from None
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"[{op}] {name} must hold numbers (bool, int or float), got dtype {array.dtype}"
            )
        if array.ndim == 0:
            raise ValueError(f"[{op}] {name} must have a batch dimension, got a scalar")
        try:
            tensor = _core._tensor_from_numpy(array)
        except TypeError as error:  # a dtype bprop has no tensors of (int32, float16, ...)
            raise TypeError(f"[{op}] {name} can't be used: {error}") from None
    if tensor.ndim == 0:
        raise ValueError(f"[{op}] {name} must have a batch dimension, got a scalar")
    if tensor.shape[0] == 0:
        raise ValueError(f"[{op}] {name} must be non-empty, got 0 rows")
    return tensor


def _check_pair(op: str, names: tuple[str, str], X: Any, y: Any) -> tuple[Tensor, Tensor]:  # noqa: N803
    X, y = _check_data(op, names[0], X), _check_data(op, names[1], y)  # noqa: N806
    if y.shape[0] != X.shape[0]:
        raise ValueError(
            f"[{op}] {names[0]} has {X.shape[0]} rows but {names[1]} has {y.shape[0]} rows"
        )
    return X, y


def _classification_loss(loss_fn: Any) -> tuple[str, int] | None:
    """(name, ignore_index) when loss_fn is cross_entropy or nll_loss (the function or the
    module), whose targets are int64 class indices; else None."""
    from .nn import functional

    if loss_fn is functional.cross_entropy:
        return "cross_entropy", -100
    if loss_fn is functional.nll_loss:
        return "nll_loss", -100
    kind = type(loss_fn).__name__
    if kind in ("CrossEntropyLoss", "NLLLoss") and hasattr(loss_fn, "ignore_index"):
        return kind, int(loss_fn.ignore_index)
    return None


def _check_writable_file(op: str, name: str, path: Any) -> None:
    """path names a file that can be written: its directory exists and is writable."""
    import os

    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(
            f"[{op}] {name} must be a path (str or os.PathLike), got {type(path).__name__}"
        )
    text = os.fspath(path)
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    if "\0" in text or text == "":
        raise ValueError(
            f"[{op}] {name} must be a non-empty path without NUL characters, got {text!r}"
        )
    if os.path.isdir(text):
        raise ValueError(f"[{op}] {name} is a directory, not a file path: {text!r}")
    directory = os.path.dirname(os.path.abspath(text))
    if not os.path.isdir(directory):
        raise ValueError(f"[{op}] {name}'s directory does not exist: {directory!r}")
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ValueError(f"[{op}] {name}'s directory is not writable: {directory!r}")


class Trainer:
    """Trains `model` with `loss_fn(output, target)` and `optimizer` (bprop.optim).

    The epochs run in C++ (bprop::Trainer, whose batch loop this drives): every row is
    trained on in every epoch, and when batch_size does not divide the rows the last batch
    is smaller (PyTorch's DataLoader default, drop_last=False), recorded once for its size
    and replayed in later epochs. The epoch's loss is the mean over its batches weighted by
    their rows. Distributed, the ranks split each global batch of batch_size x ranks rows and
    an incomplete last global batch is dropped (as DistributedSampler does), since every
    rank must take the same steps."""

    def __init__(
        self,
        model: Module | DistributedDataParallel,
        loss_fn: Callable[[Tensor, Tensor], Tensor],
        optimizer: SGD | Adam,
        distributed: bool = False,
    ) -> None:
        from .distributed import DistributedDataParallel

        if distributed and not isinstance(model, DistributedDataParallel):
            model = DistributedDataParallel(model)
        self.model, self.loss_fn, self.optimizer = model, loss_fn, optimizer
        self.distributed = isinstance(model, DistributedDataParallel)

    def __setattr__(self, name: str, value: Any) -> None:
        # A new model, loss or optimizer invalidates the recorded steps.
        object.__setattr__(self, name, value)
        if name in ("model", "loss_fn", "optimizer"):
            object.__setattr__(self, "_loop", None)

    def _native(self) -> _core._Trainer:
        """The C++ loop over this model, loss and optimizer, made on first use. Its callables
        are the model and the optimizer's methods, never this Trainer (no reference cycle)."""
        if self._loop is None:
            loop = _core._Trainer(
                _tensor_output(self.model), self.loss_fn, self.optimizer.zero_grad,
                self.optimizer.step,
            )  # fmt: skip
            if self.distributed:
                # Before each step: a replay skips the wrapper's forward, which arms the
                # gradient buckets; after each backward: the all-reduce, then the optimizer.
                loop.set_gradient_sync(self.model.prepare_for_backward, self.model.sync_gradients)
            object.__setattr__(self, "_loop", loop)
        return self._loop

    def fit(
        self,
        X: _Data,  # noqa: N803  (scikit-learn's name)
        y: _Data,
        epochs: int = 1,
        batch_size: int = 32,
        shuffle: bool = True,
        seed: int = 0,
        validation_data: tuple[_Data, _Data] | None = None,
        callbacks: Iterable[Callable[[int, dict[str, Any]], bool | None]] = (),
        progress: bool = True,
        checkpoint: str | os.PathLike[str] | None = None,
    ) -> History:
        """Trains for `epochs`; returns the History. Callbacks are called as
        callback(epoch, logs) after each epoch; one returning False stops training.
        checkpoint=path saves model.state_dict() there after each epoch (bp.save: atomic;
        only rank 0 when distributed). The last partial batch is kept (see the class).
        Every argument is checked before the first step (TypeError for a wrong type,
        ValueError for a wrong value, naming the argument): a bad one changes nothing."""
        # Every argument is checked here, before anything changes the model or optimizer.
        op = "Trainer.fit"
        X, y = _check_pair(op, ("X", "y"), X, y)  # noqa: N806
        epochs = _check_int(op, "epochs", epochs, 0)
        batch_size = _check_int(op, "batch_size", batch_size, 1)
        shuffle = _check_bool(op, "shuffle", shuffle)
        progress = _check_bool(op, "progress", progress)
        seed = _check_int(op, "seed", seed, 0)
        if callbacks is None or isinstance(callbacks, (str, bytes)) or callable(callbacks):
            raise TypeError(
                f"[{op}] callbacks must be an iterable of callables, got {type(callbacks).__name__}"
            )
        try:
            callbacks = list(callbacks)
        except TypeError:
            raise TypeError(
                f"[{op}] callbacks must be an iterable of callables, got {type(callbacks).__name__}"
            ) from None
        for i, cb in enumerate(callbacks):
            if not callable(cb):
                raise TypeError(f"[{op}] callbacks[{i}] is not callable: {type(cb).__name__}")
        if checkpoint is not None:
            _check_writable_file(op, "checkpoint", checkpoint)
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(
                    f"[{op}] validation_data must be a pair (X_val, y_val), got "
                    + (
                        f"a {type(validation_data).__name__} of {len(validation_data)}"
                        if isinstance(validation_data, (tuple, list))
                        else type(validation_data).__name__
                    )
                )
            names = ("validation_data[0]", "validation_data[1]")
            X_val, y_val = _check_pair(op, names, *validation_data)  # noqa: N806
            if tuple(X_val.shape[1:]) != tuple(X.shape[1:]):
                raise ValueError(
                    f"[{op}] validation_data[0] has rows of shape {tuple(X_val.shape[1:])} but "
                    f"X has rows of shape {tuple(X.shape[1:])}"
                )
            if tuple(y_val.shape[1:]) != tuple(y.shape[1:]):
                raise ValueError(
                    f"[{op}] validation_data[1] has rows of shape {tuple(y_val.shape[1:])} but "
                    f"y has rows of shape {tuple(y.shape[1:])}"
                )
            if y_val.dtype != y.dtype:
                raise TypeError(
                    f"[{op}] validation_data[1] has dtype {y_val.dtype} but y has {y.dtype}"
                )
            validation_data = (X_val, y_val)
        self._check_targets(op, X, (("y", y),) + (
            (("validation_data[1]", validation_data[1]),) if validation_data is not None else ()
        ))  # fmt: skip
        n = X.shape[0]
        batch_size = min(batch_size, n)
        classify = y.dtype == _core.dtype.int64
        rng = np.random.default_rng(seed)
        history = History()
        main_rank, ranks = True, 1
        if self.distributed:
            from . import distributed as dist

            main_rank, ranks = dist.rank() == 0, dist.world_size()
        if n < batch_size * ranks:  # batch_size <= n: only a global batch of several ranks
            raise ValueError(
                f"[Trainer.fit] {n} rows can't fill one global batch of {ranks} ranks x "
                f"{batch_size}"
            )
        steps = n // (batch_size * ranks) if self.distributed else -(-n // batch_size)
        bar = _progress_bar(progress and main_rank, epochs * steps)
        self.model.train()
        try:
            for epoch in range(epochs):
                started = time.perf_counter()
                order = rng.permutation(n) if shuffle else np.arange(n)
                losses, correct, rows, stopped = self._epoch(X, y, order, batch_size, classify, bar)
                logs = {"epoch": epoch + 1, "loss": losses,
                        "accuracy": correct / rows if classify and rows else None,
                        "seconds": time.perf_counter() - started}  # fmt: skip
                if validation_data is not None:
                    val = self.evaluate(*validation_data, batch_size=max(batch_size, 256))
                    logs["val_loss"], logs["val_accuracy"] = val["loss"], val["accuracy"]
                    self.model.train()
                history.epochs.append(logs)
                if bar is not None:
                    bar.set_postfix(loss=f"{losses:.4f}")
                if checkpoint is not None and main_rank:
                    from .serialization import save

                    save(self.model.state_dict(), checkpoint)
                if stopped or any(cb(epoch + 1, logs) is False for cb in callbacks):
                    break
        except KeyboardInterrupt:
            history.interrupted = True
        finally:
            if bar is not None:
                bar.close()
        return history

    def _epoch(self, X, y, order, batch_size, classify, bar):
        """One epoch of the C++ loop: (mean loss, rows right, rows, stopped). Distributed,
        this rank trains on its part of each full global batch, and the figures are summed
        over the ranks."""
        if self.distributed:
            from . import distributed as dist

            ranks, rank = dist.world_size(), dist.rank()
            order = np.concatenate(list(dist.rank_batches(order, ranks, rank, batch_size)))

        def on_batch(count, running):
            if bar is not None:
                bar.update(1)
                if count % 10 == 0:
                    bar.set_postfix(loss=f"{running:.4f}")
            return True

        mean, correct, rows, stopped = self._native().run_epoch(
            X, y, _core._tensor_from_numpy(order.astype(np.int64)), batch_size, classify,
            on_batch,
        )  # fmt: skip
        if self.distributed:
            sums = _core.from_numpy(np.array([mean * rows, correct, rows], dtype=np.float64))
            total_loss, correct, rows = dist.all_reduce_(sums, "sum").numpy()
            mean, correct, rows = total_loss / rows, int(correct), int(rows)
        return mean, correct, rows, stopped

    def _check_targets(self, op: str, X: Tensor, targets) -> None:  # noqa: N803
        """For cross_entropy and nll_loss: targets must be int64 class indices (cross_entropy
        also takes float class probabilities, one row per output row) within [0, classes),
        or ignore_index. The number of classes comes from the model's output for X's first
        row, computed in eval mode without gradients (nothing changes)."""
        loss = _classification_loss(self.loss_fn)
        if loss is None:
            return
        name, ignore_index = loss
        classes = None
        for target_name, target in targets:
            if target.dtype != _core.dtype.int64:
                if name in ("cross_entropy", "CrossEntropyLoss") and target.ndim >= 2:
                    continue  # class probabilities
                raise TypeError(
                    f"[{op}] {target_name} must be int64 class indices for {name}, got dtype "
                    f"{target.dtype}"
                )
            values = target.detach().numpy()
            values = values[values != ignore_index]
            if values.size == 0:
                continue
            low, high = int(values.min()), int(values.max())
            if low < 0:
                raise ValueError(
                    f"[{op}] {target_name} holds class index {low} < 0 (ignore_index is "
                    f"{ignore_index})"
                )
            if classes is None:
                classes = self._classes(X)
            if classes is not None and high >= classes:
                raise ValueError(
                    f"[{op}] {target_name} holds class index {high} but the model gives "
                    f"{classes} classes"
                )

    def _classes(self, X: Tensor) -> int | None:  # noqa: N803
        """The class dimension of the model's output for X's first row (eval mode, no
        gradients, the model's mode restored); None when the output has no class dim."""
        model = self.model.module if self.distributed else self.model
        was_training = getattr(model, "training", None)
        if was_training is not None:
            model.eval()
        try:
            with no_grad():
                output = _tensor_output(model)(X[0:1])
        finally:
            if was_training:
                model.train()
        return int(output.shape[1]) if output.ndim >= 2 else None

    @staticmethod
    def _correct(output, target) -> int:
        with no_grad():
            return int((output.argmax(dim=-1) == target).sum().item())

    def evaluate(
        self,
        X: _Data,  # noqa: N803
        y: _Data,
        batch_size: int = 256,
    ) -> dict[str, float | None]:
        """Mean loss and (for integer targets) accuracy, in eval mode, without gradients."""
        op = "Trainer.evaluate"
        X, y = _check_pair(op, ("X", "y"), X, y)  # noqa: N806
        batch_size = _check_int(op, "batch_size", batch_size, 1)
        self._check_targets(op, X, (("y", y),))
        self.model.eval()
        total, correct, n = 0.0, 0, X.shape[0]
        with no_grad():
            for start in range(0, n, batch_size):
                xb, yb = X[start : start + batch_size], y[start : start + batch_size]
                output = self.model(xb)
                total += self.loss_fn(output, yb).item() * xb.shape[0]
                if y.dtype == _core.dtype.int64:
                    correct += self._correct(output, yb)
        return {
            "loss": total / n,
            "accuracy": correct / n if y.dtype == _core.dtype.int64 else None,
        }

    def predict(self, X: _Data, batch_size: int = 256) -> Tensor:  # noqa: N803
        """The model's outputs for X, in eval mode, without gradients."""
        op = "Trainer.predict"
        X = _check_data(op, "X", X)  # noqa: N806
        batch_size = _check_int(op, "batch_size", batch_size, 1)
        self.model.eval()
        with no_grad():
            outputs = [self.model(X[s : s + batch_size]) for s in range(0, X.shape[0], batch_size)]
        return _core._cat(outputs, 0)


def _progress_bar(enabled: bool, total: int):
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="batch", leave=False)

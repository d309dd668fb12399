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


def _as_tensor(data: _Data) -> Tensor:
    return data if isinstance(data, Tensor) else _core._tensor_from_numpy(np.asarray(data))


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
        only rank 0 when distributed). The last partial batch is kept (see the class)."""
        X, y = _as_tensor(X), _as_tensor(y)
        n = X.shape[0]
        if y.shape[0] != n:
            raise ValueError(f"[Trainer.fit] X has {n} rows but y has {y.shape[0]}")
        if batch_size < 1 or n < 1:
            raise ValueError(f"[Trainer.fit] need batch_size >= 1 and data, got {batch_size}, {n}")
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
        X, y = _as_tensor(X), _as_tensor(y)
        if X.shape[0] == 0 or y.shape[0] != X.shape[0]:
            raise ValueError(
                f"[Trainer.evaluate] needs matching, non-empty data, got {X.shape[0]} and "
                f"{y.shape[0]} rows"
            )
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
        X = _as_tensor(X)
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

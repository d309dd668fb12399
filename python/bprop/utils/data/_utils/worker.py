"""The worker processes of a DataLoader with num_workers > 0.

Each worker gets its own index queue; all answer on one result queue. The main process hands
out the index batches round-robin, at most prefetch_factor per worker ahead, and yields the
results in sampler order. Tensors cross the process boundary as numpy arrays (the reducer
registered below for multiprocessing's pickler) and become tensors again without a copy. An
exception in a worker is re-raised in the main process, naming the worker and carrying its
traceback; a worker that dies is reported instead of waited for."""

from __future__ import annotations

import io
import os
import pickle
import queue
import random
import sys
import traceback
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler
from typing import Any

import numpy as np

from .... import _core
from ...._core import Tensor

__all__ = ["WorkerInfo", "get_worker_info"]

# How often a waiting worker checks that its parent is still there, and the main process
# that its workers are (seconds).
POLL_INTERVAL = 0.2


@dataclass(frozen=True)
class WorkerInfo:
    """What get_worker_info() returns inside a worker: its id, the number of workers, its
    seed (the base seed + id) and its copy of the dataset."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_worker_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """Inside a DataLoader worker process, its WorkerInfo; None in the main process."""
    return _worker_info


def _rebuild_tensor(array: np.ndarray, requires_grad: bool) -> Tensor:
    t = _core.from_numpy(array)
    return t.requires_grad_(True) if requires_grad else t


def _reduce_tensor(t: Tensor) -> tuple[Any, tuple[np.ndarray, bool]]:
    if t.requires_grad and not t.is_leaf:
        raise RuntimeError(
            "Cowardly refusing to serialize non-leaf tensor which requires_grad, since "
            "autograd does not support crossing process boundaries. If you just want to "
            "transfer the data, call detach() on the tensor before serializing"
        )
    return _rebuild_tensor, (t.detach().contiguous().numpy(), bool(t.requires_grad))


# Tensors in what multiprocessing pickles itself (a dataset sent to a spawned worker)...
ForkingPickler.register(Tensor, _reduce_tensor)


class _BatchPickler(ForkingPickler):
    """...and in the batches, subclasses (Parameter) included."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Tensor):
            return _reduce_tensor(obj)
        return NotImplemented


def _pickle(data: Any) -> bytes:
    buffer = io.BytesIO()
    _BatchPickler(buffer, pickle.HIGHEST_PROTOCOL).dump(data)
    return buffer.getvalue()


class ExceptionWrapper:
    """An exception raised in a worker, to be raised again in the main process."""

    def __init__(self, where: str) -> None:
        exc_type, exc, _ = sys.exc_info()
        self.exc_type = exc_type if exc_type is not None else RuntimeError
        self.exc_msg = "".join(traceback.format_exception(*sys.exc_info()))
        self.where = where

    def reraise(self) -> None:
        message = f"Caught {self.exc_type.__name__} {self.where}.\nOriginal {self.exc_msg}"
        if self.exc_type is KeyError:  # KeyError quotes its message: keep it readable
            message = KeyErrorMessage(message)
        try:
            error = self.exc_type(message)
        except Exception:
            raise RuntimeError(message) from None
        raise error


class KeyErrorMessage(str):
    """A str whose repr is itself, so a re-raised KeyError prints its traceback as lines."""

    def __repr__(self) -> str:
        return str(self)


@dataclass(frozen=True)
class IterableDatasetStop:
    """A worker's iterable dataset is exhausted."""

    worker_id: int


def _dumps(data: Any) -> bytes:
    try:
        return _pickle(data)
    except Exception:
        if not isinstance(data, ExceptionWrapper):
            raise
        data.exc_type = RuntimeError  # an exception class pickle can't find by name
        return _pickle(data)


def seed_worker(seed: int, worker_id: int) -> None:
    """Seeds Python's random, bprop's global generator and numpy's global one in a worker,
    as PyTorch seeds its workers: from the loader's base seed and the worker's id."""
    random.seed(seed)
    _core.manual_seed(seed)
    np.random.seed(np.random.SeedSequence([worker_id, seed]).generate_state(4))


def worker_loop(
    fetcher_factory: Any,
    dataset: Any,
    index_queue: Any,
    result_queue: Any,
    done_event: Any,
    base_seed: int,
    init_fn: Any,
    worker_id: int,
    num_workers: int,
    is_iterable: bool,
) -> None:
    """The body of a worker process: fetch the index batches it is sent until told to stop."""
    global _worker_info
    parent = os.getppid()
    try:
        seed = base_seed + worker_id
        seed_worker(seed, worker_id)
        _worker_info = WorkerInfo(worker_id, num_workers, seed, dataset)
        init_error = None
        fetcher = None
        try:
            if init_fn is not None:
                init_fn(worker_id)
            fetcher = fetcher_factory()
        except Exception:
            init_error = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
        epoch, exhausted = None, False
        while True:
            try:
                task = index_queue.get(timeout=POLL_INTERVAL)
            except queue.Empty:
                if os.getppid() != parent:  # the main process is gone
                    break
                continue
            if task is None:  # shut down
                break
            if done_event.is_set():
                continue
            task_epoch, idx, index = task
            if task_epoch != epoch:  # a new epoch of persistent workers: start over
                epoch, exhausted = task_epoch, False
                if init_error is None and is_iterable:
                    fetcher = fetcher_factory()
            if exhausted:
                continue
            if init_error is not None:
                data: Any = init_error
            else:
                try:
                    data = fetcher.fetch(index)
                except StopIteration:
                    if not is_iterable:
                        data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
                    else:
                        data, exhausted = IterableDatasetStop(worker_id), True
                except Exception:
                    data = ExceptionWrapper(f"in DataLoader worker process {worker_id}")
            # Pickled here, not in the queue's feeder thread, so that a batch that can't be
            # pickled is reported in the main process rather than lost.
            try:
                blob = _dumps(data)
            except Exception:
                blob = _dumps(ExceptionWrapper(f"in DataLoader worker process {worker_id}"))
            result_queue.put((task_epoch, idx, blob))
    except KeyboardInterrupt:
        pass
    # Results the main process will not read must not keep this process alive at exit
    # (the queue's feeder thread would wait for room in the pipe).
    if done_event.is_set():
        result_queue.cancel_join_thread()

"""DataLoader, as torch.utils.data.DataLoader: batches of a dataset, in sampler order.

With num_workers=0 the batches are made in the calling process. With num_workers > 0,
worker processes (the default multiprocessing start method, or multiprocessing_context) each
make whole batches; the main process keeps prefetch_factor batches per worker in flight and
yields them in order (_utils/worker.py). Each worker is seeded from a base seed drawn from
bprop's generator (so bp.manual_seed or generator= makes a run reproducible) plus its id.
pin_memory is accepted and does nothing: bprop runs on the CPU."""

from __future__ import annotations

import itertools
import multiprocessing
import pickle
import queue
import time
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from . import _random
from ._utils.collate import default_collate, default_convert
from ._utils.worker import POLL_INTERVAL, ExceptionWrapper, IterableDatasetStop, worker_loop
from .dataset import Dataset, IterableDataset
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["DataLoader"]


class _InfiniteConstantSampler(Sampler[None]):
    """The sampler of an iterable dataset: None forever (the dataset decides when to stop)."""

    def __iter__(self) -> Iterator[None]:
        while True:
            yield None


class _MapDatasetFetcher:
    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable, drop_last: bool):
        self.dataset, self.auto_collation, self.collate_fn = dataset, auto_collation, collate_fn

    def fetch(self, index: Any) -> Any:
        if self.auto_collation:
            getitems = getattr(self.dataset, "__getitems__", None)
            data = getitems(index) if callable(getitems) else [self.dataset[i] for i in index]
        else:
            data = self.dataset[index]
        return self.collate_fn(data)


class _IterableDatasetFetcher:
    def __init__(self, dataset: Any, auto_collation: bool, collate_fn: Callable, drop_last: bool):
        self.dataset_iter = iter(dataset)
        self.auto_collation, self.collate_fn, self.drop_last = auto_collation, collate_fn, drop_last
        self.ended = False

    def fetch(self, index: Any) -> Any:
        if self.ended:
            raise StopIteration
        if self.auto_collation:
            data = []
            for _ in index:
                try:
                    data.append(next(self.dataset_iter))
                except StopIteration:
                    self.ended = True
                    break
            if not data or (self.drop_last and len(data) < len(index)):
                raise StopIteration
        else:
            data = next(self.dataset_iter)
        return self.collate_fn(data)


class _FetcherFactory:
    """Makes the fetcher (picklable, for spawned workers)."""

    def __init__(self, loader: DataLoader) -> None:
        self.is_iterable = isinstance(loader.dataset, IterableDataset)
        self.args = (loader.dataset, loader._auto_collation, loader.collate_fn, loader.drop_last)

    def __call__(self) -> Any:
        kind = _IterableDatasetFetcher if self.is_iterable else _MapDatasetFetcher
        return kind(*self.args)


_LOCKED_ATTRIBUTES = (
    "batch_size", "batch_sampler", "sampler", "drop_last", "dataset", "persistent_workers",
)  # fmt: skip


class DataLoader:
    """Iterates over batches of a dataset (see the module docstring); PyTorch's arguments,
    defaults and errors. len() is the number of batches where the sampler has a length."""

    def __init__(
        self,
        dataset: Dataset | Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Sampler | Iterable | None = None,
        batch_sampler: Sampler | Iterable | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], None] | None = None,
        multiprocessing_context: Any = None,
        generator: Any = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
    ) -> None:
        if not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(
                "[DataLoader] num_workers option should be non-negative; use num_workers=0 to "
                "disable multiprocessing."
            )
        if timeout < 0:
            raise ValueError("[DataLoader] timeout option should be non-negative")
        if num_workers == 0 and prefetch_factor is not None:
            raise ValueError(
                "[DataLoader] prefetch_factor option could only be specified in multiprocessing."
                "let num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor "
                "to None."
            )
        if num_workers > 0 and prefetch_factor is None:
            prefetch_factor = 2
        if prefetch_factor is not None and prefetch_factor < 0:
            raise ValueError("[DataLoader] prefetch_factor option should be non-negative")
        if persistent_workers and num_workers == 0:
            raise ValueError("[DataLoader] persistent_workers option needs num_workers > 0")
        if isinstance(dataset, IterableDataset):
            if shuffle not in (None, False):
                raise ValueError(
                    "[DataLoader] DataLoader with IterableDataset: expected unspecified shuffle "
                    f"option, but got shuffle={shuffle}"
                )
            if sampler is not None:
                raise ValueError(
                    "[DataLoader] DataLoader with IterableDataset: expected unspecified sampler "
                    f"option, but got sampler={sampler}"
                )
            if batch_sampler is not None:
                raise ValueError(
                    "[DataLoader] DataLoader with IterableDataset: expected unspecified "
                    f"batch_sampler option, but got batch_sampler={batch_sampler}"
                )
        else:
            shuffle = bool(shuffle)
        if sampler is not None and shuffle:
            raise ValueError("[DataLoader] sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "[DataLoader] batch_sampler option is mutually exclusive with batch_size, "
                    "shuffle, sampler, and drop_last"
                )
            batch_size, drop_last = None, False
        elif batch_size is None and drop_last:
            raise ValueError(
                "[DataLoader] batch_size=None option disables auto-batching and is mutually "
                "exclusive with drop_last"
            )
        if sampler is None:
            if isinstance(dataset, IterableDataset):
                sampler = _InfiniteConstantSampler()
            elif shuffle:
                sampler = RandomSampler(dataset, generator=generator)
            else:
                sampler = SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)
        if multiprocessing_context is not None:
            if num_workers == 0:
                raise ValueError(
                    "[DataLoader] multiprocessing_context can only be used with multi-process "
                    f"loading (num_workers > 0), but got num_workers={num_workers}"
                )
            if isinstance(multiprocessing_context, str):
                multiprocessing_context = multiprocessing.get_context(multiprocessing_context)
        self.dataset = dataset
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.sampler = sampler
        self.batch_sampler = batch_sampler
        self.num_workers = num_workers
        self.prefetch_factor = prefetch_factor
        self.pin_memory = pin_memory
        self.pin_memory_device = pin_memory_device
        self.timeout = timeout
        self.worker_init_fn = worker_init_fn
        self.multiprocessing_context = multiprocessing_context
        self.generator = generator
        self.persistent_workers = persistent_workers
        self.in_order = in_order
        if collate_fn is None:
            collate_fn = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn
        self._iterator: _MultiProcessingIter | None = None
        self._initialized = True

    def __setattr__(self, name: str, value: Any) -> None:
        if self.__dict__.get("_initialized") and name in _LOCKED_ATTRIBUTES:
            raise ValueError(
                f"[DataLoader] {name} attribute should not be set after "
                f"{type(self).__name__} is initialized"
            )
        super().__setattr__(name, value)

    @property
    def _auto_collation(self) -> bool:
        return self.batch_sampler is not None

    @property
    def _index_sampler(self) -> Any:
        return self.batch_sampler if self._auto_collation else self.sampler

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            return _SingleProcessIter(self)
        if self.persistent_workers:
            if self._iterator is None or self._iterator.closed:
                self._iterator = _MultiProcessingIter(self)
            else:
                self._iterator.reset()
            return self._iterator
        return _MultiProcessingIter(self)

    def __len__(self) -> int:
        if isinstance(self.dataset, IterableDataset):
            length = len(self.dataset)  # type: ignore[arg-type]
            if self.batch_size is not None:
                if self.drop_last:
                    return length // self.batch_size
                return -(-length // self.batch_size)
            return length
        return len(self._index_sampler)

    def __del__(self) -> None:
        iterator = self.__dict__.get("_iterator")
        if iterator is not None:
            iterator.shutdown()


class _SingleProcessIter:
    def __init__(self, loader: DataLoader) -> None:
        self._sampler_iter = iter(loader._index_sampler)
        self._fetcher = _FetcherFactory(loader)()

    def __iter__(self) -> _SingleProcessIter:
        return self

    def __next__(self) -> Any:
        index = next(self._sampler_iter)
        return self._fetcher.fetch(index)


def _shutdown_workers(
    workers: list, index_queues: list, result_queue: Any, done_event: Any
) -> None:
    """Stops the workers: asks first, then terminates the ones that don't stop."""
    done_event.set()
    for q in index_queues:
        try:
            q.put(None)
        except (OSError, ValueError):
            pass
    for w in workers:
        w.join(timeout=5.0)
        if w.is_alive():
            w.terminate()
            w.join()
    for q in [*index_queues, result_queue]:
        q.cancel_join_thread()
        q.close()


class _MultiProcessingIter:
    def __init__(self, loader: DataLoader) -> None:
        self._loader = loader
        self._num_workers = loader.num_workers
        self._prefetch = max(loader.prefetch_factor, 1) * loader.num_workers
        self._timeout = loader.timeout
        self._persistent = loader.persistent_workers
        self._is_iterable = isinstance(loader.dataset, IterableDataset)
        context = loader.multiprocessing_context or multiprocessing
        self._index_queues = [context.Queue() for _ in range(self._num_workers)]
        self._result_queue = context.Queue()
        self._done_event = context.Event()
        base_seed = _random.seed(loader.generator)
        factory = _FetcherFactory(loader)
        self._workers = []
        for worker_id in range(self._num_workers):
            w = context.Process(
                target=worker_loop,
                args=(factory, loader.dataset, self._index_queues[worker_id],
                      self._result_queue, self._done_event, base_seed, loader.worker_init_fn,
                      worker_id, self._num_workers, self._is_iterable),
                daemon=True,
            )  # fmt: skip
            w.start()
            self._workers.append(w)
        self.closed = False
        self._finalizer = weakref.finalize(
            self, _shutdown_workers, self._workers, self._index_queues, self._result_queue,
            self._done_event,
        )  # fmt: skip
        self._epoch = -1
        self.reset()

    def reset(self) -> None:
        """Starts an epoch: a new pass over the sampler; results of an earlier, unfinished
        epoch are recognised by their epoch number and dropped."""
        self._epoch += 1
        self._sampler_iter = iter(self._loader._index_sampler)
        self._send_idx = 0  # the next task to hand out
        self._rcvd_idx = 0  # the next task to yield
        self._tasks: dict[int, list] = {}  # idx -> [worker_id] or [worker_id, data]
        self._active = [True] * self._num_workers
        self._cycle = itertools.cycle(range(self._num_workers))
        for _ in range(self._prefetch):
            self._put_index()

    def __iter__(self) -> _MultiProcessingIter:
        return self

    def _put_index(self) -> None:
        if not any(self._active):
            return
        try:
            index = next(self._sampler_iter)
        except StopIteration:
            return
        worker = next(self._cycle)
        while not self._active[worker]:
            worker = next(self._cycle)
        self._index_queues[worker].put((self._epoch, self._send_idx, index))
        self._tasks[self._send_idx] = [worker]
        self._send_idx += 1

    def _get(self) -> tuple[int, int, Any]:
        deadline = time.monotonic() + self._timeout if self._timeout > 0 else None
        while True:
            wait = POLL_INTERVAL
            if deadline is not None:
                wait = min(wait, max(deadline - time.monotonic(), 0.0))
            try:
                epoch, idx, blob = self._result_queue.get(timeout=wait)
                return epoch, idx, pickle.loads(blob)
            except queue.Empty:
                pass
            dead = [w for w in self._workers if not w.is_alive()]
            if dead:
                self.shutdown()
                pids = ", ".join(str(w.pid) for w in dead)
                codes = ", ".join(str(w.exitcode) for w in dead)
                raise RuntimeError(
                    f"[DataLoader] DataLoader worker (pid(s) {pids}) exited unexpectedly "
                    f"(exit code {codes})"
                )
            if deadline is not None and time.monotonic() >= deadline:
                raise RuntimeError(
                    f"[DataLoader] DataLoader timed out after {self._timeout} seconds"
                )

    def __next__(self) -> Any:
        if self.closed:
            raise StopIteration
        while True:
            # Skip tasks that will never be answered: their worker's dataset has ended.
            while self._rcvd_idx < self._send_idx:
                task = self._tasks[self._rcvd_idx]
                if len(task) == 2 or self._active[task[0]]:
                    break
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
            else:
                if not self._persistent:
                    self.shutdown()
                raise StopIteration
            task = self._tasks[self._rcvd_idx]
            if len(task) == 2:
                del self._tasks[self._rcvd_idx]
                self._rcvd_idx += 1
                return self._process(task[1])
            epoch, idx, data = self._get()
            if epoch != self._epoch:
                continue
            if isinstance(data, IterableDatasetStop):
                self._active[data.worker_id] = False
                self._put_index()  # its slot goes to a worker that still has data
                continue
            if idx != self._rcvd_idx:
                self._tasks[idx].append(data)
                continue
            del self._tasks[idx]
            self._rcvd_idx += 1
            return self._process(data)

    def _process(self, data: Any) -> Any:
        self._put_index()
        if isinstance(data, ExceptionWrapper):
            data.reraise()
        return data

    def shutdown(self) -> None:
        """Stops the workers (once)."""
        if not self.closed:
            self.closed = True
            self._finalizer()

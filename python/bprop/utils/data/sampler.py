"""Samplers, as torch.utils.data.sampler: iterables of dataset indices (or, for a
BatchSampler, of lists of indices). The random ones draw from bprop's generator: the global
one (seeded by bp.manual_seed) or the bp.Generator passed as generator=."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence, Sized
from typing import Any, Generic, TypeVar

from ... import _core
from ..._core import Tensor
from ..._tensor import tensor
from . import _random

__all__ = [
    "Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
    "WeightedRandomSampler", "BatchSampler",
]  # fmt: skip

T_co = TypeVar("T_co", covariant=True)


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


class Sampler(Generic[T_co]):
    """Base class: subclasses define __iter__ (and __len__ where the length is known)."""

    def __init__(self, data_source: Sized | None = None) -> None:
        pass

    def __iter__(self) -> Iterator[T_co]:
        raise NotImplementedError


class SequentialSampler(Sampler[int]):
    """0, 1, ..., len(data_source) - 1."""

    def __init__(self, data_source: Sized) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler[int]):
    """A random order of the indices: without replacement, whole permutations (and a part of
    one for num_samples beyond a multiple of the length); with replacement, num_samples
    uniform draws. A new order each iteration, as in PyTorch."""

    def __init__(
        self,
        data_source: Sized,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Any = None,
    ) -> None:
        self.data_source = data_source
        self.replacement = replacement
        self._num_samples = num_samples
        self.generator = generator
        if not isinstance(replacement, bool):
            raise TypeError(
                f"[RandomSampler] replacement should be a boolean value, but got "
                f"replacement={replacement}"
            )
        if not _positive_int(self.num_samples):
            raise ValueError(
                f"[RandomSampler] num_samples should be a positive integer value, but got "
                f"num_samples={self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        """How many indices one iteration yields (len(data_source) unless given)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if self.replacement:
            for _ in range(self.num_samples // 32):
                yield from _random.randint(n, 32, self.generator)
            yield from _random.randint(n, self.num_samples % 32, self.generator)
            return
        for _ in range(self.num_samples // n):
            yield from _random.randperm(n, self.generator)
        yield from _random.randperm(n, self.generator)[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler[int]):
    """The given indices in a random order, a new one each iteration."""

    def __init__(self, indices: Sequence[int], generator: Any = None) -> None:
        self.indices = indices
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        for i in _random.randperm(len(self.indices), self.generator):
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler[int]):
    """num_samples indices drawn with probability proportional to weights (bp.multinomial)."""

    def __init__(
        self,
        weights: Sequence[float] | Tensor,
        num_samples: int,
        replacement: bool = True,
        generator: Any = None,
    ) -> None:
        if not _positive_int(num_samples):
            raise ValueError(
                f"[WeightedRandomSampler] num_samples should be a positive integer value, but "
                f"got num_samples={num_samples}"
            )
        if not isinstance(replacement, bool):
            raise ValueError(
                f"[WeightedRandomSampler] replacement should be a boolean value, but got "
                f"replacement={replacement}"
            )
        weights = weights if isinstance(weights, Tensor) else tensor(weights)
        if weights.ndim != 1:
            raise ValueError(
                "[WeightedRandomSampler] weights should be a 1d sequence but given weights "
                f"have shape {tuple(weights.shape)}"
            )
        self.weights = weights.detach().to(_core.dtype.float64)
        self.num_samples = num_samples
        self.replacement = replacement
        self.generator = generator

    def __iter__(self) -> Iterator[int]:
        yield from _random.multinomial(
            self.weights, self.num_samples, self.replacement, self.generator
        )

    def __len__(self) -> int:
        return self.num_samples


class BatchSampler(Sampler[list[int]]):
    """Groups the indices of `sampler` into lists of batch_size (the last one shorter, or
    dropped with drop_last=True)."""

    def __init__(
        self, sampler: Sampler[int] | Iterable[int], batch_size: int, drop_last: bool
    ) -> None:
        if not _positive_int(batch_size):
            raise ValueError(
                f"[BatchSampler] batch_size should be a positive integer value, but got "
                f"batch_size={batch_size}"
            )
        if not isinstance(drop_last, bool):
            raise ValueError(
                f"[BatchSampler] drop_last should be a boolean value, but got drop_last={drop_last}"
            )
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for index in self.sampler:
            batch.append(index)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        if self.drop_last:
            return n // self.batch_size
        return (n + self.batch_size - 1) // self.batch_size

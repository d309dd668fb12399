"""DistributedSampler, as torch.utils.data.distributed.DistributedSampler: each rank's share
of a dataset's indices, for DataLoader(sampler=...). (bprop.distributed.DistributedSampler is
bprop's own, batch-aligned split used by the Trainer; this one is PyTorch's.)"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sized
from typing import Any

from . import _random
from .sampler import Sampler

__all__ = ["DistributedSampler"]


class DistributedSampler(Sampler[int]):
    """Rank `rank`'s indices of dataset: every rank draws the same permutation
    (bp.Generator seeded with seed + epoch: call set_epoch each epoch) and takes every
    num_replicas-th index from position rank, after padding the order with its own first
    indices to a multiple of num_replicas (or cutting the tail, with drop_last). num_replicas
    and rank default to the default process group's (init_process_group first)."""

    def __init__(
        self,
        dataset: Sized,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        from ... import distributed as dist

        if num_replicas is None:
            num_replicas = dist.get_world_size()
        if rank is None:
            rank = dist.get_rank()
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"[DistributedSampler] Invalid rank {rank}, rank should be in the interval "
                f"[0, {num_replicas - 1}]"
            )
        self.dataset = dataset
        self.num_replicas = num_replicas
        self.rank = rank
        self.epoch = 0
        self.drop_last = drop_last
        n = len(dataset)
        if drop_last and n % num_replicas:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas
        self.shuffle = shuffle
        self.seed = seed

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            from ..._sampling import Generator

            generator: Any = Generator().manual_seed(self.seed + self.epoch)
            indices = _random.randperm(n, generator)
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Sets the epoch, so that the next iteration draws that epoch's permutation."""
        self.epoch = epoch

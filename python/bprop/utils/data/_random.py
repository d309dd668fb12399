"""The random draws of the samplers and random_split: bprop's own generator (the global one,
seeded by bp.manual_seed, or a bp.Generator passed as generator=), never Python's or numpy's,
so shuffles are reproducible the way PyTorch's are."""

from __future__ import annotations

from typing import Any

from ..._core import Tensor


def randperm(n: int, generator: Any) -> list[int]:
    from ..._sampling import randperm as _randperm

    return _randperm(n, generator=generator).tolist()


def randint(high: int, count: int, generator: Any) -> list[int]:
    from ..._creation import randint as _randint

    return _randint(0, high, (count,), generator=generator).tolist()


def multinomial(weights: Tensor, count: int, replacement: bool, generator: Any) -> list[int]:
    from ..._sampling import multinomial as _multinomial

    return _multinomial(weights, count, replacement, generator=generator).tolist()


def seed(generator: Any) -> int:
    """A 63-bit seed drawn from generator (the workers' base seed)."""
    return randint(2**62, 1, generator)[0]

"""bprop.random: the state of bprop's global random number generator, as torch.random.

``rand``, ``randn``, ``randint`` (and everything drawing without ``generator=``) use one global
xoshiro256++ generator. ``get_rng_state()`` saves its position as an int64 tensor and
``set_rng_state(state)`` returns to it, so the same draws follow again; ``fork_rng()`` does
both around a block. ``manual_seed(s)`` reseeds it, ``seed()`` reseeds it from the system's
entropy, and ``initial_seed()`` is the seed it last started from. The numbers are bprop's own,
not PyTorch's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator

from ._core import get_rng_state, initial_seed, manual_seed, seed, set_rng_state

__all__ = ["fork_rng", "get_rng_state", "initial_seed", "manual_seed", "seed", "set_rng_state"]


@contextlib.contextmanager
def fork_rng(
    devices: Iterable[object] | None = None,
    enabled: bool = True,
    _caller: str = "fork_rng",
    _devices_kw: str = "devices",
    device_type: str = "cuda",
) -> Iterator[None]:
    """A context manager that restores the global generator's state on leaving the block
    (even when it raises), so the draws inside do not change those after it, as
    torch.random.fork_rng. enabled=False makes it do nothing. bprop has the CPU generator
    only: devices and device_type name accelerator generators and are ignored."""
    if not enabled:
        yield
        return
    state = get_rng_state()
    try:
        yield
    finally:
        set_rng_state(state)

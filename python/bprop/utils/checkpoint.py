"""bprop.utils.checkpoint, as torch.utils.checkpoint: checkpoint() and
checkpoint_sequential() compute the same values and gradients as PyTorch's.

bprop does not save memory with them yet: the function runs once, normally, and its graph
keeps its intermediate values for backward (PyTorch frees them and recomputes them in
backward). Code written for activation checkpointing runs unchanged."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["checkpoint", "checkpoint_sequential"]


def _check_use_reentrant(use_reentrant: bool | None, where: str) -> bool:
    if use_reentrant is None:
        warnings.warn(
            f"{where}: the use_reentrant parameter should be passed explicitly. "
            "use_reentrant=False is recommended, but if you need to preserve the current "
            "default behavior, you can pass use_reentrant=True.",
            stacklevel=3,
        )
        return True
    return bool(use_reentrant)


def checkpoint(
    function: Callable[..., Any],
    *args: Any,
    use_reentrant: bool | None = None,
    context_fn: Callable[[], Any] | None = None,
    determinism_check: str = "default",
    debug: bool = False,
    early_stop: bool = True,
    **kwargs: Any,
) -> Any:
    """Returns ``function(*args, **kwargs)``, as torch.utils.checkpoint.checkpoint: same values,
    same gradients. bprop runs the function once and keeps its graph, so no memory is saved
    (yet). Without use_reentrant it warns as PyTorch does (and takes True); with
    use_reentrant=True, keyword arguments other than preserve_rng_state raise ValueError."""
    reentrant = _check_use_reentrant(use_reentrant, "bprop.utils.checkpoint")
    kwargs.pop("preserve_rng_state", True)
    if kwargs and reentrant:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if determinism_check not in ("default", "none"):
        raise ValueError(
            f"determinism_check should be one of ['default', 'none'], but got {determinism_check}"
        )
    return function(*args, **kwargs)


def checkpoint_sequential(
    functions: Any,
    segments: int,
    input: Any,
    use_reentrant: bool | None = None,
    **kwargs: Any,
) -> Any:
    """Runs a Sequential (or a list of modules or functions) on input, one after the other, as
    torch.utils.checkpoint.checkpoint_sequential; `segments` is the number of checkpointed
    chunks PyTorch would use (it does not change the result; bprop saves no memory yet).
    Keyword arguments other than preserve_rng_state raise ValueError."""
    _check_use_reentrant(use_reentrant, "bprop.utils.checkpoint.checkpoint_sequential")
    kwargs.pop("preserve_rng_state", True)
    if kwargs:
        raise ValueError("Unexpected keyword arguments: " + ",".join(arg for arg in kwargs))
    if not isinstance(functions, Sequence):
        functions = list(functions.children())
    for f in functions:
        input = f(input)
    return input

"""bp.compile: captured replay of a training step::

    @bp.compile
    def step(x, y):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    for x, y in batches:
        loss = step(x, y)        # the first call records; later calls replay in C++

The first call with a given input shape and dtype runs the step for real while recording
every kernel launch and optimizer update it makes; later calls copy the new inputs into the
recorded buffers and replay the launches from C++ with the GIL released: no Python, no graph
building per op. Results are bit for bit those of calling the step eagerly. A new input shape
or dtype records again. The returned tensors are the same objects each call, updated in place.

Not capturable (each raises RuntimeError while recording): reading tensor values in Python
(.item(), float(), numpy(), printing) and any control flow that depends on them, boolean
masks, and making tensors from Python or numpy data inside the step. Python-side values
(a learning-rate schedule computed in Python, random numbers from Python) are frozen at their
recorded values; bprop's own random ops (dropout) draw anew on every replay. The model and
optimizer the step uses must stay the same objects."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import _core
from ._core import Tensor

__all__ = ["compile", "CompiledStep"]


class CompiledStep:
    """A step function with its recordings, one per input signature."""

    def __init__(self, step):
        self.step = step
        self._recordings = {}
        functools.update_wrapper(self, step)

    def __call__(self, *inputs):
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"[compile] input {i} is {type(t).__name__}; a compiled step takes tensors"
                )
        key = tuple((tuple(t.shape), t.dtype) for t in inputs)
        recording = self._recordings.get(key)
        if recording is None:
            placeholders = [t.detach().clone() for t in inputs]  # buffers the replay refills
            capture = _core._Capture()
            box = {}
            capture.record(lambda: box.__setitem__("result", self.step(*placeholders)))
            self._recordings[key] = (capture, placeholders, box["result"])
            return box["result"]
        capture, placeholders, result = recording
        for placeholder, t in zip(placeholders, inputs):
            _core._assign(placeholder, t)
        capture.replay()
        return result

    @property
    def signatures(self) -> list[tuple[tuple[tuple[int, ...], Any], ...]]:
        """The input signatures recorded so far, oldest first: per input, (shape, dtype)."""
        return list(self._recordings)

    @property
    def launches(self) -> int:
        """Launches in the most recent recording (0 before the first call)."""
        if not self._recordings:
            return 0
        return list(self._recordings.values())[-1][0].launches


def compile(step: Callable[..., Any]) -> CompiledStep:  # noqa: A001  (PyTorch's name)
    """Wraps a training step for captured replay: see the module docstring."""
    return CompiledStep(step)

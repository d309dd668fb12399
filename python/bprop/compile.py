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
optimizer the step uses must stay the same objects.

As in PyTorch, ``model = bp.compile(model)`` given an nn.Module returns an OptimizedModule:
calling it calls the model (eagerly: a forward alone is not a step to replay; record the
training step around it for speed), and it is a Module whose one child ``_orig_mod`` is the
model, so ``state_dict()`` keys carry the ``_orig_mod.`` prefix exactly as PyTorch's do.
torch.compile's keywords (mode=, fullgraph=, dynamic=, backend=, options=, disable=) and the
decorator-with-arguments form ``@bp.compile(mode="max-autotune")`` are accepted."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from . import _core
from ._core import Tensor
from .nn.modules.module import Module

__all__ = ["compile", "CompiledStep", "OptimizedModule"]

_MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


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


class OptimizedModule(Module):
    """What bp.compile(module) returns, as PyTorch's: a Module wrapping the model as its child
    `_orig_mod`. Calling it calls the model; attributes it lacks are read from the model;
    `training` is the model's."""

    def __init__(self, mod: Module, options: dict[str, Any] | None = None) -> None:
        super().__init__()
        self._orig_mod = mod
        object.__setattr__(self, "compile_options", dict(options or {}))

    @property
    def training(self) -> bool:  # type: ignore[override]
        """The wrapped model's mode (PyTorch's OptimizedModule reads it from _orig_mod)."""
        return self._orig_mod.training

    @training.setter
    def training(self, mode: bool) -> None:
        if "_orig_mod" in self.__dict__:  # Module.__init__ sets it before the model is there
            object.__setattr__(self._orig_mod, "training", bool(mode))

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Calls the wrapped model."""
        return self._orig_mod(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name == "_orig_mod":  # not set yet: no recursion
            raise AttributeError(name)
        return getattr(self._orig_mod, name)


def compile(  # noqa: A001  (PyTorch's name)
    model: Callable[..., Any] | None = None,
    *,
    fullgraph: bool = False,
    dynamic: bool | None = None,
    backend: str | Callable[..., Any] | None = None,
    mode: str | None = None,
    options: dict[str, Any] | None = None,
    name: str | None = None,
    disable: bool = False,
) -> Any:
    """Compiles a training step for captured replay (see the module docstring), or, given an
    nn.Module, wraps it in an OptimizedModule, as torch.compile. With no model it returns a
    decorator taking the same keywords. `disable=True` returns the model itself. The other
    keywords are checked as PyTorch checks them and do not change what is recorded."""
    if mode is not None and options is not None:
        raise RuntimeError(
            "[compile] Either mode or options can be specified, but both can't be specified "
            "at the same time."
        )
    if mode is not None and mode not in _MODES:
        raise RuntimeError(
            f"[compile] Unrecognized mode={mode}, should be one of: {', '.join(_MODES)}"
        )
    if backend is not None and not isinstance(backend, str) and not callable(backend):
        raise TypeError(
            f"[compile] backend must be a name or a callable, got {type(backend).__name__}"
        )
    settings = {"fullgraph": fullgraph, "dynamic": dynamic, "backend": backend, "mode": mode,
                "options": options, "name": name}  # fmt: skip
    if model is None:
        return functools.partial(compile, **settings, disable=disable)
    if not callable(model):
        raise TypeError(
            f"[compile] expects an nn.Module or a step function, got {type(model).__name__}"
        )
    if disable:
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, {k: v for k, v in settings.items() if v})
    return CompiledStep(model)

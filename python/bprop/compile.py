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
or dtype records again. The returned tensors are the same objects on each call from one
thread, updated in place by that thread's next call: keep a value with ``.clone()``.

Recordings are kept in a least-recently-used cache of ``cache_size`` signatures per step
(``bp.compile(step, cache_size=...)``, default ``DEFAULT_CACHE_SIZE`` = 8, as
torch._dynamo.config.cache_size_limit): a call with a signature not held records again, and
past the limit the least recently used recording is dropped and its memory freed. The first
time a step drops a recording it warns (UserWarning, once per compiled step): a step called
with a new shape every call records every call; pad the inputs to a few fixed shapes or raise
``cache_size``.

Threads: the calls of one compiled step are serialised by a lock held while recording, or
while copying the inputs in, replaying and returning. Each thread gets its own recording per
signature (its first call with a signature records, running the step for real), so a call's
returned tensors are overwritten only by the same thread's next call, never by another
thread's. The model and optimizer are shared: steps from several threads apply one after the
other, in the order the lock is taken. Recordings count per thread against ``cache_size``: for
a pool of N threads calling with S signatures, give ``cache_size=N * S``.

What a step does with a parameter's ``.grad`` depends on what it finds there when it first
touches it, unless it sets it itself (``zero_grad()`` inside the step): None, backward binds a
new gradient; a tensor, backward adds to it. A step that accumulates gradients over calls, with
the optimizer's step and ``zero_grad`` outside it, finds None after a zero_grad and its own
gradients after that: it is recorded once per such state, and each call replays the recording
made for the state it finds, so replays add up gradients as eager calls do (Note [A .grad from
before the recording] in cpp/src/launch/tape.h).

Not capturable (each raises RuntimeError while recording): reading tensor values in Python
(.item(), float(), numpy(), printing) and any control flow that depends on them, boolean
masks, and making tensors from Python or numpy data inside the step. Python-side values
(a learning-rate schedule computed in Python, random numbers from Python) are frozen at their
recorded values; bprop's own random ops (dropout) draw anew on every replay. The model and
optimizer the step uses must stay the same objects.

The recording is a program (Note [Captured programs] in cpp/src/launch/program.h): kernel
launches by name with their arguments as plain data, and named host steps (an optimizer's
step, a .grad binding). Before its first replay, passes rewrite it (Note [Program passes] in
cpp/src/capture/passes.cpp): launches whose results nothing reads are dropped, chains of
elementwise launches (a bias add and its activation, a gradient's sum of pieces) become one
pass whose intermediates never reach memory, a product followed by such a chain (a residual
add, a bias and activation) runs the chain on its rows while they are in cache, and the buffers
are planned over the launches' lifetimes. Every value keeps its arithmetic, so replays still
give the eager step's bits. ``BPROP_FUSION=0`` in the environment while recording turns the
passes off. ``step.describe()`` prints the program, ``step.profile()`` times each kind of
instruction over a few replays (``per_launch=True``: each instruction).

As in PyTorch, ``model = bp.compile(model)`` given an nn.Module returns an OptimizedModule:
calling it calls the model (eagerly: a forward alone is not a step to replay; record the
training step around it for speed), and it is a Module whose one child ``_orig_mod`` is the
model, so ``state_dict()`` keys carry the ``_orig_mod.`` prefix exactly as PyTorch's do.
torch.compile's keywords (mode=, fullgraph=, dynamic=, backend=, options=, disable=) and the
decorator-with-arguments form ``@bp.compile(mode="max-autotune")`` are accepted."""

from __future__ import annotations

import functools
import itertools
import os
import threading
import warnings
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Literal, overload

from . import _core
from ._core import Tensor
from .nn.modules.module import Module

__all__ = ["compile", "CompiledStep", "OptimizedModule", "DEFAULT_CACHE_SIZE"]

DEFAULT_CACHE_SIZE = 8
"""How many recordings (input signature x thread) a compiled step keeps by default."""

_MODES = ("default", "lite", "reduce-overhead", "max-autotune-no-cudagraphs", "max-autotune")


# Every CompiledStep alive, so that a forked child can renew their locks: a lock another thread
# of the parent held at the fork (a replay in progress) would stay held in the child forever.
_live_steps: weakref.WeakSet[CompiledStep] = weakref.WeakSet()


def _renew_locks_in_child() -> None:
    for step in list(_live_steps):
        step._lock = threading.RLock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_renew_locks_in_child)


class CompiledStep:
    """A step function with its recordings: a least-recently-used cache of at most
    `cache_size`, one recording per input signature and calling thread."""

    def __init__(self, step: Callable[..., Any], cache_size: int = DEFAULT_CACHE_SIZE) -> None:
        self.step = step
        self.cache_size = _check_cache_size(cache_size)
        # (thread token, signature) -> its recordings (capture, placeholders, result), one per
        # state of the .grad the step reads before setting (Note [A .grad from before the
        # recording] in cpp/src/launch/tape.h), most recently used first; oldest key first
        self._recordings: OrderedDict[Any, list[tuple[Any, list[Tensor], Any]]] = OrderedDict()
        self._lock = threading.RLock()
        self._thread = threading.local()  # .token: this thread's number, unique per thread
        self._tokens = itertools.count()
        self._last_launches = 0
        self._last_buffer_bytes = 0
        self._warned = False
        functools.update_wrapper(self, step)
        _live_steps.add(self)

    def __call__(self, *inputs: Tensor) -> Any:
        for i, t in enumerate(inputs):
            if not isinstance(t, Tensor):
                raise TypeError(
                    f"[compile] input {i} is {type(t).__name__}; a compiled step takes tensors"
                )
        token = getattr(self._thread, "token", None)
        if token is None:
            token = self._thread.token = next(self._tokens)
        key = (token, tuple((tuple(t.shape), t.dtype) for t in inputs))
        with self._lock:
            # A recording holds while the .grad it read from before it are as they were (a
            # step accumulating gradients over calls finds None, then its own): else another.
            variants = self._recordings.get(key, ())
            for recording in variants:
                if recording[0].grads_as_recorded():
                    break
            else:
                return self._record(key, inputs)
            self._recordings.move_to_end(key)
            if variants[0] is not recording:
                variants.remove(recording)
                variants.insert(0, recording)
            capture, placeholders, result = recording
            for placeholder, t in zip(placeholders, inputs):
                _core._assign(placeholder, t)
            capture.replay()
            return result

    def _record(self, key: Any, inputs: tuple[Tensor, ...]) -> Any:
        """Records the step for `key` (the lock held), dropping the least recently used
        recording past cache_size."""
        placeholders = [t.detach().clone() for t in inputs]  # buffers the replay refills
        capture = _core._Capture()
        box = {}
        capture.record(lambda: box.__setitem__("result", self.step(*placeholders)))
        self._recordings.setdefault(key, []).insert(0, (capture, placeholders, box["result"]))
        self._recordings.move_to_end(key)
        self._last_launches = capture.launches
        self._last_buffer_bytes = capture.buffer_bytes
        while sum(len(v) for v in self._recordings.values()) > self.cache_size:
            oldest_key, oldest = next(iter(self._recordings.items()))
            oldest.pop()  # its buffers go with the last reference
            if not oldest:
                del self._recordings[oldest_key]
            if not self._warned:
                self._warned = True
                name = getattr(self.step, "__qualname__", repr(self.step))
                warnings.warn(
                    f"[compile] step {name} needs more than cache_size={self.cache_size} "
                    "recordings (one per input shape and dtype, per thread, per state of "
                    "the .grad the step reads before setting it): the least "
                    "recently used is dropped and records again when called. A new shape "
                    "every call records every call; pad inputs to a few shapes or raise "
                    "cache_size.",
                    UserWarning,
                    stacklevel=3,  # the line calling the step
                )
        return box["result"]

    @property
    def signatures(self) -> list[tuple[tuple[tuple[int, ...], Any], ...]]:
        """The input signatures recorded and still held, least recently used first (once
        each, whichever threads recorded them): per input, (shape, dtype)."""
        with self._lock:
            return list(dict.fromkeys(sig for _, sig in self._recordings))

    @property
    def launches(self) -> int:
        """Launches in the most recent recording (0 before the first call)."""
        return self._last_launches

    @property
    def buffer_bytes(self) -> int:
        """Bytes of the buffers the most recent recording's step made, as its replays use
        them (intermediates whose lifetimes do not overlap share a buffer; 0 before the first
        call)."""
        return self._last_buffer_bytes

    def _latest_capture(self, what: str) -> Any:
        with self._lock:
            if not self._recordings:
                raise RuntimeError(f"[compile] {what}: the step has not been called yet")
            return next(reversed(self._recordings.values()))[0][0]

    def describe(self) -> str:
        """The most recently used recording as its program: one line per instruction, each
        kernel launch with its arguments (buffers as ``s<slot>+<byte offset>`` in the
        recording's memory, ``@<address>`` outside it), each host step (an optimizer's step,
        a .grad binding) by name."""
        return self._latest_capture("describe").describe()

    @overload
    def profile(
        self, replays: int = ..., per_launch: Literal[False] = ...
    ) -> list[tuple[str, int, float]]: ...
    @overload
    def profile(
        self, replays: int = ..., *, per_launch: Literal[True]
    ) -> list[tuple[str, float]]: ...
    @overload
    def profile(self, replays: int, per_launch: Literal[True]) -> list[tuple[str, float]]: ...
    def profile(
        self, replays: int = 10, per_launch: bool = False
    ) -> list[tuple[str, int, float]] | list[tuple[str, float]]:
        """Where a replay of the most recently used recording spends its time: replays it
        ``replays`` times (updating the model, as calls would) timing each instruction, and
        returns ``(kernel or host step name, instructions, mean ms per replay)``, the slowest
        first. With ``per_launch=True``, one row per instruction in program order instead:
        ``(its describe() line, mean ms per replay)``, to find which launch of a kind is
        slow (products of one shape, say, slower inside the step than alone)."""
        if isinstance(replays, bool) or not isinstance(replays, int):
            raise TypeError(f"[compile] profile: replays must be an int, got {replays!r}")
        if not isinstance(per_launch, bool):
            raise TypeError(f"[compile] profile: per_launch must be a bool, got {per_launch!r}")
        with self._lock:
            capture = self._latest_capture("profile")
            if per_launch:
                return [(line, s * 1e3) for line, s in capture.profile_launches(replays)]
            rows = capture.profile(replays)
        return [(name, count, seconds * 1e3) for name, count, seconds in rows]


def _check_cache_size(cache_size: Any) -> int:
    if isinstance(cache_size, bool) or not isinstance(cache_size, int):
        raise TypeError(
            f"[compile] cache_size must be a positive int, got {type(cache_size).__name__}"
        )
    if cache_size < 1:
        raise ValueError(f"[compile] cache_size must be at least 1, got {cache_size}")
    return cache_size


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
    cache_size: int = DEFAULT_CACHE_SIZE,
) -> Any:
    """Compiles a training step for captured replay (see the module docstring), or, given an
    nn.Module, wraps it in an OptimizedModule, as torch.compile. With no model it returns a
    decorator taking the same keywords. `disable=True` returns the model itself. The other
    keywords are checked as PyTorch checks them and do not change what is recorded.
    `cache_size` (bprop's; default DEFAULT_CACHE_SIZE = 8) bounds how many recordings a
    compiled step keeps (least recently used dropped first, see the module docstring); a
    TypeError or ValueError names it if it is not a positive int."""
    _check_cache_size(cache_size)
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
        return functools.partial(compile, **settings, disable=disable, cache_size=cache_size)
    if not callable(model):
        raise TypeError(
            f"[compile] expects an nn.Module or a step function, got {type(model).__name__}"
        )
    if disable:
        return model
    if isinstance(model, Module):
        return OptimizedModule(model, {k: v for k, v in settings.items() if v})
    return CompiledStep(model, cache_size)

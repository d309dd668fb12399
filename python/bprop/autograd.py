"""bprop.autograd: grad(), the grad-mode switches (no_grad, enable_grad, set_grad_enabled,
inference_mode), Tensor.register_hook, and custom differentiable ops (Function)."""

from __future__ import annotations

import collections.abc
import functools
import inspect
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, overload

from . import _core
from ._core import Tensor, is_grad_enabled
from ._tensor import RemovableHandle, method

if TYPE_CHECKING:
    from ._core import _RemovableHandle

__all__ = [
    "grad", "no_grad", "enable_grad", "set_grad_enabled", "is_grad_enabled", "detect_anomaly",
    "RemovableHandle", "inference_mode", "is_inference_mode_enabled", "Function",
    "FunctionCtx", "once_differentiable",
]  # fmt: skip

_F = TypeVar("_F", bound=Callable[..., Any])
_Mode = TypeVar("_Mode", bound="_GradMode")


def _as_list(value, name: str) -> list:
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, Sequence):
        return list(value)
    raise TypeError(f"[grad] {name} must be a Tensor or a sequence of Tensors, got {type(value)}")


@overload
def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: Literal[False] = False,
) -> tuple[Tensor, ...]: ...


@overload
def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    *,
    allow_unused: bool,
) -> tuple[Tensor | None, ...]: ...


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """The gradients of `outputs` with respect to `inputs`, as a tuple; .grad is not touched.

    With create_graph=True the gradients are graphs themselves and can be differentiated
    again (grad of grad, Hessian-vector products). An input the outputs do not depend on
    raises unless allow_unused=True, in which case its gradient is None."""
    outputs = _as_list(outputs, "outputs")
    inputs = _as_list(inputs, "inputs")
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    else:
        grad_outputs = _as_list(grad_outputs, "grad_outputs")
    if retain_graph is None:
        retain_graph = create_graph
    return tuple(
        _core._grad(
            outputs, inputs, grad_outputs, bool(retain_graph), bool(create_graph), allow_unused
        )
    )


class _HookHandle(RemovableHandle):
    """The RemovableHandle of a Tensor.register_hook registration; it keeps neither the
    tensor nor its graph alive."""

    def __init__(self, handle: _core._HookHandle) -> None:
        self._hook = handle

    @property
    def id(self) -> int:
        """The registration's number, unique in the process."""
        return self._hook.id

    def remove(self) -> None:
        """Takes the hook off (nothing happens if it already is)."""
        self._hook.remove()


@method
def register_hook(
    self: Tensor, hook: collections.abc.Callable[[Tensor], Tensor | None]
) -> _RemovableHandle:
    """Calls hook(grad) with the gradient with respect to this tensor each time backward()
    or bp.autograd.grad() computes it, before it flows on (for a leaf, before it is added into
    .grad); hook may return a replacement of the same shape and dtype, or None to keep it.
    Hooks run in the order registered; an exception a hook raises propagates out of
    backward(). With create_graph=True the gradient is differentiable. Returns a
    RemovableHandle. Raises RuntimeError if the tensor does not require grad. A hook that
    holds this tensor keeps it (and its graph) alive for good; in a step captured by
    bp.compile, the bprop ops a hook runs are recorded and replayed, its other effects happen
    once."""
    if not callable(hook):
        raise TypeError(f"[register_hook] hook must be callable, got {type(hook).__name__}")
    return _HookHandle(_core._register_hook(self, hook))


def _decorate(fn: _F, make_context: Callable[[], Any]) -> _F:
    """Runs fn (or, for a generator function, each step of its generator) inside a fresh
    context from make_context(), as PyTorch's grad-mode decorators do."""
    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator_wrapper(*args, **kwargs):
            generator = fn(*args, **kwargs)
            try:
                with make_context():
                    response = generator.send(None)
                while True:
                    try:
                        request = yield response
                    except GeneratorExit:
                        with make_context():
                            generator.close()
                        raise
                    except BaseException as error:  # forwarded into the generator
                        with make_context():
                            response = generator.throw(error)
                    else:
                        with make_context():
                            response = generator.send(request)
            except StopIteration as stop:
                return stop.value

        # functools.wraps keeps fn's signature, which mypy cannot see.
        return generator_wrapper  # type: ignore[return-value]

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with make_context():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


class set_grad_enabled:
    """Turns graph recording on or off: a function call, a context manager or a decorator."""

    def __init__(self, mode: bool) -> None:
        self.previous = is_grad_enabled()
        self.mode = bool(mode)
        _core.set_grad_enabled(self.mode)

    def __enter__(self) -> set_grad_enabled:
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _core.set_grad_enabled(self.previous)
        return False

    def __call__(self, fn: _F) -> _F:
        mode = self.mode
        _core.set_grad_enabled(self.previous)  # used as a decorator: don't change mode now
        return _decorate(fn, lambda: set_grad_enabled(mode))


class _GradMode:
    """A context manager and decorator, usable as `@no_grad()` or bare `@no_grad`."""

    mode = True

    @overload
    def __new__(cls: type[_Mode], fn: None = None) -> _Mode: ...

    @overload
    def __new__(cls, fn: _F) -> _F: ...  # type: ignore[misc]  # bare @no_grad: a function

    def __new__(cls, fn: Callable[..., Any] | None = None) -> Any:
        if fn is None:
            return super().__new__(cls)
        if not callable(fn):
            raise TypeError(f"{cls.__name__}() takes no arguments, got {fn!r}")
        return _decorate(fn, cls)

    def __enter__(self: _Mode) -> _Mode:
        self.previous = is_grad_enabled()
        _core.set_grad_enabled(self.mode)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _core.set_grad_enabled(self.previous)
        return False

    def __call__(self, fn: _F) -> _F:
        return _decorate(fn, self.__class__)


class no_grad(_GradMode):
    """Inside it, ops record no graph (results do not require grad)."""

    mode = False


class enable_grad(_GradMode):
    """Turns recording back on, e.g. inside no_grad."""

    mode = True


_inference = threading.local()  # per thread, as grad mode is


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside inference_mode()."""
    return bool(getattr(_inference, "enabled", False))


class inference_mode:
    """no_grad for inference: inside it ops record no graph. A context manager, a decorator
    (``@inference_mode()`` or bare ``@inference_mode``) and ``inference_mode(False)``, which
    turns it off again (and recording on), as PyTorch's does.

    PyTorch also marks the tensors made inside as inference tensors that autograd refuses
    later; bprop's are ordinary tensors that do not require grad."""

    @overload
    def __new__(cls, mode: bool = True) -> inference_mode: ...

    @overload
    def __new__(cls, mode: _F) -> _F: ...  # type: ignore[misc]  # bare @inference_mode

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode):
            return _decorate(mode, cls)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)

    def __enter__(self) -> inference_mode:
        self.previous = (is_grad_enabled(), is_inference_mode_enabled())
        _core.set_grad_enabled(not self.mode)
        _inference.enabled = self.mode
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        grad_mode, _inference.enabled = self.previous
        _core.set_grad_enabled(grad_mode)
        return False

    def __call__(self, fn: _F) -> _F:
        mode = self.mode
        return _decorate(fn, lambda: inference_mode(mode))


def _python_stack() -> str:
    """Where the current op was called from, for anomaly mode (this frame left out)."""
    return "".join(traceback.format_stack()[:-1])


class detect_anomaly:
    """Inside it, backward raises at the first op whose gradient holds NaN, naming the op and
    showing the Python traceback of its forward call. Slow: for debugging only."""

    _provider_installed = False

    def __init__(self, check_nan: bool = True) -> None:
        self.check_nan = bool(check_nan)

    def __enter__(self) -> detect_anomaly:
        if not detect_anomaly._provider_installed:
            _core._set_forward_trace_provider(_python_stack)
            detect_anomaly._provider_installed = True
        self.previous = _core.is_anomaly_enabled()
        _core._set_anomaly_enabled(self.check_nan)
        return self

    def __exit__(self, *exc: object) -> Literal[False]:
        _core._set_anomaly_enabled(self.previous)
        return False

    def __call__(self, fn: _F) -> _F:
        return _decorate(fn, lambda: detect_anomaly(self.check_nan))


# ---- Custom functions ----


class FunctionCtx:
    """The `ctx` a Function's forward and backward share: save tensors for backward, read
    which inputs need a gradient, mark outputs non-differentiable. Any other attribute may be
    set on it to pass values from forward to backward."""

    needs_input_grad: tuple[bool, ...]

    def __init__(self) -> None:
        self.needs_input_grad = ()
        self._to_save: tuple[Tensor | None, ...] = ()
        self._saved: tuple[Tensor | None, ...] | None = None
        self._in_forward = True
        self._non_differentiable: list[Tensor] = []
        self.materialize_grads = True

    def save_for_backward(self, *tensors: Tensor | None) -> None:
        """Keeps tensors (inputs, outputs or intermediates; None allowed) for backward, which
        reads them as ctx.saved_tensors. Call it once, in forward (or setup_context). A tensor
        modified in place after this makes backward raise."""
        for t in tensors:
            if t is not None and not isinstance(t, Tensor):
                raise TypeError(
                    "[save_for_backward] save_for_backward can only save variables, but argument "
                    f"{tensors.index(t)} is of type {type(t).__name__}"
                )
        self._to_save = tensors

    @property
    def saved_tensors(self) -> tuple[Tensor | None, ...]:
        """The tensors given to save_for_backward, readable in backward. Raises RuntimeError
        once the graph has been freed (a second backward without retain_graph=True)."""
        if self._saved is None:
            raise RuntimeError(
                "[saved_tensors] Trying to backward through the graph a second time (or directly "
                "access saved tensors after they have already been freed), or reading them "
                "outside backward. Specify retain_graph=True if you need to backward through the "
                "graph a second time."
            )
        return self._saved

    def mark_non_differentiable(self, *tensors: Tensor) -> None:
        """Marks outputs of forward that have no gradient (indices, masks): they do not
        require grad, and backward receives zeros for them."""
        self._non_differentiable.extend(tensors)

    def set_materialize_grads(self, value: bool) -> None:
        """Whether backward receives zero tensors for outputs that got no gradient (default
        True). With False, a non-differentiable output's gradient is None; bprop still passes
        zeros for a differentiable output that got no gradient (PyTorch passes None), which
        gives the same result in any backward that treats None as zero."""
        self.materialize_grads = bool(value)

    def mark_dirty(self, *tensors: Tensor) -> None:
        """Not supported: bprop's Function can't modify its inputs in place."""
        raise NotImplementedError(
            "[mark_dirty] custom Functions that modify their inputs in place are not supported "
            "by bprop; return a new tensor instead"
        )


def _has_setup_context(cls: type) -> bool:
    return getattr(cls, "setup_context", None) is not Function.setup_context


class Function:
    """A differentiable op with a hand-written backward, as torch.autograd.Function.

    Subclass it with staticmethods ``forward(ctx, *args, **kwargs)`` (or ``forward(*args)``
    plus ``setup_context(ctx, inputs, output)``) and ``backward(ctx, *grad_outputs)``, then
    call ``MyFunction.apply(*args)``. forward runs with grad mode off; its tensor outputs get
    a graph node when grad mode is on and some tensor argument requires grad. backward gets
    one gradient per output and returns one per forward argument (None for those without:
    non-tensor arguments, inputs whose ctx.needs_input_grad is False). It runs with grad mode
    set to create_graph, so with create_graph=True a backward written with bprop ops is
    differentiable again (second order). An exception backward raises propagates out of
    backward()/grad(). Applying a Function (to tensors that need a gradient) while
    bp.compile records a step raises RuntimeError: a replay could not run its backward."""

    @staticmethod
    def forward(ctx: Any, *args: Any, **kwargs: Any) -> Any:
        """The forward computation; override it."""
        raise NotImplementedError(
            "You must implement the forward function for custom autograd.Function."
        )

    @staticmethod
    def setup_context(ctx: FunctionCtx, inputs: tuple[Any, ...], output: Any) -> None:
        """Optional: with it, forward takes no ctx and this fills ctx from the inputs and
        output."""
        raise NotImplementedError("setup_context is not implemented.")

    @staticmethod
    def backward(ctx: Any, *grad_outputs: Any) -> Any:
        """The gradients of the inputs from those of the outputs; override it."""
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        """Runs forward on args and records backward for the tensor outputs."""
        ctx = FunctionCtx()
        grad_mode = is_grad_enabled()
        ctx.needs_input_grad = tuple(
            grad_mode and isinstance(a, Tensor) and a.requires_grad for a in args
        )
        _core.set_grad_enabled(False)
        try:
            if _has_setup_context(cls):
                output = cls.forward(*args, **kwargs)
                cls.setup_context(ctx, args, output)
            else:
                output = cls.forward(ctx, *args, **kwargs)
        finally:
            _core.set_grad_enabled(grad_mode)
        ctx._in_forward = False
        is_tuple = isinstance(output, tuple)
        outputs = output if is_tuple else (output,)
        non_diff = ctx._non_differentiable
        differentiable = [
            i
            for i, o in enumerate(outputs)
            if isinstance(o, Tensor) and o.is_floating_point() and not any(o is t for t in non_diff)
        ]
        to_save, ctx._to_save, ctx._non_differentiable = ctx._to_save, (), []
        if not differentiable or not any(ctx.needs_input_grad):
            return output
        tensor_positions = [i for i, a in enumerate(args) if isinstance(a, Tensor)]
        # What backward needs of the outputs, without holding them (that would be a cycle).
        metas = [(o.shape, o.dtype) if isinstance(o, Tensor) else None for o in outputs]
        none_saved = [i for i, t in enumerate(to_save) if t is None]
        n_args, name = len(args), cls.__name__ + "Backward"

        def run_backward(grads: list[Tensor], saved: list[Tensor]) -> list[Tensor | None]:
            from ._creation import zeros

            full: list[Tensor | None] = []
            given = dict(zip(differentiable, grads))
            for i, meta in enumerate(metas):
                if i in given:
                    full.append(given[i])
                elif meta is not None and ctx.materialize_grads:
                    full.append(zeros(tuple(meta[0]), dtype=meta[1]))
                else:
                    full.append(None)
            restored: list[Tensor | None] = list(saved)
            for i in none_saved:
                restored.insert(i, None)
            ctx._saved = tuple(restored)
            try:
                result = cls.backward(ctx, *full)
            finally:
                ctx._saved = None
            if not isinstance(result, tuple):
                result = (result,)
            if len(result) != n_args:
                if len(result) > n_args and all(r is None for r in result[n_args:]):
                    result = result[:n_args]
                else:
                    raise RuntimeError(
                        f"function {name} returned an incorrect number of gradients "
                        f"(expected {n_args}, got {len(result)})"
                    )
            for i, r in enumerate(result):
                if r is None:
                    continue
                if not isinstance(r, Tensor):
                    raise TypeError(
                        f"[{name}] backward must return Tensors or None, got "
                        f"{type(r).__name__} at position {i}"
                    )
                if i not in tensor_positions:
                    raise RuntimeError(
                        f"function {name} returned a gradient different than None at position "
                        f"{i + 1}, but the corresponding forward input was not a Variable"
                    )
            return [result[i] for i in tensor_positions]

        attached = _core._custom_function(
            name,
            [args[i] for i in tensor_positions],
            [outputs[i] for i in differentiable],
            [t for t in to_save if t is not None],
            run_backward,
        )
        new_outputs = list(outputs)
        for i, t in zip(differentiable, attached):
            new_outputs[i] = t
        return tuple(new_outputs) if is_tuple else new_outputs[0]


def once_differentiable(fn: _F) -> _F:
    """For a Function's backward that is not itself differentiable: runs it with grad mode
    off, so its result is not a graph even with create_graph=True."""

    @functools.wraps(fn)
    def wrapper(ctx: Any, *args: Any) -> Any:
        with no_grad():
            return fn(ctx, *args)

    return wrapper  # type: ignore[return-value]

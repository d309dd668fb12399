"""DistributedDataParallel with PyTorch's constructor and behaviour: bprop.distributed's
wrapper (flat buckets, all-reduce overlapped with backward) as an nn.Module whose child
`module` is the model, that averages the gradients across ranks as soon as backward has
produced the last one, with no sync_gradients() call. Its state_dict keys carry the
``module.`` prefix, as PyTorch's do."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ... import _core
from ... import distributed as _dist
from ..._core import Tensor
from ..modules.module import Module

__all__ = ["DistributedDataParallel"]


def _output_tensors(output: Any) -> Iterator[Tensor]:
    if isinstance(output, Tensor):
        yield output
    elif isinstance(output, dict):
        for value in output.values():
            yield from _output_tensors(value)
    elif isinstance(output, (list, tuple)):
        for value in output:
            yield from _output_tensors(value)


def _reached_leaves(output: Any) -> list[Tensor]:
    """The leaves (parameters) the autograd graph of output's tensors reaches."""
    stack = [t.grad_fn for t in _output_tensors(output) if t.grad_fn is not None]
    seen: dict[int, Any] = {}  # id -> node, kept alive so ids stay unique
    leaves = []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen[id(node)] = node
        if node.variable is not None:
            leaves.append(node.variable)
        stack.extend(n for n, _ in node.next_functions if n is not None)
    return leaves


class DistributedDataParallel(Module, _dist.DistributedDataParallel):
    """Data-parallel training over the default process group (init_process_group first), as
    torch.nn.parallel.DistributedDataParallel: rank 0's parameters (and buffers) are
    broadcast at construction, each backward's gradients are averaged across ranks by the
    time backward returns, `no_sync()` accumulates without averaging. With
    find_unused_parameters=True, parameters the forward's output does not depend on count
    as ready (contributing zeros); without it, a backward that leaves a parameter without a
    gradient is an error at the next forward, as in PyTorch. device_ids and output_device
    must be None (bprop runs on the CPU); the other GPU-era options are accepted and
    change nothing."""

    _auto_sync = True

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        init_sync: bool = True,
        process_group: Any = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        if device_ids or output_device is not None:
            raise ValueError(
                "[DistributedDataParallel] device_ids and output_device arguments only work "
                "with GPU modules; bprop runs on the CPU: leave them out (got device_ids "
                f"{device_ids}, output_device {output_device})"
            )
        _dist._require_group("DistributedDataParallel")
        _dist._check_group(process_group, "DistributedDataParallel")
        Module.__init__(self)
        object.__setattr__(self, "_init_sync", bool(init_sync))
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.gradient_as_bucket_view = gradient_as_bucket_view
        self.static_graph = static_graph
        _dist.DistributedDataParallel.__init__(
            self, module, 25 if bucket_cap_mb is None else bucket_cap_mb
        )
        if init_sync:
            self._broadcast_buffers()

    def _broadcast_buffers(self) -> None:
        buffers = getattr(self.module, "buffers", None)
        if self._local or buffers is None:
            return
        for b in buffers():
            _dist.broadcast_(b.detach(), 0)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Runs the model (after rank 0's buffers are broadcast, with broadcast_buffers) and
        arms the next backward's gradient averaging."""
        self.prepare_for_backward()
        if self.broadcast_buffers and _core.is_grad_enabled():
            self._broadcast_buffers()
        output = self.module(*inputs, **kwargs)
        if self.find_unused_parameters and self._armed and not self._local:
            reached = _reached_leaves(output)
            for i, p in enumerate(self._params):
                if not self._noted[i] and not any(p._is_same(leaf) for leaf in reached):
                    self._note_gradient(i)
        return output

    def __call__(self, *inputs: Any, **kwargs: Any) -> Any:
        return Module.__call__(self, *inputs, **kwargs)

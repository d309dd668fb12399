"""Logical ops on tensors, as PyTorch's: logical_and/or/xor/not, any/all, and the operators
&, |, ^ and ~ (logical on bool tensors; ~ on an int64 tensor is the bitwise complement).

Any nonzero value counts as True. They are composed of bprop's comparisons and arithmetic on
bool tensors (bool * bool is `and`, bool + bool is `or`), so they run in C++ and are
recordable by bp.compile; none of them is differentiable (the results are bool)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import _core
from ._core import Tensor
from ._tensor import _alias, _dims, _keep, _named, function_and_method, method

if TYPE_CHECKING:
    from ._core import Number, _Dims

__all__ = ["logical_and", "logical_or", "logical_xor", "logical_not", "any", "all"]


def _truth(value: Tensor | Number) -> Tensor:
    if not isinstance(value, Tensor):
        value = _core._wrap_scalar(value)
    return value if value.dtype == _core.dtype.bool else value != 0


@function_and_method
def logical_and(input: Tensor, other: Tensor | Number) -> Tensor:
    """Elementwise `input and other` (nonzero is True), broadcast; a bool tensor."""
    return _truth(input) * _truth(other)


@function_and_method
def logical_or(input: Tensor, other: Tensor | Number) -> Tensor:
    """Elementwise `input or other` (nonzero is True), broadcast; a bool tensor."""
    return _truth(input) + _truth(other)


@function_and_method
def logical_xor(input: Tensor, other: Tensor | Number) -> Tensor:
    """Elementwise exclusive or (nonzero is True), broadcast; a bool tensor."""
    return _truth(input) != _truth(other)


@function_and_method
def logical_not(input: Tensor) -> Tensor:
    """Elementwise `not input` (nonzero is True); a bool tensor."""
    return _truth(input) == False  # noqa: E712  (an elementwise comparison)


def _logical_reduction(name: str, doc: str, count_of_true: bool):
    # any: at least one True; all: no False. Counting (a sum of bools) keeps it in C++.
    def reduce(
        input: Tensor,
        dim: _Dims = None,
        keepdim: bool = False,
        *,
        axis: _Dims = None,
        keepdims: bool | None = None,
    ) -> Tensor:
        counted = _truth(input) if count_of_true else logical_not(input)
        count = _core._sum(counted, _dims(name, dim, axis), _keep(keepdim, keepdims))
        return count > 0 if count_of_true else count == 0

    return function_and_method(_named(name, doc, reduce))


any = _logical_reduction(  # noqa: A001  (PyTorch's name)
    "any", "Whether any element is nonzero, over dim (an int or tuple; all dims if omitted).", True
)
all = _logical_reduction(  # noqa: A001  (PyTorch's name)
    "all",
    "Whether every element is nonzero, over dim (an int or tuple; all dims if omitted).",
    False,
)


def _bool_operands(op: str, a: Tensor, b: Tensor | Number) -> None:
    for value in (a, b):
        name = value.dtype.name if isinstance(value, Tensor) else type(value).__name__
        if name != "bool":
            raise TypeError(
                f"[{op}] bitwise ops on {name} are not supported "
                "yet: bprop's &, | and ^ take bool tensors (use logical_and/or/xor for others)"
            )


@method
def __and__(self: Tensor, other: Tensor | Number) -> Tensor:
    """self & other on bool tensors (logical and)."""
    _bool_operands("bitwise_and", self, other)
    return logical_and(self, other)


@method
def __or__(self: Tensor, other: Tensor | Number) -> Tensor:
    """self | other on bool tensors (logical or)."""
    _bool_operands("bitwise_or", self, other)
    return logical_or(self, other)


@method
def __xor__(self: Tensor, other: Tensor | Number) -> Tensor:
    """self ^ other on bool tensors (logical exclusive or)."""
    _bool_operands("bitwise_xor", self, other)
    return logical_xor(self, other)


_alias(__and__, "__rand__")
_alias(__or__, "__ror__")
_alias(__xor__, "__rxor__")


@method
def __invert__(self: Tensor) -> Tensor:
    """~self: logical not of a bool tensor; the bitwise complement (-x - 1) of an int64 one."""
    if self.dtype == _core.dtype.bool:
        return logical_not(self)
    if self.dtype == _core.dtype.int64:
        return -self - 1
    raise TypeError(f"[bitwise_not] needs a bool or int64 tensor, got {self.dtype.name}")

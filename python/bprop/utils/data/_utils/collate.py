"""Collating samples into batches, as torch.utils.data._utils.collate.

`default_collate` stacks tensors (and numpy arrays) along a new first dimension, turns
Python floats into a float64 tensor, ints into int64 and bools into bool, keeps strings as a
list, and recurses into dicts (by key), named tuples (as the same named tuple) and other
sequences (transposed: a batch of (x, y) pairs becomes [xs, ys]; tuples become lists, as in
PyTorch). `default_convert` does the same conversions to one sample, for batch_size=None."""

from __future__ import annotations

import collections.abc
import copy
from collections.abc import Callable, Sequence
from typing import Any, Union

import numpy as np

from .... import _core
from ...._core import Tensor
from ...._tensor import tensor

__all__ = ["collate", "default_collate", "default_convert", "default_collate_fn_map"]

default_collate_err_msg_format = (
    "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; found {}"
)

CollateFnMap = dict[Union[type, tuple[type, ...]], Callable[..., Any]]  # noqa: UP007  (3.9)


def _is_string_array(array: np.ndarray) -> bool:
    return array.dtype.kind in "SaUO"


def _tensor_from(data: Any, dtype: _core.dtype | None = None) -> Tensor:
    return tensor(data, dtype=dtype)


def default_convert(data: Any) -> Any:
    """Numpy arrays and numpy scalars become tensors, recursively through dicts, named
    tuples and sequences (tuples become lists); everything else is returned as it is."""
    if isinstance(data, Tensor):
        return data
    if isinstance(data, np.ndarray):
        return data if _is_string_array(data) else _tensor_from(data)
    if isinstance(data, (np.bool_, np.number)):
        return _tensor_from(data)
    if isinstance(data, collections.abc.Mapping):
        converted = {key: default_convert(data[key]) for key in data}
        if isinstance(data, collections.abc.MutableMapping):
            clone = copy.copy(data)
            clone.update(converted)
            return clone
        try:
            return type(data)(converted)
        except TypeError:
            return converted
    if isinstance(data, tuple) and hasattr(data, "_fields"):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, collections.abc.Sequence) and not isinstance(data, (str, bytes)):
        if isinstance(data, collections.abc.MutableSequence):
            clone = copy.copy(data)
            for i, d in enumerate(data):
                clone[i] = default_convert(d)
            return clone
        try:
            return type(data)([default_convert(d) for d in data])
        except TypeError:
            return [default_convert(d) for d in data]
    return data


def collate(batch: Sequence[Any], *, collate_fn_map: CollateFnMap | None = None) -> Any:
    """Collates a list of samples with the function collate_fn_map gives for the type of
    the first sample (its exact type first, then isinstance), recursing into mappings,
    named tuples and sequences, as torch.utils.data._utils.collate.collate."""
    elem = batch[0]
    elem_type = type(elem)
    if collate_fn_map is not None:
        if elem_type in collate_fn_map:
            return collate_fn_map[elem_type](batch, collate_fn_map=collate_fn_map)
        for collate_type, fn in collate_fn_map.items():
            if isinstance(elem, collate_type):
                return fn(batch, collate_fn_map=collate_fn_map)
    if isinstance(elem, collections.abc.Mapping):
        collated = {
            key: collate([d[key] for d in batch], collate_fn_map=collate_fn_map) for key in elem
        }
        if isinstance(elem, collections.abc.MutableMapping):
            clone = copy.copy(elem)
            clone.update(collated)
            return clone
        try:
            return elem_type(collated)
        except TypeError:
            return collated
    if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
        return elem_type(*(collate(s, collate_fn_map=collate_fn_map) for s in zip(*batch)))
    if isinstance(elem, collections.abc.Sequence) and not isinstance(elem, (str, bytes)):
        size = len(elem)
        if not all(len(e) == size for e in batch):
            raise RuntimeError("each element in list of batch should be of equal size")
        transposed = list(zip(*batch))  # tuples: strings stay a tuple, as in PyTorch
        if isinstance(elem, tuple):
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
        if isinstance(elem, collections.abc.MutableSequence):
            clone = copy.copy(elem)
            for i, samples in enumerate(transposed):
                clone[i] = collate(samples, collate_fn_map=collate_fn_map)
            return clone
        try:
            return elem_type([collate(s, collate_fn_map=collate_fn_map) for s in transposed])
        except TypeError:
            return [collate(s, collate_fn_map=collate_fn_map) for s in transposed]
    raise TypeError(default_collate_err_msg_format.format(elem_type))


def collate_tensor_fn(batch: list[Tensor], *, collate_fn_map: CollateFnMap | None = None) -> Tensor:
    """Stacks equally shaped tensors along a new first dimension."""
    shape = tuple(batch[0].shape)
    for i, t in enumerate(batch):
        if tuple(t.shape) != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                f"and {list(t.shape)} at entry {i}"
            )
    return _core._stack(list(batch), 0)


def collate_numpy_array_fn(
    batch: list[np.ndarray], *, collate_fn_map: CollateFnMap | None = None
) -> Any:
    """Numpy arrays become tensors, then are stacked; string and object arrays are refused."""
    if _is_string_array(batch[0]):
        raise TypeError(default_collate_err_msg_format.format(batch[0].dtype))
    return collate([_tensor_from(b) for b in batch], collate_fn_map=collate_fn_map)


def collate_numpy_scalar_fn(
    batch: list[Any], *, collate_fn_map: CollateFnMap | None = None
) -> Tensor:
    """Numpy scalars become one tensor of their dtype."""
    return _tensor_from(np.array(batch))


def collate_float_fn(batch: list[float], *, collate_fn_map: CollateFnMap | None = None) -> Tensor:
    """Python floats become a float64 tensor, as in PyTorch."""
    return _tensor_from(batch, dtype=_core.dtype.float64)


def collate_int_fn(batch: list[int], *, collate_fn_map: CollateFnMap | None = None) -> Tensor:
    """Python ints become an int64 tensor, bools a bool tensor."""
    return _tensor_from(batch)


def collate_str_fn(batch: list[Any], *, collate_fn_map: CollateFnMap | None = None) -> list[Any]:
    """Strings (and bytes) stay a list."""
    return batch


default_collate_fn_map: CollateFnMap = {
    Tensor: collate_tensor_fn,
    np.ndarray: collate_numpy_array_fn,
    (np.bool_, np.number): collate_numpy_scalar_fn,
    float: collate_float_fn,
    int: collate_int_fn,
    str: collate_str_fn,
    bytes: collate_str_fn,
}


def default_collate(batch: list[Any]) -> Any:
    """Collates a list of samples into a batch, as torch.utils.data.default_collate (see the
    module docstring)."""
    return collate(batch, collate_fn_map=default_collate_fn_map)

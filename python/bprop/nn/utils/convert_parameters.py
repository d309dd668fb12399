"""Parameters as one flat vector and back, as torch.nn.utils.convert_parameters."""

from __future__ import annotations

from collections.abc import Iterable

from ... import _core
from ..._core import Tensor
from ...autograd import no_grad

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def parameters_to_vector(parameters: Iterable[Tensor]) -> Tensor:
    """The parameters flattened and concatenated into one vector (differentiable)."""
    flat = [p.reshape(-1) for p in parameters]
    if not flat:
        raise ValueError("[parameters_to_vector] got no parameters")
    return _core._cat(flat, 0)


def vector_to_parameters(vec: Tensor, parameters: Iterable[Tensor]) -> None:
    """Copies consecutive slices of the vector vec into the parameters, in place."""
    if not isinstance(vec, Tensor):
        raise TypeError(f"[vector_to_parameters] expected a Tensor, but got: {type(vec).__name__}")
    parameters = list(parameters)
    total = sum(p.numel() for p in parameters)
    if vec.ndim != 1 or vec.shape[0] != total:
        raise ValueError(
            f"[vector_to_parameters] vec has shape {tuple(vec.shape)}; the parameters hold "
            f"{total} numbers"
        )
    offset = 0
    with no_grad():
        for p in parameters:
            n = p.numel()
            p.copy_(vec[offset : offset + n].reshape(p.shape))
            offset += n

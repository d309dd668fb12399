"""Embedding, as torch.nn.Embedding."""

from __future__ import annotations

from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from ...autograd import no_grad as _no_grad
from .. import functional as F
from .module import Module, Parameter

__all__ = ["Embedding"]


class Embedding(Module):
    """A lookup table of num_embeddings vectors of size embedding_dim, indexed by int64
    tensors of any shape. The weight starts N(0, 1), as PyTorch's, with the padding_idx row
    zero; that row gets no gradient. max_norm, scale_grad_by_freq and sparse are not supported
    yet (NotImplementedError)."""

    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
        _weight: Tensor | None = None,
        _freeze: bool = False,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        check_device("Embedding", device)
        dtype = check_dtype("Embedding", dtype) or _core.get_default_dtype()
        if max_norm is not None or scale_grad_by_freq or sparse:
            raise NotImplementedError(
                "[Embedding] max_norm, scale_grad_by_freq and sparse are not supported yet"
            )
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(
                    f"[Embedding] padding_idx {padding_idx} must be within num_embeddings "
                    f"({num_embeddings})"
                )
            if padding_idx < 0:
                padding_idx += num_embeddings
        self.num_embeddings, self.embedding_dim = num_embeddings, embedding_dim
        self.padding_idx = padding_idx
        self.max_norm, self.norm_type = max_norm, norm_type
        self.scale_grad_by_freq, self.sparse = scale_grad_by_freq, sparse
        if _weight is None:
            self.weight = Parameter(
                _core._randn((num_embeddings, embedding_dim), dtype), not _freeze
            )
            self._fill_padding_idx_with_zero()
        else:
            if tuple(_weight.shape) != (num_embeddings, embedding_dim):
                raise ValueError(
                    f"[Embedding] _weight has shape {tuple(_weight.shape)}, expected "
                    f"({num_embeddings}, {embedding_dim})"
                )
            self.weight = Parameter(_weight, not _freeze)

    def reset_parameters(self) -> None:
        """Draws the weight again from N(0, 1) and zeroes the padding row."""
        with _no_grad():
            self.weight.copy_(_core._randn(tuple(self.weight.shape), self.weight.dtype))
        self._fill_padding_idx_with_zero()

    def _fill_padding_idx_with_zero(self) -> None:
        if self.padding_idx is not None:
            with _no_grad():
                self.weight[self.padding_idx].fill_(0)

    def forward(self, input: Tensor) -> Tensor:
        return F.embedding(input, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        if self.padding_idx is not None:
            text += f", padding_idx={self.padding_idx}"
        return text

    @classmethod
    def from_pretrained(
        cls,
        embeddings: Tensor,
        freeze: bool = True,
        padding_idx: int | None = None,
        max_norm: float | None = None,
        norm_type: float = 2.0,
        scale_grad_by_freq: bool = False,
        sparse: bool = False,
    ) -> Embedding:
        """An Embedding whose weight is (a leaf sharing the memory of) the 2-D tensor
        embeddings, frozen (requires_grad=False) unless freeze=False."""
        if embeddings.ndim != 2:
            raise ValueError(
                f"[Embedding.from_pretrained] embeddings must be 2-D, got shape "
                f"{tuple(embeddings.shape)}"
            )
        rows, cols = embeddings.shape
        return cls(
            rows,
            cols,
            padding_idx=padding_idx,
            max_norm=max_norm,
            norm_type=norm_type,
            scale_grad_by_freq=scale_grad_by_freq,
            sparse=sparse,
            _weight=embeddings,
            _freeze=freeze,
        )

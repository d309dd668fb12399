"""Variable-length sequences for the recurrent layers, as torch.nn.utils.rnn: padding
(pad_sequence, unpad_sequence) and packing (PackedSequence, pack_padded_sequence,
pad_packed_sequence, pack_sequence, unpack_sequence).

A PackedSequence holds, time step by time step, the entries of the sequences still running at
that step, longest sequence first: ``data`` is ``(sum of lengths, *)``, ``batch_sizes[t]`` the
number of sequences longer than t. Every function is composed of differentiable bprop ops
(slicing, cat, stack, index_select), so gradients flow through packing and unpacking."""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Sequence
from typing import Any

from ... import _core
from ..._arguments import argument_error
from ..._core import Tensor
from ..._creation import full
from ..._tensor import tensor

__all__ = [
    "PackedSequence", "invert_permutation", "pack_padded_sequence", "pad_packed_sequence",
    "pad_sequence", "unpad_sequence", "pack_sequence", "unpack_sequence",
]  # fmt: skip

_PackedSequenceBase = namedtuple(
    "_PackedSequenceBase", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"]
)


def invert_permutation(permutation: Tensor | None) -> Tensor | None:
    """The inverse of an int64 permutation (None stays None)."""
    if permutation is None:
        return None
    if not isinstance(permutation, Tensor):
        raise argument_error("invert_permutation", "permutation", 1, "Tensor", permutation)
    order = permutation.tolist()
    inverse = [0] * len(order)
    for position, index in enumerate(order):
        inverse[index] = position
    return tensor(inverse, dtype=_core.dtype.int64)


class PackedSequence(_PackedSequenceBase):
    """A packed batch of variable-length sequences (data, batch_sizes, sorted_indices,
    unsorted_indices), as torch.nn.utils.rnn.PackedSequence; make one with
    pack_padded_sequence or pack_sequence, never directly."""

    def __new__(
        cls,
        data: Tensor,
        batch_sizes: Tensor | None = None,
        sorted_indices: Tensor | None = None,
        unsorted_indices: Tensor | None = None,
    ) -> PackedSequence:
        if batch_sizes is None:
            raise TypeError("[PackedSequence] batch_sizes is required")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args: Any, **kwargs: Any) -> PackedSequence:
        """``data.to(*args, **kwargs)`` in a PackedSequence with the same batch sizes and order."""
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else type(self)(data, *self[1:])

    def cpu(self) -> PackedSequence:
        """Returns self: bprop's tensors live on the CPU."""
        return self

    def float(self) -> PackedSequence:
        """data as float32."""
        return self.to(_core.dtype.float32)

    def double(self) -> PackedSequence:
        """data as float64."""
        return self.to(_core.dtype.float64)

    @property
    def is_cuda(self) -> bool:
        """False: bprop runs on the CPU."""
        return False

    def is_pinned(self) -> bool:
        """False: bprop has no pinned memory."""
        return False


def _lengths(op: str, lengths: Any) -> list[int]:
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1:
            raise RuntimeError(f"[{op}] lengths must be 1-D, got shape {tuple(lengths.shape)}")
        return [int(v) for v in lengths.tolist()]
    return [int(v) for v in lengths]


def pack_padded_sequence(
    input: Tensor,
    lengths: Tensor | Sequence[int],
    batch_first: bool = False,
    enforce_sorted: bool = True,
) -> PackedSequence:
    """Packs a padded batch, ``(T, B, *)`` or ``(B, T, *)`` with batch_first, of sequences with the
    given lengths. enforce_sorted=True requires lengths in decreasing order; otherwise the
    batch is sorted here and PackedSequence.sorted_indices records the order."""
    op = "pack_padded_sequence"
    lens = _lengths(op, lengths)
    x = input.transpose(0, 1) if batch_first else input
    if x.ndim < 2 or len(lens) != x.shape[1]:
        raise ValueError(
            f"[{op}] Expected `len(lengths)` to be equal to batch_size, but got {len(lens)} "
            f"(batch_size={x.shape[1] if x.ndim >= 2 else None})"
        )
    if any(n <= 0 for n in lens):
        raise RuntimeError(
            f"[{op}] Length of all samples has to be greater than 0, but found an element in "
            f"'lengths' that is <= 0: {lens}"
        )
    if enforce_sorted:
        if any(a < b for a, b in zip(lens, lens[1:])):
            raise RuntimeError(
                f"[{op}] `lengths` array must be sorted in decreasing order when "
                "`enforce_sorted` is True. You can pass `enforce_sorted=False` to "
                "pack_padded_sequence and/or pack_sequence to sidestep this requirement if you "
                f"do not need ONNX exportability. Got lengths {lens}"
            )
        sorted_indices = None
    else:
        order = sorted(range(len(lens)), key=lambda i: -lens[i])
        sorted_indices = tensor(order, dtype=_core.dtype.int64)
        x = x.index_select(1, sorted_indices)
        lens = [lens[i] for i in order]
    if lens[0] > x.shape[0]:
        raise RuntimeError(
            f"[{op}] the longest length {lens[0]} exceeds the {x.shape[0]} padded time steps"
        )
    batch_sizes = [sum(1 for n in lens if n > t) for t in range(lens[0])]
    data = _core._cat([x[t, :b] for t, b in enumerate(batch_sizes)], 0)
    return PackedSequence(data, tensor(batch_sizes, dtype=_core.dtype.int64), sorted_indices)


def _pad_sorted(sequence: PackedSequence, padding_value: float, total_length: int) -> Tensor:
    """``(total_length, B, *)`` in the packed (sorted) batch order, padded with padding_value."""
    data, sizes = sequence.data, sequence.batch_sizes.tolist()
    batch, rest = sizes[0], tuple(data.shape[1:])
    steps, offset = [], 0
    for b in sizes:
        step = data[offset : offset + b]
        offset += b
        if b < batch:
            pad = full((batch - b, *rest), padding_value, dtype=data.dtype)
            step = _core._cat([step, pad], 0)
        steps.append(step)
    if total_length > len(sizes):
        steps += [full((batch, *rest), padding_value, dtype=data.dtype)] * (
            total_length - len(sizes)
        )
    return _core._stack(steps, 0)


def _pack_sorted(padded: Tensor, like: PackedSequence) -> PackedSequence:
    """Packs ``(T, B, *)`` padded in like's sorted batch order with like's batch sizes."""
    sizes = like.batch_sizes.tolist()
    data = _core._cat([padded[t, :b] for t, b in enumerate(sizes)], 0)
    return PackedSequence(data, like.batch_sizes, like.sorted_indices, like.unsorted_indices)


def pad_packed_sequence(
    sequence: PackedSequence,
    batch_first: bool = False,
    padding_value: float = 0.0,
    total_length: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Inverse of pack_padded_sequence: (padded, lengths), padded ``(T, B, *)`` (or ``(B, T, *)``
    with batch_first) in the original batch order, T = total_length or the longest length;
    lengths an int64 tensor."""
    op = "pad_packed_sequence"
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"[{op}] expected a PackedSequence, got {type(sequence).__name__}")
    sizes = sequence.batch_sizes.tolist()
    if total_length is not None and total_length < len(sizes):
        raise ValueError(
            f"[{op}] Expected total_length to be at least the length of the longest sequence "
            f"in input, but got total_length={total_length} and max sequence length being "
            f"{len(sizes)}"
        )
    padded = _pad_sorted(sequence, padding_value, total_length or len(sizes))
    lens = [sum(1 for b in sizes if b > i) for i in range(sizes[0])]
    if sequence.unsorted_indices is not None:
        padded = padded.index_select(1, sequence.unsorted_indices)
        lens = [lens[i] for i in sequence.unsorted_indices.tolist()]
    if batch_first:
        padded = padded.transpose(0, 1)
    return padded, tensor(lens, dtype=_core.dtype.int64)


def pad_sequence(
    sequences: Sequence[Tensor] | Tensor,
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> Tensor:
    """Stacks sequences of shapes ``(L_i, *)`` into ``(max L, B, *)`` (or ``(B, max L, *)`` with
    batch_first), padding each with padding_value on padding_side ('right' or 'left')."""
    op = "pad_sequence"
    if padding_side not in ("left", "right"):
        raise ValueError(
            f"[{op}] Expected padding_side to be one of left or right, but got {padding_side}."
        )
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError(f"[{op}] received an empty list of sequences")
    longest = max(s.shape[0] for s in sequences)
    rows = []
    for s in sequences:
        if s.shape[0] < longest:
            pad = full((longest - s.shape[0], *s.shape[1:]), padding_value, dtype=s.dtype)
            s = _core._cat([s, pad] if padding_side == "right" else [pad, s], 0)
        rows.append(s)
    return _core._stack(rows, 0 if batch_first else 1)


def unpad_sequence(
    padded_sequences: Tensor, lengths: Tensor | Sequence[int], batch_first: bool = False
) -> list[Tensor]:
    """Inverse of pad_sequence (right padding): the list of sequences padded[:length]."""
    padded = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    lens = _lengths("unpad_sequence", lengths)
    return [padded[i, :n] for i, n in enumerate(lens)]


def pack_sequence(sequences: Sequence[Tensor], enforce_sorted: bool = True) -> PackedSequence:
    """Packs a list of sequences of shapes ``(L_i, *)``: pad_sequence then pack_padded_sequence."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpack_sequence(packed_sequences: PackedSequence) -> list[Tensor]:
    """Inverse of pack_sequence: the list of sequences, in their original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)

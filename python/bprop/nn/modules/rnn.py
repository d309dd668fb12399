"""Recurrent layers, as torch.nn's: RNN, GRU and LSTM (stacked, optionally bidirectional) and
the single-step RNNCell, GRUCell and LSTMCell.

Parameters have PyTorch's names, shapes and gate order (GRU: r, z, n; LSTM: i, f, g, o), so
state dicts interchange. Each step is composed from differentiable bprop ops (linear, sigmoid,
tanh, slicing, stack), so gradients, second order and bp.compile come from autograd: the input
projection of a whole sequence is one matmul per layer and direction, the recurrence a loop
over time."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from .. import functional as F
from ..utils.rnn import PackedSequence, _pack_sorted, _pad_sorted
from .module import Module, Parameter, _uniform

__all__ = ["RNNBase", "RNN", "GRU", "LSTM", "RNNCellBase", "RNNCell", "GRUCell", "LSTMCell"]

_GATES = {"RNN_TANH": 1, "RNN_RELU": 1, "GRU": 3, "LSTM": 4}


def _rnn_step(mode: str, x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """One step of the Elman RNN: x_proj = W_ih x + b_ih for this step."""
    pre = x_proj + F.linear(h, w_hh, b_hh)
    return pre.tanh() if mode == "RNN_TANH" else pre.relu()


def _gru_step(x_proj: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor | None) -> Tensor:
    """r = s(x_r + h_r), z = s(x_z + h_z), n = tanh(x_n + r * h_n), h' = (1 - z) n + z h."""
    hidden = h.shape[-1]
    h_proj = F.linear(h, w_hh, b_hh)
    r = (x_proj[..., :hidden] + h_proj[..., :hidden]).sigmoid()
    z = (x_proj[..., hidden : 2 * hidden] + h_proj[..., hidden : 2 * hidden]).sigmoid()
    n = (x_proj[..., 2 * hidden :] + r * h_proj[..., 2 * hidden :]).tanh()
    return n + z * (h - n)


def _lstm_step(
    x_proj: Tensor, h: Tensor, c: Tensor, w_hh: Tensor, b_hh: Tensor | None
) -> tuple[Tensor, Tensor]:
    """Gates i, f, g, o from x_proj + W_hh h + b_hh; c' = f c + i g, h' = o tanh(c')."""
    hidden = h.shape[-1]
    gates = x_proj + F.linear(h, w_hh, b_hh)
    i = gates[..., :hidden].sigmoid()
    f = gates[..., hidden : 2 * hidden].sigmoid()
    g = gates[..., 2 * hidden : 3 * hidden].tanh()
    o = gates[..., 3 * hidden :].sigmoid()
    c = f * c + i * g
    return o * c.tanh(), c


def _check_sizes(op: str, input_size: int, hidden_size: int) -> None:
    for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
        if not isinstance(value, int) or isinstance(value, bool):
            raise TypeError(f"[{op}] {name} should be of type int, got: {type(value).__name__}")
    if hidden_size <= 0:
        raise ValueError(f"[{op}] hidden_size must be greater than zero, got {hidden_size}")
    if input_size < 0:
        raise ValueError(f"[{op}] input_size must be non-negative, got {input_size}")


class RNNBase(Module):
    """The stacked, optionally bidirectional recurrence RNN, GRU and LSTM share."""

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        if mode not in _GATES:
            raise ValueError(f"[{op}] Unrecognized RNN mode: {mode!r} (one of {list(_GATES)})")
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
        _check_sizes(op, input_size, hidden_size)
        if (
            not isinstance(dropout, numbers.Number)
            or isinstance(dropout, bool)
            or not 0 <= dropout <= 1
        ):
            raise ValueError(
                f"[{op}] dropout should be a number in range [0, 1] representing the "
                f"probability of an element being zeroed, got {dropout!r}"
            )
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"[{op}] num_layers must be a positive int, got {num_layers!r}")
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                f"[{op}] dropout option adds dropout after all but last recurrent layer, so "
                f"non-zero dropout expects num_layers greater than 1, but got dropout={dropout} "
                f"and num_layers={num_layers}",
                UserWarning,
                stacklevel=3,
            )
        if proj_size < 0:
            raise ValueError(f"[{op}] proj_size should be a positive integer or zero")
        if proj_size:
            raise NotImplementedError(f"[{op}] proj_size > 0 (projected LSTM) is not supported")
        self.mode, self.input_size, self.hidden_size = mode, input_size, hidden_size
        self.num_layers, self.bias, self.batch_first = num_layers, bias, batch_first
        self.dropout, self.bidirectional, self.proj_size = float(dropout), bidirectional, 0
        directions = 2 if bidirectional else 1
        gate_size = _GATES[mode] * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self._flat_weights_names: list[str] = []
        for layer in range(num_layers):
            layer_input = input_size if layer == 0 else hidden_size * directions
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                shapes = [
                    ("weight_ih", (gate_size, layer_input)),
                    ("weight_hh", (gate_size, hidden_size)),
                ]
                if bias:
                    shapes += [("bias_ih", (gate_size,)), ("bias_hh", (gate_size,))]
                for name, shape in shapes:
                    setattr(self, name + suffix, Parameter(_uniform(shape, bound, dtype)))
                    self._flat_weights_names.append(name + suffix)

    @property
    def all_weights(self) -> list[list[Parameter]]:
        """Per layer and direction, [weight_ih, weight_hh(, bias_ih, bias_hh)]."""
        per = 4 if self.bias else 2
        names = self._flat_weights_names
        return [[getattr(self, n) for n in names[i : i + per]] for i in range(0, len(names), per)]

    def flatten_parameters(self) -> None:
        """A no-op: PyTorch compacts cuDNN weights here; bprop has nothing to compact."""

    def _initial_state(self, op: str, hx: Any, x: Tensor, batched: bool) -> list[Tensor]:
        """hx as a list of (D * num_layers, N, H) tensors: h (and c for LSTM)."""
        directions = 2 if self.bidirectional else 1
        expected = (self.num_layers * directions, x.shape[1], self.hidden_size)
        count = 2 if self.mode == "LSTM" else 1
        if hx is None:
            return [_core._zeros(expected, x.dtype) for _ in range(count)]
        if self.mode == "LSTM":
            if not isinstance(hx, (tuple, list)) or len(hx) != 2:
                raise TypeError(f"[{op}] hx must be a tuple (h_0, c_0), got {type(hx).__name__}")
            states = list(hx)
        else:
            if not isinstance(hx, Tensor):
                raise TypeError(f"[{op}] hx must be a Tensor, got {type(hx).__name__}")
            states = [hx]
        out = []
        for state in states:
            want = 3 if batched else 2
            if state.ndim != want:
                kind = "batched 3-D" if batched else "unbatched 2-D"
                raise RuntimeError(
                    f"[{op}] For {kind} input, hx should also be {want}-D but got "
                    f"{state.ndim}-D tensor"
                )
            if not batched:
                state = state.unsqueeze(1)
            if tuple(state.shape) != expected:
                shown = expected if batched else (expected[0], expected[2])
                got = tuple(state.shape) if batched else (state.shape[0], state.shape[2])
                raise RuntimeError(f"[{op}] Expected hidden size {shown}, got {got}")
            out.append(state)
        return out

    def forward(self, input: Tensor | PackedSequence, hx: Any = None) -> tuple[Any, Any]:
        """(output, h_n), or (output, (h_n, c_n)) for LSTM. input is (L, N, H_in), (N, L, H_in)
        with batch_first, unbatched (L, H_in), or a PackedSequence (then output is one too,
        and h_n holds each sequence's state after its own last step, as PyTorch's); output
        has D * hidden_size features."""
        op = type(self).__name__
        if isinstance(input, PackedSequence):
            return self._forward_packed(op, input, hx)
        if input.ndim not in (2, 3):
            raise ValueError(f"[{op}] Expected input to be 2D or 3D, got {input.ndim}D instead")
        batched = input.ndim == 3
        if not batched:
            x = input.unsqueeze(1)
        else:
            x = input.transpose(0, 1) if self.batch_first else input
        self._check_input(op, x, tuple(input.shape))
        states = self._initial_state(op, hx, x, batched)
        output, finals = self._recurrence(x, states, None)
        if not batched:
            output = output.squeeze(1)
            finals = [f.squeeze(1) for f in finals]
        elif self.batch_first:
            output = output.transpose(0, 1)
        if self.mode == "LSTM":
            return output, (finals[0], finals[1])
        return output, finals[0]

    def _check_input(self, op: str, x: Tensor, shape: tuple[int, ...]) -> None:
        if x.shape[-1] != self.input_size:
            raise RuntimeError(
                f"[{op}] input.size(-1) must be equal to input_size. Expected "
                f"{self.input_size}, got {x.shape[-1]}"
            )
        if x.shape[0] == 0:
            raise RuntimeError(f"[{op}] the input sequence is empty: shape {shape}")

    def _forward_packed(self, op: str, input: PackedSequence, hx: Any) -> tuple[Any, Any]:
        """The recurrence over the padded batch in the packed (longest first) order, each
        sequence's state frozen past its last step; hx and h_n in the caller's batch order."""
        sizes = input.batch_sizes.tolist()
        x = _pad_sorted(input, 0.0, len(sizes))
        self._check_input(op, x, tuple(input.data.shape))
        if hx is not None and input.sorted_indices is not None:
            order = input.sorted_indices
            hx = (
                tuple(h.index_select(1, order) for h in hx)
                if isinstance(hx, (tuple, list))
                else hx.index_select(1, order)
            )
        states = self._initial_state(op, hx, x, True)
        output, finals = self._recurrence(x, states, sizes)
        if input.unsorted_indices is not None:
            finals = [f.index_select(1, input.unsorted_indices) for f in finals]
        packed = _pack_sorted(output, input)
        if self.mode == "LSTM":
            return packed, (finals[0], finals[1])
        return packed, finals[0]

    def _recurrence(
        self, x: Tensor, states: list[Tensor], batch_sizes: list[int] | None
    ) -> tuple[Tensor, list[Tensor]]:
        """Every layer and direction over x (L, N, H_in): (output, [h_n(, c_n)]). With
        batch_sizes (packed input, longest first), step t updates only the first
        batch_sizes[t] sequences; the others keep their state."""
        directions = 2 if self.bidirectional else 1
        steps, batch = x.shape[0], x.shape[1]
        masks: list[Tensor | None] = [None] * steps
        if batch_sizes is not None:
            rows = _core._arange(0, batch, 1, _core.dtype.int64).unsqueeze(1)
            masks = [None if b == batch else rows < b for b in batch_sizes]
        final: list[list[Tensor]] = [[] for _ in states]
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction in range(directions):
                suffix = f"_l{layer}" + ("_reverse" if direction else "")
                w_ih, w_hh = (
                    getattr(self, "weight_ih" + suffix),
                    getattr(self, "weight_hh" + suffix),
                )
                b_ih = getattr(self, "bias_ih" + suffix) if self.bias else None
                b_hh = getattr(self, "bias_hh" + suffix) if self.bias else None
                k = layer * directions + direction
                h = states[0][k]
                c = states[1][k] if self.mode == "LSTM" else None
                x_proj = F.linear(layer_input, w_ih, b_ih)  # every step's input projection
                ys: list[Tensor] = [h] * steps
                for t in range(steps) if direction == 0 else range(steps - 1, -1, -1):
                    if self.mode == "LSTM":
                        h_new, c_new = _lstm_step(x_proj[t], h, c, w_hh, b_hh)
                    elif self.mode == "GRU":
                        h_new, c_new = _gru_step(x_proj[t], h, w_hh, b_hh), None
                    else:
                        h_new, c_new = _rnn_step(self.mode, x_proj[t], h, w_hh, b_hh), None
                    mask = masks[t]
                    if mask is None:
                        h, c = h_new, c_new
                    else:  # sequences already finished keep their state
                        h = _core.where(mask, h_new, h)
                        c = None if c is None else _core.where(mask, c_new, c)
                    ys[t] = h
                outputs.append(_core._stack(ys, 0))
                final[0].append(h)
                if c is not None:
                    final[1].append(c)
            layer_input = outputs[0] if directions == 1 else _core._cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = F.dropout(layer_input, self.dropout, True)
        return layer_input, [_core._stack(f, 0) for f in final]

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.num_layers != 1:
            s += f", num_layers={self.num_layers}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        if self.bias is not True:
            s += f", bias={self.bias}"
        if self.batch_first is not False:
            s += f", batch_first={self.batch_first}"
        if self.dropout != 0:
            s += f", dropout={self.dropout}"
        if self.bidirectional is not False:
            s += f", bidirectional={self.bidirectional}"
        return s


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(W_ih x_t + b_ih + W_hh h_(t-1) + b_hh)`` (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(
                f"[RNN] Unknown nonlinearity '{nonlinearity}'. Select from 'tanh' or 'relu'."
            )
        super().__init__("RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU", input_size,
                         hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
                         0, device, dtype)  # fmt: skip
        self.nonlinearity = nonlinearity


class GRU(RNNBase):
    """Gated recurrent unit, PyTorch's equations and gate order (r, z, n)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__("GRU", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, 0, device, dtype)  # fmt: skip


class LSTM(RNNBase):
    """Long short-term memory, PyTorch's equations and gate order (i, f, g, o); forward takes
    and returns the state as (h, c)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        proj_size: int = 0,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__("LSTM", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, proj_size, device, dtype)  # fmt: skip


class RNNCellBase(Module):
    """One step: parameters weight_ih, weight_hh, bias_ih, bias_hh as PyTorch's cells."""

    _gates = 1

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        op = type(self).__name__
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
        _check_sizes(op, input_size, hidden_size)
        self.input_size, self.hidden_size, self.bias = input_size, hidden_size, bias
        gate_size = self._gates * hidden_size
        bound = 1.0 / math.sqrt(hidden_size)
        self.weight_ih = Parameter(_uniform((gate_size, input_size), bound, dtype))
        self.weight_hh = Parameter(_uniform((gate_size, hidden_size), bound, dtype))
        if bias:
            self.bias_ih = Parameter(_uniform((gate_size,), bound, dtype))
            self.bias_hh = Parameter(_uniform((gate_size,), bound, dtype))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)

    def _prepare(self, input: Tensor, hx: Any, count: int) -> tuple[Tensor, list[Tensor], bool]:
        """input as (N, H_in), the state(s) as (N, H), and whether input was batched."""
        op = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"[{op}] Expected input to be 1D or 2D, got {input.ndim}D instead")
        batched = input.ndim == 2
        x = input if batched else input.unsqueeze(0)
        if x.shape[1] != self.input_size:
            raise RuntimeError(
                f"[{op}] input has inconsistent input_size: got {x.shape[1]} expected "
                f"{self.input_size}"
            )
        if hx is None:
            zeros = _core._zeros((x.shape[0], self.hidden_size), x.dtype)
            return x, [zeros] * count, batched
        states = list(hx) if count == 2 else [hx]
        out = []
        for state in states:
            if state.ndim != input.ndim:
                raise RuntimeError(
                    f"[{op}] hidden state must be {input.ndim}-D like the input, got "
                    f"{state.ndim}-D tensor"
                )
            state = state if batched else state.unsqueeze(0)
            if tuple(state.shape) != (x.shape[0], self.hidden_size):
                raise RuntimeError(
                    f"[{op}] hidden state has shape {tuple(state.shape)}, expected "
                    f"{(x.shape[0], self.hidden_size)}"
                )
            out.append(state)
        return x, out, batched

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        if self.bias is not True:
            s += f", bias={self.bias}"
        return s


class RNNCell(RNNCellBase):
    """One Elman RNN step: ``h' = tanh(W_ih x + b_ih + W_hh h + b_hh)`` (or relu)."""

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        bias: bool = True,
        nonlinearity: str = "tanh",
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"[RNNCell] Unknown nonlinearity: {nonlinearity}")
        super().__init__(input_size, hidden_size, bias, device, dtype)
        self.nonlinearity = nonlinearity

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state, (N, H) or unbatched (H,)."""
        x, (h,), batched = self._prepare(input, hx, 1)
        mode = "RNN_TANH" if self.nonlinearity == "tanh" else "RNN_RELU"
        h = _rnn_step(mode, F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh,
                      self.bias_hh)  # fmt: skip
        return h if batched else h.squeeze(0)


class GRUCell(RNNCellBase):
    """One GRU step (gates r, z, n)."""

    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """The next hidden state, (N, H) or unbatched (H,)."""
        x, (h,), batched = self._prepare(input, hx, 1)
        h = _gru_step(F.linear(x, self.weight_ih, self.bias_ih), h, self.weight_hh, self.bias_hh)
        return h if batched else h.squeeze(0)


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o); takes and returns (h, c)."""

    _gates = 4

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """The next (h, c), each (N, H) or unbatched (H,)."""
        x, (h, c), batched = self._prepare(input, hx, 2)
        h, c = _lstm_step(F.linear(x, self.weight_ih, self.bias_ih), h, c, self.weight_hh,
                          self.bias_hh)  # fmt: skip
        return (h, c) if batched else (h.squeeze(0), c.squeeze(0))

"""Activation modules, as torch.nn's, with MultiheadAttention (which torch.nn also keeps in
activation.py)."""

from __future__ import annotations

import math
import warnings
from typing import Any

from ... import _core
from ..._core import Tensor
from ..._device import check_device, check_dtype
from .. import functional as F
from .. import init
from .linear import NonDynamicallyQuantizableLinear
from .module import Module, Parameter

__all__ = [
    "ReLU", "Tanh", "Sigmoid", "GELU", "LeakyReLU", "Softplus", "Softmax", "LogSoftmax", "SiLU",
    "MultiheadAttention", "ELU", "CELU", "SELU", "Hardtanh", "ReLU6", "Hardsigmoid", "Hardswish",
    "Mish", "Softsign", "Tanhshrink", "LogSigmoid", "Softmin", "GLU", "Threshold", "PReLU",
    "RReLU", "Hardshrink", "Softshrink", "Softmax2d",
]  # fmt: skip


class ReLU(Module):
    """max(x, 0); inplace=True overwrites the input."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.relu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


class Tanh(Module):
    def forward(self, input: Tensor) -> Tensor:
        return _core.tanh(input)


class Sigmoid(Module):
    def forward(self, input: Tensor) -> Tensor:
        return _core.sigmoid(input)


class GELU(Module):
    def __init__(self, approximate: str = "none") -> None:
        super().__init__()
        self.approximate = approximate

    def forward(self, input: Tensor) -> Tensor:
        return F.gelu(input, self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class LeakyReLU(Module):
    def __init__(self, negative_slope: float = 0.01, inplace: bool = False) -> None:
        super().__init__()
        self.negative_slope, self.inplace = negative_slope, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.leaky_relu(input, self.negative_slope, self.inplace)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above threshold."""

    def __init__(self, beta: float = 1.0, threshold: float = 20.0) -> None:
        super().__init__()
        self.beta, self.threshold = beta, threshold

    def forward(self, input: Tensor) -> Tensor:
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}"


class Softmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.log_softmax(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class SiLU(Module):
    """x * sigmoid(x), as torch.nn.SiLU."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.silu(input, self.inplace)

    def extra_repr(self) -> str:
        return "inplace=True" if self.inplace else ""


def _float_mask(op: str, name: str, mask: Tensor, dtype: _core.dtype) -> Tensor:
    """A mask to add to attention scores: a bool mask (True = do not attend, the convention of
    nn.MultiheadAttention) becomes 0 / -inf; a floating-point one is used as it is."""
    if mask.dtype == _core.dtype.bool:
        return _core.where(mask, -math.inf, _core._zeros(tuple(mask.shape), dtype))
    if not mask.dtype.is_floating_point:
        raise TypeError(
            f"[{op}] only bool and floating types of {name} are supported, got {mask.dtype}"
        )
    return mask


class MultiheadAttention(Module):
    """Multi-head attention, as torch.nn.MultiheadAttention, with its parameter names
    (in_proj_weight, in_proj_bias, out_proj.weight, out_proj.bias; q_proj_weight,
    k_proj_weight, v_proj_weight when kdim or vdim differ from embed_dim) and initialisation,
    so state dicts interchange.

    forward(query, key, value) takes (L, N, E) inputs, or (N, L, E) with batch_first, or
    unbatched (L, E), and returns (output, weights): weights are the attention weights
    averaged over heads (N, L, S), per head (N, H, L, S) with average_attn_weights=False, or
    None with need_weights=False. In attn_mask ((L, S) or (N * num_heads, L, S)) and
    key_padding_mask ((N, S)) a True entry means "do not attend"; float masks are added to the
    scores. add_bias_kv is not supported yet (NotImplementedError)."""

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        add_bias_kv: bool = False,
        add_zero_attn: bool = False,
        kdim: int | None = None,
        vdim: int | None = None,
        batch_first: bool = False,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        op = "MultiheadAttention"
        check_device(op, device)
        dtype = check_dtype(op, dtype) or _core.get_default_dtype()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"[{op}] embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}"
            )
        if embed_dim % num_heads:
            raise ValueError(
                f"[{op}] embed_dim ({embed_dim}) must be divisible by num_heads ({num_heads})"
            )
        if add_bias_kv:
            raise NotImplementedError(f"[{op}] add_bias_kv=True is not supported yet")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        self.head_dim = embed_dim // num_heads
        self.add_zero_attn = add_zero_attn
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(_core._zeros((3 * embed_dim, embed_dim), dtype))
            self.register_parameter("q_proj_weight", None)
            self.register_parameter("k_proj_weight", None)
            self.register_parameter("v_proj_weight", None)
        else:
            self.q_proj_weight = Parameter(_core._zeros((embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(_core._zeros((embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(_core._zeros((embed_dim, self.vdim), dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(_core._zeros((3 * embed_dim,), dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = NonDynamicallyQuantizableLinear(
            embed_dim, embed_dim, bias=bias, dtype=dtype
        )
        self.bias_k = self.bias_v = None
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            init.xavier_uniform_(self.q_proj_weight)
            init.xavier_uniform_(self.k_proj_weight)
            init.xavier_uniform_(self.v_proj_weight)
        if self.in_proj_bias is not None:
            init.constant_(self.in_proj_bias, 0.0)
            init.constant_(self.out_proj.bias, 0.0)

    def _projections(self, query: Tensor, key: Tensor, value: Tensor) -> tuple[Tensor, ...]:
        e = self.embed_dim
        if self._qkv_same_embed_dim and query is key and key is value:
            # Self-attention: one matrix product for the three projections (as PyTorch).
            qkv = F.linear(query, self.in_proj_weight, self.in_proj_bias)
            return qkv[..., :e], qkv[..., e : 2 * e], qkv[..., 2 * e :]
        if self._qkv_same_embed_dim:
            w = self.in_proj_weight
            weights = (w[:e], w[e : 2 * e], w[2 * e :])
        else:
            weights = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)
        b = self.in_proj_bias
        biases = (None, None, None) if b is None else (b[:e], b[e : 2 * e], b[2 * e :])
        return tuple(
            F.linear(x, w, bias) for x, w, bias in zip((query, key, value), weights, biases)
        )

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        op = "MultiheadAttention"
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise RuntimeError(
                f"[{op}] query, key and value must all be 3-D (batched) or 2-D (unbatched), "
                f"got shapes {tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}"
            )
        if is_causal and attn_mask is None:
            raise RuntimeError(
                f"[{op}] is_causal=True is a hint that attn_mask is the causal mask: "
                "attn_mask is required with it"
            )
        batched = query.ndim == 3
        self_attention = query is key and key is value
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        if self_attention:
            key = value = query
        tgt_len, batch, embed = query.shape
        src_len = key.shape[0]
        if embed != self.embed_dim:
            raise RuntimeError(
                f"[{op}] query has embedding size {embed}, expected embed_dim={self.embed_dim}"
            )
        heads, head_dim = self.num_heads, self.head_dim
        q, k, v = self._projections(query, key, value)

        mask = None
        if attn_mask is not None:
            mask = _float_mask(op, "attn_mask", attn_mask, q.dtype)
            if mask.ndim == 2:
                expected = (tgt_len, src_len)
            elif mask.ndim == 3:
                expected = (batch * heads, tgt_len, src_len)
            else:
                expected = None
            if expected is None or tuple(mask.shape) != expected:
                raise RuntimeError(
                    f"[{op}] attn_mask has shape {tuple(mask.shape)}, expected "
                    f"({tgt_len}, {src_len}) or ({batch * heads}, {tgt_len}, {src_len})"
                )
            if mask.ndim == 3:
                mask = mask.reshape(batch, heads, tgt_len, src_len)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, src_len):
                raise RuntimeError(
                    f"[{op}] key_padding_mask has shape {tuple(key_padding_mask.shape)}, "
                    f"expected ({batch}, {src_len})"
                )
            padding = _float_mask(op, "key_padding_mask", key_padding_mask, q.dtype)
            padding = padding.reshape(batch, 1, 1, src_len)
            mask = padding if mask is None else mask + padding

        # (length, N, E) -> (N, heads, length, head_dim)
        q = q.reshape(tgt_len, batch, heads, head_dim).permute(1, 2, 0, 3)
        k = k.reshape(src_len, batch, heads, head_dim).permute(1, 2, 0, 3)
        v = v.reshape(src_len, batch, heads, head_dim).permute(1, 2, 0, 3)
        if self.add_zero_attn:
            zeros = _core._zeros((batch, heads, 1, head_dim), q.dtype)
            k, v = _core._cat([k, zeros], -2), _core._cat([v, zeros], -2)
            if mask is not None:
                mask = _core._cat([mask, _core._zeros((*mask.shape[:-1], 1), mask.dtype)], -1)

        scores = (q * (1.0 / math.sqrt(head_dim))).matmul(k.transpose(-2, -1))
        if mask is not None:
            scores = scores + mask
        weights = F.softmax(scores, -1)
        dropout_p = self.dropout if self.training else 0.0
        if dropout_p > 0.0:
            weights = F.dropout(weights, dropout_p)
        out = weights.matmul(v).permute(2, 0, 1, 3).reshape(tgt_len, batch, embed)
        out = F.linear(out, self.out_proj.weight, self.out_proj.bias)

        if not need_weights:
            returned = None
        else:
            returned = weights.mean(dim=1) if average_attn_weights else weights
            if not batched:
                returned = returned.squeeze(0)
        if not batched:
            out = out.squeeze(1)
        elif self.batch_first:
            out = out.transpose(0, 1)
        return out, returned


# ---- the remaining elementwise activations of torch.nn (each calls its F function) ----


def _inplace_repr(inplace: bool, first: bool = False) -> str:
    if not inplace:
        return ""
    return "inplace=True" if first else ", inplace=True"


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1), as F.elu."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.elu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class CELU(Module):
    """x where x > 0, else alpha * (exp(x / alpha) - 1), as F.celu."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False) -> None:
        super().__init__()
        self.alpha, self.inplace = alpha, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.celu(input, self.alpha, self.inplace)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}{_inplace_repr(self.inplace)}"


class SELU(Module):
    """The scaled ELU with the self-normalising constants, as F.selu."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.selu(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Hardtanh(Module):
    """x clamped to [min_val, max_val], as F.hardtanh (min_value / max_value are PyTorch's
    deprecated spellings)."""

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn(
                "keyword argument `min_value` is deprecated and renamed to `min_val`",
                FutureWarning,
                stacklevel=2,
            )
            min_val = min_value
        if max_value is not None:
            warnings.warn(
                "keyword argument `max_value` is deprecated and renamed to `max_val`",
                FutureWarning,
                stacklevel=2,
            )
            max_val = max_value
        self.min_val, self.max_val, self.inplace = min_val, max_val, inplace
        if self.max_val <= self.min_val:
            raise AssertionError(
                f"[{type(self).__name__}] max_val ({self.max_val}) must be greater than "
                f"min_val ({self.min_val})"
            )

    def forward(self, input: Tensor) -> Tensor:
        return F.hardtanh(input, self.min_val, self.max_val, self.inplace)

    def extra_repr(self) -> str:
        return f"min_val={self.min_val}, max_val={self.max_val}{_inplace_repr(self.inplace)}"


class ReLU6(Hardtanh):
    """min(max(x, 0), 6)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Hardsigmoid(Module):
    """relu6(x + 3) / 6, as F.hardsigmoid."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardsigmoid(input, self.inplace)


class Hardswish(Module):
    """x * relu6(x + 3) / 6, as F.hardswish."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.hardswish(input, self.inplace)


class Mish(Module):
    """x * tanh(softplus(x)), as F.mish."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.mish(input, self.inplace)

    def extra_repr(self) -> str:
        return _inplace_repr(self.inplace, first=True)


class Softsign(Module):
    """``x / (1 + abs(x))``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.softsign(input)


class Tanhshrink(Module):
    """x - tanh(x)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.tanhshrink(input)


class LogSigmoid(Module):
    """log(sigmoid(x)), computed without overflow."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__()

    def forward(self, input: Tensor) -> Tensor:
        return F.logsigmoid(input)


class Softmin(Module):
    """softmax(-x) along dim, as F.softmin."""

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.softmin(input, self.dim, _stacklevel=5)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class GLU(Module):
    """a * sigmoid(b) for the halves a, b of the input along dim."""

    def __init__(self, dim: int = -1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, input: Tensor) -> Tensor:
        return F.glu(input, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Threshold(Module):
    """x where x > threshold, else value."""

    def __init__(self, threshold: float, value: float, inplace: bool = False) -> None:
        super().__init__()
        self.threshold, self.value, self.inplace = threshold, value, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.threshold(input, self.threshold, self.value, self.inplace)

    def extra_repr(self) -> str:
        return f"threshold={self.threshold}, value={self.value}{_inplace_repr(self.inplace)}"


class PReLU(Module):
    """x where x >= 0, else a * x with a learnt slope a: one (num_parameters=1) or one per
    channel, each starting at init."""

    def __init__(
        self,
        num_parameters: int = 1,
        init: float = 0.25,
        device: Any = None,
        dtype: _core.dtype | None = None,
    ) -> None:
        super().__init__()
        check_device("PReLU", device)
        dtype = check_dtype("PReLU", dtype) or _core.get_default_dtype()
        if num_parameters < 0:
            raise RuntimeError(f"[PReLU] num_parameters must be non-negative, got {num_parameters}")
        self.num_parameters, self.init = num_parameters, init
        self.weight = Parameter(_core._full((num_parameters,), float(init), dtype))

    def reset_parameters(self) -> None:
        """Every slope back to init."""
        init.constant_(self.weight, float(self.init))

    def forward(self, input: Tensor) -> Tensor:
        return F.prelu(input, self.weight)

    def extra_repr(self) -> str:
        return f"num_parameters={self.num_parameters}"


class RReLU(Module):
    """Leaky ReLU with a random negative slope from [lower, upper] while training, their mean
    in eval(), as F.rrelu."""

    def __init__(
        self, lower: float = 1.0 / 8, upper: float = 1.0 / 3, inplace: bool = False
    ) -> None:
        super().__init__()
        self.lower, self.upper, self.inplace = lower, upper, inplace

    def forward(self, input: Tensor) -> Tensor:
        return F.rrelu(input, self.lower, self.upper, self.training, self.inplace)

    def extra_repr(self) -> str:
        return f"lower={self.lower}, upper={self.upper}{_inplace_repr(self.inplace)}"


class Hardshrink(Module):
    """x where ``abs(x) > lambd``, else 0."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return F.hardshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return f"{self.lambd}"


class Softshrink(Module):
    """x shrunk towards 0 by lambd (0 inside [-lambd, lambd])."""

    def __init__(self, lambd: float = 0.5) -> None:
        super().__init__()
        self.lambd = lambd

    def forward(self, input: Tensor) -> Tensor:
        return F.softshrink(input, self.lambd)

    def extra_repr(self) -> str:
        return str(self.lambd)


class Softmax2d(Module):
    """softmax over the channels (dim -3) of a (N, C, H, W) or (C, H, W) input."""

    def forward(self, input: Tensor) -> Tensor:
        if input.ndim not in (3, 4):
            raise ValueError(
                f"[Softmax2d] Softmax2d: expected input to be 3D or 4D, got {input.ndim}D instead"
            )
        return F.softmax(input, -3)

"""repr(Tensor), laid out the way PyTorch prints tensors (torch/_tensor_str.py): the same
number formats, widths, line wrapping, summarisation and suffixes."""

from __future__ import annotations

import math

import numpy as np

from . import _core

_LINE_WIDTH = 80
_THRESHOLD = 1000
_EDGE_ITEMS = 3
_PRECISION = 4
_SCI_MODE = None  # None: chosen from the values; True/False: forced (bprop.set_printoptions)


class _Formatter:
    """Chooses one number format, and the width, for every element of a tensor."""

    def __init__(self, values: np.ndarray):
        self.kind = values.dtype.kind
        self.sci = False
        self.int_mode = True
        flat = values.ravel()
        nonzero_values = flat
        if self.kind == "f":
            finite = flat[np.isfinite(flat)]
            nonzero_values = finite[finite != 0]
            nonzero = np.abs(nonzero_values).astype(np.float64)
            self.int_mode = bool(np.all(finite == np.ceil(finite)))
            if nonzero.size:
                lo, hi = float(nonzero.min()), float(nonzero.max())
                if self.int_mode:
                    self.sci = hi / lo > 1000.0 or hi > 1.0e8
                else:
                    self.sci = hi / lo > 1000.0 or hi > 1.0e8 or lo < 1.0e-4
            if _SCI_MODE is not None:
                self.sci = bool(_SCI_MODE)
        # As PyTorch: float columns are as wide as the widest nonzero finite value; nan, inf
        # and zeros don't widen them.
        shown = nonzero_values if self.kind == "f" else flat
        self.width = max((len(self.plain(v)) for v in shown), default=1)

    def plain(self, value) -> str:
        if self.kind == "b":
            return "True" if value else "False"
        if self.kind in "iu":
            return str(int(value))
        value = float(value)
        if not math.isfinite(value):
            return str(value)
        if self.sci:
            return f"{value:.{_PRECISION}e}"
        if self.int_mode:
            return f"{value:.0f}."
        return f"{value:.{_PRECISION}f}"

    def __call__(self, value) -> str:
        return self.plain(value).rjust(self.width)


def _summarized(values: np.ndarray, summarize: bool) -> np.ndarray:
    """The elements that will be printed (the edges of each long dimension)."""
    if not summarize or values.ndim == 0:
        return values
    if values.shape[0] > 2 * _EDGE_ITEMS:
        values = np.concatenate([values[:_EDGE_ITEMS], values[-_EDGE_ITEMS:]])
    if values.ndim == 1:
        return values
    return np.stack([_summarized(v, summarize) for v in values])


def _format_1d(values, fmt: _Formatter, indent: int, summarize: bool) -> str:
    per_line = max(1, math.floor((_LINE_WIDTH - indent) / (fmt.width + 2)))
    if summarize and values.shape[0] > 2 * _EDGE_ITEMS:
        items = (
            [fmt(v) for v in values[:_EDGE_ITEMS]]
            + [" ..."]
            + [fmt(v) for v in values[-_EDGE_ITEMS:]]
        )
    else:
        items = [fmt(v) for v in values]
    lines = [", ".join(items[i : i + per_line]) for i in range(0, len(items), per_line)]
    return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"


def _format_nd(values, fmt: _Formatter, indent: int, summarize: bool) -> str:
    if values.ndim == 1:
        return _format_1d(values, fmt, indent, summarize)
    if summarize and values.shape[0] > 2 * _EDGE_ITEMS:
        rows = (
            [_format_nd(v, fmt, indent + 1, summarize) for v in values[:_EDGE_ITEMS]]
            + ["..."]
            + [_format_nd(v, fmt, indent + 1, summarize) for v in values[-_EDGE_ITEMS:]]
        )
    else:
        rows = [_format_nd(v, fmt, indent + 1, summarize) for v in values]
    separator = "," + "\n" * (values.ndim - 1) + " " * (indent + 1)
    return "[" + separator.join(rows) + "]"


def tensor_repr(t) -> str:
    prefix = "tensor("
    values = t.detach().numpy()
    suffixes = []
    default_dtypes = (_core.get_default_dtype(), _core.dtype.int64, _core.dtype.bool)
    if values.size == 0:
        body = "[]"
        if values.shape != (0,):
            suffixes.append(f"size={tuple(values.shape)}")
    else:
        summarize = values.size > _THRESHOLD
        fmt = _Formatter(_summarized(values, summarize))
        if values.ndim == 0:
            body = fmt.plain(values.item())
        else:
            body = _format_nd(values, fmt, len(prefix), summarize)
    # Empty tensors name any dtype but the default float one (PyTorch does the same).
    shown_without_dtype = (_core.get_default_dtype(),) if values.size == 0 else default_dtypes
    if t.dtype not in shown_without_dtype:
        suffixes.append(f"dtype={t.dtype!r}")
    if t.grad_fn is not None:
        suffixes.append(f"grad_fn=<{t.grad_fn.name()}>")
    elif t.requires_grad:
        suffixes.append("requires_grad=True")
    return prefix + ", ".join([body, *suffixes]) + ")"

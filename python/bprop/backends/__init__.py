"""bprop.backends: PyTorch's backend switches (``torch.backends.cuda.matmul.allow_tf32``,
``torch.backends.cudnn.benchmark``, ...), settable so that programs which set them run, and
without effect: bprop has one CPU backend and computes float32 in float32.

``set_float32_matmul_precision`` (``bprop.set_float32_matmul_precision``) lives here too: it
records the precision and mirrors it in ``cuda.matmul.allow_tf32`` as PyTorch does."""

from __future__ import annotations

import warnings

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "get_float32_matmul_precision", "mps", "set_float32_matmul_precision"]

_PRECISIONS = ("highest", "high", "medium")
_precision = "highest"


def set_float32_matmul_precision(precision: str) -> None:
    """PyTorch's switch for float32 matmuls ('highest', 'high' or 'medium'): recorded, and
    mirrored in bprop.backends.cuda.matmul.allow_tf32, without effect (bprop's float32 matmul
    always computes in float32). Another value warns and changes nothing, as in PyTorch."""
    global _precision
    if precision not in _PRECISIONS:
        warnings.warn(
            f"[set_float32_matmul_precision] {precision!r} is not one of 'highest', 'high', or "
            "'medium'; the call has no effect",
            UserWarning,
            stacklevel=2,
        )
        return
    _precision = precision
    cuda.matmul.allow_tf32 = precision != "highest"


def get_float32_matmul_precision() -> str:
    """The precision set_float32_matmul_precision last recorded ('highest' at start)."""
    return _precision

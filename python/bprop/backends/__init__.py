"""bprop.backends: PyTorch's backend switches (``torch.backends.cuda.matmul.allow_tf32``,
``torch.backends.cudnn.benchmark``, ...), settable so that programs which set them run, and
without effect: bprop has one CPU backend and computes float32 in float32."""

from __future__ import annotations

from . import cuda, cudnn, mps

__all__ = ["cuda", "cudnn", "mps"]

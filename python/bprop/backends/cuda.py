"""bprop.backends.cuda: ``matmul.allow_tf32`` and friends, settable, without effect (no CUDA)."""

from __future__ import annotations

__all__ = ["is_built", "matmul"]


class _MatmulSettings:
    """``torch.backends.cuda.matmul``'s switches, kept as plain attributes (no effect)."""

    def __init__(self) -> None:
        self.allow_tf32 = False
        self.allow_fp16_reduced_precision_reduction = True
        self.allow_bf16_reduced_precision_reduction = True

    def __repr__(self) -> str:
        return f"<bprop.backends.cuda.matmul allow_tf32={self.allow_tf32}>"


matmul = _MatmulSettings()


def is_built() -> bool:
    """False: bprop is built without CUDA."""
    return False

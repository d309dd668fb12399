"""bprop.onnx: importable, as programs import it; exporting to ONNX is not supported yet."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["export", "is_in_onnx_export"]


def export(model: Any, args: Any = (), f: Any = None, *more: Any, **kwargs: Any) -> NoReturn:
    """Raises NotImplementedError: bprop cannot export ONNX yet. Save the weights with
    ``bprop.save(model.state_dict(), path)`` (safetensors) instead."""
    raise NotImplementedError(
        "[onnx.export] exporting to ONNX is not supported yet; save model.state_dict() with "
        "bprop.save (a safetensors file) instead"
    )


def is_in_onnx_export() -> bool:
    """False: bprop never exports ONNX."""
    return False

"""bp.show_config(): what the kernels run with on this machine, as numpy.show_config() and
torch.__config__.show() tell theirs. The facts come from the C++ core (the CPU and its caches
as it read them, the instruction-set path it picked, the GEMM's micro-kernel and blocking)."""

from __future__ import annotations

import os
from typing import Any

from . import _core

__all__ = ["show_config"]

_ENVIRONMENT = (
    "BPROP_NUM_THREADS",
    "BPROP_ISA",
    "BPROP_GEMM_BLOCKING",
    "BPROP_GEMM_A_IN_PLACE_PANELS",
    "BPROP_GEMM_B_IN_PLACE_BYTES",
    "BPROP_GEMM_KERNEL",
    "BPROP_TUNE",
    "BPROP_BLOCK_CACHE_MB",
)


def _size(nbytes: int) -> str:
    if nbytes <= 0:
        return "unknown"
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if nbytes >= 1 << shift:
            return f"{nbytes / (1 << shift):g} {unit}"
    return f"{nbytes} B"


def show_config(mode: str = "stdout") -> dict[str, Any] | None:
    """Prints the CPU model, its cache sizes, the instruction-set path, the thread count, and
    each GEMM's micro-kernel tile (MR x NR) and cache blocking (KC, MC, NC), the raced speed
    of every candidate micro-kernel (a product whose shape pads one's tiles less may run
    another), with the environment variables that change them; with mode="dicts", returns
    the same as a dict instead (numpy.show_config's modes)."""
    if mode not in ("stdout", "dicts"):
        raise ValueError(f"[show_config] mode must be 'stdout' or 'dicts', got {mode!r}")
    config = dict(_core._config())
    config["version"] = _core.__version__
    config["environment"] = {name: os.environ[name] for name in _ENVIRONMENT if name in os.environ}
    if mode == "dicts":
        return config
    l3 = _size(config["l3_bytes"])
    if config["l3_sharing"]:
        l3 += f" shared by {config['l3_sharing']} CPUs"
    lines = [
        f"bprop {config['version']}",
        f"  CPU:              {config['cpu']}",
        f"  caches (a core):  L1d {_size(config['l1d_bytes'])}, L2 {_size(config['l2_bytes'])}"
        f"; L3 {l3}",
        f"  instruction set:  {config['isa']}",
        f"  threads:          {config['threads']}",
    ]
    for dtype in ("float32", "float64"):
        gemm = config[f"gemm_{dtype}"]
        lines.append(
            f"  GEMM {dtype}:     micro-kernel {gemm['kernel']} ({gemm['chosen_by']}), "
            f"blocking KC {gemm['kc']}, MC {gemm['mc']}, NC {gemm['nc']}"
        )
        if gemm["speeds"]:
            speeds = ", ".join(
                f"{name} {speed:.2f}" for name, speed in zip(gemm["candidates"], gemm["speeds"])
            )
            lines.append(
                f"                    speed per computed element {speeds}: each product runs "
                "the one fastest for its shape"
            )
    settings = ", ".join(f"{k}={v}" for k, v in config["environment"].items()) or "none set"
    lines.append(f"  environment:      {settings} (of {', '.join(_ENVIRONMENT)})")
    print("\n".join(lines))
    return None

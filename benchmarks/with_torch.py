"""Runs a bprop program with PyTorch in bprop's place, for side-by-side comparisons of the same
code (an example's losses and time against PyTorch's, on the same machine):

    python benchmarks/with_torch.py examples/char_gpt.py --steps 2000

bprop keeps PyTorch's names, so aliasing the modules is all it takes: `bprop` is `torch`,
`bprop.nn` is `torch.nn`, and so on, for this process only."""

from __future__ import annotations

import runpy
import sys

import torch
import torch.nn
import torch.nn.functional
import torch.nn.init
import torch.optim
import torch.optim.lr_scheduler
import torch.utils.data

ALIASES = {
    "bprop": torch,
    "bprop.nn": torch.nn,
    "bprop.nn.functional": torch.nn.functional,
    "bprop.nn.init": torch.nn.init,
    "bprop.optim": torch.optim,
    "bprop.optim.lr_scheduler": torch.optim.lr_scheduler,
    "bprop.utils": torch.utils,
    "bprop.utils.data": torch.utils.data,
}


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit("usage: python benchmarks/with_torch.py SCRIPT [ARGS...]")
    sys.modules.update(ALIASES)
    script = sys.argv[1]
    sys.argv = sys.argv[1:]
    print(f"[with_torch] running {script} with torch {torch.__version__} as bprop", flush=True)
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()

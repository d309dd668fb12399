"""Runs one program of this folder under PyTorch or with bprop standing in for PyTorch.

    python tests/programs/_run.py torch PROGRAM.py
    python tests/programs/_run.py bprop PROGRAM.py

With "bprop" an import hook answers for `torch` and every `torch.<name>` module with bprop's
module of the same path (`torch.nn.functional` is `bprop.nn.functional`, `torch.utils.data` is
`bprop.utils.data`), so the program text stays exactly the PyTorch program. Either way the
program runs as `__main__` on one thread.
"""

import importlib
import importlib.abc
import importlib.util
import os
import runpy
import sys


class TorchIsBprop(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds `torch` and `torch.*` and loads them as the bprop module of the same path."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname == "torch" or fullname.startswith("torch."):
            return importlib.util.spec_from_loader(fullname, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("bprop" + spec.name[len("torch") :])

    def exec_module(self, module):
        pass


def main():
    backend, program = sys.argv[1], sys.argv[2]
    if backend == "bprop":
        import bprop

        sys.meta_path.insert(0, TorchIsBprop())
        bprop.set_num_threads(1)
    elif backend == "torch":
        import torch

        torch.set_num_threads(1)
    else:
        raise SystemExit(f"unknown backend {backend!r}: use torch or bprop")
    sys.argv = [program]
    sys.path.insert(0, os.path.dirname(os.path.abspath(program)))
    runpy.run_path(program, run_name="__main__")
    if backend == "bprop":
        # The comparison means something only if PyTorch itself never ran.
        real = sorted(
            name
            for name, module in list(sys.modules.items())
            if (name == "torch" or name.startswith("torch."))
            and not getattr(module, "__name__", "").startswith("bprop")
        )
        if real:
            raise SystemExit(f"PyTorch was imported in the bprop run: {', '.join(real[:3])}, ...")


if __name__ == "__main__":
    main()

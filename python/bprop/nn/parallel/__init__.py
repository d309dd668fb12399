"""bprop.nn.parallel, as torch.nn.parallel: DistributedDataParallel (over bprop.distributed's
MPI backend) and DataParallel (the model in this process: bprop runs on the CPU)."""

from .data_parallel import DataParallel
from .distributed import DistributedDataParallel

__all__ = ["DataParallel", "DistributedDataParallel"]

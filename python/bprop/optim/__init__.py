"""bprop.optim: PyTorch's optimizers with their update math, parameter groups and state
dicts (see optimizer.Optimizer), bprop.optim.lr_scheduler and bprop.optim.swa_utils. SGD and
Adam/AdamW update each group in one C++ call; RMSprop, Adagrad, Adadelta, Adamax, NAdam,
RAdam, ASGD and Adam/AdamW's amsgrad groups with in-place tensor ops. All are
captured by bp.compile, and read their groups' hyper-parameters live when replayed."""

from __future__ import annotations

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .adamax import Adamax
from .asgd import ASGD
from .nadam import NAdam
from .optimizer import Optimizer
from .radam import RAdam
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = [
    "Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
    "RAdam", "ASGD", "lr_scheduler", "swa_utils",
]  # fmt: skip

from . import lr_scheduler, swa_utils  # noqa: E402  (they need the classes above)

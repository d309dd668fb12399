"""bprop.optim: PyTorch's optimizers with their update math, parameter groups and state
dicts (see optimizer.Optimizer), and bprop.optim.lr_scheduler. SGD and Adam/AdamW update
each group in one C++ call; RMSprop, Adagrad and Adadelta with in-place tensor ops. All are
captured by bp.compile, and read their groups' hyper-parameters live when replayed."""

from __future__ import annotations

from .adadelta import Adadelta
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler"]

from . import lr_scheduler  # noqa: E402  (it needs the classes above)

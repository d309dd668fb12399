"""bprop.nn: neural-network building blocks, as torch.nn. `bprop.nn.functional` holds the
functions; the modules wrap them with their parameters; `bprop.nn.init` initialises them."""

from . import functional, init, utils
from .modules import (
    GELU,
    AvgPool2d,
    Conv2d,
    Dropout,
    Flatten,
    Identity,
    LeakyReLU,
    Linear,
    MaxPool2d,
    Module,
    ModuleDict,
    ModuleList,
    Parameter,
    ParameterDict,
    ParameterList,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
)

__all__ = [
    "functional", "init", "utils", "Module", "Parameter", "Linear", "Sequential", "ReLU",
    "Tanh", "Sigmoid", "GELU", "LeakyReLU", "Softmax", "Dropout", "Flatten", "Conv2d",
    "MaxPool2d", "AvgPool2d", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict",
    "Identity",
]  # fmt: skip

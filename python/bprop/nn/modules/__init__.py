"""bprop.nn.modules: the module classes, in the submodules where torch.nn.modules keeps them
(bprop.nn.modules.linear.Linear, ...); bprop.nn re-exports them."""

from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .flatten import Flatten
from .linear import Identity, Linear
from .module import Module, Parameter
from .pooling import AvgPool2d, MaxPool2d

__all__ = [
    "Parameter",
    "Module",
    "Sequential",
    "ModuleList",
    "ModuleDict",
    "ParameterList",
    "ParameterDict",
    "Identity",
    "Linear",
    "ReLU",
    "Tanh",
    "Sigmoid",
    "GELU",
    "LeakyReLU",
    "Softmax",
    "Dropout",
    "Flatten",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
]

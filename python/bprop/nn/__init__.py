"""bprop.nn: neural-network building blocks, as torch.nn. `bprop.nn.functional` holds the
functions; the modules wrap them with their parameters."""

from . import functional
from .modules import Linear, Module, Parameter, ReLU, Sequential, Sigmoid, Tanh

__all__ = ["functional", "Module", "Parameter", "Linear", "Sequential", "ReLU", "Tanh", "Sigmoid"]

"""Every op against an oracle, from one table (in the spirit of tinygrad's helper_test_op).

Each row of OPS is an op applied to inputs of given shapes. For every row:

* helper_test_op checks shape, dtype and values of the forward, then the input gradients of a
  random vector-Jacobian product, against a numpy float64 oracle (values) and float64 central
  differences (gradients), or against PyTorch (float32 and float64) when torch is installed;
* test_gradcheck compares bprop's gradients with float64 central differences of bprop's own
  forward;
* test_second_order differentiates the gradient again (bp.grad(..., create_graph=True)) and
  compares it with central differences of the first-order gradient, and with PyTorch's double
  backward when torch is installed.

test_registry_ops_have_gradient_tests keeps the table complete: every differentiable op in
bp._core.op_names() must map to at least one row.
"""

from __future__ import annotations

import dataclasses
import importlib
import zlib
from typing import Any, Callable

import bprop as bp
import numpy as np
import oracles
import pytest

# ---------------------------------------------------------------------------------------------
# tolerances
# ---------------------------------------------------------------------------------------------

TOL = {
    "float32": {"rtol": 3e-5, "atol": 3e-6},
    "float64": {"rtol": 1e-9, "atol": 1e-12},
}
# float64 central differences with step 1e-6: truncation ~1e-12, rounding ~1e-10.
FD_EPS = 1e-6
FD_TOL = {"rtol": 1e-5, "atol": 1e-6}


# ---------------------------------------------------------------------------------------------
# the table
# ---------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class OpCase:
    """One row: `fn(m, *tensors)` runs with m = bprop or m = torch; `ref(*arrays)` is numpy."""

    id: str
    fn: Callable[..., Any]
    ref: Callable[..., Any]
    shapes: tuple[tuple[int, ...], ...]
    # Per input: "any" (|x| in [0.2, 1.5], either sign: away from 0 for relu, division, ...),
    # "pos" (x in [0.5, 2], for log, sqrt-like powers, bases of tensor powers).
    domains: tuple[str, ...] = ()
    out_dtype: str | None = None  # None: the inputs' dtype
    # False where the forward rounds through float32, so float64 central differences of it
    # mean nothing (the gradient is still checked against the numpy reference).
    fd: bool = True

    def domain(self, i: int) -> str:
        return self.domains[i] if i < len(self.domains) else "any"


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _expand(t, shape):
    """Tensor.expand where the package offers it (PyTorch does); else the registry's op."""
    if hasattr(t, "expand"):
        return t.expand(*shape)
    return bp._core._expand(t, shape)


MASK_34 = np.array(
    [[True, False, True, True], [False, False, True, False], [True, True, False, True]]
)
MASK_31 = np.array([[True], [False], [True]])
GATHER_IDX_232 = np.array([[[3, 0], [1, 1], [2, 3]], [[0, 0], [3, 2], [1, 0]]])
TARGET_4 = np.array([1, 0, 4, 1])
PROB_34 = np.array([[0.0, 0.3, 1.0, 0.5], [0.9, 0.1, 0.0, 1.0], [0.25, 0.75, 0.6, 0.2]])


def F(m):
    """bprop.nn.functional or torch.nn.functional."""
    return importlib.import_module(f"{m.__name__}.nn.functional")


# In-place writes through views of non-leaves (PyTorch's CopySlices): the base's history is
# rebased, so gradients reach both the base's inputs and the written operand.
def _view_mul_(m, a, b):
    y = a * 1.0
    y[1:, ::2].mul_(b)
    return y


def _view_mul_ref(a, b):
    y = a.copy()
    y[1:, ::2] *= b
    return y


def _view_add_(m, a, b):
    y = a.sin()  # sin saves its input, not y: writing into y is allowed
    y.T[0].add_(b)
    return y


def _view_add_ref(a, b):
    y = np.sin(a)
    y[:, 0] += b
    return y


def _view_copy_(m, a, b):
    y = a * 2.0
    y[:, 1].copy_(b**2)
    return y * y


def _view_copy_ref(a, b):
    y = a * 2.0
    y[:, 1] = b**2
    return y * y


def _view_clamp_(m, a):
    y = a * 1.0
    y[0].clamp_(-0.5, 0.5)
    return y * y


def _view_clamp_ref(a):
    y = a.copy()
    y[0] = np.clip(y[0], -0.5, 0.5)
    return y * y


SCATTER_IDX_32 = np.array([[3, 0], [1, 2], [0, 1]])


def _index(m, array):
    return m.tensor(array)


def _np_softmax(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _np_scatter(a, idx, src):
    out = a.copy()
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            out[i, idx[i, j]] = src[i, j]
    return out


def _np_scatter0_value(a, idx, value):
    out = a.copy()
    for i in range(idx.shape[0]):
        for j in range(idx.shape[1]):
            out[idx[i, j], j] = value
    return out


C = OpCase
OPS = [
    # ---- add ----
    C("add", lambda m, a, b: a + b, lambda a, b: a + b, ((3, 4), (3, 4))),
    C("add_bcast_col_row", lambda m, a, b: a + b, lambda a, b: a + b, ((3, 1), (1, 4))),
    C("add_bcast_vec", lambda m, a, b: a + b, lambda a, b: a + b, ((2, 3), (3,))),
    C("add_bcast_3d", lambda m, a, b: a + b, lambda a, b: a + b, ((2, 1, 4), (3, 1))),
    C("add_0d_tensor", lambda m, a, b: a + b, lambda a, b: a + b, ((3, 4), ())),
    C("add_0d_0d", lambda m, a, b: a + b, lambda a, b: a + b, ((), ())),
    C("add_scalar_right", lambda m, a: a + 2.5, lambda a: a + 2.5, ((3, 4),)),
    C("add_scalar_left", lambda m, a: 2.5 + a, lambda a: 2.5 + a, ((3, 4),)),
    C("add_int_scalar", lambda m, a: a + 3, lambda a: a + 3, ((3, 4),)),
    C("add_fn", lambda m, a, b: m.add(a, b), lambda a, b: a + b, ((2, 3), (3,))),
    C("add_method", lambda m, a, b: a.add(b), lambda a, b: a + b, ((3, 4), (3, 4))),
    C("add_self", lambda m, a: a + a, lambda a: a + a, ((5,),)),
    # ---- sub ----
    C("sub", lambda m, a, b: a - b, lambda a, b: a - b, ((3, 4), (3, 4))),
    C("sub_bcast", lambda m, a, b: a - b, lambda a, b: a - b, ((3, 1), (1, 4))),
    C("sub_bcast_vec", lambda m, a, b: a - b, lambda a, b: a - b, ((4,), (2, 3, 4))),
    C("sub_scalar_right", lambda m, a: a - 2.5, lambda a: a - 2.5, ((3, 4),)),
    C("sub_scalar_left", lambda m, a: 2.5 - a, lambda a: 2.5 - a, ((3, 4),)),
    C("sub_fn", lambda m, a, b: m.sub(a, b), lambda a, b: a - b, ((3, 4), (4,))),
    C("sub_method", lambda m, a, b: a.sub(b), lambda a, b: a - b, ((3, 4), (3, 4))),
    C("sub_self", lambda m, a: a - a, lambda a: a - a, ((5,),)),
    # ---- mul ----
    C("mul", lambda m, a, b: a * b, lambda a, b: a * b, ((3, 4), (3, 4))),
    C("mul_bcast_vec", lambda m, a, b: a * b, lambda a, b: a * b, ((2, 3), (3,))),
    C("mul_bcast_col_row", lambda m, a, b: a * b, lambda a, b: a * b, ((3, 1), (1, 4))),
    C("mul_0d_tensor", lambda m, a, b: a * b, lambda a, b: a * b, ((), (2, 3))),
    C("mul_scalar_right", lambda m, a: a * 2.5, lambda a: a * 2.5, ((3, 4),)),
    C("mul_scalar_left", lambda m, a: 2.5 * a, lambda a: 2.5 * a, ((3, 4),)),
    C("mul_fn", lambda m, a, b: m.mul(a, b), lambda a, b: a * b, ((3, 4), (3, 4))),
    C("mul_method", lambda m, a, b: a.mul(b), lambda a, b: a * b, ((3, 1), (4,))),
    C("mul_self", lambda m, a: a * a, lambda a: a * a, ((5,),)),
    # ---- div ----
    C("div", lambda m, a, b: a / b, lambda a, b: a / b, ((3, 4), (3, 4))),
    C("div_bcast_vec", lambda m, a, b: a / b, lambda a, b: a / b, ((3, 4), (4,))),
    C("div_bcast_col_row", lambda m, a, b: a / b, lambda a, b: a / b, ((3, 1), (1, 4))),
    C("div_scalar_right", lambda m, a: a / 2.5, lambda a: a / 2.5, ((3, 4),)),
    C("div_scalar_left", lambda m, a: 2.5 / a, lambda a: 2.5 / a, ((3, 4),)),
    C("div_fn", lambda m, a, b: m.div(a, b), lambda a, b: a / b, ((3, 4), (3, 4))),
    C("div_method", lambda m, a, b: a.div(b), lambda a, b: a / b, ((2, 3), (3,))),
    # ---- neg ----
    C("neg", lambda m, a: -a, lambda a: -a, ((3, 4),)),
    C("neg_fn", lambda m, a: m.neg(a), lambda a: -a, ((2, 3, 2),)),
    C("neg_method", lambda m, a: a.neg(), lambda a: -a, ((4,),)),
    # ---- pow: tensor ** scalar, tensor ** tensor, scalar ** tensor ----
    C("pow_scalar_2", lambda m, a: a**2, lambda a: a**2, ((3, 4),)),
    C("pow_scalar_3", lambda m, a: a**3, lambda a: a**3, ((3, 4),)),
    C("pow_scalar_float_3", lambda m, a: a**3.0, lambda a: a**3.0, ((5,),)),
    C("pow_scalar_half", lambda m, a: a**0.5, lambda a: a**0.5, ((3, 4),), ("pos",)),
    C("pow_scalar_neg", lambda m, a: a**-1.5, lambda a: a**-1.5, ((3, 4),), ("pos",)),
    C("pow_scalar_0", lambda m, a: a**0.0, lambda a: a**0.0, ((3,),)),
    C("pow_scalar_1", lambda m, a: a**1.0, lambda a: a**1.0, ((3,),)),
    C("pow_method", lambda m, a: a.pow(2.0), lambda a: a**2, ((3, 4),)),
    C("pow_fn", lambda m, a: m.pow(a, 3.0), lambda a: a**3, ((3, 4),)),
    C("pow_tensor", lambda m, a, b: a**b, lambda a, b: a**b, ((3, 4), (3, 4)), ("pos", "any")),
    C(
        "pow_tensor_bcast",
        lambda m, a, b: a**b,
        lambda a, b: a**b,
        ((3, 4), (4,)),
        ("pos", "any"),
    ),
    C(
        "pow_tensor_bcast_base",
        lambda m, a, b: a**b,
        lambda a, b: a**b,
        ((3, 1), (1, 4)),
        ("pos", "any"),
    ),
    C(
        "pow_tensor_fn",
        lambda m, a, b: m.pow(a, b),
        lambda a, b: a**b,
        ((2, 3), (2, 3)),
        ("pos", "any"),
    ),
    C("pow_scalar_base", lambda m, a: 2.0**a, lambda a: 2.0**a, ((3, 4),)),
    C("pow_scalar_base_half", lambda m, a: 0.5**a, lambda a: 0.5**a, ((3, 4),)),
    # ---- unary ----
    C("exp", lambda m, a: a.exp(), np.exp, ((3, 4),)),
    C("exp_fn", lambda m, a: m.exp(a), np.exp, ((2, 3, 2),)),
    C("expm1", lambda m, a: a.expm1(), np.expm1, ((3, 4),)),
    C("expm1_0d", lambda m, a: a.expm1(), np.expm1, ((),)),
    C("log", lambda m, a: a.log(), np.log, ((3, 4),), ("pos",)),
    C("log_fn", lambda m, a: m.log(a), np.log, ((2, 3, 2),), ("pos",)),
    C("tanh", lambda m, a: a.tanh(), np.tanh, ((3, 4),)),
    C("tanh_fn", lambda m, a: m.tanh(a), np.tanh, ((2, 3, 2),)),
    C("tanh_0d", lambda m, a: m.tanh(a), np.tanh, ((),)),
    C("sigmoid", lambda m, a: a.sigmoid(), _sigmoid, ((3, 4),)),
    C("sigmoid_fn", lambda m, a: m.sigmoid(a), _sigmoid, ((2, 3, 2),)),
    C("relu", lambda m, a: a.relu(), lambda a: np.maximum(a, 0.0), ((3, 4),)),
    C("relu_fn", lambda m, a: m.relu(a), lambda a: np.maximum(a, 0.0), ((2, 3, 2),)),
    # ---- where ----
    C(
        "where",
        lambda m, a, b: m.where(m.tensor(MASK_34), a, b),
        lambda a, b: np.where(MASK_34, a, b),
        ((3, 4), (3, 4)),
    ),
    C(
        "where_bcast",
        lambda m, a, b: m.where(m.tensor(MASK_31), a, b),
        lambda a, b: np.where(MASK_31, a, b),
        ((1, 4), (3, 4)),
    ),
    C(
        "where_bcast_both",
        lambda m, a, b: m.where(m.tensor(MASK_34), a, b),
        lambda a, b: np.where(MASK_34, a, b),
        ((3, 1), (4,)),
    ),
    C(
        "where_compare",
        lambda m, a, b: m.where(a > 0, a, b * 2.0),
        lambda a, b: np.where(a > 0, a, b * 2.0),
        ((3, 4), (3, 4)),
    ),
    # ---- sum ----
    C("sum_all", lambda m, a: a.sum(), lambda a: a.sum(), ((3, 4),)),
    C("sum_all_3d", lambda m, a: a.sum(), lambda a: a.sum(), ((2, 3, 4),)),
    C("sum_dim0", lambda m, a: a.sum(dim=0), lambda a: a.sum(axis=0), ((3, 4),)),
    C("sum_dim1", lambda m, a: a.sum(1), lambda a: a.sum(axis=1), ((3, 4),)),
    C("sum_dim_neg", lambda m, a: a.sum(dim=-1), lambda a: a.sum(axis=-1), ((2, 3, 4),)),
    C(
        "sum_dim_tuple",
        lambda m, a: a.sum(dim=(0, 2)),
        lambda a: a.sum(axis=(0, 2)),
        ((2, 3, 4),),
    ),
    C(
        "sum_dim_tuple_neg",
        lambda m, a: a.sum(dim=(-1, 0)),
        lambda a: a.sum(axis=(-1, 0)),
        ((2, 3, 4),),
    ),
    C(
        "sum_keepdim",
        lambda m, a: a.sum(dim=1, keepdim=True),
        lambda a: a.sum(axis=1, keepdims=True),
        ((2, 3, 4),),
    ),
    C(
        "sum_keepdim_tuple",
        lambda m, a: a.sum(dim=(0, -1), keepdim=True),
        lambda a: a.sum(axis=(0, -1), keepdims=True),
        ((2, 3, 4),),
    ),
    C("sum_fn", lambda m, a: m.sum(a, dim=0), lambda a: a.sum(axis=0), ((3, 4),)),
    C("sum_0d", lambda m, a: a.sum(), lambda a: a.sum(), ((),)),
    # ---- mean ----
    C("mean_all", lambda m, a: a.mean(), lambda a: a.mean(), ((3, 4),)),
    C("mean_dim0", lambda m, a: a.mean(dim=0), lambda a: a.mean(axis=0), ((3, 4),)),
    C("mean_dim_neg", lambda m, a: a.mean(-1), lambda a: a.mean(axis=-1), ((2, 3, 4),)),
    C(
        "mean_dim_tuple",
        lambda m, a: a.mean(dim=(0, 2)),
        lambda a: a.mean(axis=(0, 2)),
        ((2, 3, 4),),
    ),
    C(
        "mean_dim_tuple_neg",
        lambda m, a: a.mean(dim=(-2, -1)),
        lambda a: a.mean(axis=(-2, -1)),
        ((2, 3, 4),),
    ),
    C(
        "mean_keepdim",
        lambda m, a: a.mean(dim=0, keepdim=True),
        lambda a: a.mean(axis=0, keepdims=True),
        ((3, 4),),
    ),
    C(
        "mean_keepdim_tuple",
        lambda m, a: a.mean(dim=(1, 2), keepdim=True),
        lambda a: a.mean(axis=(1, 2), keepdims=True),
        ((2, 3, 4),),
    ),
    C("mean_fn", lambda m, a: m.mean(a, dim=1), lambda a: a.mean(axis=1), ((3, 4),)),
    # ---- matmul ----
    C("matmul", lambda m, a, b: a @ b, lambda a, b: a @ b, ((3, 4), (4, 5))),
    C("matmul_method", lambda m, a, b: a.matmul(b), lambda a, b: a @ b, ((2, 3), (3, 2))),
    C("matmul_fn", lambda m, a, b: m.matmul(a, b), lambda a, b: a @ b, ((1, 4), (4, 1))),
    C("matmul_outer", lambda m, a, b: a @ b, lambda a, b: a @ b, ((4, 1), (1, 3))),
    C("matmul_transposed", lambda m, a, b: a.T @ b, lambda a, b: a.T @ b, ((4, 3), (4, 2))),
    C(
        "matmul_transposed_rhs",
        lambda m, a, b: a @ b.transpose(0, 1),
        lambda a, b: a @ b.T,
        ((3, 4), (5, 4)),
    ),
    # ---- shape ops ----
    C("reshape", lambda m, a: a.reshape(6, 4), lambda a: a.reshape(6, 4), ((2, 3, 4),)),
    C("reshape_flat", lambda m, a: a.reshape(-1), lambda a: a.reshape(-1), ((2, 3, 4),)),
    C("reshape_infer", lambda m, a: a.reshape(4, -1), lambda a: a.reshape(4, -1), ((2, 3, 4),)),
    C("reshape_tuple", lambda m, a: a.reshape((3, 2, 2)), lambda a: a.reshape(3, 2, 2), ((12,),)),
    C(
        "reshape_noncontig",
        lambda m, a: a.T.reshape(-1),
        lambda a: a.T.reshape(-1),
        ((3, 4),),
    ),
    C("reshape_fn", lambda m, a: m.reshape(a, (2, 6)), lambda a: a.reshape(2, 6), ((3, 4),)),
    C("transpose", lambda m, a: a.transpose(0, 1), lambda a: a.T, ((3, 4),)),
    C(
        "transpose_3d",
        lambda m, a: a.transpose(0, 2),
        lambda a: np.swapaxes(a, 0, 2),
        ((2, 3, 4),),
    ),
    C(
        "transpose_neg",
        lambda m, a: a.transpose(-1, 0),
        lambda a: np.swapaxes(a, -1, 0),
        ((2, 3, 4),),
    ),
    C(
        "transpose_fn",
        lambda m, a: m.transpose(a, 1, 2),
        lambda a: np.swapaxes(a, 1, 2),
        ((2, 3, 4),),
    ),
    C(
        "permute",
        lambda m, a: a.permute(2, 0, 1),
        lambda a: np.transpose(a, (2, 0, 1)),
        ((2, 3, 4),),
    ),
    C(
        "permute_neg",
        lambda m, a: a.permute(1, -1, 0),
        lambda a: np.transpose(a, (1, 2, 0)),
        ((2, 3, 4),),
    ),
    C("permute_2d", lambda m, a: a.permute(1, 0), lambda a: a.T, ((3, 4),)),
    C("T", lambda m, a: a.T, lambda a: a.T, ((3, 4),)),
    C(
        "expand",
        lambda m, a: _expand(a, (2, 3, 4)),
        lambda a: np.broadcast_to(a, (2, 3, 4)),
        ((3, 1),),
    ),
    C(
        "expand_keep",
        lambda m, a: _expand(a, (3, 2, 4)),
        lambda a: np.broadcast_to(a, (3, 2, 4)),
        ((3, 1, 4),),
    ),
    # ---- non-contiguous inputs into elementwise ops and reductions ----
    C("mul_noncontig", lambda m, a, b: a.T * b, lambda a, b: a.T * b, ((4, 3), (3, 4))),
    C(
        "exp_noncontig",
        lambda m, a: a.permute(2, 0, 1).exp(),
        lambda a: np.exp(np.transpose(a, (2, 0, 1))),
        ((2, 3, 4),),
    ),
    C(
        "sum_noncontig",
        lambda m, a: a.transpose(0, 2).sum(dim=1),
        lambda a: np.swapaxes(a, 0, 2).sum(axis=1),
        ((2, 3, 4),),
    ),
    # ---- dtype conversion ----
    C("to_float64", lambda m, a: a.to(m.float64), lambda a: a, ((3, 4),), out_dtype="float64"),
    C("double", lambda m, a: a.double(), lambda a: a, ((3, 4),), out_dtype="float64"),
    C("float", lambda m, a: a.float(), lambda a: a, ((3, 4),), out_dtype="float32", fd=False),
    # ---- copies ----
    C("clone", lambda m, a: a.T.clone() * 2.0, lambda a: a.T * 2.0, ((3, 4),)),
    C("contiguous", lambda m, a: a.T.contiguous() * 2.0, lambda a: a.T * 2.0, ((3, 4),)),
    # =========================================================================================
    # the full op set
    # =========================================================================================
    # ---- elementwise unary ----
    C("abs", lambda m, a: a.abs(), np.abs, ((3, 4),)),
    C("abs_fn", lambda m, a: m.abs(a), np.abs, ((7,),)),
    C("abs_0d", lambda m, a: m.abs(a), np.abs, ((),)),
    C("sqrt", lambda m, a: a.sqrt(), np.sqrt, ((3, 4),), ("pos",)),
    C("sqrt_fn", lambda m, a: m.sqrt(a), np.sqrt, ((2, 3, 5),), ("pos",)),
    C("sin", lambda m, a: a.sin(), np.sin, ((3, 4),)),
    C("sin_fn", lambda m, a: m.sin(a), np.sin, ((5, 7),)),
    C("cos", lambda m, a: a.cos(), np.cos, ((3, 4),)),
    C("cos_fn", lambda m, a: m.cos(a), np.cos, ((5, 7),)),
    C("cos_0d", lambda m, a: a.cos(), np.cos, ((),)),
    # ---- clamp (bounds away from the inputs' values; ties have measure zero) ----
    C("clamp", lambda m, a: a.clamp(-0.5, 0.8), lambda a: np.clip(a, -0.5, 0.8), ((4, 5),)),
    C("clamp_min", lambda m, a: a.clamp(min=0.3), lambda a: np.maximum(a, 0.3), ((4, 5),)),
    C("clamp_max", lambda m, a: a.clamp(max=-0.3), lambda a: np.minimum(a, -0.3), ((4, 5),)),
    C("clamp_fn", lambda m, a: m.clamp(a, -0.5, 0.5), lambda a: np.clip(a, -0.5, 0.5), ((3, 7),)),
    C(
        "clamp_tensor_bounds",
        lambda m, a, lo, hi: m.clamp(a, min=lo, max=hi),
        lambda a, lo, hi: np.minimum(np.maximum(a, lo), hi),
        ((3, 4), (3, 4), (4,)),
    ),
    # ---- maximum / minimum ----
    C("maximum", lambda m, a, b: m.maximum(a, b), np.maximum, ((3, 4), (3, 4))),
    C("maximum_bcast", lambda m, a, b: m.maximum(a, b), np.maximum, ((3, 1), (1, 4))),
    C("maximum_method", lambda m, a, b: a.maximum(b), np.maximum, ((2, 3, 4), (4,))),
    C("minimum", lambda m, a, b: m.minimum(a, b), np.minimum, ((3, 4), (3, 4))),
    C("minimum_bcast", lambda m, a, b: m.minimum(a, b), np.minimum, ((2, 3, 4), (3, 1))),
    C("minimum_method", lambda m, a, b: a.minimum(b), np.minimum, ((5,), ())),
    C(
        "where_scalar_other",
        lambda m, a: m.where(m.tensor(MASK_34), a, 0.0),
        lambda a: np.where(MASK_34, a, 0.0),
        ((3, 4),),
    ),
    C(
        "where_scalar_self",
        lambda m, a: m.where(m.tensor(MASK_34), 2.0, a),
        lambda a: np.where(MASK_34, 2.0, a),
        ((3, 4),),
    ),
    C(
        "where_bcast_cond_3d",
        lambda m, a, b: m.where(m.tensor(MASK_31), a, b),
        lambda a, b: np.where(MASK_31, a, b),
        ((2, 1, 4), (3, 1)),
    ),
    # ---- broadcast pairs, odd and prime sizes ----
    C("mul_bcast_big", lambda m, a, b: a * b, lambda a, b: a * b, ((5, 3, 14, 16), (5, 1, 14, 1))),
    C("add_bcast_odd", lambda m, a, b: a + b, lambda a, b: a + b, ((3, 1, 5, 7), (3, 5, 1))),
    C("sub_bcast_prime", lambda m, a, b: a - b, lambda a, b: a - b, ((7, 1, 11), (13, 1))),
    C("div_bcast_4d", lambda m, a, b: a / b, lambda a, b: a / b, ((3, 2, 5, 7), (3, 1, 5, 1))),
    C(
        "maximum_bcast_4d",
        lambda m, a, b: m.maximum(a, b),
        np.maximum,
        ((2, 3, 5, 7), (2, 1, 5, 1)),
    ),
    # ---- zero-size dimensions ----
    C("add_zero_size", lambda m, a, b: a + b, lambda a, b: a + b, ((0, 3), (3,))),
    C("mul_zero_size_bcast", lambda m, a, b: a * b, lambda a, b: a * b, ((2, 0, 3), (2, 1, 3))),
    C("exp_zero_size", lambda m, a: a.exp(), np.exp, ((2, 0),)),
    C("sum_zero_size_dim", lambda m, a: a.sum(dim=0), lambda a: a.sum(axis=0), ((0, 3),)),
    C("sum_zero_size_all", lambda m, a: a.sum(), lambda a: a.sum(), ((0, 3),)),
    C("matmul_zero_inner", lambda m, a, b: a @ b, lambda a, b: a @ b, ((3, 0), (0, 4))),
    C("matmul_zero_outer", lambda m, a, b: a @ b, lambda a, b: a @ b, ((0, 3), (3, 4))),
    C(
        "reshape_zero_size",
        lambda m, a: a.reshape(3, 0, 2),
        lambda a: a.reshape(3, 0, 2),
        ((0, 6),),
    ),
    C(
        "cat_zero_size",
        lambda m, a, b: m.cat([a, b], dim=0),
        lambda a, b: np.concatenate([a, b], axis=0),
        ((0, 3), (2, 3)),
    ),
    # ---- non-contiguous inputs: transposed, stepped slices, expanded ----
    C("exp_stepped", lambda m, a: a[::2, 1::3].exp(), lambda a: np.exp(a[::2, 1::3]), ((5, 7),)),
    C(
        "add_expanded",
        lambda m, a, b: a.expand(3, 4) + b,
        lambda a, b: np.broadcast_to(a, (3, 4)) + b,
        ((4,), (3, 4)),
    ),
    C(
        "mul_transposed_stepped",
        lambda m, a, b: a.T[::2] * b,
        lambda a, b: a.T[::2] * b,
        ((4, 6), (3, 4)),
    ),
    C("sum_stepped", lambda m, a: a[:, ::2].sum(dim=0), lambda a: a[:, ::2].sum(axis=0), ((3, 7),)),
    C(
        "matmul_noncontig_both",
        lambda m, a, b: a[::2].T @ b[:, 1::2],
        lambda a, b: a[::2].T @ b[:, 1::2],
        ((6, 3), (3, 8)),
    ),
    C(
        "sqrt_expanded",
        lambda m, a: a.expand(2, 3, 4).sqrt(),
        lambda a: np.sqrt(np.broadcast_to(a, (2, 3, 4))),
        ((3, 1),),
        ("pos",),
    ),
    # ---- prod ----
    C("prod_all", lambda m, a: a.prod(), lambda a: a.prod(), ((3, 4),)),
    C("prod_dim", lambda m, a: a.prod(dim=1), lambda a: a.prod(axis=1), ((3, 5),)),
    C(
        "prod_dim_neg_keepdim",
        lambda m, a: a.prod(-1, keepdim=True),
        lambda a: a.prod(axis=-1, keepdims=True),
        ((2, 3, 4),),
    ),
    C("prod_fn", lambda m, a: m.prod(a, 0), lambda a: a.prod(axis=0), ((3, 4),)),
    C("prod_0d", lambda m, a: a.prod(), lambda a: a.prod(), ((),)),
    # ---- var / std ----
    C("var_all", lambda m, a: a.var(), lambda a: a.var(ddof=1), ((3, 4),)),
    C("var_dim", lambda m, a: a.var(dim=1), lambda a: a.var(axis=1, ddof=1), ((3, 5),)),
    C(
        "var_dim_tuple_keepdim",
        lambda m, a: a.var(dim=(0, 2), keepdim=True),
        lambda a: a.var(axis=(0, 2), ddof=1, keepdims=True),
        ((2, 3, 4),),
    ),
    C(
        "var_correction0",
        lambda m, a: a.var(dim=0, correction=0),
        lambda a: a.var(axis=0),
        ((3, 4),),
    ),
    C(
        "var_unbiased_false",
        lambda m, a: a.var(1, unbiased=False),
        lambda a: a.var(axis=1),
        ((3, 4),),
    ),
    C("var_fn", lambda m, a: m.var(a, dim=-1), lambda a: a.var(axis=-1, ddof=1), ((2, 3, 4),)),
    C("std_all", lambda m, a: a.std(), lambda a: a.std(ddof=1), ((3, 4),)),
    C("std_dim", lambda m, a: a.std(dim=0), lambda a: a.std(axis=0, ddof=1), ((5, 3),)),
    C(
        "std_keepdim",
        lambda m, a: a.std(dim=-1, keepdim=True),
        lambda a: a.std(axis=-1, ddof=1, keepdims=True),
        ((2, 3, 4),),
    ),
    C(
        "std_correction0",
        lambda m, a: a.std(dim=(0, 1), correction=0),
        lambda a: a.std(axis=(0, 1)),
        ((2, 3, 4),),
    ),
    C("std_fn", lambda m, a: m.std(a, dim=1), lambda a: a.std(axis=1, ddof=1), ((3, 7),)),
    # ---- max / min (random inputs: no ties; ties are tested on their own) ----
    C("max_all", lambda m, a: a.max(), lambda a: a.max(), ((3, 4),)),
    C("max_all_fn", lambda m, a: m.max(a), lambda a: a.max(), ((2, 3, 4),)),
    C("max_dim", lambda m, a: a.max(dim=1).values, lambda a: a.max(axis=1), ((3, 5),)),
    C(
        "max_dim_keepdim",
        lambda m, a: a.max(dim=-1, keepdim=True)[0],
        lambda a: a.max(axis=-1, keepdims=True),
        ((2, 3, 4),),
    ),
    C("max_dim_fn", lambda m, a: m.max(a, 0)[0], lambda a: a.max(axis=0), ((4, 3),)),
    C("max_0d", lambda m, a: a.max(), lambda a: a.max(), ((),)),
    C("min_all", lambda m, a: a.min(), lambda a: a.min(), ((3, 4),)),
    C("min_dim", lambda m, a: a.min(1).values, lambda a: a.min(axis=1), ((3, 5),)),
    C(
        "min_dim_keepdim",
        lambda m, a: a.min(0, keepdim=True).values,
        lambda a: a.min(axis=0, keepdims=True),
        ((3, 4),),
    ),
    C("min_dim_fn", lambda m, a: m.min(a, dim=-1)[0], lambda a: a.min(axis=-1), ((2, 3, 4),)),
    # ---- amax / amin ----
    C("amax_dim", lambda m, a: a.amax(dim=1), lambda a: a.max(axis=1), ((3, 5),)),
    C("amax_tuple", lambda m, a: a.amax(dim=(0, 2)), lambda a: a.max(axis=(0, 2)), ((2, 3, 4),)),
    C("amax_all", lambda m, a: a.amax(), lambda a: a.max(), ((3, 4),)),
    C(
        "amax_keepdim",
        lambda m, a: m.amax(a, -1, keepdim=True),
        lambda a: a.max(axis=-1, keepdims=True),
        ((2, 3, 4),),
    ),
    C("amin_dim", lambda m, a: a.amin(dim=0), lambda a: a.min(axis=0), ((3, 5),)),
    C("amin_all", lambda m, a: a.amin(), lambda a: a.min(), ((3, 4),)),
    C("amin_fn", lambda m, a: m.amin(a, dim=(0, 1)), lambda a: a.min(axis=(0, 1)), ((2, 3, 4),)),
    # ---- logsumexp ----
    C(
        "logsumexp_dim",
        lambda m, a: a.logsumexp(dim=1),
        lambda a: oracles.logsumexp(a, axis=1),
        ((3, 5),),
    ),
    C(
        "logsumexp_tuple",
        lambda m, a: m.logsumexp(a, dim=(0, 2)),
        lambda a: oracles.logsumexp(a, axis=(0, 2)),
        ((2, 3, 4),),
    ),
    C(
        "logsumexp_keepdim",
        lambda m, a: a.logsumexp(-1, keepdim=True),
        lambda a: oracles.logsumexp(a, axis=-1, keepdims=True),
        ((2, 3, 4),),
    ),
    C("mean_prime", lambda m, a: a.mean(dim=1), lambda a: a.mean(axis=1), ((7, 13),)),
    # ---- view / flatten / squeeze / unsqueeze / expand ----
    C("view", lambda m, a: a.view(6, 4), lambda a: a.reshape(6, 4), ((2, 3, 4),)),
    C("view_infer", lambda m, a: a.view(-1, 2), lambda a: a.reshape(-1, 2), ((2, 3, 4),)),
    C("view_tuple", lambda m, a: a.view((4, 6)), lambda a: a.reshape(4, 6), ((2, 3, 4),)),
    C("view_of_slice", lambda m, a: a[1:].view(-1), lambda a: a[1:].reshape(-1), ((3, 4),)),
    C("flatten", lambda m, a: a.flatten(), lambda a: a.reshape(-1), ((2, 3, 4),)),
    C("flatten_start", lambda m, a: a.flatten(1), lambda a: a.reshape(2, 12), ((2, 3, 4),)),
    C("flatten_range", lambda m, a: a.flatten(0, 1), lambda a: a.reshape(6, 4), ((2, 3, 4),)),
    C("flatten_0d", lambda m, a: a.flatten(), lambda a: a.reshape(1), ((),)),
    C("flatten_noncontig", lambda m, a: a.T.flatten(), lambda a: a.T.reshape(-1), ((3, 4),)),
    C("squeeze", lambda m, a: a.squeeze(), lambda a: a.squeeze(), ((3, 1, 4, 1),)),
    C("squeeze_dim", lambda m, a: a.squeeze(1), lambda a: a.squeeze(1), ((3, 1, 4, 1),)),
    C("squeeze_dim_neg", lambda m, a: a.squeeze(-1), lambda a: a.squeeze(-1), ((3, 1, 4, 1),)),
    C(
        "squeeze_tuple",
        lambda m, a: a.squeeze((1, 3)),
        lambda a: a.squeeze((1, 3)),
        ((3, 1, 4, 1),),
    ),
    C("squeeze_noop", lambda m, a: a.squeeze(0), lambda a: a, ((3, 1, 4),)),
    C("unsqueeze", lambda m, a: a.unsqueeze(0), lambda a: a[None], ((3, 4),)),
    C("unsqueeze_neg", lambda m, a: a.unsqueeze(-1), lambda a: a[..., None], ((3, 4),)),
    C("unsqueeze_mid", lambda m, a: a.unsqueeze(1), lambda a: a[:, None], ((3, 4),)),
    C("unsqueeze_0d", lambda m, a: a.unsqueeze(0), lambda a: a.reshape(1), ((),)),
    C(
        "expand_minus1",
        lambda m, a: a.expand(2, -1, 4),
        lambda a: np.broadcast_to(a, (2, 3, 4)),
        ((3, 1),),
    ),
    C("expand_0d", lambda m, a: a.expand(3, 4), lambda a: np.broadcast_to(a, (3, 4)), ((),)),
    C(
        "expand_tuple",
        lambda m, a: a.expand((2, 3)),
        lambda a: np.broadcast_to(a, (2, 3)),
        ((3,),),
    ),
    C(
        "permute_4d",
        lambda m, a: a.permute(3, 1, 0, 2),
        lambda a: np.transpose(a, (3, 1, 0, 2)),
        ((2, 3, 4, 5),),
    ),
    # ---- indexing (gradients scatter back; repeated indices accumulate) ----
    C("index_int", lambda m, a: a[1], lambda a: a[1], ((3, 4),)),
    C("index_neg", lambda m, a: a[-1, -2], lambda a: a[-1, -2], ((3, 4),)),
    C("index_slice", lambda m, a: a[1:3], lambda a: a[1:3], ((4, 3),)),
    C("index_slice_step", lambda m, a: a[::2, 1::2], lambda a: a[::2, 1::2], ((5, 6),)),
    C("index_slice_neg", lambda m, a: a[-3:-1, :-1], lambda a: a[-3:-1, :-1], ((4, 5),)),
    C("index_slice_clipped", lambda m, a: a[1:100], lambda a: a[1:100], ((4, 3),)),
    C("index_ellipsis", lambda m, a: a[..., 1], lambda a: a[..., 1], ((2, 3, 4),)),
    C("index_none", lambda m, a: a[None, :, None], lambda a: a[None, :, None], ((3, 4),)),
    C(
        "index_mixed_basic",
        lambda m, a: a[1, ..., None, ::2],
        lambda a: a[1, ..., None, ::2],
        ((3, 4, 5),),
    ),
    C("index_0d_result", lambda m, a: a[1, 2], lambda a: a[1, 2], ((3, 4),)),
    C(
        "index_int_tensor",
        lambda m, a: a[m.tensor(np.array([2, 0, 2]))],
        lambda a: a[np.array([2, 0, 2])],
        ((4, 3),),
    ),
    C("index_list", lambda m, a: a[[0, 2, 0]], lambda a: a[[0, 2, 0]], ((3, 4),)),
    C("index_list_dim1", lambda m, a: a[:, [3, 0, 3, 1]], lambda a: a[:, [3, 0, 3, 1]], ((3, 4),)),
    C(
        "index_int_tensor_2d",
        lambda m, a: a[m.tensor(np.array([[0, 1], [2, 2]]))],
        lambda a: a[np.array([[0, 1], [2, 2]])],
        ((3, 4),),
    ),
    C(
        "index_two_adv",
        lambda m, a: a[[0, 2, 2], [1, 0, 1]],
        lambda a: a[[0, 2, 2], [1, 0, 1]],
        ((3, 4),),
    ),
    C(
        "index_adv_separated",
        lambda m, a: a[[0, 1], :, [2, 0]],
        lambda a: a[[0, 1], :, [2, 0]],
        ((2, 3, 4),),
    ),
    C(
        "index_adv_adjacent",
        lambda m, a: a[:, [0, 2], [1, 1]],
        lambda a: a[:, [0, 2], [1, 1]],
        ((2, 3, 4),),
    ),
    C(
        "index_adv_bcast",
        lambda m, a: a[m.tensor(np.array([[0], [2]])), m.tensor(np.array([1, 3]))],
        lambda a: a[np.array([[0], [2]]), np.array([1, 3])],
        ((3, 4),),
    ),
    C("index_mask", lambda m, a: a[m.tensor(MASK_34)], lambda a: a[MASK_34], ((3, 4),)),
    C(
        "index_mask_rows",
        lambda m, a: a[m.tensor(np.array([True, False, True]))],
        lambda a: a[np.array([True, False, True])],
        ((3, 4),),
    ),
    C("index_mask_compare", lambda m, a: a[a > 0], lambda a: a[a > 0], ((4, 5),)),
    C(
        "index_noncontig_adv",
        lambda m, a: a.T[1:, [0, 2]],
        lambda a: a.T[1:, [0, 2]],
        ((4, 3),),
    ),
    C(
        "index_ellipsis_adv",
        lambda m, a: a[..., [0, 0, 2]],
        lambda a: a[..., [0, 0, 2]],
        ((2, 3, 4),),
    ),
    # Squared after indexing, so that the gradient depends on the input and second order runs
    # through the adjoint ops (slice_backward, index_add, scatter_add).
    C(
        "index_slice_square",
        lambda m, a: a[1:3, ::2] ** 2,
        lambda a: a[1:3, ::2] ** 2,
        ((4, 5),),
    ),
    C(
        "index_list_square",
        lambda m, a: a[[2, 0, 2]] ** 2,
        lambda a: a[[2, 0, 2]] ** 2,
        ((3, 4),),
    ),
    C(
        "index_mask_square",
        lambda m, a: a[m.tensor(MASK_34)] ** 2,
        lambda a: a[MASK_34] ** 2,
        ((3, 4),),
    ),
    # ---- gather ----
    C(
        "gather_dim1",
        lambda m, a: m.gather(a, 1, m.tensor(np.array([[0, 0], [1, 0], [3, 2]]))),
        lambda a: np.take_along_axis(a, np.array([[0, 0], [1, 0], [3, 2]]), axis=1),
        ((3, 4),),
    ),
    C(
        "gather_dim0_method",
        lambda m, a: a.gather(0, m.tensor(np.array([[2, 0, 2, 1], [2, 2, 0, 0]]))),
        lambda a: np.take_along_axis(a, np.array([[2, 0, 2, 1], [2, 2, 0, 0]]), axis=0),
        ((3, 4),),
    ),
    C(
        "gather_neg_dim",
        lambda m, a: a.gather(-1, m.tensor(GATHER_IDX_232)),
        lambda a: np.take_along_axis(a, GATHER_IDX_232, axis=-1),
        ((2, 3, 4),),
    ),
    C(
        "gather_smaller_index",
        lambda m, a: a.gather(1, m.tensor(np.array([[3, 3], [0, 1]]))),
        lambda a: np.take_along_axis(a[:2], np.array([[3, 3], [0, 1]]), axis=1),
        ((3, 4),),
    ),
    C(
        "gather_square",
        lambda m, a: a.gather(1, m.tensor(np.array([[0, 0], [1, 0], [3, 2]]))) ** 2,
        lambda a: np.take_along_axis(a, np.array([[0, 0], [1, 0], [3, 2]]), axis=1) ** 2,
        ((3, 4),),
    ),
    # ---- cat / stack ----
    C(
        "cat_dim0",
        lambda m, a, b: m.cat([a, b]),
        lambda a, b: np.concatenate([a, b]),
        ((2, 3), (4, 3)),
    ),
    C(
        "cat_dim1_three",
        lambda m, a, b, c: m.cat([a, b, c], dim=1),
        lambda a, b, c: np.concatenate([a, b, c], axis=1),
        ((2, 1), (2, 3), (2, 2)),
    ),
    C(
        "cat_neg_dim",
        lambda m, a, b: m.cat([a, b], dim=-1),
        lambda a, b: np.concatenate([a, b], axis=-1),
        ((2, 3, 2), (2, 3, 1)),
    ),
    C(
        "cat_same_tensor",
        lambda m, a: m.cat((a, a * 2.0), 0),
        lambda a: np.concatenate((a, a * 2.0), 0),
        ((3,),),
    ),
    C(
        "cat_noncontig",
        lambda m, a, b: m.cat([a.T, b], 0),
        lambda a, b: np.concatenate([a.T, b], 0),
        ((3, 2), (1, 3)),
    ),
    C("stack", lambda m, a, b: m.stack([a, b]), lambda a, b: np.stack([a, b]), ((3, 4), (3, 4))),
    C(
        "stack_dim1_three",
        lambda m, a, b, c: m.stack([a, b, c], dim=1),
        lambda a, b, c: np.stack([a, b, c], axis=1),
        ((2, 3), (2, 3), (2, 3)),
    ),
    C(
        "stack_neg_dim",
        lambda m, a, b: m.stack((a, b), dim=-1),
        lambda a, b: np.stack((a, b), axis=-1),
        ((2, 3), (2, 3)),
    ),
    C("stack_0d", lambda m, a, b: m.stack([a, b]), lambda a, b: np.stack([a, b]), ((), ())),
    # ---- matmul, every rank ----
    C("matmul_vv", lambda m, a, b: a @ b, np.matmul, ((4,), (4,))),
    C("matmul_mv", lambda m, a, b: a @ b, np.matmul, ((3, 4), (4,))),
    C("matmul_vm", lambda m, a, b: a @ b, np.matmul, ((4,), (4, 5))),
    C("matmul_batched", lambda m, a, b: a @ b, np.matmul, ((2, 3, 4), (2, 4, 5))),
    C("matmul_bcast_batch", lambda m, a, b: m.matmul(a, b), np.matmul, ((2, 1, 3, 4), (3, 4, 5))),
    C("matmul_bcast_batch_both", lambda m, a, b: a @ b, np.matmul, ((3, 1, 2, 4), (1, 5, 4, 3))),
    C("matmul_3d_2d", lambda m, a, b: a @ b, np.matmul, ((2, 3, 4), (4, 5))),
    C("matmul_2d_3d", lambda m, a, b: a.matmul(b), np.matmul, ((3, 4), (2, 4, 5))),
    C("matmul_1d_3d", lambda m, a, b: a @ b, np.matmul, ((4,), (2, 4, 5))),
    C("matmul_3d_1d", lambda m, a, b: a @ b, np.matmul, ((2, 3, 4), (4,))),
    C("matmul_prime", lambda m, a, b: a @ b, np.matmul, ((7, 13), (13, 5))),
    C(
        "matmul_batched_transposed",
        lambda m, a, b: a.transpose(1, 2) @ b,
        lambda a, b: np.swapaxes(a, 1, 2) @ b,
        ((2, 4, 3), (2, 4, 5)),
    ),
    # ---- bprop.nn.functional (more options in test_functional.py) ----
    C("F_relu", lambda m, a: F(m).relu(a), lambda a: np.maximum(a, 0.0), ((3, 4),)),
    C("F_tanh", lambda m, a: F(m).tanh(a), np.tanh, ((3, 4),)),
    C("F_sigmoid", lambda m, a: F(m).sigmoid(a), _sigmoid, ((3, 4),)),
    C("leaky_relu", lambda m, a: F(m).leaky_relu(a), oracles.leaky_relu, ((3, 4),)),
    C(
        "leaky_relu_slope",
        lambda m, a: F(m).leaky_relu(a, negative_slope=0.2),
        lambda a: oracles.leaky_relu(a, 0.2),
        ((3, 4),),
    ),
    C("gelu", lambda m, a: F(m).gelu(a), oracles.gelu, ((3, 5),)),
    C(
        "gelu_tanh",
        lambda m, a: F(m).gelu(a, approximate="tanh"),
        lambda a: oracles.gelu(a, "tanh"),
        ((3, 5),),
    ),
    C("softplus", lambda m, a: F(m).softplus(a), oracles.softplus, ((3, 5),)),
    C(
        "softplus_beta",
        lambda m, a: F(m).softplus(a * 10.0, beta=2.0, threshold=15.0),
        lambda a: oracles.softplus(a * 10.0, 2.0, 15.0),
        ((3, 5),),
    ),
    C(
        "softmax",
        lambda m, a: F(m).softmax(a, dim=1),
        lambda a: oracles.softmax(a, 1),
        ((3, 5),),
    ),
    C(
        "softmax_neg_dim",
        lambda m, a: F(m).softmax(a, dim=-1),
        lambda a: oracles.softmax(a, -1),
        ((2, 3, 4),),
    ),
    C(
        "softmax_dim0",
        lambda m, a: F(m).softmax(a, dim=0),
        lambda a: oracles.softmax(a, 0),
        ((4, 3),),
    ),
    C(
        "log_softmax",
        lambda m, a: F(m).log_softmax(a, dim=1),
        lambda a: oracles.log_softmax(a, 1),
        ((3, 5),),
    ),
    C(
        "log_softmax_neg_dim",
        lambda m, a: F(m).log_softmax(a, dim=-1),
        lambda a: oracles.log_softmax(a, -1),
        ((2, 3, 4),),
    ),
    C(
        "cross_entropy",
        lambda m, a: F(m).cross_entropy(a, m.tensor(TARGET_4)),
        lambda a: oracles.cross_entropy(a, TARGET_4),
        ((4, 5),),
    ),
    C(
        "cross_entropy_smooth_sum",
        lambda m, a: F(m).cross_entropy(
            a, m.tensor(TARGET_4), reduction="sum", label_smoothing=0.1
        ),
        lambda a: oracles.cross_entropy(a, TARGET_4, reduction="sum", label_smoothing=0.1),
        ((4, 5),),
    ),
    C(
        "nll_loss",
        lambda m, a: F(m).nll_loss(a, m.tensor(TARGET_4)),
        lambda a: oracles.nll_loss(a, TARGET_4),
        ((4, 5),),
    ),
    C(
        "nll_loss_none",
        lambda m, a: F(m).nll_loss(a, m.tensor(TARGET_4), reduction="none"),
        lambda a: oracles.nll_loss(a, TARGET_4, reduction="none"),
        ((4, 5),),
    ),
    C("mse_loss", lambda m, a, b: F(m).mse_loss(a, b), oracles.mse_loss, ((3, 4), (3, 4))),
    C(
        "bce_with_logits",
        lambda m, a: F(m).binary_cross_entropy_with_logits(a, m.tensor(PROB_34).to(a.dtype)),
        lambda a: oracles.binary_cross_entropy_with_logits(a, PROB_34),
        ((3, 4),),
    ),
    C("linear", lambda m, x, w, b: F(m).linear(x, w, b), oracles.linear, ((4, 3), (5, 3), (5,))),
    C(
        "linear_nobias_3d",
        lambda m, x, w: F(m).linear(x, w),
        oracles.linear,
        ((2, 3, 3), (4, 3)),
    ),
    C(
        "conv2d",
        lambda m, x, w, b: F(m).conv2d(x, w, b),
        oracles.conv2d,
        ((2, 3, 7, 6), (4, 3, 3, 2), (4,)),
    ),
    C(
        "conv2d_stride_pad_dil",
        lambda m, x, w: F(m).conv2d(x, w, stride=2, padding=1, dilation=2),
        lambda x, w: oracles.conv2d(x, w, stride=2, padding=1, dilation=2),
        ((1, 2, 7, 8), (3, 2, 3, 3)),
    ),
    C(
        "max_pool2d",
        lambda m, x: F(m).max_pool2d(x, 2),
        lambda x: oracles.max_pool2d(x, 2),
        ((2, 2, 5, 6),),
    ),
    C(
        "max_pool2d_stride_pad",
        lambda m, x: F(m).max_pool2d(x, 3, stride=2, padding=1),
        lambda x: oracles.max_pool2d(x, 3, 2, 1),
        ((1, 2, 7, 6),),
    ),
    C(
        "avg_pool2d",
        lambda m, x: F(m).avg_pool2d(x, 2),
        lambda x: oracles.avg_pool2d(x, 2),
        ((2, 2, 5, 6),),
    ),
    C(
        "avg_pool2d_stride_pad",
        lambda m, x: F(m).avg_pool2d(x, 3, stride=2, padding=1),
        lambda x: oracles.avg_pool2d(x, 3, 2, 1),
        ((1, 2, 7, 6),),
    ),
    C(
        "dropout_eval",
        lambda m, a: F(m).dropout(a, 0.5, training=False),
        lambda a: a,
        ((3, 4),),
    ),
    C("dropout_p0", lambda m, a: F(m).dropout(a, p=0.0), lambda a: a, ((3, 4),)),
    # ---- shapes, masks, scans and sorting (tril, masked_fill, split, cumsum, sort, ...) ----
    # bprop/_extras.py: shapes, scans, reductions, elementwise and in-place ops, composed
    C("x_movedim", lambda m, a: m.movedim(a, 0, -1), lambda a: np.moveaxis(a, 0, -1), ((2, 3, 4),)),
    C("x_swapaxes", lambda m, a: a.swapaxes(0, 2), lambda a: np.swapaxes(a, 0, 2), ((2, 3, 4),)),
    C(
        "x_unflatten",
        lambda m, a: a.unflatten(2, (2, -1)),
        lambda a: a.reshape(2, 3, 2, 2),
        ((2, 3, 4),),
    ),
    C("x_tile", lambda m, a: m.tile(a, (2, 1, 3)), lambda a: np.tile(a, (2, 1, 3)), ((2, 3),)),
    C(
        "x_repeat_interleave",
        lambda m, a: a.repeat_interleave(2, dim=1),
        lambda a: np.repeat(a, 2, axis=1),
        ((3, 4),),
    ),
    C(
        "x_repeat_interleave_counts",
        lambda m, a: m.repeat_interleave(a, m.tensor([1, 0, 2]), dim=0),
        lambda a: np.repeat(a, [1, 0, 2], axis=0),
        ((3, 4),),
    ),
    C(
        "x_sum_to_size",
        lambda m, a: a.sum_to_size(3, 1),
        lambda a: a.sum(0).sum(1, keepdims=True),
        ((2, 3, 4),),
    ),
    C("x_mT", lambda m, a: a.mT, lambda a: np.swapaxes(a, -1, -2), ((2, 3, 4),)),
    C("x_diag_vector", lambda m, a: m.diag(a, 1), lambda a: np.diag(a, 1), ((4,),)),
    C("x_diag_matrix", lambda m, a: a.diag(-1), lambda a: np.diag(a, -1), ((3, 4),)),
    C(
        "x_diagonal",
        lambda m, a: m.diagonal(a, 1, 0, 2),
        lambda a: np.diagonal(a, 1, 0, 2),
        ((2, 3, 4),),
    ),
    C(
        "x_diag_embed",
        lambda m, a: m.diag_embed(a, 1),
        lambda a: np.stack([np.diag(r, 1) for r in a]),
        ((3, 4),),
    ),
    C("x_trace", lambda m, a: m.trace(a), np.trace, ((3, 4),)),
    C(
        "x_cartesian_prod",
        lambda m, a, b: m.cartesian_prod(a, b),
        lambda a, b: np.array([[x, y] for x in a for y in b]),
        ((3,), (2,)),
    ),
    C("x_kron", lambda m, a, b: m.kron(a, b), np.kron, ((2, 3), (3, 2))),
    C(  # PyTorch's mm path: its default one has no second derivative
        "x_cdist",
        lambda m, a, b: m.cdist(a, b, compute_mode="use_mm_for_euclid_dist"),
        lambda a, b: np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)),
        ((3, 4), (2, 4)),
    ),
    C("x_cumprod", lambda m, a: a.cumprod(1), lambda a: np.cumprod(a, 1), ((3, 5),)),
    C(
        "x_logcumsumexp",
        lambda m, a: m.logcumsumexp(a, 0),
        lambda a: np.logaddexp.accumulate(a, 0),
        ((5, 3),),
    ),
    C(
        "x_cummax_values",
        lambda m, a: m.cummax(a, 1).values,
        lambda a: np.maximum.accumulate(a, 1),
        ((3, 5),),
    ),
    C(
        "x_diff",
        lambda m, a, p: m.diff(a, 2, 1, prepend=p),
        lambda a, p: np.diff(a, 2, 1, prepend=p),
        ((3, 4), (3, 1)),
    ),
    C(
        "x_nansum",
        lambda m, a: m.nansum(a.masked_fill(m.tensor(MASK_34), float("nan")), 1),
        lambda a: np.nansum(np.where(MASK_34, np.nan, a), 1),
        ((3, 4),),
    ),
    C(
        "x_nanmean",
        lambda m, a: a.masked_fill(m.tensor(MASK_34), float("nan")).nanmean(0),
        lambda a: np.nanmean(np.where(MASK_34, np.nan, a), 0),
        ((3, 4),),
    ),
    C("x_median", lambda m, a: m.median(a), np.median, ((3, 5),)),
    C("x_median_dim", lambda m, a: a.median(1).values, lambda a: np.median(a, 1), ((3, 5),)),
    C(
        "x_quantile",
        lambda m, a: m.quantile(a, 0.3, dim=1),
        lambda a: np.quantile(a, 0.3, axis=1),
        ((3, 5),),
    ),
    C(
        "x_std_mean",
        lambda m, a: m.stack(list(m.std_mean(a, 1))),
        lambda a: np.stack([np.std(a, 1, ddof=1), np.mean(a, 1)]),
        ((3, 5),),
    ),
    C(
        "x_logit",
        lambda m, a: m.logit(a.sigmoid() * 0.8 + 0.1),
        lambda a: np.log((_sigmoid(a) * 0.8 + 0.1) / (0.9 - _sigmoid(a) * 0.8)),
        ((3, 4),),
    ),
    C("x_erfc", lambda m, a: m.erfc(a), lambda a: 1.0 - oracles.erf(a), ((3, 4),)),
    C("x_sinh", lambda m, a: m.sinh(a), np.sinh, ((3, 4),)),
    C("x_cosh", lambda m, a: a.cosh(), np.cosh, ((3, 4),)),
    C("x_tan", lambda m, a: (a * 0.5).tan(), lambda a: np.tan(a * 0.5), ((3, 4),)),
    C("x_asinh", lambda m, a: m.asinh(a), np.arcsinh, ((3, 4),)),
    C(
        "x_acosh",
        lambda m, a: (a + 1.0).acosh(),
        lambda a: np.arccosh(a + 1.0),
        ((3, 4),),
        ("pos",),
    ),
    C("x_atanh", lambda m, a: m.atanh(a * 0.5), lambda a: np.arctanh(a * 0.5), ((3, 4),)),
    C(
        "x_xlogy",
        lambda m, a, b: m.xlogy(a, b),
        lambda a, b: a * np.log(b),
        ((3, 4), (4,)),
        ("any", "pos"),
    ),
    C("x_hypot", lambda m, a, b: m.hypot(a, b), np.hypot, ((3, 4), (3, 1))),
    C(
        "x_nan_to_num",
        lambda m, a: m.nan_to_num(a.masked_fill(m.tensor(MASK_34), float("nan")), nan=2.0),
        lambda a: np.where(MASK_34, 2.0, a),
        ((3, 4),),
    ),
    C(
        "x_index_copy",
        lambda m, a, s: m.index_copy(a, 1, m.tensor([3, 1]), s),
        lambda a, s: np.stack([a[:, 0], s[:, 1], a[:, 2], s[:, 0]], 1),
        ((3, 4), (3, 2)),
    ),
    C(
        "x_masked_scatter_",
        lambda m, a, s: (a * 1.0).masked_scatter_(m.tensor(MASK_34), s),
        lambda a, s: np.where(MASK_34, s[np.cumsum(MASK_34.ravel()).reshape(3, 4) - 1], a),
        ((3, 4), (12,)),
    ),
    C(
        "x_fill_diagonal_",
        lambda m, a: (a * 1.0).fill_diagonal_(2.0),
        lambda a: np.where(np.eye(3, 4, dtype=bool), 2.0, a),
        ((3, 4),),
    ),
    C("x_sin_", lambda m, a: (a * 1.0).sin_(), np.sin, ((3, 4),)),
    C("x_sqrt_", lambda m, a: (a * 1.0).sqrt_(), np.sqrt, ((3, 4),), ("pos",)),
    C(
        "x_pow_",
        lambda m, a, b: (a * 1.0).pow_(b),
        lambda a, b: a**b,
        ((3, 4), (4,)),
        ("pos", "any"),
    ),
    C(
        "x_index_add_",
        lambda m, a, s: (a * 1.0).index_add_(0, m.tensor([2, 0]), s, alpha=2.0),
        lambda a, s: a + np.stack([2.0 * s[1], np.zeros(4), 2.0 * s[0]]),
        ((3, 4), (2, 4)),
    ),
    C(
        "x_addcmul",
        lambda m, a, b, c: m.addcmul(a, b, c, value=0.5),
        lambda a, b, c: a + 0.5 * b * c,
        ((3, 4), (3, 4), (4,)),
    ),
    C(
        "x_addcdiv_",
        lambda m, a, b, c: (a * 1.0).addcdiv_(b, c, value=-2.0),
        lambda a, b, c: a - 2.0 * b / c,
        ((3, 4), (3, 4), (4,)),
    ),
    C(
        "x_addmm",
        lambda m, a, b, c: m.addmm(a, b, c, beta=0.5, alpha=2.0),
        lambda a, b, c: 0.5 * a + 2.0 * (b @ c),
        ((2,), (3, 4), (4, 2)),
    ),
    C(
        "x_baddbmm",
        lambda m, a, b, c: a.baddbmm(b, c),
        lambda a, b, c: a + b @ c,
        ((3, 2), (2, 3, 4), (2, 4, 2)),
    ),
    C("x_logaddexp", lambda m, a, b: m.logaddexp(a, b), np.logaddexp, ((3, 4), (4,))),
    C("x_rot90", lambda m, a: m.rot90(a, 1, (1, 0)), lambda a: np.rot90(a, 1, (1, 0)), ((3, 4),)),
    C(
        "x_take_along_dim",
        lambda m, a: m.take_along_dim(a, m.tensor([[0, 3], [1, 1], [2, 0]]), 1),
        lambda a: np.take_along_axis(a, np.array([[0, 3], [1, 1], [2, 0]]), 1),
        ((3, 4),),
    ),
    C(
        "x_block_diag",
        lambda m, a, b: m.block_diag(a, b),
        lambda a, b: np.block([[a, np.zeros((2, 2))], [np.zeros((1, 3)), b]]),
        ((2, 3), (1, 2)),
    ),
    C(
        "x_index_put_accumulate",
        lambda m, a, v: a.index_put((m.tensor([0, 2, 0]),), v, accumulate=True),
        lambda a, v: a + np.stack([v[0] + v[2], np.zeros(4), v[1]]),
        ((3, 4), (3, 4)),
    ),
    C(
        "x_masked_scatter",
        lambda m, a, s: m.masked_scatter(a, m.tensor(MASK_34), s),
        lambda a, s: np.where(MASK_34, s[np.cumsum(MASK_34.ravel()).reshape(3, 4) - 1], a),
        ((3, 4), (12,)),
    ),
    C("x_cross", lambda m, a, b: m.cross(a, b, dim=1), np.cross, ((4, 3), (4, 3))),
    C(
        "x_trapezoid",
        lambda m, a, x: m.trapezoid(a, x),
        lambda a, x: np.trapezoid(a, x) if hasattr(np, "trapezoid") else np.trapz(a, x),
        ((3, 4), (4,)),
    ),
    C("x_cov", lambda m, a: m.cov(a), np.cov, ((3, 5),)),
    C("x_corrcoef", lambda m, a: a.corrcoef(), np.corrcoef, ((3, 5),)),
    C("x_inner", lambda m, a, b: m.inner(a, b), np.inner, ((3, 4), (2, 4))),
    C(
        "x_tensordot",
        lambda m, a, b: m.tensordot(a, b, ([0, 2], [1, 0])),
        lambda a, b: np.tensordot(a, b, ([0, 2], [1, 0])),
        ((2, 3, 4), (4, 2, 3)),
    ),
    C(
        "x_nanmedian",
        lambda m, a: a.masked_fill(m.tensor(MASK_34), float("nan")).nanmedian(),
        lambda a: np.sort(a[~MASK_34])[(np.sum(~MASK_34) - 1) // 2],
        ((3, 4),),
    ),
    C("x_fmax", lambda m, a, b: m.fmax(a, b), np.fmax, ((3, 4), (4,))),
    C(
        "x_float_power",
        lambda m, a, b: m.float_power(a, b),
        lambda a, b: a**b,
        ((3, 4), (4,)),
        ("pos", "any"),
        out_dtype="float64",
    ),
    C("tril", lambda m, a: m.tril(a), np.tril, ((4, 5),)),
    C(
        "tril_batched_diag",
        lambda m, a: a.tril(diagonal=-1),
        lambda a: np.tril(a, -1),
        ((2, 3, 4),),
    ),
    C("triu", lambda m, a: m.triu(a, 1), lambda a: np.triu(a, 1), ((4, 3),)),
    C("triu_batched_neg", lambda m, a: a.triu(-1), lambda a: np.triu(a, -1), ((2, 3, 3),)),
    C(
        "masked_fill_scalar",
        lambda m, a: a.masked_fill(m.tensor(MASK_34), -1.5),
        lambda a: np.where(MASK_34, -1.5, a),
        ((3, 4),),
    ),
    C(
        "masked_fill_bcast_mask",
        lambda m, a: m.masked_fill(a, m.tensor(MASK_31), 0.0),
        lambda a: np.where(MASK_31, 0.0, a),
        ((3, 4),),
    ),
    C(
        "masked_fill_tensor_value",
        lambda m, a, v: a.masked_fill(m.tensor(MASK_34), v),
        lambda a, v: np.where(MASK_34, v, a),
        ((3, 4), ()),
    ),
    C(
        "masked_fill_",
        lambda m, a, v: (a * 1.0).masked_fill_(m.tensor(MASK_31), v * 2.0),
        lambda a, v: np.where(MASK_31, v * 2.0, a),
        ((3, 4), ()),
    ),
    C(
        "split_pieces",
        lambda m, a: m.cat([p * (i + 1) for i, p in enumerate(a.split(2, dim=1))], 1),
        lambda a: np.concatenate([p * (i + 1) for i, p in enumerate(np.split(a, [2, 4], 1))], 1),
        ((3, 5),),
    ),
    C("split_sizes", lambda m, a: m.split(a, [1, 3], 0)[1], lambda a: a[1:], ((4, 3),)),
    C(
        "chunk_pieces",
        lambda m, a: m.cat([p * (i + 1) for i, p in enumerate(a.chunk(3, dim=-1))], -1),
        lambda a: np.concatenate([p * (i + 1) for i, p in enumerate(np.split(a, [3, 6], -1))], -1),
        ((2, 7),),
    ),
    C(
        "unbind_pieces",
        lambda m, a: m.stack([p * (i + 1) for i, p in enumerate(m.unbind(a, 1))], 0),
        lambda a: np.stack([a[:, i] * (i + 1) for i in range(a.shape[1])], 0),
        ((2, 3),),
    ),
    C("narrow", lambda m, a: a.narrow(1, 1, 2), lambda a: a[:, 1:3], ((3, 4),)),
    C("narrow_neg_start", lambda m, a: m.narrow(a, 0, -2, 2), lambda a: a[-2:], ((4, 3),)),
    C("t", lambda m, a: a.t(), lambda a: a.T, ((3, 4),)),
    C("t_vector", lambda m, a: m.t(a) * 1.0, lambda a: a, ((4,),)),
    C("repeat", lambda m, a: a.repeat(2, 1, 3), lambda a: np.tile(a, (2, 1, 3)), ((2, 3),)),
    C(
        "masked_select",
        lambda m, a: a.masked_select(m.tensor(MASK_34)),
        lambda a: a[MASK_34],
        ((3, 4),),
    ),
    C(
        "masked_select_bcast",
        lambda m, a: m.masked_select(a, m.tensor(MASK_31)),
        lambda a: np.broadcast_to(a, (3, 4))[np.broadcast_to(MASK_31, (3, 4))],
        ((1, 4),),
    ),
    C(
        "index_fill",
        lambda m, a: a.index_fill(1, m.tensor([0, 2]), -1.0),
        lambda a: np.where(np.isin(np.arange(4), [0, 2]), -1.0, a),
        ((3, 4),),
    ),
    C(
        "index_fill_tensor_value",
        lambda m, a, v: m.index_fill(a, 0, m.tensor([2]), v),
        lambda a, v: np.where((np.arange(3) == 2)[:, None], v, a),
        ((3, 4), ()),
    ),
    C("clamp_min_method", lambda m, a: a.clamp_min(0.3), lambda a: np.maximum(a, 0.3), ((3, 4),)),
    C("clamp_max_fn", lambda m, a: m.clamp_max(a, -0.3), lambda a: np.minimum(a, -0.3), ((3, 4),)),
    C("cumsum", lambda m, a: a.cumsum(1), lambda a: np.cumsum(a, 1), ((3, 5),)),
    C("cumsum_long", lambda m, a: m.cumsum(a, dim=0), lambda a: np.cumsum(a, 0), ((9,),)),
    C("cumsum_3d", lambda m, a: a.cumsum(-2), lambda a: np.cumsum(a, -2), ((2, 5, 3),)),
    C("flip", lambda m, a: a.flip(0, 1), lambda a: a[::-1, ::-1], ((3, 4),)),
    C("flip_fn", lambda m, a: m.flip(a, [0, 2]), lambda a: a[::-1, :, ::-1], ((2, 3, 4),)),
    C("roll", lambda m, a: m.roll(a, 2, 1), lambda a: np.roll(a, 2, 1), ((3, 5),)),
    C("roll_flat", lambda m, a: a.roll(-1), lambda a: np.roll(a, -1), ((3, 4),)),
    C(
        "roll_dims",
        lambda m, a: m.roll(a, (1, -2), (0, 1)),
        lambda a: np.roll(a, (1, -2), (0, 1)),
        ((3, 4),),
    ),
    C("sort_values", lambda m, a: m.sort(a, dim=1).values, lambda a: np.sort(a, 1), ((3, 5),)),
    C(
        "sort_values_desc",
        lambda m, a: a.sort(0, descending=True)[0],
        lambda a: -np.sort(-a, 0),
        ((4, 3),),
    ),
    C(
        "topk_values",
        lambda m, a: m.topk(a, 2).values,
        lambda a: -np.sort(-a, -1)[:, :2],
        ((3, 5),),
    ),
    C(
        "topk_smallest",
        lambda m, a: a.topk(2, dim=0, largest=False)[0],
        lambda a: np.sort(a, 0)[:2],
        ((4, 3),),
    ),
    # ---- nn.functional: embeddings, normalisation, attention ----
    C(
        "layer_norm",
        lambda m, x, w, b: F(m).layer_norm(x, (4,), w, b),
        lambda x, w, b: (
            (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w + b
        ),
        ((2, 3, 4), (4,), (4,)),
    ),
    C(
        "layer_norm_2d_no_affine",
        lambda m, x: F(m).layer_norm(x, [3, 4], eps=1e-3),
        lambda x: (
            (x - x.mean((-2, -1), keepdims=True)) / np.sqrt(x.var((-2, -1), keepdims=True) + 1e-3)
        ),
        ((2, 3, 4),),
    ),
    C(
        # wider than a vector of float32 lanes and not a multiple of one: the kernels' tails
        "layer_norm_wide_weight_only",
        lambda m, x, w: F(m).layer_norm(x, (37,), w),
        lambda x, w: (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5) * w,
        ((3, 37), (37,)),
    ),
    C(
        "rms_norm_wide",
        lambda m, x, w: F(m).rms_norm(x, (2, 35), w, eps=1e-5),
        lambda x, w: x / np.sqrt((x * x).mean((-2, -1), keepdims=True) + 1e-5) * w,
        ((2, 2, 35), (2, 35)),
    ),
    C(
        "rms_norm",
        lambda m, x, w: F(m).rms_norm(x, (4,), w, eps=1e-6),
        lambda x, w: x / np.sqrt((x * x).mean(-1, keepdims=True) + 1e-6) * w,
        ((3, 4), (4,)),
    ),
    C(
        "rms_norm_default_eps",
        lambda m, x: F(m).rms_norm(x, [2, 3]),
        lambda x: x / np.sqrt((x * x).mean((-2, -1), keepdims=True)),
        ((2, 2, 3),),
    ),
    C(
        "group_norm",
        lambda m, x, w, b: F(m).group_norm(x, 2, w, b),
        lambda x, w, b: (
            (lambda g: (g - g.mean(-1, keepdims=True)) / np.sqrt(g.var(-1, keepdims=True) + 1e-5))(
                x.reshape(2, 2, -1)
            ).reshape(x.shape)
            * w[:, None]
            + b[:, None]
        ),
        ((2, 4, 3), (4,), (4,)),
    ),
    C("silu", lambda m, x: F(m).silu(x), lambda x: x * _sigmoid(x), ((3, 4),)),
    C(
        "embedding",
        lambda m, w: F(m).embedding(m.tensor([[0, 3, 3], [4, 1, 0]]), w),
        lambda w: w[np.array([[0, 3, 3], [4, 1, 0]])],
        ((5, 3),),
    ),
    C(
        "sdpa",
        lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v),
        lambda q, k, v: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) * 0.5)
        ),
        ((2, 3, 4), (2, 5, 4), (2, 5, 2)),
    ),
    C(
        "sdpa_causal",
        lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) * 0.5) * np.tril(np.ones((3, 4)))
        ),
        ((2, 3, 4), (2, 4, 4), (2, 4, 3)),
    ),
    C(
        # the fused kernel's tiles: T = 70 crosses a 64-row tile, causal
        "sdpa_causal_tiles",
        lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, is_causal=True),
        lambda q, k, v: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) * 0.25) * np.tril(np.ones((70, 70)))
        ),
        ((1, 70, 16), (1, 70, 16), (1, 70, 16)),
    ),
    C(
        "sdpa_wide_head",
        lambda m, q, k, v: F(m).scaled_dot_product_attention(q, k, v, scale=0.05),
        lambda q, k, v: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) * 0.05)
        ),
        ((1, 5, 128), (1, 6, 128), (1, 6, 8)),
    ),
    C(
        "sdpa_bool_mask_scale",
        lambda m, q, k, v: F(m).scaled_dot_product_attention(
            q, k, v, attn_mask=m.tensor(MASK_34), scale=0.3
        ),
        lambda q, k, v: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) * 0.3) * MASK_34
        ),
        ((2, 3, 4), (2, 4, 4), (2, 4, 3)),
    ),
    C(
        "sdpa_float_mask",
        lambda m, q, k, v, mask: F(m).scaled_dot_product_attention(q, k, v, attn_mask=mask),
        lambda q, k, v, mask: (lambda e: e / e.sum(-1, keepdims=True) @ v)(
            np.exp(q @ k.swapaxes(-1, -2) / np.sqrt(2.0) + mask)
        ),
        ((1, 2, 3, 2), (1, 2, 4, 2), (1, 2, 4, 3), (3, 4)),
    ),
    # ---- nn.functional: convolutions, batch norm, recurrent cells, losses, padding ----
    # activations, distances, resampling and losses composed of bprop ops (test_nn_breadth.py)
    C("elu", lambda m, a: F(m).elu(a), lambda a: np.where(a > 0, a, np.expm1(a)), ((3, 4),)),
    C("celu", lambda m, a: F(m).celu(a), lambda a: np.where(a > 0, a, np.expm1(a)), ((3, 4),)),
    C(
        "selu",
        lambda m, a: F(m).selu(a),
        lambda a: 1.0507009873554805 * np.where(a > 0, a, 1.6732632423543772 * np.expm1(a)),
        ((3, 4),),
    ),
    C("relu6", lambda m, a: F(m).relu6(a * 5.0), lambda a: np.clip(a * 5.0, 0, 6), ((3, 4),)),
    C(
        "hardtanh",
        lambda m, a: F(m).hardtanh(a, -0.5, 1.2),
        lambda a: np.clip(a, -0.5, 1.2),
        ((3, 4),),
    ),
    C(
        "hardswish",
        lambda m, a: F(m).hardswish(a * 3.0),
        lambda a: a * 3.0 * np.clip(a * 3.0 + 3.0, 0, 6) / 6.0,
        ((3, 4),),
    ),
    C("mish", lambda m, a: F(m).mish(a), lambda a: a * np.tanh(np.log1p(np.exp(a))), ((3, 4),)),
    C("softsign", lambda m, a: F(m).softsign(a), lambda a: a / (1 + np.abs(a)), ((3, 4),)),
    C("tanhshrink", lambda m, a: F(m).tanhshrink(a), lambda a: a - np.tanh(a), ((3, 4),)),
    C("logsigmoid", lambda m, a: F(m).logsigmoid(a), lambda a: -np.log1p(np.exp(-a)), ((3, 4),)),
    C("softmin", lambda m, a: F(m).softmin(a, dim=1), lambda a: _np_softmax(-a, 1), ((3, 4),)),
    C("glu", lambda m, a: F(m).glu(a, 0), lambda a: a[:2] * _sigmoid(a[2:]), ((4, 3),)),
    C(
        "threshold",
        lambda m, a: F(m).threshold(a, 0.5, -2.0),
        lambda a: np.where(a > 0.5, a, -2.0),
        ((3, 4),),
    ),
    C(
        "prelu",
        lambda m, a, w: F(m).prelu(a, w),
        lambda a, w: np.where(a >= 0, a, a * w.reshape(3, 1)),
        ((2, 3, 4), (3,)),
    ),
    C(
        "hardshrink",
        lambda m, a: F(m).hardshrink(a, 0.7),
        lambda a: np.where(np.abs(a) > 0.7, a, 0.0),
        ((3, 4),),
    ),
    C(
        "softshrink",
        lambda m, a: F(m).softshrink(a, 0.7),
        lambda a: np.where(a > 0.7, a - 0.7, np.where(a < -0.7, a + 0.7, 0.0)),
        ((3, 4),),
    ),
    C(
        "cosine_similarity",
        lambda m, a, b: F(m).cosine_similarity(a, b),
        lambda a, b: (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)),
        ((3, 4), (3, 4)),
    ),
    C(
        "pairwise_distance",
        lambda m, a, b: F(m).pairwise_distance(a, b),
        lambda a, b: np.linalg.norm(a - b + 1e-6, axis=-1),
        ((3, 4), (3, 4)),
    ),
    C(
        "pixel_shuffle",
        lambda m, a: F(m).pixel_shuffle(a, 2),
        lambda a: a.reshape(1, 2, 2, 2, 2, 3).transpose(0, 1, 4, 2, 5, 3).reshape(1, 2, 4, 6),
        ((1, 8, 2, 3),),
    ),
    C(
        "interpolate_bilinear",
        lambda m, a: F(m).interpolate(a, size=(5, 7), mode="bilinear"),
        lambda a: np.apply_along_axis(
            lambda r: np.interp(np.maximum((np.arange(7) + 0.5) * 5 / 7 - 0.5, 0), np.arange(5), r),
            3,
            np.apply_along_axis(
                lambda r: np.interp(
                    np.maximum((np.arange(5) + 0.5) * 3 / 5 - 0.5, 0), np.arange(3), r
                ),
                2,
                a,
            ),
        ),
        ((1, 2, 3, 5),),
    ),
    C(
        "instance_norm",
        lambda m, a: F(m).instance_norm(a),
        lambda a: (a - a.mean(2, keepdims=True)) / np.sqrt(a.var(2, keepdims=True) + 1e-5),
        ((2, 3, 5),),
    ),
    C(
        "bilinear",
        lambda m, a, b, w, bias: F(m).bilinear(a, b, w, bias),
        lambda a, b, w, bias: np.einsum("ni,oij,nj->no", a, w, b) + bias,
        ((2, 3), (2, 4), (5, 3, 4), (5,)),
    ),
    C(
        "kl_div_batchmean",
        lambda m, a: F(m).kl_div(a, m.tensor(PROB_34).to(a.dtype), reduction="batchmean"),
        lambda a: (
            (
                np.where(PROB_34 > 0, PROB_34 * np.log(np.where(PROB_34 > 0, PROB_34, 1)), 0)
                - PROB_34 * a
            ).sum()
            / 3
        ),
        ((3, 4),),
    ),
    C(
        "huber_loss",
        lambda m, a, b: F(m).huber_loss(a, b, delta=0.8),
        lambda a, b: np.where(
            np.abs(a - b) < 0.8, 0.5 * (a - b) ** 2, 0.8 * (np.abs(a - b) - 0.4)
        ).mean(),
        ((3, 4), (3, 4)),
    ),
    C(
        "soft_margin_loss",
        lambda m, a: F(m).soft_margin_loss(a, m.tensor(np.where(MASK_34, 1.0, -1.0)).to(a.dtype)),
        lambda a: np.log1p(np.exp(-np.where(MASK_34, 1.0, -1.0) * a)).mean(),
        ((3, 4),),
    ),
    C(
        "margin_ranking_loss",
        lambda m, a, b: F(m).margin_ranking_loss(
            a, b, m.tensor(np.where(MASK_34[0], 1.0, -1.0)).to(a.dtype), margin=0.3
        ),
        lambda a, b: np.maximum(0, -np.where(MASK_34[0], 1.0, -1.0) * (a - b) + 0.3).mean(),
        ((4,), (4,)),
    ),
    C(
        "hinge_embedding_loss",
        lambda m, a: F(m).hinge_embedding_loss(
            a, m.tensor(np.where(MASK_34, 1.0, -1.0)).to(a.dtype), 0.8
        ),
        lambda a: np.where(MASK_34, a, np.maximum(0, 0.8 - a)).mean(),
        ((3, 4),),
    ),
    C(
        "cosine_embedding_loss",
        lambda m, a, b: F(m).cosine_embedding_loss(
            a, b, m.tensor(np.where(MASK_31[:, 0], 1, -1)), margin=0.1
        ),
        lambda a, b: np.where(
            MASK_31[:, 0],
            1 - (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12)),
            np.maximum(
                0,
                (a * b).sum(1) / np.sqrt(((a * a).sum(1) + 1e-12) * ((b * b).sum(1) + 1e-12)) - 0.1,
            ),
        ).mean(),
        ((3, 4), (3, 4)),
    ),
    C(
        "triplet_margin_loss",
        lambda m, a, p, n: F(m).triplet_margin_loss(a, p, n, margin=2.0),
        lambda a, p, n: np.maximum(
            np.linalg.norm(a - p + 1e-6, axis=-1) - np.linalg.norm(a - n + 1e-6, axis=-1) + 2.0, 0
        ).mean(),
        ((3, 4), (3, 4), (3, 4)),
    ),
    C(
        "poisson_nll_loss",
        lambda m, a: F(m).poisson_nll_loss(a, m.tensor(np.round(PROB_34 * 4)).to(a.dtype)),
        lambda a: (np.exp(a) - np.round(PROB_34 * 4) * a).mean(),
        ((3, 4),),
    ),
    C(
        "gaussian_nll_loss",
        lambda m, a, b, v: F(m).gaussian_nll_loss(a, b, v),
        lambda a, b, v: (0.5 * (np.log(v) + (a - b) ** 2 / v)).mean(),
        ((3, 4), (3, 4), (3, 4)),
        domains=("any", "any", "pos"),
    ),
    C(
        "multilabel_soft_margin_loss",
        lambda m, a: F(m).multilabel_soft_margin_loss(a, m.tensor(MASK_34 * 1.0).to(a.dtype)),
        lambda a: (
            -(MASK_34 * np.log(_sigmoid(a)) + (1 - MASK_34) * np.log(_sigmoid(-a))).mean(1).mean()
        ),
        ((3, 4),),
    ),
    C(
        "l1_loss",
        lambda m, a, b: F(m).l1_loss(a, b),
        lambda a, b: np.abs(a - b).mean(),
        ((3, 4), (3, 4)),
    ),
    C(
        "smooth_l1_loss_beta_sum",
        lambda m, a, b: F(m).smooth_l1_loss(a, b, reduction="sum", beta=0.7),
        lambda a, b: np.where(
            np.abs(a - b) < 0.7, 0.5 * (a - b) ** 2 / 0.7, np.abs(a - b) - 0.35
        ).sum(),
        ((3, 4), (3, 4)),
    ),
    C(
        "binary_cross_entropy",
        lambda m, a: F(m).binary_cross_entropy(a.sigmoid(), m.tensor(PROB_34).to(a.dtype)),
        lambda a: -(PROB_34 * np.log(_sigmoid(a)) + (1 - PROB_34) * np.log(1 - _sigmoid(a))).mean(),
        ((3, 4),),
    ),
    C(
        "pad_constant",
        lambda m, a: F(m).pad(a, (1, 2, 2, 0), value=0.5),
        lambda a: np.pad(a, ((0, 0), (2, 0), (1, 2)), constant_values=0.5),
        ((2, 3, 4),),
    ),
    C(
        "pad_reflect",
        lambda m, a: F(m).pad(a, (2, 1, 1, 2), mode="reflect"),
        lambda a: np.pad(a, ((0, 0), (0, 0), (1, 2), (2, 1)), mode="reflect"),
        ((1, 2, 3, 4),),
    ),
    C(
        "pad_replicate",
        lambda m, a: F(m).pad(a, (3, 1), mode="replicate"),
        lambda a: np.pad(a, ((0, 0), (0, 0), (3, 1)), mode="edge"),
        ((2, 2, 3),),
    ),
    C(
        "pad_circular",
        lambda m, a: F(m).pad(a, (1, 2, 2, 1), mode="circular"),
        lambda a: np.pad(a, ((0, 0), (2, 1), (1, 2)), mode="wrap"),
        ((2, 3, 4),),
    ),
    C(
        "normalize",
        lambda m, a: F(m).normalize(a, dim=1),
        lambda a: a / np.sqrt((a * a).sum(1, keepdims=True)),
        ((3, 4, 2),),
    ),
    C(
        "conv1d",
        lambda m, x, w, b: F(m).conv1d(x, w, b, stride=2, padding=1, dilation=2),
        lambda x, w, b: oracles.conv2d(
            x[:, :, None], w[:, :, None], b, stride=(1, 2), padding=(0, 1), dilation=(1, 2)
        )[:, :, 0],
        ((2, 3, 9), (4, 3, 3), (4,)),
    ),
    C(
        "conv_transpose2d_stride_pad_outpad",
        lambda m, x, w, b: F(m).conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1),
        # out[x'] gathers x[i] w[k] where x' = 2 i - 1 + k: one 0/1 scatter matrix per dim
        lambda x, w, b: (
            np.einsum(
                "ncij,cokl,ikp,jlq->nopq",
                x,
                w,
                *[
                    np.equal.outer(
                        np.add.outer(2 * np.arange(n) - 1, np.arange(k)), np.arange(2 * n - 3 + k)
                    )
                    for n, k in ((3, 3), (2, 2))
                ],
            )
            + b[None, :, None, None]
        ),
        ((2, 2, 3, 2), (2, 3, 3, 2), (3,)),
    ),
    C(
        "batch_norm_train",
        lambda m, x, w, b: F(m).batch_norm(x, None, None, w, b, training=True),
        lambda x, w, b: (
            (x - x.mean((0, 2), keepdims=True))
            / np.sqrt(x.var((0, 2), keepdims=True) + 1e-5)
            * w[None, :, None]
            + b[None, :, None]
        ),
        ((4, 3, 2), (3,), (3,)),
    ),
    C(
        "batch_norm_eval",
        lambda m, x, w: F(m).batch_norm(
            x, m.tensor(PROB_34[0, :3]).to(x.dtype), m.tensor(PROB_34[2, :3]).to(x.dtype), w
        ),
        lambda x, w: (x - PROB_34[0, :3]) / np.sqrt(PROB_34[2, :3] + 1e-5) * w,
        ((4, 3), (3,)),
    ),
    C(
        "max_pool1d",
        lambda m, x: F(m).max_pool1d(x, 3, stride=2, padding=1),
        lambda x: oracles.max_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1))[:, :, 0],
        ((2, 2, 7),),
    ),
    C(
        "avg_pool1d",
        lambda m, x: F(m).avg_pool1d(x, 3, stride=2, padding=1),
        lambda x: oracles.avg_pool2d(x[:, :, None], (1, 3), (1, 2), (0, 1))[:, :, 0],
        ((2, 2, 7),),
    ),
    C(
        "adaptive_avg_pool2d",
        lambda m, x: F(m).adaptive_avg_pool2d(x, (3, 2)),
        lambda x: np.array(
            [
                [
                    x[
                        ..., i * 5 // 3 : -(-(i + 1) * 5 // 3), j * 3 // 2 : -(-(j + 1) * 3 // 2)
                    ].mean((-2, -1))
                    for j in range(2)
                ]
                for i in range(3)
            ]
        ).transpose(2, 3, 0, 1),
        ((2, 2, 5, 3),),
    ),
    C(
        "adaptive_max_pool2d",
        lambda m, x: F(m).adaptive_max_pool2d(x, (2, 3)),
        lambda x: np.array(
            [
                [
                    x[
                        ..., i * 5 // 2 : -(-(i + 1) * 5 // 2), j * 4 // 3 : -(-(j + 1) * 4 // 3)
                    ].max((-2, -1))
                    for j in range(3)
                ]
                for i in range(2)
            ]
        ).transpose(2, 3, 0, 1),
        ((1, 2, 5, 4),),
    ),
    # ---- more math: softmax methods, powers and logs, norms, products, scatter ----
    C("softmax_method", lambda m, a: a.softmax(-1), lambda a: _np_softmax(a, -1), ((3, 4),)),
    C(
        "log_softmax_fn",
        lambda m, a: m.log_softmax(a, 0),
        lambda a: np.log(_np_softmax(a, 0)),
        ((3, 4),),
    ),  # fmt: skip
    C("square", lambda m, a: m.square(a), lambda a: a * a, ((3, 4),)),
    C("rsqrt", lambda m, a: a.rsqrt(), lambda a: 1 / np.sqrt(a), ((3, 4),), ("pos",)),
    C("reciprocal", lambda m, a: m.reciprocal(a), lambda a: 1 / a, ((3, 4),), ("pos",)),
    C("exp2", lambda m, a: m.exp2(a), lambda a: 2.0**a, ((3, 4),)),
    C("log2", lambda m, a: m.log2(a), np.log2, ((3, 4),), ("pos",)),
    C("log10", lambda m, a: a.log10(), np.log10, ((3, 4),), ("pos",)),
    C("norm_all", lambda m, a: m.norm(a), lambda a: np.sqrt((a * a).sum()), ((3, 4),)),
    C(
        "norm_p3_dim",
        lambda m, a: a.norm(p=3, dim=1, keepdim=True),
        lambda a: (np.abs(a) ** 3).sum(1, keepdims=True) ** (1 / 3),
        ((3, 4),),
    ),  # fmt: skip
    C("norm_p1", lambda m, a: m.norm(a, p=1, dim=0), lambda a: np.abs(a).sum(0), ((3, 4),)),
    C("dot", lambda m, a, b: m.dot(a, b), lambda a, b: np.dot(a, b), ((5,), (5,))),
    C("outer", lambda m, a, b: m.outer(a, b), np.outer, ((3,), (4,))),
    C("mv", lambda m, a, b: m.mv(a, b), lambda a, b: a @ b, ((3, 4), (4,))),
    C(
        "scatter_src",
        lambda m, a, b: m.scatter(a, 1, _index(m, SCATTER_IDX_32), b),
        lambda a, b: _np_scatter(a, SCATTER_IDX_32, b),
        ((3, 4), (3, 2)),
    ),  # fmt: skip
    C(
        "scatter_value",
        lambda m, a: a.scatter(0, _index(m, SCATTER_IDX_32), 2.5),
        lambda a: _np_scatter0_value(a, SCATTER_IDX_32, 2.5),
        ((4, 3),),
    ),  # fmt: skip
    C(
        "einsum_bmm",
        lambda m, a, b: m.einsum("bij,bjk->bik", a, b),
        lambda a, b: np.einsum("bij,bjk->bik", a, b),
        ((2, 3, 4), (2, 4, 5)),
    ),  # fmt: skip
    C(
        "einsum_attention",
        lambda m, a, b: m.einsum("bqd,bkd->bqk", a, b),
        lambda a, b: np.einsum("bqd,bkd->bqk", a, b),
        ((2, 3, 4), (2, 5, 4)),
    ),  # fmt: skip
    C(
        "einsum_three",
        lambda m, a, b, c: m.einsum("ij,jk,k->i", a, b, c),
        lambda a, b, c: np.einsum("ij,jk,k->i", a, b, c),
        ((2, 3), (3, 4), (4,)),
    ),  # fmt: skip
    C(
        "lerp",
        lambda m, a, b, w: m.lerp(a, b, w),
        lambda a, b, w: a + w * (b - a),
        ((3, 4), (3, 4), (3, 4)),
    ),  # fmt: skip
    C("frac", lambda m, a: m.frac(a), lambda a: a - np.trunc(a), ((3, 4),)),
    C(
        "remainder_tensor",
        lambda m, a, b: m.remainder(a, b),
        np.remainder,
        ((3, 4), (3, 4)),
        ("any", "pos"),
    ),  # fmt: skip
    # ---- in-place through views of non-leaves ----
    C("view_mul_", _view_mul_, _view_mul_ref, ((3, 4), (2, 2))),
    C("view_add_", _view_add_, _view_add_ref, ((3, 4), (3,))),
    C("view_copy_", _view_copy_, _view_copy_ref, ((3, 4), (3,))),
    C("view_clamp_", _view_clamp_, _view_clamp_ref, ((3, 4),)),
    # ---- a small composite: a tanh layer with a broadcast bias, and a loss ----
    C(
        "layer",
        lambda m, x, w, b: ((x @ w + b).tanh() ** 2).mean(),
        lambda x, w, b: (np.tanh(x @ w + b) ** 2).mean(),
        ((5, 3), (3, 2), (2,)),
    ),
]
OPS_BY_ID = {case.id: case for case in OPS}
assert len(OPS_BY_ID) == len(OPS), "duplicate case ids"

# Registry name (bp._core.op_names()) -> rows of OPS that exercise its gradient. Every
# differentiable op in the registry must appear here (test_registry_ops_have_gradient_tests).
# Python scalars enter the registry's binary ops as wrapped 0-d tensors, so the scalar rows
# belong to the tensor op; mean is sum scaled; transpose and .T are permutes; broadcasting
# gradients and the gradients of sum/mean go through expand (and its adjoint, a sum).
REGISTRY_TO_CASES = {
    "add": [
        "add",
        "add_bcast_col_row",
        "add_bcast_vec",
        "add_bcast_3d",
        "add_0d_tensor",
        "add_scalar_right",
        "add_scalar_left",
        "add_self",
    ],
    "sub": ["sub", "sub_bcast", "sub_bcast_vec", "sub_scalar_right", "sub_scalar_left"],
    "mul": [
        "mul",
        "mul_bcast_vec",
        "mul_bcast_col_row",
        "mul_0d_tensor",
        "mul_scalar_right",
        "mul_scalar_left",
        "mul_self",
    ],
    "div": ["div", "div_bcast_vec", "div_bcast_col_row", "div_scalar_right", "div_scalar_left"],
    "neg": ["neg", "neg_fn", "neg_method"],
    "pow_scalar": [
        "pow_scalar_2",
        "pow_scalar_3",
        "pow_scalar_float_3",
        "pow_scalar_half",
        "pow_scalar_neg",
        "pow_scalar_0",
        "pow_scalar_1",
    ],
    "pow": [
        "pow_tensor",
        "pow_tensor_bcast",
        "pow_tensor_bcast_base",
        "pow_scalar_base",
        "pow_scalar_base_half",
    ],
    "exp": ["exp", "exp_fn", "exp_noncontig"],
    "expm1": ["expm1", "expm1_0d"],
    "log": ["log", "log_fn"],
    "tanh": ["tanh", "tanh_fn", "tanh_0d"],
    "sigmoid": ["sigmoid", "sigmoid_fn"],
    "relu": ["relu", "relu_fn"],
    "where": [
        "where",
        "where_bcast",
        "where_bcast_both",
        "where_compare",
        "where_scalar_other",
        "where_scalar_self",
        "where_bcast_cond_3d",
    ],
    "to_dtype": ["to_float64", "double", "float"],
    "sum": ["sum_all", "sum_dim0", "sum_dim_neg", "sum_dim_tuple", "sum_keepdim", "mean_all"],
    "mm": ["matmul", "matmul_outer", "matmul_transposed", "matmul_transposed_rhs"],
    "reshape": ["reshape", "reshape_flat", "reshape_infer", "reshape_noncontig"],
    "permute": ["permute", "permute_neg", "permute_2d", "transpose", "transpose_3d", "T"],
    "expand": ["expand", "expand_keep", "sum_dim_tuple", "mean_keepdim_tuple"],
    "abs": ["abs", "abs_fn", "abs_0d"],
    "sign": ["abs", "abs_fn"],  # abs's VJP; its own VJP is zero (second order of abs)
    "sqrt": ["sqrt", "sqrt_fn", "sqrt_expanded"],
    "sin": ["sin", "sin_fn"],
    "cos": ["cos", "cos_fn", "cos_0d"],
    "erf": ["gelu"],
    "log1p": ["softplus", "softplus_beta", "bce_with_logits"],
    "maximum": ["maximum", "maximum_bcast", "maximum_method", "maximum_bcast_4d", "clamp"],
    "minimum": ["minimum", "minimum_bcast", "minimum_method", "clamp_tensor_bounds"],
    "clamp": ["clamp", "clamp_min", "clamp_max", "clamp_fn", "clamp_tensor_bounds"],
    "prod": ["prod_all", "prod_dim", "prod_dim_neg_keepdim", "prod_fn", "prod_0d"],
    "var": ["var_all", "var_dim", "var_dim_tuple_keepdim", "var_correction0", "var_fn"],
    "std": ["std_all", "std_dim", "std_keepdim", "std_correction0", "std_fn"],
    "amax": ["amax_dim", "amax_tuple", "amax_all", "amax_keepdim", "max_all", "max_all_fn"],
    "amin": ["amin_dim", "amin_all", "amin_fn", "min_all"],
    "max_dim": ["max_dim", "max_dim_keepdim", "max_dim_fn"],
    "min_dim": ["min_dim", "min_dim_keepdim", "min_dim_fn"],
    "logsumexp": ["logsumexp_dim", "logsumexp_tuple", "logsumexp_keepdim"],
    "bmm": [
        "matmul_batched",
        "matmul_bcast_batch",
        "matmul_bcast_batch_both",
        "matmul_3d_2d",
        "matmul_2d_3d",
        "matmul_batched_transposed",
    ],
    "slice": [
        "index_int",
        "index_slice",
        "index_slice_step",
        "index_slice_neg",
        "exp_stepped",
        "index_slice_square",
    ],
    "slice_backward": ["index_slice_square"],
    "as_strided": ["view_mul_", "view_add_", "view_copy_", "view_clamp_"],
    "as_strided_scatter": ["view_mul_", "view_add_", "view_copy_", "view_clamp_"],
    "cat": ["cat_dim0", "cat_dim1_three", "cat_neg_dim", "cat_same_tensor", "stack"],
    "stack": ["stack", "stack_dim1_three", "stack_neg_dim", "stack_0d"],
    "gather": ["gather_dim1", "gather_dim0_method", "gather_neg_dim", "gather_smaller_index"],
    "scatter_add": ["gather_square"],
    "index_select": ["index_list", "index_int_tensor", "index_mask", "index_list_square"],
    "index_add": ["index_list_square", "index_mask_square"],
    "index": ["index_two_adv", "index_adv_separated", "index_adv_bcast", "index_mask"],
    "softmax": ["softmax", "softmax_neg_dim", "softmax_dim0"],
    "log_softmax": ["log_softmax", "log_softmax_neg_dim", "cross_entropy"],
    "cross_entropy": ["cross_entropy", "cross_entropy_smooth_sum"],
    "nll_loss": ["nll_loss", "nll_loss_none"],
    "gelu": ["gelu", "gelu_tanh"],
    "softplus": ["softplus", "softplus_beta"],
    "leaky_relu": ["leaky_relu", "leaky_relu_slope"],
    "conv2d": ["conv2d", "conv2d_stride_pad_dil"],
    "unfold2d": ["conv2d", "conv2d_stride_pad_dil", "avg_pool2d_stride_pad"],
    "scaled_dot_product_attention": ["sdpa", "sdpa_causal", "sdpa_causal_tiles", "sdpa_wide_head"],
    "layer_norm": ["layer_norm", "layer_norm_2d_no_affine", "layer_norm_wide_weight_only"],
    "rms_norm": ["rms_norm", "rms_norm_default_eps", "rms_norm_wide"],
    "fold2d": ["conv2d", "conv2d_stride_pad_dil"],
    "max_pool2d": ["max_pool2d", "max_pool2d_stride_pad"],
    "avg_pool2d": ["avg_pool2d", "avg_pool2d_stride_pad"],
    "dropout": ["dropout_p0"],
}
NONDIFFERENTIABLE_OPS = {"eq", "ne", "lt", "le", "gt", "ge", "argmax", "argmin"}


# ---------------------------------------------------------------------------------------------
# helpers, written once for m = bprop and m = torch
# ---------------------------------------------------------------------------------------------


def _is_torch(m) -> bool:
    return getattr(m, "__name__", "") == "torch"


def _grad(m, outputs, inputs, **kwargs):
    if _is_torch(m):
        return m.autograd.grad(outputs, inputs, **kwargs)
    return m.grad(outputs, inputs, **kwargs)


def to_np(t) -> np.ndarray:
    if getattr(t, "_is_zerotensor", lambda: False)():
        return np.zeros(tuple(t.shape))  # torch's symbolic zeros (e.g. abs's second derivative)
    return np.array(t.detach().numpy(), copy=True)


def dtype_name(t) -> str:
    return str(t.dtype).rsplit(".", 1)[-1]


def case_rng(case: OpCase) -> np.random.Generator:
    return np.random.default_rng(zlib.crc32(case.id.encode()))


def make_inputs(case: OpCase, rng: np.random.Generator) -> list[np.ndarray]:
    arrays = []
    for i, shape in enumerate(case.shapes):
        if case.domain(i) == "pos":
            a = rng.uniform(0.5, 2.0, size=shape)
        else:
            a = rng.uniform(0.2, 1.5, size=shape) * rng.choice([-1.0, 1.0], size=shape)
        arrays.append(np.asarray(a, dtype=np.float64))
    return arrays


def case_data(case: OpCase):
    """Inputs, cotangent v (shape of the output) and second-order directions u (per input)."""
    rng = case_rng(case)
    arrays = make_inputs(case, rng)
    out_shape = np.shape(case.ref(*arrays))
    v = np.asarray(rng.standard_normal(out_shape), dtype=np.float64)
    u = [np.asarray(rng.standard_normal(a.shape), dtype=np.float64) for a in arrays]
    return arrays, v, u


def leaves(m, arrays, dtype: str, requires_grad: bool = True):
    return [m.tensor(a.astype(dtype), requires_grad=requires_grad) for a in arrays]


def forward_np(m, case: OpCase, arrays: list[np.ndarray]) -> np.ndarray:
    """Float64 forward with grad mode off."""
    with m.no_grad():
        return to_np(case.fn(m, *leaves(m, arrays, "float64", requires_grad=False)))


def vjp_np(m, case: OpCase, arrays, v, dtype: str = "float64") -> list[np.ndarray]:
    xs = leaves(m, arrays, dtype)
    out = case.fn(m, *xs)
    gs = _grad(m, out, xs, grad_outputs=m.tensor(v.astype(dtype_name(out))))
    return [to_np(g) for g in gs]


def second_order_np(m, case: OpCase, arrays, v, u) -> list[np.ndarray]:
    """d/dx of sum_i <dL/dx_i, u_i> with L = <f(x), v>: Hessian-vector products."""
    xs = leaves(m, arrays, "float64")
    out = case.fn(m, *xs)
    gs = _grad(m, out, xs, grad_outputs=m.tensor(v.astype(dtype_name(out))), create_graph=True)
    total = None
    for g, ui in zip(gs, u):
        if g is None or not g.requires_grad:
            continue  # this gradient does not depend on the inputs
        term = (g * m.tensor(ui)).sum()
        total = term if total is None else total + term
    if total is None:
        return [np.zeros_like(a) for a in arrays]
    hs = _grad(m, total, xs, allow_unused=True)
    return [np.zeros_like(a) if h is None else to_np(h) for a, h in zip(arrays, hs)]


def central_differences(f, arrays: list[np.ndarray], eps: float = FD_EPS) -> list[np.ndarray]:
    """Gradient of the scalar function f(list of float64 arrays) by central differences."""
    grads = []
    for k, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            plus = [x.copy() for x in arrays]
            minus = [x.copy() for x in arrays]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            g[idx] = (f(plus) - f(minus)) / (2.0 * eps)
        grads.append(g)
    return grads


def gradcheck(case: OpCase, arrays, v) -> None:
    """bprop's float64 VJP against central differences of bprop's float64 forward."""
    analytic = vjp_np(bp, case, arrays, v)
    numeric = central_differences(lambda xs: float(np.sum(forward_np(bp, case, xs) * v)), arrays)
    for i, (a, n) in enumerate(zip(analytic, numeric)):
        assert a.shape == n.shape, f"input {i}: gradient shape {a.shape} != {n.shape}"
        np.testing.assert_allclose(a, n, **FD_TOL, err_msg=f"{case.id}: input {i}")


def helper_test_op(case: OpCase, dtype: str, oracle: str) -> None:
    """Shape, dtype and values of the forward, then gradients, against `oracle`.

    oracle "numpy": forward vs the numpy float64 reference, gradients vs float64 central
    differences. oracle "torch": forward and gradients vs PyTorch in the same dtype.
    """
    arrays, v, _ = case_data(case)
    # The inputs as the tested dtype sees them, so both sides start from the same numbers.
    arrays = [a.astype(dtype).astype(np.float64) for a in arrays]
    tol = TOL[dtype]

    xs = leaves(bp, arrays, dtype)
    out = case.fn(bp, *xs)
    got = to_np(out)
    gradient = bp.tensor(v.astype(dtype_name(out)))
    out.backward(gradient=gradient)
    got_grads = [x.grad for x in xs]

    if oracle == "numpy":
        want = np.asarray(case.ref(*arrays))
        want_dtype = case.out_dtype or dtype
        want_grads = central_differences(
            lambda zs: float(np.sum(np.asarray(case.ref(*zs)) * v)), arrays
        )
        # Central differences carry ~1e-10 of error; float32 gradients carry their own.
        grad_tol = FD_TOL if dtype == "float64" else tol
    else:
        torch = pytest.importorskip("torch")
        txs = leaves(torch, arrays, dtype)
        tout = case.fn(torch, *txs)
        want = to_np(tout)
        want_dtype = dtype_name(tout)
        tout.backward(gradient=torch.tensor(v.astype(want_dtype)))
        want_grads = [to_np(t.grad) for t in txs]
        grad_tol = tol

    assert tuple(out.shape) == tuple(want.shape), f"{case.id}: shape"
    assert dtype_name(out) == want_dtype, f"{case.id}: dtype"
    assert got.dtype == np.dtype(want_dtype)
    out_tol = TOL[want_dtype]
    np.testing.assert_allclose(got, want, **out_tol, err_msg=f"{case.id}: forward")

    for i, (x, g, w) in enumerate(zip(xs, got_grads, want_grads)):
        assert g is not None, f"{case.id}: input {i} got no gradient"
        assert tuple(g.shape) == tuple(x.shape), f"{case.id}: input {i} gradient shape"
        assert dtype_name(g) == dtype, f"{case.id}: input {i} gradient dtype"
        np.testing.assert_allclose(to_np(g), w, **grad_tol, err_msg=f"{case.id}: input {i}")


# ---------------------------------------------------------------------------------------------
# the table-driven tests
# ---------------------------------------------------------------------------------------------

OP_PARAMS = [pytest.param(case, id=case.id) for case in OPS]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", OP_PARAMS)
def test_op_vs_numpy(case, dtype):
    helper_test_op(case, dtype, "numpy")


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("case", OP_PARAMS)
def test_op_vs_torch(case, dtype):
    pytest.importorskip("torch")
    helper_test_op(case, dtype, "torch")


# Cases whose forward rounds through float32 (to_dtype) can't be checked by float64 differences.
@pytest.mark.parametrize("case", [c for c in OP_PARAMS if c.values[0].fd])
def test_gradcheck(case):
    arrays, v, _ = case_data(case)
    gradcheck(case, arrays, v)


@pytest.mark.parametrize("case", OP_PARAMS)
def test_second_order(case):
    """Hessian-vector products via create_graph vs central differences of the gradient."""
    arrays, v, u = case_data(case)
    got = second_order_np(bp, case, arrays, v, u)

    def directional_first_order(xs):
        return float(sum(np.sum(g * ui) for g, ui in zip(vjp_np(bp, case, xs, v), u)))

    want = central_differences(directional_first_order, arrays)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, **FD_TOL, err_msg=f"{case.id}: input {i}")


@pytest.mark.parametrize("case", OP_PARAMS)
def test_second_order_vs_torch(case):
    torch = pytest.importorskip("torch")
    arrays, v, u = case_data(case)
    got = second_order_np(bp, case, arrays, v, u)
    want = second_order_np(torch, case, arrays, v, u)
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, **TOL["float64"], err_msg=f"{case.id}: input {i}")


def test_gradcheck_detects_a_wrong_gradient():
    """The checker itself: a deliberately wrong 'gradient' must fail it."""
    case = OPS_BY_ID["tanh"]
    arrays, v, _ = case_data(case)
    numeric = central_differences(lambda xs: float(np.sum(forward_np(bp, case, xs) * v)), arrays)
    wrong = v * (1.0 - np.tanh(arrays[0]))  # forgot the square
    with pytest.raises(AssertionError):
        np.testing.assert_allclose(wrong, numeric[0], **FD_TOL)
    np.testing.assert_allclose(v * (1.0 - np.tanh(arrays[0]) ** 2), numeric[0], **FD_TOL)


# ---------------------------------------------------------------------------------------------
# every differentiable op in the registry has gradient tests
# ---------------------------------------------------------------------------------------------


def test_registry_ops_have_gradient_tests():
    entries = [tuple(e) for e in bp._core.op_names()]
    assert entries, "the op registry is empty"
    names = {name for name, _ in entries}
    missing = []
    for name, differentiable in entries:
        if not differentiable:
            continue
        if name not in REGISTRY_TO_CASES:
            missing.append(name)
            continue
        for case_id in REGISTRY_TO_CASES[name]:
            assert case_id in OPS_BY_ID, f"{name}: no table row {case_id!r}"
    assert not missing, f"differentiable ops without a gradient test: {sorted(missing)}"
    # The ops of the contract are all in the registry, and comparisons are not differentiable.
    for name in ("add", "mul", "exp", "log", "tanh", "sigmoid", "relu", "where", "sum"):
        assert name in names, f"{name} missing from the registry"
    for name, differentiable in entries:
        if name in NONDIFFERENTIABLE_OPS:
            assert not differentiable, f"{name} should not be differentiable"


# ---------------------------------------------------------------------------------------------
# second order, against closed forms
# ---------------------------------------------------------------------------------------------


def _elementwise_second_derivative(f, x_np):
    x = bp.tensor(x_np, requires_grad=True)
    (g,) = bp.grad(f(x).sum(), x, create_graph=True)
    if not g.requires_grad:
        # relu: the gradient is a masked copy of the (constant) cotangent. PyTorch still
        # records a node here and differentiates it to zeros; no graph at all is as good.
        return to_np(g), np.zeros_like(x_np)
    (g2,) = bp.grad(g.sum(), x, allow_unused=True)
    return to_np(g), np.zeros_like(x_np) if g2 is None else to_np(g2)


X_ANY = np.array([-1.3, -0.4, 0.3, 0.9, 1.7])
X_POS = np.array([0.4, 0.8, 1.0, 1.6, 2.5])


@pytest.mark.parametrize(
    "f, x, d1, d2",
    [
        pytest.param(
            lambda x: x.tanh(),
            X_ANY,
            lambda x: 1 - np.tanh(x) ** 2,
            lambda x: -2 * np.tanh(x) * (1 - np.tanh(x) ** 2),
            id="tanh",
        ),
        pytest.param(lambda x: x.exp(), X_ANY, np.exp, np.exp, id="exp"),
        pytest.param(lambda x: x.expm1(), X_ANY, np.exp, np.exp, id="expm1"),
        pytest.param(lambda x: x.log(), X_POS, lambda x: 1 / x, lambda x: -1 / x**2, id="log"),
        pytest.param(
            lambda x: x.sigmoid(),
            X_ANY,
            lambda x: _sigmoid(x) * (1 - _sigmoid(x)),
            lambda x: _sigmoid(x) * (1 - _sigmoid(x)) * (1 - 2 * _sigmoid(x)),
            id="sigmoid",
        ),
        pytest.param(lambda x: x**3, X_ANY, lambda x: 3 * x**2, lambda x: 6 * x, id="cube"),
        pytest.param(
            lambda x: x**0.5,
            X_POS,
            lambda x: 0.5 * x**-0.5,
            lambda x: -0.25 * x**-1.5,
            id="sqrt",
        ),
        pytest.param(
            lambda x: 2.0**x,
            X_ANY,
            lambda x: np.log(2) * 2.0**x,
            lambda x: np.log(2) ** 2 * 2.0**x,
            id="scalar_base_pow",
        ),
        pytest.param(
            lambda x: x.relu(), X_ANY, lambda x: (x > 0) * 1.0, lambda x: 0 * x, id="relu"
        ),
        pytest.param(
            lambda x: 1.0 / x, X_POS, lambda x: -1 / x**2, lambda x: 2 / x**3, id="reciprocal"
        ),
        pytest.param(lambda x: x * x, X_ANY, lambda x: 2 * x, lambda x: 2 + 0 * x, id="square"),
    ],
)
def test_second_derivative_closed_form(f, x, d1, d2):
    g, g2 = _elementwise_second_derivative(f, x)
    np.testing.assert_allclose(g, d1(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(g2, d2(x), rtol=1e-12, atol=1e-12)


def test_second_derivative_of_division_in_denominator():
    """q = a / b: d2q/db2 = 2a/b^3, d2q/da2 = 0, d2q/(da db) = -1/b^2."""
    a_np = np.array([1.5, -0.7, 0.3])
    b_np = np.array([0.8, 1.9, -1.2])
    a = bp.tensor(a_np, requires_grad=True)
    b = bp.tensor(b_np, requires_grad=True)
    ga, gb = bp.grad((a / b).sum(), [a, b], create_graph=True)
    np.testing.assert_allclose(to_np(ga), 1 / b_np, rtol=1e-12)
    np.testing.assert_allclose(to_np(gb), -a_np / b_np**2, rtol=1e-12)
    gbb, gba = bp.grad(gb.sum(), [b, a])
    np.testing.assert_allclose(to_np(gbb), 2 * a_np / b_np**3, rtol=1e-12)
    np.testing.assert_allclose(to_np(gba), -1 / b_np**2, rtol=1e-12)
    (gaa,) = bp.grad(ga.sum(), [a], allow_unused=True)
    assert gaa is None or np.all(to_np(gaa) == 0)


def test_second_derivative_mixed_mul():
    a_np = np.array([0.5, -1.0])
    b_np = np.array([2.0, 3.0])
    a = bp.tensor(a_np, requires_grad=True)
    b = bp.tensor(b_np, requires_grad=True)
    (ga,) = bp.grad((a * a * b).sum(), a, create_graph=True)  # 2ab
    gaa, gab = bp.grad(ga.sum(), [a, b])
    np.testing.assert_allclose(to_np(gaa), 2 * b_np, rtol=1e-12)
    np.testing.assert_allclose(to_np(gab), 2 * a_np, rtol=1e-12)


def test_third_derivative():
    x = bp.tensor(np.array([0.3, -0.8]), requires_grad=True)
    (g1,) = bp.grad((x**4).sum(), x, create_graph=True)
    (g2,) = bp.grad(g1.sum(), x, create_graph=True)
    (g3,) = bp.grad(g2.sum(), x)
    np.testing.assert_allclose(to_np(g3), 24 * np.array([0.3, -0.8]), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# aliases and forms that must agree with the canonical ones
# ---------------------------------------------------------------------------------------------


def test_reduction_aliases_axis_keepdims():
    a = bp.tensor(np.arange(24.0).reshape(2, 3, 4))
    np.testing.assert_array_equal(to_np(a.sum(axis=1)), to_np(a.sum(dim=1)))
    np.testing.assert_array_equal(
        to_np(a.sum(axis=(0, 2), keepdims=True)), to_np(a.sum(dim=(0, 2), keepdim=True))
    )
    np.testing.assert_array_equal(
        to_np(a.mean(axis=-1, keepdims=True)), to_np(a.mean(dim=-1, keepdim=True))
    )
    assert a.sum(axis=(0, 2), keepdims=True).shape == (1, 3, 1)


def test_comparisons_are_bool_and_not_differentiable():
    a_np = np.array([1.0, 2.0, 3.0])
    b_np = np.array([2.0, 2.0, 2.0])
    a = bp.tensor(a_np, requires_grad=True)
    b = bp.tensor(b_np)
    for got, want in [
        (a < b, a_np < b_np),
        (a <= b, a_np <= b_np),
        (a > b, a_np > b_np),
        (a >= b, a_np >= b_np),
        (a == b, a_np == b_np),
        (a != b, a_np != b_np),
        (a > 1.5, a_np > 1.5),
    ]:
        assert got.dtype == bp.bool
        assert not got.requires_grad
        assert got.grad_fn is None
        np.testing.assert_array_equal(to_np(got), want)


# ---------------------------------------------------------------------------------------------
# type promotion
# ---------------------------------------------------------------------------------------------

PROMOTION = [
    pytest.param(lambda m: m.tensor([1.0, 2.0]) * 2.5, "float32", [2.5, 5.0], id="f32*float"),
    pytest.param(lambda m: 2.5 * m.tensor([1.0, 2.0]), "float32", [2.5, 5.0], id="float*f32"),
    pytest.param(lambda m: m.tensor([1.0, 2.0]) + 1, "float32", [2.0, 3.0], id="f32+int"),
    pytest.param(
        lambda m: m.tensor([1.0], dtype=m.float64) * 2.5, "float64", [2.5], id="f64*float"
    ),
    pytest.param(lambda m: m.tensor([1, 2]) * 2.5, "float32", [2.5, 5.0], id="int*float"),
    pytest.param(lambda m: 2.5 * m.tensor([1, 2]), "float32", [2.5, 5.0], id="float*int"),
    pytest.param(lambda m: m.tensor([1, 2]) - 0.5, "float32", [0.5, 1.5], id="int-float"),
    pytest.param(lambda m: m.tensor([1, 2]) + 3, "int64", [4, 5], id="int+int_scalar"),
    pytest.param(lambda m: m.tensor([2, 3]) ** 2, "int64", [4, 9], id="int**int_scalar"),
    pytest.param(lambda m: m.tensor([1, 2]) ** 0.5, "float32", [1.0, 2**0.5], id="int**float"),
    pytest.param(lambda m: 2.0 ** m.tensor([1, 2]), "float32", [2.0, 4.0], id="float**int"),
    pytest.param(lambda m: 2 ** m.tensor([1.0, 2.0]), "float32", [2.0, 4.0], id="int**f32"),
    pytest.param(
        lambda m: m.tensor([1.0, 2.0]) + m.tensor([1.0, 2.0], dtype=m.float64),
        "float64",
        [2.0, 4.0],
        id="f32+f64",
    ),
    pytest.param(
        lambda m: m.tensor([1.0], dtype=m.float64) * m.tensor([3.0]),
        "float64",
        [3.0],
        id="f64*f32",
    ),
    pytest.param(
        lambda m: m.tensor([1, 2]) + m.tensor([0.5, 0.5]), "float32", [1.5, 2.5], id="int+f32"
    ),
    pytest.param(
        lambda m: m.tensor([1, 3]) / m.tensor([2, 4]), "float32", [0.5, 0.75], id="int/int"
    ),
    pytest.param(lambda m: m.tensor([1, 3]) / 2, "float32", [0.5, 1.5], id="int/int_scalar"),
    pytest.param(lambda m: 3 / m.tensor([2, 4]), "float32", [1.5, 0.75], id="int_scalar/int"),
    pytest.param(
        lambda m: m.tensor([True, False]) + m.tensor([1, 2]), "int64", [2, 2], id="bool+int"
    ),
    pytest.param(lambda m: m.tensor([True, False]) + 1, "int64", [2, 1], id="bool+int_scalar"),
    pytest.param(lambda m: m.tensor([True, False]) * 2.5, "float32", [2.5, 0.0], id="bool*float"),
    pytest.param(
        lambda m: m.tensor([True, False]) + m.tensor([0.5, 0.5]),
        "float32",
        [1.5, 0.5],
        id="bool+f32",
    ),
    pytest.param(lambda m: m.tensor([1.0, 3.0]) < 2, "bool", [True, False], id="f32<int"),
    pytest.param(
        lambda m: m.where(
            m.tensor([True, False]), m.tensor([1.0]), m.tensor([2.0], dtype=m.float64)
        ),
        "float64",
        [1.0, 2.0],
        id="where_f32_f64",
    ),
]


@pytest.mark.parametrize("expr, want_dtype, want", PROMOTION)
def test_type_promotion(expr, want_dtype, want):
    out = expr(bp)
    assert dtype_name(out) == want_dtype
    got = to_np(out)
    assert got.dtype == np.dtype(want_dtype)
    np.testing.assert_allclose(got, np.array(want, dtype=want_dtype), rtol=1e-6)


@pytest.mark.parametrize("expr, want_dtype, want", PROMOTION)
def test_type_promotion_vs_torch(expr, want_dtype, want):
    torch = pytest.importorskip("torch")
    assert dtype_name(expr(torch)) == want_dtype  # the table itself agrees with PyTorch
    assert dtype_name(expr(bp)) == dtype_name(expr(torch))


@pytest.mark.parametrize("values", [[0.3, -0.8, 0.1], 0.1, [[1e-300, 1.0 / 3.0]]])
def test_float64_tensor_from_python_floats_is_exact(values):
    """Python floats are doubles: dtype=float64 keeps every bit (no trip through float32)."""
    want = np.array(values, dtype=np.float64)
    for t in (bp.tensor(values, dtype=bp.float64), bp.tensor(values).double()):
        assert t.dtype == bp.float64
    got = to_np(bp.tensor(values, dtype=bp.float64))
    np.testing.assert_array_equal(got, want)
    # float32 rounding is what .double() of a default-dtype tensor gives, as in PyTorch.
    np.testing.assert_array_equal(to_np(bp.tensor(values).double()), want.astype(np.float32))


def test_gradient_dtype_follows_input_under_promotion():
    """f32 * f64 computes in f64; each input's gradient comes back in its own dtype."""
    a = bp.tensor([1.0, 2.0], requires_grad=True)
    b = bp.tensor([3.0, 4.0], dtype=bp.float64, requires_grad=True)
    out = a * b
    assert out.dtype == bp.float64
    out.sum().backward()
    assert a.grad.dtype == bp.float32
    assert b.grad.dtype == bp.float64
    np.testing.assert_allclose(to_np(a.grad), [3.0, 4.0])
    np.testing.assert_allclose(to_np(b.grad), [1.0, 2.0])


def test_int_tensor_times_float_scalar_does_not_require_grad_int_input():
    x = bp.tensor([1.0, 2.0], requires_grad=True)
    n = bp.tensor([2, 3])
    out = x * n
    assert out.dtype == bp.float32
    out.sum().backward()
    np.testing.assert_allclose(to_np(x.grad), [2.0, 3.0])
    assert n.grad is None


# ---------------------------------------------------------------------------------------------
# op errors (the contract's messages)
# ---------------------------------------------------------------------------------------------


def test_matmul_shape_error():
    with pytest.raises(ValueError, match=r"\[matmul\].*\(3, 4\).*\(5, 6\)"):
        bp.zeros(3, 4) @ bp.zeros(5, 6)


def test_broadcast_error():
    with pytest.raises(ValueError, match=r"\[add\] shapes \(2, 3\) and \(4,\) cannot be broadcast"):
        bp.zeros(2, 3) + bp.zeros(4)


def test_bad_dim_and_reshape_errors():
    with pytest.raises(IndexError):
        bp.zeros(2, 3).sum(dim=5)
    with pytest.raises(IndexError):
        bp.zeros(2, 3).mean(dim=-3)
    with pytest.raises(ValueError, match=r"\[reshape\]"):
        bp.zeros(2, 3).reshape(4, 2)


# ---------------------------------------------------------------------------------------------
# what the table can't show (ties, kinks, zeros in prod, NaN/Inf, argmax, errors)
# ---------------------------------------------------------------------------------------------


def _value_and_grad(m, fn, arrays, v=None):
    xs = leaves(m, arrays, "float64")
    out = fn(m, *xs)
    v = np.ones(tuple(out.shape)) if v is None else v
    gs = _grad(m, out, xs, grad_outputs=m.tensor(v), allow_unused=True)
    return to_np(out), [np.zeros(a.shape) if g is None else to_np(g) for a, g in zip(arrays, gs)]


# Inputs where an op is at a tie or a kink: the documented subgradient, as PyTorch picks it.
SPECIAL = [
    pytest.param(lambda m, a: a.max(), [[1.0, 3.0, 3.0, 2.0]], id="max_ties_split"),
    pytest.param(lambda m, a: a.min(), [[2.0, -1.0, 5.0, -1.0]], id="min_ties_split"),
    pytest.param(lambda m, a: a.amax(), [[3.0, 3.0, 3.0]], id="amax_all_tied"),
    pytest.param(
        lambda m, a: a.amax(dim=1), [[[1.0, 4.0, 4.0], [2.0, 2.0, 0.0]]], id="amax_dim_ties"
    ),
    pytest.param(
        lambda m, a: a.amin(dim=0, keepdim=True),
        [[[1.0, 0.0], [1.0, 2.0], [5.0, 0.0]]],
        id="amin_dim_ties",
    ),
    pytest.param(
        lambda m, a: a.max(dim=1).values, [[[1.0, 4.0, 4.0], [2.0, 2.0, 0.0]]], id="max_dim_first"
    ),
    pytest.param(
        lambda m, a: a.min(dim=0).values,
        [[[1.0, 0.0], [1.0, 2.0], [5.0, 0.0]]],
        id="min_dim_first",
    ),
    pytest.param(
        lambda m, a, b: m.maximum(a, b), [[1.0, 2.0, 3.0], [1.0, 3.0, 3.0]], id="maximum_tie"
    ),
    pytest.param(
        lambda m, a, b: m.minimum(a, b), [[1.0, 2.0, 3.0], [1.0, 3.0, 3.0]], id="minimum_tie"
    ),
    pytest.param(lambda m, a: a.clamp(-1.0, 1.0), [[-1.0, 0.0, 1.0, 2.0]], id="clamp_at_bounds"),
    pytest.param(lambda m, a: a.abs(), [[0.0, -0.0, 1.0]], id="abs_at_zero"),
    pytest.param(lambda m, a: a.relu(), [[0.0, 1.0, -1.0]], id="relu_at_zero"),
    pytest.param(lambda m, a: a.sqrt(), [[0.0, 4.0]], id="sqrt_at_zero"),
    pytest.param(lambda m, a: a.prod(), [[2.0, 0.0, 3.0]], id="prod_one_zero"),
    pytest.param(lambda m, a: a.prod(), [[2.0, 0.0, 3.0, 0.0]], id="prod_two_zeros"),
    pytest.param(
        lambda m, a: a.prod(dim=1),
        [[[2.0, 0.0, 3.0], [1.0, 2.0, 3.0], [0.0, 0.0, 1.0]]],
        id="prod_dim_zeros",
    ),
    pytest.param(lambda m, a: a.std(), [[1.0, 2.0, 4.0]], id="std_plain"),
    pytest.param(lambda m, a: a.var(dim=0), [[[1.0, 2.0], [1.0, 5.0]]], id="var_repeated"),
    pytest.param(lambda m, a: a.logsumexp(dim=0), [[-np.inf, 0.0]], id="logsumexp_minus_inf"),
    pytest.param(lambda m, a: F(m).softplus(a), [[0.0, -0.0]], id="softplus_at_zero"),
    pytest.param(
        lambda m, a: F(m).binary_cross_entropy_with_logits(
            a, m.tensor([1.0, 0.0, 0.5], dtype=a.dtype), reduction="none"
        ),
        [[0.0, 0.0, 0.0]],
        id="bce_with_logits_at_zero",
    ),
    pytest.param(lambda m, a: F(m).leaky_relu(a, 0.1), [[0.0, -0.0]], id="leaky_relu_at_zero"),
    pytest.param(
        lambda m, a: F(m).max_pool2d(a, 2),
        [np.array([[[[1.0, 1.0], [0.0, 1.0]]]])],
        id="max_pool_ties",
    ),
]


@pytest.mark.parametrize("fn, arrays", SPECIAL)
def test_ties_and_kinks_vs_torch(fn, arrays):
    torch = pytest.importorskip("torch")
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays]
    got, got_g = _value_and_grad(bp, fn, arrays)
    want, want_g = _value_and_grad(torch, fn, arrays)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)
    for g, w in zip(got_g, want_g):
        np.testing.assert_allclose(g, w, rtol=1e-12, atol=0)


def test_ties_closed_form():
    """The contract's tie rules, independent of torch."""
    x = bp.tensor([1.0, 3.0, 3.0, 2.0], requires_grad=True)
    x.max().backward()
    np.testing.assert_array_equal(to_np(x.grad), [0.0, 0.5, 0.5, 0.0])
    x = bp.tensor([[1.0, 3.0, 3.0, 2.0]], requires_grad=True)
    values, indices = x.max(dim=1)
    assert indices.tolist() == [1]
    values.sum().backward()
    np.testing.assert_array_equal(to_np(x.grad), [[0.0, 1.0, 0.0, 0.0]])
    a = bp.tensor([2.0], requires_grad=True)
    b = bp.tensor([2.0], requires_grad=True)
    bp.maximum(a, b).backward()
    assert to_np(a.grad)[0] == 0.5 and to_np(b.grad)[0] == 0.5


def test_max_dim_returns_values_and_indices():
    a = np.array([[1.0, 5.0, 5.0, -2.0], [7.0, 0.0, 7.0, 7.0], [-1.0, -3.0, -3.0, -1.0]])
    t = bp.tensor(a)
    for name, np_val, np_arg in (("max", np.max, np.argmax), ("min", np.min, np.argmin)):
        for dim in (0, 1, -1):
            res = getattr(t, name)(dim=dim)
            values, indices = res  # a namedtuple unpacks
            assert res.values is not None and res.indices is not None
            assert indices.dtype == bp.int64
            np.testing.assert_array_equal(to_np(values), np_val(a, axis=dim))
            np.testing.assert_array_equal(to_np(indices), np_arg(a, axis=dim))  # first one
            np.testing.assert_array_equal(to_np(res[0]), to_np(res.values))
        kept = getattr(bp, name)(t, 1, keepdim=True)
        assert tuple(kept.values.shape) == (3, 1) and tuple(kept.indices.shape) == (3, 1)


@pytest.mark.parametrize("name", ["argmax", "argmin"])
def test_argmax_argmin(name):
    a = np.array([[1.0, 5.0, 5.0, -2.0], [7.0, 0.0, 7.0, -7.0], [-1.0, -3.0, -3.0, -1.0]])
    np_fn = getattr(np, name)
    t = bp.tensor(a, requires_grad=True)
    for got, want in [
        (getattr(t, name)(), np_fn(a)),
        (getattr(bp, name)(t), np_fn(a)),
        (getattr(t, name)(dim=0), np_fn(a, axis=0)),
        (getattr(t, name)(1), np_fn(a, axis=1)),
        (getattr(t, name)(dim=-1, keepdim=True), np_fn(a, axis=-1)[:, None]),
        (getattr(bp, name)(t, dim=1), np_fn(a, axis=1)),
    ]:
        assert got.dtype == bp.int64
        assert not got.requires_grad
        assert tuple(got.shape) == np.shape(want)
        np.testing.assert_array_equal(to_np(got), want)
    i = bp.tensor(np.array([[3, 1], [1, 3]]))
    np.testing.assert_array_equal(to_np(getattr(i, name)(dim=1)), np_fn([[3, 1], [1, 3]], axis=1))


def test_reductions_of_0d_and_keepdim_shapes():
    s = bp.tensor(2.5, requires_grad=True)
    for got in (s.sum(), s.mean(), s.prod(), s.amax(), s.max(), s.logsumexp(0)):
        assert tuple(got.shape) == ()
    t = bp.zeros(2, 3, 4)
    assert t.var(dim=(0, 2), keepdim=True).shape == (1, 3, 1)
    assert t.std(dim=1, keepdim=True).shape == (2, 1, 4)
    assert t.amin(dim=(-1, -3), keepdim=True).shape == (1, 3, 1)
    assert t.logsumexp(dim=(0, 1)).shape == (4,)
    assert t.prod(dim=-1, keepdim=True).shape == (2, 3, 1)
    assert t.var(axis=1, keepdims=True).shape == (2, 1, 4)  # numpy-style aliases
    assert t.amax(axis=(0, 1)).shape == (4,)


def test_var_std_correction_and_unbiased_agree():
    a = np.array([[1.0, 2.0, 4.0, 7.0], [0.5, -1.0, 2.5, 3.0], [2.0, 0.0, -1.0, 1.5]])
    t = bp.tensor(a)
    for dim in (None, 0, 1):
        for corr in (0, 1, 2):
            np.testing.assert_allclose(
                to_np(t.var(dim=dim, correction=corr)), np.var(a, axis=dim, ddof=corr)
            )
            np.testing.assert_allclose(
                to_np(t.std(dim=dim, correction=corr)), np.std(a, axis=dim, ddof=corr)
            )
    np.testing.assert_allclose(to_np(t.var(1, unbiased=False)), np.var(a, axis=1))
    np.testing.assert_allclose(to_np(t.std(unbiased=True)), np.std(a, ddof=1))


# NaN and Inf go through as IEEE says (and as PyTorch computes them).
NAN_INF = np.array([np.nan, np.inf, -np.inf, 0.0, -1.5, 2.0])
IEEE = [
    pytest.param(lambda m, a: a.relu(), id="relu"),
    pytest.param(lambda m, a: a.abs(), id="abs"),
    pytest.param(lambda m, a: a.sqrt(), id="sqrt"),
    pytest.param(lambda m, a: a.exp(), id="exp"),
    pytest.param(lambda m, a: a.log(), id="log"),
    pytest.param(lambda m, a: a.tanh(), id="tanh"),
    pytest.param(lambda m, a: a.sigmoid(), id="sigmoid"),
    pytest.param(lambda m, a: a.sin(), id="sin"),
    pytest.param(lambda m, a: a.clamp(-1.0, 1.0), id="clamp"),
    pytest.param(lambda m, a: m.maximum(a, m.tensor(1.0, dtype=a.dtype)), id="maximum"),
    pytest.param(lambda m, a: m.minimum(m.tensor(1.0, dtype=a.dtype), a), id="minimum"),
    pytest.param(lambda m, a: 1.0 / a, id="reciprocal"),
    pytest.param(lambda m, a: a * 0.0, id="times_zero"),
    pytest.param(lambda m, a: a.sum(), id="sum"),
    pytest.param(lambda m, a: a.max(), id="max"),
    pytest.param(lambda m, a: a.amin(), id="amin"),
    pytest.param(lambda m, a: a.prod(), id="prod"),
    pytest.param(lambda m, a: a[1:].max(), id="max_inf"),
    pytest.param(lambda m, a: a[1:].logsumexp(0), id="logsumexp_inf"),
    pytest.param(lambda m, a: a[3:].logsumexp(0), id="logsumexp_finite"),
]


@pytest.mark.parametrize("fn", IEEE)
def test_nan_and_inf_propagate_vs_torch(fn):
    torch = pytest.importorskip("torch")
    got = to_np(fn(bp, bp.tensor(NAN_INF)))
    want = fn(torch, torch.tensor(NAN_INF)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=0)  # NaN where NaN, Inf where Inf


def test_nan_propagation_contract_examples():
    assert np.isnan(to_np(bp.tensor([np.nan]).relu())[0])
    assert np.isnan(to_np(bp.maximum(bp.tensor([np.nan]), bp.tensor([1.0])))[0])
    assert np.isnan(to_np(bp.minimum(bp.tensor([1.0]), bp.tensor([np.nan])))[0])
    assert np.isnan(to_np(bp.tensor([np.nan]).clamp(0.0, 1.0))[0])
    assert np.isnan(to_np(bp.tensor([1.0, np.nan, 3.0]).max()))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda t: t.prod(dim=2), id="prod"),
        pytest.param(lambda t: t.var(dim=-3), id="var"),
        pytest.param(lambda t: t.std(dim=(0, 2)), id="std"),
        pytest.param(lambda t: t.amax(dim=2), id="amax"),
        pytest.param(lambda t: t.amin(dim=(0, -3)), id="amin"),
        pytest.param(lambda t: t.max(dim=2), id="max"),
        pytest.param(lambda t: t.min(dim=-3), id="min"),
        pytest.param(lambda t: t.logsumexp(dim=2), id="logsumexp"),
        pytest.param(lambda t: t.argmax(dim=2), id="argmax"),
        pytest.param(lambda t: t.argmin(dim=-3), id="argmin"),
        pytest.param(lambda t: t.squeeze(2), id="squeeze"),
        pytest.param(lambda t: t.unsqueeze(3), id="unsqueeze"),
        pytest.param(lambda t: t.unsqueeze(-4), id="unsqueeze_neg"),
        pytest.param(lambda t: t.flatten(0, 2), id="flatten"),
        pytest.param(lambda t: t.transpose(0, 2), id="transpose"),
        pytest.param(lambda t: t.permute(0, 2), id="permute_dim"),
        pytest.param(lambda t: bp.cat([t, t], dim=2), id="cat"),
        pytest.param(lambda t: bp.stack([t, t], dim=3), id="stack"),
        pytest.param(lambda t: t.gather(2, bp.zeros(2, 3, dtype=bp.int64)), id="gather"),
    ],
)
def test_bad_dim_raises_index_error(call):
    with pytest.raises(IndexError):
        call(bp.zeros(2, 3))


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda t: t.reshape(4, 2), id="reshape_numel"),
        pytest.param(lambda t: t.reshape(-1, -1), id="reshape_two_minus_one"),
        pytest.param(lambda t: t.reshape(5, -1), id="reshape_infer_fails"),
        pytest.param(lambda t: t.view(4, 2), id="view_numel"),
        pytest.param(lambda t: t.view(-1, 4), id="view_infer_fails"),
        pytest.param(lambda t: t.expand(2, 4), id="expand_incompatible"),
        pytest.param(lambda t: t.expand(3), id="expand_fewer_dims"),
        pytest.param(lambda t: t.permute(0, 0), id="permute_repeated"),
        pytest.param(lambda t: t.flatten(1, 0), id="flatten_start_after_end"),
    ],
)
def test_bad_shapes_raise(call):
    with pytest.raises((ValueError, RuntimeError, IndexError)):
        call(bp.zeros(2, 3))


def test_view_on_incompatible_strides_says_use_reshape():
    t = bp.zeros(3, 4).T
    with pytest.raises((RuntimeError, ValueError), match=r"view size.*not compatible.*reshape"):
        t.view(12)
    assert t.reshape(12).shape == (12,)  # reshape copies instead
    assert bp.zeros(3, 4)[:, 1:3].view(3, 2).shape == (3, 2)  # strides allow it: fine
    v = bp.zeros(4, 6)[::2].view(2, 2, 3)  # a stepped slice whose rows stay contiguous
    assert v.shape == (2, 2, 3)


def test_view_shares_storage_and_reshape_of_contiguous_too():
    a = np.arange(12.0)
    t = bp.from_numpy(a)
    v = t.view(3, 4)
    r = t.reshape(2, 6)
    a[0] = 100.0
    assert to_np(v)[0, 0] == 100.0 and to_np(r)[0, 0] == 100.0
    for u in (t.view(-1), t.flatten(), t.unsqueeze(0), t.view(3, 4).T, t.expand(2, 12)):
        assert np.shares_memory(u.numpy(), a)


@pytest.mark.parametrize(
    "a_shape, b_shape",
    [
        ((3, 4), (5,)),
        ((4,), (5,)),
        ((5,), (4, 3)),
        ((2, 3, 4), (3, 4, 5)),
        ((2, 3, 4), (2, 5, 6)),
    ],
)
def test_matmul_rank_mismatches(a_shape, b_shape):
    with pytest.raises(ValueError, match=r"\[(matmul|mm|bmm)\]"):
        bp.zeros(*a_shape) @ bp.zeros(*b_shape)


def test_matmul_0d_rejected():
    with pytest.raises((ValueError, RuntimeError)):
        bp.tensor(2.0) @ bp.zeros(3)


def test_reductions_over_empty_dims():
    e = bp.zeros(0, 3)
    np.testing.assert_array_equal(to_np(e.sum(0)), np.zeros(3))
    np.testing.assert_array_equal(to_np(e.prod(0)), np.ones(3))
    assert tuple(e.amax(dim=1).shape) == (0,)
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        e.amax(dim=0)  # no identity for max
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        e.max()
    with pytest.raises((IndexError, ValueError, RuntimeError)):
        e.argmax(dim=0)


PROMOTION_VS_TORCH = [
    pytest.param(
        lambda m: m.maximum(m.tensor([1.0]), m.tensor([2.0], dtype=m.float64)),
        "float64",
        id="maximum_f32_f64",
    ),
    pytest.param(
        lambda m: m.minimum(m.tensor([1, 5]), m.tensor([2.5, 2.5])), "float32", id="minimum_i_f32"
    ),
    pytest.param(lambda m: m.maximum(m.tensor([1]), m.tensor([2])), "int64", id="maximum_int"),
    pytest.param(lambda m: m.tensor([4, 9]).sqrt(), "float32", id="sqrt_int"),
    pytest.param(lambda m: m.tensor([-4, 9]).abs(), "int64", id="abs_int"),
    pytest.param(lambda m: m.tensor([4, 9]).sin(), "float32", id="sin_int"),
    pytest.param(lambda m: m.tensor([2, 3]).prod(), "int64", id="prod_int"),
    pytest.param(lambda m: m.tensor([2, 3]).amax(), "int64", id="amax_int"),
    pytest.param(lambda m: m.tensor([[2, 3]]).max(dim=1).values, "int64", id="max_dim_int"),
    pytest.param(lambda m: m.tensor([True, False]).sum(), "int64", id="sum_bool"),
    pytest.param(lambda m: m.tensor([1.0, 2.0]).argmax(), "int64", id="argmax"),
    pytest.param(lambda m: m.tensor([1, 2]).clamp(0, 1), "int64", id="clamp_int"),
    pytest.param(
        lambda m: m.cat([m.tensor([1.0]), m.tensor([2.0], dtype=m.float64)]),
        "float64",
        id="cat_f32_f64",
    ),
    pytest.param(lambda m: m.stack([m.tensor([1]), m.tensor([2.0])]), "float32", id="stack_i_f"),
    pytest.param(lambda m: m.tensor([[1, 2]]) @ m.tensor([[3], [4]]), "int64", id="matmul_int"),
    pytest.param(lambda m: m.tensor([3.0, 4.0]).var(), "float32", id="var_f32"),
]


@pytest.mark.parametrize("expr, want", PROMOTION_VS_TORCH)
def test_dtypes_vs_torch(expr, want):
    torch = pytest.importorskip("torch")
    assert dtype_name(expr(torch)) == want
    assert dtype_name(expr(bp)) == want


def test_api_surface():
    """Every op under PyTorch's name: bp.*, Tensor methods, bp.nn.functional."""
    functions = (
        "abs sqrt exp log sin cos tanh sigmoid relu clamp maximum minimum where sum mean prod "
        "var std max min amax amin logsumexp argmax argmin reshape flatten squeeze unsqueeze "
        "transpose permute gather cat stack matmul detect_anomaly"
    ).split()
    methods = (
        "abs sqrt exp log sin cos tanh sigmoid relu clamp maximum minimum sum mean prod var std "
        "max min amax amin logsumexp argmax argmin reshape view flatten squeeze unsqueeze "
        "transpose permute expand contiguous clone gather matmul add_ sub_ mul_ div_ zero_ fill_ "
        "copy_ clamp_ __iadd__ __isub__ __imul__ __itruediv__ __getitem__"
    ).split()
    nnf = (
        "relu leaky_relu gelu softplus tanh sigmoid softmax log_softmax cross_entropy nll_loss "
        "mse_loss binary_cross_entropy_with_logits linear conv2d max_pool2d avg_pool2d dropout"
    ).split()
    f = importlib.import_module("bprop.nn.functional")
    missing = [f"bp.{n}" for n in functions if not hasattr(bp, n)]
    missing += [f"Tensor.{n}" for n in methods if not hasattr(bp.Tensor, n)]
    missing += [f"F.{n}" for n in nnf if not hasattr(f, n)]
    missing += [
        f"bp.testing.{n}"
        for n in ("gradcheck", "gradgradcheck", "GradcheckError")
        if not hasattr(importlib.import_module("bprop.testing"), n)
    ]
    assert not missing, missing


@pytest.mark.parametrize(
    "expr",
    [
        pytest.param(lambda a, b: a < b, id="lt_bcast"),
        pytest.param(lambda a, b: a >= b, id="ge_bcast"),
        pytest.param(lambda a, b: a == b, id="eq_bcast"),
        pytest.param(lambda a, b: a != b, id="ne_bcast"),
        pytest.param(lambda a, b: 0.5 < a, id="scalar_lt_reflected"),
        pytest.param(lambda a, b: 0.5 >= b, id="scalar_ge_reflected"),
        pytest.param(lambda a, b: a == 1.0, id="eq_scalar"),
        pytest.param(lambda a, b: a.T[::2] > b.T, id="noncontig"),
    ],
)
def test_comparisons_broadcast_and_reflected(expr):
    a_np = np.array([[1.0, 0.5, -2.0, 1.0], [0.0, 3.0, 0.5, 1.0], [1.0, 1.0, 2.0, -1.0]])
    b_np = np.array([[1.0], [0.5], [3.0]])
    a, b = bp.tensor(a_np, requires_grad=True), bp.tensor(b_np)
    got = expr(a, b)
    want = expr(a_np, b_np)
    assert got.dtype == bp.bool and not got.requires_grad
    np.testing.assert_array_equal(to_np(got), want)


# Sizes past any threading / vectorisation threshold (forward and gradients vs PyTorch only:
# finite differences would be too slow here). Non-contiguous and broadcast variants included.
LARGE = [
    pytest.param(lambda m, a, b: (a * b).sum(), [(300, 257), (257,)], id="mul_bcast_sum"),
    pytest.param(
        lambda m, a, b: m.maximum(a, b.T).amax(dim=0), [(257, 300), (300, 257)], id="max_T"
    ),
    pytest.param(lambda m, a: a.logsumexp(dim=1), [(129, 1031)], id="logsumexp"),
    pytest.param(lambda m, a: a.T.logsumexp(dim=0), [(1031, 129)], id="logsumexp_T"),
    pytest.param(lambda m, a: a.var(dim=0), [(1031, 67)], id="var_dim0"),
    pytest.param(lambda m, a: a.prod(dim=1), [(5000, 7)], id="prod"),
    pytest.param(lambda m, a: a[::3, 1::2].sqrt(), [(601, 400)], id="sqrt_stepped"),
    pytest.param(lambda m, a: a.max(dim=1).values, [(513, 517)], id="max_dim"),
    pytest.param(lambda m, a: a.amin(dim=(0, 2)), [(33, 65, 67)], id="amin_tuple"),
    pytest.param(lambda m, a, b: a @ b, [(130, 257), (257, 129)], id="mm"),
    pytest.param(lambda m, a, b: a @ b, [(7, 65, 33), (7, 33, 66)], id="bmm"),
    pytest.param(lambda m, a, b: a.T @ b.transpose(1, 2), [(129, 65), (3, 33, 129)], id="bmm_T"),
    pytest.param(lambda m, a: F(m).softmax(a, dim=1), [(257, 513)], id="softmax"),
    pytest.param(lambda m, a: F(m).log_softmax(a.T, dim=1), [(513, 257)], id="log_softmax_T"),
    pytest.param(
        lambda m, a: F(m).cross_entropy(a, m.tensor(np.arange(1000) % 37)),
        [(1000, 37)],
        id="cross_entropy",
    ),
    pytest.param(
        lambda m, x, w, b: F(m).conv2d(x, w, b, stride=1, padding=1),
        [(4, 8, 33, 31), (16, 8, 3, 3), (16,)],
        id="conv2d",
    ),
    pytest.param(lambda m, x: F(m).max_pool2d(x, 3, 2, 1), [(4, 8, 33, 31)], id="max_pool2d"),
    pytest.param(lambda m, x: F(m).avg_pool2d(x, 2), [(4, 8, 33, 31)], id="avg_pool2d"),
    pytest.param(
        lambda m, a: a.gather(1, m.tensor(np.arange(300 * 100).reshape(300, 100) % 257)),
        [(300, 257)],
        id="gather",
    ),
    pytest.param(lambda m, a: a[m.tensor(np.arange(5000) % 97)], [(97, 301)], id="index_repeated"),
    pytest.param(lambda m, a, b: m.cat([a, b.T], dim=1), [(300, 257), (129, 300)], id="cat_T"),
]


@pytest.mark.parametrize("fn, shapes", LARGE)
def test_large_inputs_vs_torch(fn, shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(99)
    arrays = [rng.uniform(0.5, 1.5, size=s) for s in shapes]
    outs, grads = [], []
    for m in (bp, torch):
        xs = leaves(m, arrays, "float64")
        out = fn(m, *xs)
        v = np.random.default_rng(5).standard_normal(tuple(out.shape))
        gs = _grad(m, out, xs, grad_outputs=m.tensor(v))
        outs.append(to_np(out))
        grads.append([to_np(g) for g in gs])
    np.testing.assert_allclose(outs[0], outs[1], rtol=1e-10, atol=1e-12)
    for g, w in zip(*grads):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)

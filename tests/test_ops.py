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
import zlib
from typing import Any, Callable

import bprop as bp
import numpy as np
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
    "log": ["log", "log_fn"],
    "tanh": ["tanh", "tanh_fn", "tanh_0d"],
    "sigmoid": ["sigmoid", "sigmoid_fn"],
    "relu": ["relu", "relu_fn"],
    "where": ["where", "where_bcast", "where_bcast_both", "where_compare"],
    "to_dtype": ["to_float64", "double", "float"],
    "sum": ["sum_all", "sum_dim0", "sum_dim_neg", "sum_dim_tuple", "sum_keepdim", "mean_all"],
    "mm": ["matmul", "matmul_outer", "matmul_transposed", "matmul_transposed_rhs"],
    "reshape": ["reshape", "reshape_flat", "reshape_infer", "reshape_noncontig"],
    "permute": ["permute", "permute_neg", "permute_2d", "transpose", "transpose_3d", "T"],
    "expand": ["expand", "expand_keep", "sum_dim_tuple", "mean_keepdim_tuple"],
}
NONDIFFERENTIABLE_OPS = {"eq", "ne", "lt", "le", "gt", "ge"}


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

// The one list of ops. Adding an op touches this list, its definition (forward and VJP side
// by side in the file of its family), one binding line, and its tests; tests enumerate
// op_names() so that no op ships without a gradient test.
//
// Derived ops (mean, transpose, sum_to, clone, matmul of vectors) compose these primitives
// and get their gradients from them.
#pragma once

#include <cstdint>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

//            kind       name        grad_fn name
#define BPROP_DIFFERENTIABLE_OPS(X)        \
  X(Add, add, "AddBackward0")              \
  X(Sub, sub, "SubBackward0")              \
  X(Mul, mul, "MulBackward0")              \
  X(Div, div, "DivBackward0")              \
  X(Neg, neg, "NegBackward0")              \
  X(PowScalar, pow_scalar, "PowBackward0") \
  X(Pow, pow, "PowBackward1")              \
  X(Exp, exp, "ExpBackward0")              \
  X(Log, log, "LogBackward0")              \
  X(Tanh, tanh, "TanhBackward0")           \
  X(Sigmoid, sigmoid, "SigmoidBackward0")  \
  X(Relu, relu, "ReluBackward0")           \
  X(Where, where, "WhereBackward0")        \
  X(ToCopy, to_dtype, "ToCopyBackward0")   \
  X(Sum, sum, "SumBackward0")              \
  X(Mm, mm, "MmBackward0")                 \
  X(Reshape, reshape, "ReshapeBackward0")  \
  X(Permute, permute, "PermuteBackward0")  \
  X(Expand, expand, "ExpandBackward0")

#define BPROP_NONDIFFERENTIABLE_OPS(X) \
  X(Eq, eq, "")                        \
  X(Ne, ne, "")                        \
  X(Lt, lt, "")                        \
  X(Le, le, "")                        \
  X(Gt, gt, "")                        \
  X(Ge, ge, "")

enum class OpKind : uint8_t {
#define BPROP_OP_ENUM(kind, name, grad_fn_name) kind,
  BPROP_DIFFERENTIABLE_OPS(BPROP_OP_ENUM) BPROP_NONDIFFERENTIABLE_OPS(BPROP_OP_ENUM)
#undef BPROP_OP_ENUM
      Count
};

class OpNode;
using VjpFn = std::vector<Tensor> (*)(OpNode& node, const Tensor& grad_output);

// Each differentiable op's VJP, defined beside its forward.
#define BPROP_OP_VJP_DECL(kind, name, grad_fn_name) \
  std::vector<Tensor> vjp_##name(OpNode& node, const Tensor& grad_output);
BPROP_DIFFERENTIABLE_OPS(BPROP_OP_VJP_DECL)
#undef BPROP_OP_VJP_DECL

const char* op_name(OpKind kind);
const char* grad_fn_name(OpKind kind);
VjpFn op_vjp(OpKind kind);

}  // namespace bprop

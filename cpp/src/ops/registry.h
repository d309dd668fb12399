// The one list of ops. Adding an op touches this list, its definition (forward and VJP side
// by side in the file of its family), one binding line, and its tests; tests enumerate
// op_names() so that no op ships without a gradient test. A unary elementwise op is instead a
// row of BPROP_UNARY_OPS (bprop/ops.h), from which its declaration, registry row and binding
// derive, plus a row of BPROP_UNARY_KERNELS (kernels/kernels.h) for its scalar kernel.
//
// Derived ops (mean, transpose, sum_to, clone, matmul of vectors) compose these primitives
// and get their gradients from them.
#pragma once

#include <cstdint>
#include <vector>

#include "bprop/ops.h"
#include "bprop/tensor.h"

namespace bprop {

// Rows are X(kind, name, grad_fn name); the unary elementwise ops come from their own list,
// BPROP_UNARY_OPS in bprop/ops.h, whose rows carry a docstring as a fourth argument. So an X
// given to these lists takes (kind, name, ...) and reads the grad_fn name with
// BPROP_OP_GRAD_FN_NAME(__VA_ARGS__).
#define BPROP_OP_GRAD_FN_NAME(...) BPROP_OP_FIRST_(__VA_ARGS__, )
#define BPROP_OP_FIRST_(first, ...) first

// clang-format off
//  kind           name            grad_fn name
#define BPROP_DIFFERENTIABLE_OPS(X)                     \
  /* elementwise: ops/elementwise.cpp */                \
  X(Add,           add,            "AddBackward0")      \
  X(Sub,           sub,            "SubBackward0")      \
  X(Mul,           mul,            "MulBackward0")      \
  X(Div,           div,            "DivBackward0")      \
  X(PowScalar,     pow_scalar,     "PowBackward0")      \
  X(Pow,           pow,            "PowBackward1")      \
  BPROP_UNARY_OPS(X) /* neg, exp, log, ...: bprop/ops.h */ \
  X(Maximum,       maximum,        "MaximumBackward0")  \
  X(Minimum,       minimum,        "MinimumBackward0")  \
  X(Where,         where,          "WhereBackward0")    \
  X(ToCopy,        to_dtype,       "ToCopyBackward0")   \
  /* reductions: ops/reduce.cpp */                      \
  X(Sum,           sum,            "SumBackward0")      \
  X(Prod,          prod,           "ProdBackward0")     \
  X(Amax,          amax,           "AmaxBackward0")     \
  X(Amin,          amin,           "AminBackward0")     \
  X(MaxDim,        max_dim,        "MaxBackward0")      \
  X(MinDim,        min_dim,        "MinBackward0")      \
  /* linear algebra: ops/linalg.cpp */                  \
  X(Mm,            mm,             "MmBackward0")       \
  X(Bmm,           bmm,            "BmmBackward0")      \
  /* shape and indexing: ops/shape.cpp, ops/index.cpp */\
  X(Reshape,       reshape,        "ViewBackward0")     \
  X(Permute,       permute,        "PermuteBackward0")  \
  X(Expand,        expand,         "ExpandBackward0")   \
  X(Slice,         slice,          "SliceBackward0")    \
  X(SliceBackward, slice_backward, "SliceBackwardBackward0") \
  X(Cat,           cat,            "CatBackward0")      \
  X(AsStrided,     as_strided,     "AsStridedBackward0") \
  X(AsStridedScatter, as_strided_scatter, "AsStridedScatterBackward0") \
  X(Gather,        gather,         "GatherBackward0")   \
  X(ScatterAdd,    scatter_add,    "ScatterAddBackward0") \
  X(IndexSelect,   index_select,   "IndexSelectBackward0") \
  X(IndexAdd,      index_add,      "IndexAddBackward0") \
  /* convolution and pooling: ops/nn.cpp */             \
  X(Unfold2d,      unfold2d,       "Im2ColBackward0")   \
  X(Fold2d,        fold2d,         "Col2ImBackward0")    \
  /* normalisation: ops/nn.cpp */                       \
  X(LayerNorm,     layer_norm,     "NativeLayerNormBackward0") \
  X(RmsNorm,       rms_norm,       "FusedRmsNormBackward0") \
  /* activations: ops/nn.cpp */                         \
  X(Gelu,          gelu,           "GeluBackward0")      \
  X(Softmax,       softmax,        "SoftmaxBackward0")   \
  X(LogSoftmax,    log_softmax,    "LogSoftmaxBackward0") \
  /* losses: ops/nn.cpp */                              \
  X(CrossEntropy,  cross_entropy,  "NllLossBackward0")   \
  /* attention: ops/nn.cpp */                           \
  X(ScaledDotProductAttention, scaled_dot_product_attention, \
    "ScaledDotProductFlashAttentionForCpuBackward0")

#define BPROP_NONDIFFERENTIABLE_OPS(X) \
  X(Eq,     eq,     "")                \
  X(Ne,     ne,     "")                \
  X(Lt,     lt,     "")                \
  X(Le,     le,     "")                \
  X(Gt,     gt,     "")                \
  X(Ge,     ge,     "")                \
  X(ArgMax, argmax, "")                \
  X(ArgMin, argmin, "")                \
  X(ArgSort, argsort, "")
// clang-format on

enum class OpKind : uint8_t {
#define BPROP_OP_ENUM(kind, ...) kind,
  BPROP_DIFFERENTIABLE_OPS(BPROP_OP_ENUM) BPROP_NONDIFFERENTIABLE_OPS(BPROP_OP_ENUM)
#undef BPROP_OP_ENUM
      Count
};

class OpNode;
using VjpFn = std::vector<Tensor> (*)(OpNode& node, const Tensor& grad_output);

// Each differentiable op's VJP, defined beside its forward.
#define BPROP_OP_VJP_DECL(kind, name, ...) \
  std::vector<Tensor> vjp_##name(OpNode& node, const Tensor& grad_output);
BPROP_DIFFERENTIABLE_OPS(BPROP_OP_VJP_DECL)
#undef BPROP_OP_VJP_DECL

const char* op_name(OpKind kind);
const char* grad_fn_name(OpKind kind);
VjpFn op_vjp(OpKind kind);

}  // namespace bprop

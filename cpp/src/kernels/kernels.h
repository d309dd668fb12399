// Dense kernels: loops over raw buffers described by shape and strides. No graph, no Tensor.
//
// Elementwise kernels take operands that all share one iteration shape; a broadcast input
// has stride 0 in the dimensions it is repeated along. Strides are in elements and may be
// negative. The callers (ops/) have already promoted inputs to the kernel's dtype.
#pragma once

#include <cstdint>

#include "bprop/dtype.h"

namespace bprop::kernels {

struct Operand {
  void* data;  // address of element 0
  DType dtype;
  const int64_t* strides;  // in elements, one per iteration dimension
};

enum class UnaryOp { Neg, Exp, Log, Tanh, Sigmoid, Relu };
enum class BinaryOp { Add, Sub, Mul, Div, Pow };
enum class CompareOp { Eq, Ne, Lt, Le, Gt, Ge };

// out = op(in); out and in have the same dtype.
void unary(UnaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// out = a op b; all three have the same dtype.
void binary(BinaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
            const Operand& b);
// out (bool) = a op b; a and b have the same dtype.
void compare(CompareOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
             const Operand& b);
// out = cond ? a : b; cond is bool, the others share a dtype.
void where(int ndim, const int64_t* shape, const Operand& out, const Operand& cond,
           const Operand& a, const Operand& b);
// out = in, converting between any two dtypes.
void copy(int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// out = value for every element.
void fill(int ndim, const int64_t* shape, const Operand& out, double value);
// out += alpha * in, in place; same dtype (floating point).
void add_scaled(int ndim, const int64_t* shape, const Operand& out, const Operand& in,
                double alpha);
// out = sum of in over the dimensions where out's stride is 0 (out is pre-broadcast to the
// iteration shape). Floats accumulate in double, integers and bools in int64.
void sum(int ndim, const int64_t* shape, const Operand& out, const Operand& in);
// C[M, N] = A[M, K] @ B[K, N], all row-major with leading dimensions lda, ldb, ldc.
void gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b,
          int64_t ldb, void* c, int64_t ldc);

}  // namespace bprop::kernels

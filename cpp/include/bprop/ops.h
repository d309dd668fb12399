// Operations on tensors. Each differentiable op records a Node when grad mode is on and an
// input requires grad (see autograd.h). Semantics follow PyTorch: numpy broadcasting for
// elementwise ops, PyTorch's type promotion (Python numbers never upcast a tensor of their
// kind), and errors that name the op and the shapes:
//
//   [matmul] shapes (3, 4) and (5, 6) are not aligned: 4 != 5
//
// Every op lives in the registry (src/ops/registry.h); op_names() lists it.
#pragma once

#include <string>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

using Dims = SmallVector<int64_t, 6>;

// ---- creation (creation.cpp, random.cpp) ----
Tensor zeros(const Shape& shape, DType dtype = default_dtype());
Tensor ones(const Shape& shape, DType dtype = default_dtype());
Tensor full(const Shape& shape, Scalar value, DType dtype);
Tensor zeros_like(const Tensor& like);
Tensor ones_like(const Tensor& like);
Tensor full_like(const Tensor& like, Scalar value);
Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype);
Tensor linspace(double start, double end, int64_t steps, DType dtype = default_dtype());
Tensor eye(int64_t n, int64_t m, DType dtype = default_dtype());
// A copy of n-d data at `data` with strides in bytes (any sign, any order).
Tensor from_strided_data(const void* data, const Shape& shape, const Shape& byte_strides,
                         DType dtype);

void manual_seed(uint64_t seed);
Tensor rand(const Shape& shape, DType dtype = default_dtype());
Tensor randn(const Shape& shape, DType dtype = default_dtype());
Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype = DType::Int64);

// ---- elementwise (ops/elementwise.cpp) ----
Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);  // true division: ints give floats
Tensor pow(const Tensor& base, const Tensor& exponent);
Tensor add(const Tensor& a, Scalar b);
Tensor sub(const Tensor& a, Scalar b);
Tensor mul(const Tensor& a, Scalar b);
Tensor div(const Tensor& a, Scalar b);
Tensor pow(const Tensor& base, Scalar exponent);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor tanh(const Tensor& x);
Tensor sigmoid(const Tensor& x);
Tensor relu(const Tensor& x);
Tensor where(const Tensor& condition, const Tensor& a, const Tensor& b);
// Comparisons give bool tensors and are not differentiable.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
// Differentiable dtype conversion (gradient converted back).
Tensor to_dtype(const Tensor& x, DType dtype);

// The dtype an elementwise op of these operands computes in (PyTorch's result_type).
DType result_type(const Tensor& a, const Tensor& b);
// The shape two shapes broadcast to; throws naming `op` if they do not.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// ---- reductions (ops/reduce.cpp) ----
// `dims` empty: reduce over all dimensions.
Tensor sum(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor mean(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
// Sums a broadcast gradient back down to `shape` (the inverse of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (ops/linalg.cpp) ----
Tensor matmul(const Tensor& a, const Tensor& b);  // 2-D @ 2-D

// ---- shape (ops/shape.cpp); results are views where the layout allows ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 allowed
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const Dims& dims);
Tensor expand(const Tensor& x, const Shape& shape);  // numpy broadcast_to; -1 keeps a size

// ---- in place, outside autograd (used by optimizers) ----
// x += alpha * y on x's storage; bumps x's version. y must broadcast to x.
void add_scaled_(const Tensor& x, const Tensor& y, double alpha);
// Every element of x := value; bumps x's version.
void fill_(const Tensor& x, Scalar value);

// ---- the registry ----
struct OpInfo {
  std::string name;
  bool differentiable;
};
std::vector<OpInfo> op_names();

// Operator sugar for C++ users.
inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator+(const Tensor& a, double b) { return add(a, Scalar(b)); }
inline Tensor operator-(const Tensor& a, double b) { return sub(a, Scalar(b)); }
inline Tensor operator*(const Tensor& a, double b) { return mul(a, Scalar(b)); }
inline Tensor operator/(const Tensor& a, double b) { return div(a, Scalar(b)); }
inline Tensor operator+(double a, const Tensor& b) { return add(b, Scalar(a)); }
inline Tensor operator*(double a, const Tensor& b) { return mul(b, Scalar(a)); }
inline Tensor operator-(double a, const Tensor& b) { return add(neg(b), Scalar(a)); }

}  // namespace bprop

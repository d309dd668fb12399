// Operations on tensors. Each differentiable op records a Node when grad mode is on and an
// input requires grad (see autograd.h). Semantics follow PyTorch: numpy broadcasting for
// elementwise ops, PyTorch's type promotion (Python numbers never upcast a tensor of their
// kind), and errors that name the op and the shapes:
//
//   [matmul] shapes (3, 4) and (5, 6) are not aligned: 4 != 5
//
// Every op lives in the registry (src/ops/registry.h); op_names() lists it.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bprop/tensor.h"
#include "bprop/window.h"

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
// A tensor sharing memory it does not own (a numpy array, a DLPack export): `first` addresses
// element [0, ..., 0], `strides` are in elements (any sign), the data is aligned to the
// element size and stays valid until `owner`, released with the last tensor viewing it, goes.
Tensor view_external(char* first, const Shape& shape, const Shape& strides, DType dtype,
                     std::shared_ptr<void> owner);

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
// The unary elementwise ops, one row each: the registry (src/ops/registry.h), these
// declarations and the Python bindings (function and Tensor method, with the docstring) are
// all derived from this list. X(kind, name, grad_fn name, docstring).
// clang-format off
#define BPROP_UNARY_OPS(X)                                                                     \
  X(Neg,     neg,     "NegBackward0",     "-input, elementwise")                               \
  X(Exp,     exp,     "ExpBackward0",     "e to the power of input, elementwise")              \
  X(Expm1,   expm1,   "Expm1Backward0",   "exp(input) - 1, accurate for small input")          \
  X(Log,     log,     "LogBackward0",     "The natural logarithm of input, elementwise")       \
  X(Log1p,   log1p,   "Log1PBackward0",   "log(1 + input), accurate for small input")          \
  X(Tanh,    tanh,    "TanhBackward0",    "The hyperbolic tangent of input, elementwise")      \
  X(Sigmoid, sigmoid, "SigmoidBackward0", "1 / (1 + exp(-input)), elementwise")                \
  X(Relu,    relu,    "ReluBackward0",    "max(input, 0), elementwise (NaN stays NaN)")        \
  X(Abs,     abs,     "AbsBackward0",     "The absolute value of input, elementwise")          \
  X(Sign,    sign,    "SignBackward0",    "-1, 0 or 1 by the sign of input (NaN stays NaN); gradient 0") \
  X(Sqrt,    sqrt,    "SqrtBackward0",    "The square root of input, elementwise")             \
  X(Sin,     sin,     "SinBackward0",     "The sine of input (radians), elementwise")          \
  X(Cos,     cos,     "CosBackward0",     "The cosine of input (radians), elementwise")        \
  X(Erf,     erf,     "ErfBackward0",     "The error function of input, elementwise")
// clang-format on
#define BPROP_DECLARE_UNARY_OP(kind, name, grad_fn_name, doc) Tensor name(const Tensor& x);
BPROP_UNARY_OPS(BPROP_DECLARE_UNARY_OP)
#undef BPROP_DECLARE_UNARY_OP
// NaN propagates; at ties the gradient is split in half between a and b (PyTorch's rule).
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
// An undefined bound is absent; at least one must be given.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max);
Tensor clamp(const Tensor& x, std::optional<Scalar> min, std::optional<Scalar> max);
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
Tensor prod(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
// Gradients of amax/amin (and max/min over all elements) are split evenly among ties.
Tensor amax(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor amin(const Tensor& x, const Dims& dims = {}, bool keepdim = false);
Tensor max(const Tensor& x);
Tensor min(const Tensor& x);
// (values, indices) along dim; the index is the first occurrence, and the gradient goes to it.
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim = false);
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim = false);
// Over all elements (flattened) when dim is absent.
Tensor argmax(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
Tensor argmin(const Tensor& x, std::optional<int64_t> dim = std::nullopt, bool keepdim = false);
// The positions that sort x along dim (a stable sort: ties keep their order; NaN is the
// largest value). Not differentiable: sorted values are gather(x, dim, argsort(x, dim)).
Tensor argsort(const Tensor& x, int64_t dim = -1, bool descending = false);
// Divides by max(0, N - correction); correction=1 is the unbiased estimate.
Tensor var(const Tensor& x, const Dims& dims = {}, double correction = 1.0, bool keepdim = false);
Tensor stddev(const Tensor& x, const Dims& dims = {}, double correction = 1.0,
              bool keepdim = false);
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim = false);
// Sums a broadcast gradient back down to `shape` (the inverse of expand).
Tensor sum_to(const Tensor& x, const Shape& shape);

// ---- linear algebra (ops/linalg.cpp) ----
// torch.matmul: vector.vector, matrix.vector, vector.matrix, matrix.matrix, and batches with
// broadcast batch dimensions.
Tensor matmul(const Tensor& a, const Tensor& b);
Tensor mm(const Tensor& a, const Tensor& b);   // (n, k) @ (k, m)
Tensor bmm(const Tensor& a, const Tensor& b);  // (B, n, k) @ (B, k, m)

// ---- shape (ops/shape.cpp); results are views where the layout allows ----
Tensor reshape(const Tensor& x, const Shape& shape);  // one -1 allowed
Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1);
Tensor permute(const Tensor& x, const Dims& dims);
Tensor expand(const Tensor& x, const Shape& shape);  // numpy broadcast_to; -1 keeps a size
// Like reshape, but never copies: throws when x's strides don't allow the view.
Tensor view(const Tensor& x, const Shape& shape);
Tensor flatten(const Tensor& x, int64_t start_dim = 0, int64_t end_dim = -1);
// Drops the given size-1 dims (all size-1 dims when absent); other dims are left alone.
Tensor squeeze(const Tensor& x, std::optional<Dims> dims = std::nullopt);
Tensor unsqueeze(const Tensor& x, int64_t dim);
// Elements start, start + step, ... (size of them) along dim, as a view.
Tensor slice(const Tensor& x, int64_t dim, int64_t start, int64_t step, int64_t size);
// The adjoint of slice: zeros of `shape` with g at the sliced positions.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start,
                      int64_t step);
// x[..., index, ...] along dim (a view); negative indices count from the end.
Tensor select(const Tensor& x, int64_t dim, int64_t index);
// The view of x's row-major layout with these strides and offset (elements), and its adjoint:
// base with src written into that view's positions. Views must not overlap themselves.
Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset);
Tensor as_strided_scatter(const Tensor& base, const Tensor& src, const Shape& strides,
                          int64_t offset);
Tensor cat(const std::vector<Tensor>& tensors, int64_t dim = 0);
Tensor stack(const std::vector<Tensor>& tensors, int64_t dim = 0);

// ---- indexing (ops/index.cpp) ----
// out[i][j] = x[index[i][j]][j] for dim 0, and so on (PyTorch's gather).
Tensor gather(const Tensor& x, int64_t dim, const Tensor& index);
// base + src added at `index` along dim (the adjoint of gather); repeated indices accumulate.
Tensor scatter_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
// The slices of x at the positions in a 1-d int64 index, along dim.
Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
// base + src slices added at `index` along dim (the adjoint of index_select).
Tensor index_add(const Tensor& base, int64_t dim, const Tensor& index, const Tensor& src);
// The (n, ndim) int64 coordinates of the nonzero (true) elements, in row-major order.
Tensor nonzero(const Tensor& x);

// One item of x[...]: what Python writes between the brackets.
struct IndexItem {
  enum class Kind { Int, Slice, None, Ellipsis, Tensor };
  Kind kind = Kind::Slice;
  int64_t index = 0;                   // Int
  std::optional<int64_t> start, stop;  // Slice
  int64_t step = 1;                    // Slice
  Tensor tensor;                       // Tensor: int64 indices or a bool mask
};
// x[items], with numpy's and PyTorch's rules: ints, slices, None and Ellipsis give views;
// integer tensors and bool masks select (advanced indexing) and copy.
Tensor index(const Tensor& x, const std::vector<IndexItem>& items);

// ---- neural-network functions (ops/nn.cpp), as torch.nn.functional ----
enum class Reduction { None, Mean, Sum };
// im2col: (N, C, H, W) -> (N, C * kh * kw, OH * OW); padding reads as pad_value.
Tensor unfold2d(const Tensor& x, const Window2d& window, double pad_value = 0.0);
// col2im, the adjoint of unfold2d (overlapping windows accumulate).
Tensor fold2d(const Tensor& cols, const Shape& output_shape, const Window2d& window);
// The window's kernel size comes from weight; bias may be undefined.
Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Window2d window,
              int64_t groups = 1);
Tensor max_pool2d(const Tensor& input, Window2d window);
Tensor avg_pool2d(const Tensor& input, Window2d window);  // padding counts in the mean
Tensor softmax(const Tensor& x, int64_t dim);
Tensor log_softmax(const Tensor& x, int64_t dim);
// Targets: int64 class indices; weight (C,) may be undefined.
Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const Tensor& weight = Tensor(),
                Reduction reduction = Reduction::Mean, int64_t ignore_index = -100);
// Targets: int64 class indices, or class probabilities of the input's shape.
Tensor cross_entropy(const Tensor& input, const Tensor& target, const Tensor& weight = Tensor(),
                     Reduction reduction = Reduction::Mean, int64_t ignore_index = -100,
                     double label_smoothing = 0.0);
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::Mean);
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target,
                                        const Tensor& weight = Tensor(),
                                        Reduction reduction = Reduction::Mean,
                                        const Tensor& pos_weight = Tensor());
Tensor linear(const Tensor& input, const Tensor& weight, const Tensor& bias = Tensor());
// Normalises over the last normalized_ndim dimensions: (x - mean) / sqrt(var + eps) (biased
// variance), then * weight + bias where defined (each of the normalized shape). One pass
// forward and one backward (kernels::norm_rows); its VJP under create_graph is made of ops.
Tensor layer_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight = Tensor(),
                  const Tensor& bias = Tensor(), double eps = 1e-5);
// x / sqrt(mean(x^2) + eps) over the last normalized_ndim dimensions, then * weight.
Tensor rms_norm(const Tensor& x, int64_t normalized_ndim, const Tensor& weight, double eps);
// softmax(q k^T * scale, masked above the diagonal when is_causal) v over the last two
// dimensions of (..., L, E), (..., S, E), (..., S, Ev) with the same leading dimensions; tiled
// with an online softmax (kernels::attention_forward), its VJP under create_graph made of ops.
Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v,
                                    bool is_causal, double scale);
Tensor leaky_relu(const Tensor& x, double negative_slope = 0.01);
Tensor gelu(const Tensor& x, bool tanh_approximation = false);
Tensor softplus(const Tensor& x, double beta = 1.0, double threshold = 20.0);
// Zeroes elements with probability p (from the rand generator) and scales the rest by
// 1 / (1 - p); the identity when not training.
Tensor dropout(const Tensor& x, double p = 0.5, bool training = true);

// ---- in place, outside autograd (used by optimizers and captured steps) ----
// dst's values := src's (same shape; dtype converted); bumps dst's version.
void assign_(const Tensor& dst, const Tensor& src);
// x += alpha * y on x's storage; bumps x's version. y must broadcast to x.
void add_scaled_(const Tensor& x, const Tensor& y, double alpha);

// ---- in place, with autograd (ops/inplace.cpp) ----
// Each writes its result into self's storage, bumps its version and returns self. As in
// PyTorch: refused on a leaf that requires grad while grad mode is on; on a non-leaf, self's
// history is rebased onto the op (see Note [In-place ops and autograd] in inplace.cpp).
Tensor add_(const Tensor& self, const Tensor& other, Scalar alpha = Scalar(int64_t{1}));
Tensor sub_(const Tensor& self, const Tensor& other, Scalar alpha = Scalar(int64_t{1}));
Tensor mul_(const Tensor& self, const Tensor& other);
Tensor div_(const Tensor& self, const Tensor& other);
Tensor clamp_(const Tensor& self, const Tensor& min, const Tensor& max);
Tensor fill_(const Tensor& self, Scalar value);
Tensor zero_(const Tensor& self);
Tensor copy_(const Tensor& self, const Tensor& src);  // src broadcast to self's shape

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

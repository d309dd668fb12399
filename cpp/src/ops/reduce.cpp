// Reductions: sum, prod, amax/amin, max/min along a dim (registry ops), and those composed
// from them (mean, var, std, logsumexp, argmax/argmin, sum_to).
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

// Sorted, deduplicated, non-negative dims; empty `dims` means all of them.
Dims normalize_dims(const Dims& dims, int64_t ndim, const char* op) {
  Dims out;
  if (dims.empty()) {
    for (int64_t d = 0; d < ndim; ++d) out.push_back(d);
    return out;
  }
  SmallVector<bool, 8> seen(static_cast<size_t>(std::max<int64_t>(ndim, 1)), false);
  for (int64_t dim : dims) {
    int64_t d = normalize_dim(dim, ndim, op);
    if (seen[static_cast<size_t>(d)])
      throw std::invalid_argument(std::string("[") + op + "] dimension " + std::to_string(dim) +
                                  " appears multiple times in the list of dims");
    seen[static_cast<size_t>(d)] = true;
  }
  for (int64_t d = 0; d < ndim; ++d)
    if (seen[static_cast<size_t>(d)]) out.push_back(d);
  return out;
}

Shape keepdim_shape(const Shape& shape, const Dims& dims) {
  Shape out = shape;
  for (int64_t d : dims) out[static_cast<size_t>(d)] = 1;
  return out;
}

Shape reduced_shape(const Shape& shape, const Dims& dims) {
  Shape out;
  size_t next = 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (next < dims.size() && dims[next] == static_cast<int64_t>(d)) {
      ++next;
      continue;
    }
    out.push_back(shape[d]);
  }
  return out;
}

// The reduction of x over normalised dims into a fresh tensor of `dtype`.
Tensor reduce_forward(kernels::ReduceOp op, const Tensor& x, const Dims& dims, bool keepdim,
                      DType dtype) {
  Shape kept = keepdim_shape(x.shape(), dims);
  Tensor out = Tensor::empty(kept, dtype);
  Shape out_strides = out.strides();
  for (int64_t d : dims) out_strides[static_cast<size_t>(d)] = 0;
  launch(kernels::reduce, op, static_cast<int>(x.ndim()), x.shape().data(),
         {out.data(), dtype, out_strides.data()}, {x.data(), x.dtype(), x.strides().data()});
  if (keepdim) return out;
  Shape shape = reduced_shape(x.shape(), dims);
  return Tensor::view_of(out.storage(), shape, contiguous_strides(shape), 0, dtype);
}

// A gradient (or output) of a reduction, with the reduced dims restored as size 1.
Tensor restore_dims(const Tensor& t, const OpNode& node) {
  const ReducedDims& r = node.state<ReducedDims>();
  return r.keepdim ? t : reshape(t, keepdim_shape(node.input(0).shape, r.dims));
}

void require_nonempty(const char* op, const Tensor& x, const Dims& dims) {
  for (int64_t d : dims)
    if (x.shape()[static_cast<size_t>(d)] == 0)
      throw std::invalid_argument(
          std::string("[") + op + "] cannot reduce over a zero-size dimension (input shape " +
          x.shape_str() + ", dim " + std::to_string(d) + "): the result has no identity");
  if (dims.empty() && x.numel() == 0)
    throw std::invalid_argument(std::string("[") + op + "] of an empty tensor (shape " +
                                x.shape_str() + ") has no value");
}

Tensor safe_scalar(double v) { return Tensor::wrapped_scalar(Scalar(v)); }

}  // namespace

// ---- sum ----

Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.ndim(), "sum");
  DType dtype = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = reduce_forward(kernels::ReduceOp::Sum, x, dims, keepdim, dtype);
  if (auto node = record(OpKind::Sum, {&x})) {
    node->set_state(ReducedDims{dims, keepdim});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// Every input element receives the gradient of the sum it went into.
std::vector<Tensor> vjp_sum(OpNode& node, const Tensor& g) {
  return {expand(restore_dims(g, node), node.input(0).shape)};
}

// ---- prod ----

Tensor prod(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.ndim(), "prod");
  DType dtype = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Tensor out = reduce_forward(kernels::ReduceOp::Prod, x, dims, keepdim, dtype);
  if (auto node = record(OpKind::Prod, {&x})) {
    node->set_state(ReducedDims{dims, keepdim});
    node->save(x);
    set_grad_fn(out, node);
    node->save_output(out);
  }
  return out;
}

// d prod / d x_i is the product of the other elements: prod / x_i without zeros; with exactly
// one zero, the product of the nonzeros at the zero and 0 elsewhere; with more, 0. Divisions
// use 1 in place of zeros so that no NaN reaches a second derivative.
std::vector<Tensor> vjp_prod(OpNode& node, const Tensor& g) {
  Tensor x = node.saved(0), y = restore_dims(node.saved(1), node);
  Tensor is_zero = eq(x, safe_scalar(0.0));
  const Dims& dims = node.state<ReducedDims>().dims;
  Tensor zeros_count = sum(is_zero, dims, /*keepdim=*/true);
  Tensor x_or_one = where(is_zero, safe_scalar(1.0), x);
  Tensor others_no_zero = div(y, x_or_one);
  Tensor nonzero_product = prod(x_or_one, dims, /*keepdim=*/true);
  Tensor single_zero_here = mul(is_zero, eq(zeros_count, safe_scalar(int64_t{1})));
  Tensor others = where(eq(zeros_count, safe_scalar(int64_t{0})), others_no_zero,
                        where(single_zero_here, nonzero_product, safe_scalar(0.0)));
  return {mul(expand(restore_dims(g, node), node.input(0).shape), others)};
}

// ---- amax, amin, max, min ----

namespace {
Tensor extreme(OpKind kind, const char* op, const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.ndim(), op);
  require_nonempty(op, x, dims);
  auto reduce_op = kind == OpKind::Amax ? kernels::ReduceOp::Max : kernels::ReduceOp::Min;
  Tensor out = reduce_forward(reduce_op, x, dims, keepdim, x.dtype());
  if (auto node = record(kind, {&x})) {
    node->set_state(ReducedDims{dims, keepdim});
    node->save(x);
    set_grad_fn(out, node);
    node->save_output(out);
  }
  return out;
}

// The gradient is split evenly among the elements equal to the extreme (PyTorch's amax rule).
std::vector<Tensor> extreme_vjp(OpNode& node, const Tensor& g) {
  Tensor x = node.saved(0), y = restore_dims(node.saved(1), node);
  Tensor selected = eq(x, y);
  Tensor count = sum(selected, node.state<ReducedDims>().dims, /*keepdim=*/true);
  Tensor share = div(restore_dims(g, node), count);
  return {where(selected, share, safe_scalar(0.0))};
}
}  // namespace

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme(OpKind::Amax, "amax", x, dims, keepdim);
}
Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme(OpKind::Amin, "amin", x, dims, keepdim);
}
std::vector<Tensor> vjp_amax(OpNode& node, const Tensor& g) { return extreme_vjp(node, g); }
std::vector<Tensor> vjp_amin(OpNode& node, const Tensor& g) { return extreme_vjp(node, g); }

Tensor max(const Tensor& x) { return extreme(OpKind::Amax, "max", x, {}, false); }
Tensor min(const Tensor& x) { return extreme(OpKind::Amin, "min", x, {}, false); }

namespace {
std::pair<Tensor, Tensor> extreme_along(OpKind kind, const char* op, const Tensor& x,
                                        int64_t dim_in, bool keepdim) {
  const int64_t dim = normalize_dim(dim_in, x.ndim(), op);
  Dims dims;
  if (x.ndim() > 0) dims.push_back(dim);
  require_nonempty(op, x, dims);
  Shape kept = keepdim_shape(x.shape(), dims);
  Tensor values = Tensor::empty(kept, x.dtype());
  Tensor indices = Tensor::empty(kept, DType::Int64);
  Shape value_strides = values.strides(), index_strides = indices.strides();
  if (x.ndim() > 0) {
    value_strides[static_cast<size_t>(dim)] = 0;
    index_strides[static_cast<size_t>(dim)] = 0;
    launch(kernels::arg_reduce, kind == OpKind::MaxDim, static_cast<int>(x.ndim()),
           x.shape().data(), static_cast<int>(dim),
           {values.data(), x.dtype(), value_strides.data()},
           {indices.data(), DType::Int64, index_strides.data()},
           {x.data(), x.dtype(), x.strides().data()});
  } else {  // a 0-d tensor is its own extreme, at index 0
    values = cast_for_kernel(x, x.dtype()).detach().clone();
    indices = Tensor::zeros(kept, DType::Int64);  // Tensor::empty leaves it uninitialised
  }
  Tensor indices_kept = indices;
  if (!keepdim && x.ndim() > 0) {
    Shape shape = reduced_shape(x.shape(), dims);
    values = Tensor::view_of(values.storage(), shape, contiguous_strides(shape), 0, x.dtype());
    indices = Tensor::view_of(indices.storage(), shape, contiguous_strides(shape), 0, DType::Int64);
  }
  if (auto node = record(kind, {&x})) {
    node->set_state(ReducedDims{dims, keepdim});
    node->save(indices_kept);
    set_grad_fn(values, std::move(node));
  }
  return {values, indices};
}

// The gradient goes to the element the forward selected (its index).
std::vector<Tensor> extreme_along_vjp(OpNode& node, const Tensor& g) {
  const Shape& input_shape = node.input(0).shape;
  const Dims& dims = node.state<ReducedDims>().dims;  // the one dim, none for a 0-d input
  if (dims.empty()) return {g};
  return {
      scatter_add(zeros(input_shape, g.dtype()), dims[0], node.saved(0), restore_dims(g, node))};
}
}  // namespace

std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along(OpKind::MaxDim, "max", x, dim, keepdim);
}
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) {
  return extreme_along(OpKind::MinDim, "min", x, dim, keepdim);
}
std::vector<Tensor> vjp_max_dim(OpNode& node, const Tensor& g) {
  return extreme_along_vjp(node, g);
}
std::vector<Tensor> vjp_min_dim(OpNode& node, const Tensor& g) {
  return extreme_along_vjp(node, g);
}

namespace {
Tensor arg_extreme(bool is_max, const char* op, const Tensor& x, std::optional<int64_t> dim,
                   bool keepdim) {
  NoGradGuard no_grad;
  const OpKind kind = is_max ? OpKind::MaxDim : OpKind::MinDim;
  // extreme_along checks under `op`, so errors name argmax/argmin.
  if (!dim) {                     // over all elements, as if flattened
    require_nonempty(op, x, {});  // names x's own shape, not the flattened one
    Tensor index = extreme_along(kind, op, reshape(x, {x.numel()}), 0, false).second;
    if (!keepdim) return index;
    return reshape(index, Shape(static_cast<size_t>(x.ndim()), 1));
  }
  return extreme_along(kind, op, x, *dim, keepdim).second;
}
}  // namespace

Tensor argmax(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme(true, "argmax", x, dim, keepdim);
}
Tensor argmin(const Tensor& x, std::optional<int64_t> dim, bool keepdim) {
  return arg_extreme(false, "argmin", x, dim, keepdim);
}

Tensor argsort(const Tensor& x, int64_t dim_in, bool descending) {
  const int64_t dim = normalize_dim(dim_in, x.ndim(), "argsort");
  if (x.ndim() == 0) return Tensor::zeros({}, DType::Int64);  // a 0-d tensor is sorted
  Tensor indices = Tensor::empty(x.shape(), DType::Int64);
  launch(kernels::argsort, descending, static_cast<int>(x.ndim()), x.shape().data(),
         static_cast<int>(dim), {indices.data(), DType::Int64, indices.strides().data()},
         {x.data(), x.dtype(), x.strides().data()});
  return indices;
}

// ---- var, std, logsumexp (composed: their gradients come from the primitives) ----

Tensor var(const Tensor& x, const Dims& dims_in, double correction, bool keepdim) {
  if (!is_floating(x.dtype()))
    throw TypeError(std::string("[var] needs a floating point input, got ") +
                    dtype_name(x.dtype()));
  Dims dims = normalize_dims(dims_in, x.ndim(), "var");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[static_cast<size_t>(d)];
  Tensor centered = sub(x, mean(x, dims, /*keepdim=*/true));
  Tensor squares = sum(mul(centered, centered), dims, keepdim);
  // NOTE: PyTorch divides by max(0, N - correction): 0 gives inf or nan, not an error.
  const double divisor = std::max(0.0, static_cast<double>(count) - correction);
  return div(squares, safe_scalar(divisor));
}

// NOTE: where var == 0 (all inputs equal their mean) var's VJP is 0 and sqrt's is inf, so a plain
// sqrt(var) backpropagates 0 * inf = NaN. PyTorch defines std's gradient there as 0; the double
// `where` sends no gradient through sqrt at var == 0. Values are unchanged (NaN and inf pass).
Tensor stddev(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  Tensor v = var(x, dims, correction, keepdim);
  Tensor nonzero = ne(v, safe_scalar(0.0));
  return where(nonzero, sqrt(where(nonzero, v, safe_scalar(1.0))), safe_scalar(0.0));
}

// log(sum(exp(x))) computed as m + log(sum(exp(x - m))) with m = max(x) held constant, so that
// large inputs neither overflow nor lose the gradient (softmax).
Tensor logsumexp(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Tensor xf = is_floating(x.dtype()) ? x : to_dtype(x, default_dtype());
  Dims dims = normalize_dims(dims_in, x.ndim(), "logsumexp");
  if (xf.numel() == 0) return log(sum(exp(xf), dims, keepdim));
  Tensor m = amax(xf.detach(), dims, /*keepdim=*/true);
  // An all -inf (or +inf) slice would give inf - inf = nan; shift by 0 there instead.
  m = where(eq(abs(m), safe_scalar(std::numeric_limits<double>::infinity())), safe_scalar(0.0), m);
  Tensor out = add(log(sum(exp(sub(xf, m)), dims, /*keepdim=*/true)), m);
  return keepdim ? out : reshape(out, reduced_shape(x.shape(), dims));
}

Tensor mean(const Tensor& x, const Dims& dims_in, bool keepdim) {
  if (!is_floating(x.dtype()))
    throw TypeError(std::string("[mean] could not infer output dtype: input dtype must be "
                                "floating point, got ") +
                    dtype_name(x.dtype()));
  Dims dims = normalize_dims(dims_in, x.ndim(), "mean");
  int64_t count = 1;
  for (int64_t d : dims) count *= x.shape()[static_cast<size_t>(d)];
  // NOTE: an empty reduction is 0 * (1/0) = nan, as in PyTorch.
  double scale = count == 0 ? std::numeric_limits<double>::infinity() : 1.0 / count;
  return mul(sum(x, dims, keepdim), Scalar(scale));
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  // A user error too (sum_to is public): `shape` must broadcast to x's shape.
  bool fits = x.shape().size() >= shape.size();
  const size_t lead = fits ? x.shape().size() - shape.size() : 0;
  for (size_t d = 0; fits && d < shape.size(); ++d)
    fits = shape[d] == 1 || shape[d] == x.shape()[d + lead];
  if (!fits)
    throw std::invalid_argument("[sum_to] cannot sum " + x.shape_str() + " to " +
                                shape_to_string(shape) + ": that shape does not broadcast to " +
                                x.shape_str());
  Dims dims;
  for (size_t d = 0; d < x.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1))
      dims.push_back(static_cast<int64_t>(d));
  Tensor summed = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
  return reshape(summed, shape);
}

}  // namespace bprop

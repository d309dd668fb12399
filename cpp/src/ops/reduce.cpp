// Reductions: sum (a registry op) and the ops derived from it (mean, sum_to).
#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
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

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims_in, bool keepdim) {
  Dims dims = normalize_dims(dims_in, x.ndim(), "sum");
  DType dtype = is_floating(x.dtype()) ? x.dtype() : DType::Int64;
  Shape kept = keepdim_shape(x.shape(), dims);
  Tensor out = Tensor::empty(kept, dtype);
  Shape out_strides = out.strides();
  for (int64_t d : dims) out_strides[static_cast<size_t>(d)] = 0;
  kernels::sum(static_cast<int>(x.ndim()), x.shape().data(),
               {out.data(), dtype, out_strides.data()}, {x.data(), x.dtype(), x.strides().data()});
  if (!keepdim) {
    Shape shape = reduced_shape(x.shape(), dims);
    out = Tensor::view_of(out.storage(), shape, contiguous_strides(shape), 0, dtype);
  }
  if (auto node = record(OpKind::Sum, {&x})) {
    node->dims = dims;
    node->keepdim = keepdim;
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// Every input element receives the gradient of the sum it went into.
std::vector<Tensor> vjp_sum(OpNode& node, const Tensor& g) {
  const Shape& input_shape = node.input(0).shape;
  Tensor g_kept = node.keepdim ? g : reshape(g, keepdim_shape(input_shape, node.dims));
  return {expand(g_kept, input_shape)};
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
  if (x.shape().size() < shape.size())
    throw std::logic_error("[sum_to] internal error: cannot sum " + x.shape_str() + " to " +
                           shape_to_string(shape));
  const size_t lead = x.shape().size() - shape.size();
  Dims dims;
  for (size_t d = 0; d < x.shape().size(); ++d)
    if (d < lead || (shape[d - lead] == 1 && x.shape()[d] != 1))
      dims.push_back(static_cast<int64_t>(d));
  Tensor summed = dims.empty() ? x : sum(x, dims, /*keepdim=*/true);
  return reshape(summed, shape);
}

}  // namespace bprop

// Shape ops: views of the same storage where the layout allows, each with its VJP.
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

Tensor alias(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  return Tensor::view_of(x.storage(), shape, strides, offset, x.dtype());
}

std::string dims_to_string(const Dims& dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

// ---- reshape ----

Tensor reshape(const Tensor& x, const Shape& requested) {
  Shape shape = requested;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0)
        throw std::invalid_argument("[reshape] only one dimension can be inferred (-1) in " +
                                    shape_to_string(requested));
      infer = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw std::invalid_argument("[reshape] invalid shape dimension " + std::to_string(shape[i]) +
                                  " in " + shape_to_string(requested));
    } else {
      known *= shape[i];
    }
  }
  const int64_t numel = x.numel();
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw std::invalid_argument("[reshape] shape " + shape_to_string(requested) +
                                  " is invalid for input of size " + std::to_string(numel));
    shape[static_cast<size_t>(infer)] = numel / known;
  } else if (known != numel) {
    throw std::invalid_argument("[reshape] shape " + shape_to_string(requested) +
                                " is invalid for input of size " + std::to_string(numel));
  }
  // A view when the data is contiguous; otherwise a contiguous copy first (outside autograd,
  // since this node's VJP covers both).
  Tensor source = contiguous_for_kernel(x);
  Tensor out = alias(source, shape, contiguous_strides(shape), source.offset());
  if (auto node = record(OpKind::Reshape, {&x})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_reshape(OpNode& node, const Tensor& g) {
  return {reshape(g, node.input(0).shape)};
}

// ---- permute, transpose ----

Tensor permute(const Tensor& x, const Dims& dims) {
  const int64_t ndim = x.ndim();
  if (static_cast<int64_t>(dims.size()) != ndim)
    throw std::invalid_argument("[permute] number of dims " + dims_to_string(dims) +
                                " does not match the tensor's " + std::to_string(ndim) +
                                " dimensions (shape " + x.shape_str() + ")");
  Dims perm;
  SmallVector<bool, 8> seen(static_cast<size_t>(ndim), false);
  for (int64_t dim : dims) {
    int64_t d = normalize_dim(dim, ndim, "permute");
    if (seen[static_cast<size_t>(d)])
      throw std::invalid_argument("[permute] repeated dim in " + dims_to_string(dims));
    seen[static_cast<size_t>(d)] = true;
    perm.push_back(d);
  }
  Shape shape(static_cast<size_t>(ndim)), strides(static_cast<size_t>(ndim));
  for (size_t i = 0; i < perm.size(); ++i) {
    shape[i] = x.shape()[static_cast<size_t>(perm[i])];
    strides[i] = x.strides()[static_cast<size_t>(perm[i])];
  }
  Tensor out = alias(x, shape, strides, x.offset());
  if (auto node = record(OpKind::Permute, {&x})) {
    node->dims = perm;
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_permute(OpNode& node, const Tensor& g) {
  Dims inverse(node.dims.size());
  for (size_t i = 0; i < node.dims.size(); ++i)
    inverse[static_cast<size_t>(node.dims[i])] = static_cast<int64_t>(i);
  return {permute(g, inverse)};
}

Tensor transpose(const Tensor& x, int64_t dim0, int64_t dim1) {
  const int64_t ndim = x.ndim();
  int64_t d0 = normalize_dim(dim0, ndim, "transpose");
  int64_t d1 = normalize_dim(dim1, ndim, "transpose");
  Dims perm;
  for (int64_t d = 0; d < ndim; ++d) perm.push_back(d);
  if (ndim > 0) std::swap(perm[static_cast<size_t>(d0)], perm[static_cast<size_t>(d1)]);
  return permute(x, perm);
}

// ---- expand ----

Tensor expand(const Tensor& x, const Shape& requested) {
  const size_t n = requested.size();
  if (n < x.shape().size())
    throw std::invalid_argument("[expand] the number of sizes provided (" + std::to_string(n) +
                                ") must be greater or equal to the number of dimensions in the "
                                "tensor (" +
                                std::to_string(x.ndim()) + ")");
  const size_t lead = n - x.shape().size();
  Shape shape(n), strides(n, 0);
  for (size_t d = 0; d < n; ++d) {
    int64_t want = requested[d];
    if (d < lead) {
      if (want < 0)
        throw std::invalid_argument(
            "[expand] the expanded size -1 is not allowed in a leading, "
            "non-existing dimension (target " +
            shape_to_string(requested) + ")");
      shape[d] = want;
      continue;
    }
    int64_t have = x.shape()[d - lead];
    if (want == -1) want = have;
    if (want != have && have != 1)
      throw std::invalid_argument(
          "[expand] the expanded size of the tensor (" + std::to_string(want) +
          ") must match the existing size (" + std::to_string(have) +
          ") at non-singleton dimension " + std::to_string(d) +
          ". Target sizes: " + shape_to_string(requested) + ". Tensor sizes: " + x.shape_str());
    if (want < 0)
      throw std::invalid_argument("[expand] invalid size " + std::to_string(want) + " in " +
                                  shape_to_string(requested));
    shape[d] = want;
    strides[d] = want == have ? x.strides()[d - lead] : 0;
  }
  Tensor out = alias(x, shape, strides, x.offset());
  if (auto node = record(OpKind::Expand, {&x})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_expand(OpNode& node, const Tensor& g) {
  return {sum_to(g, node.input(0).shape)};
}

}  // namespace bprop

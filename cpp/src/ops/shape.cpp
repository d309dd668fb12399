// Shape ops: views of the same storage where the layout allows, each with its VJP.
#include <algorithm>
#include <optional>
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

Tensor alias(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  Tensor view = Tensor::view_of(x.storage(), shape, strides, offset, x.dtype());
  view.impl()->view_base = x.impl()->view_base ? x.impl()->view_base : x.impl_ptr();
  return view;
}

// Strides that let `shape` view memory laid out as (old_shape, old_strides), or nothing when
// some new dimension would span two non-contiguous chunks (PyTorch's computeStride).
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& shape) {
  if (old_shape.empty() || shape_numel(old_shape) == 0) return contiguous_strides(shape);
  Shape strides(shape.size(), 1);
  int64_t view_d = static_cast<int64_t>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t tensor_d = static_cast<int64_t>(old_shape.size()) - 1; tensor_d >= 0; --tensor_d) {
    tensor_numel *= old_shape[static_cast<size_t>(tensor_d)];
    const bool chunk_ends = tensor_d == 0 || (old_shape[static_cast<size_t>(tensor_d - 1)] != 1 &&
                                              old_strides[static_cast<size_t>(tensor_d - 1)] !=
                                                  tensor_numel * chunk_base_stride);
    if (!chunk_ends) continue;
    while (view_d >= 0 && (view_numel < tensor_numel || shape[static_cast<size_t>(view_d)] == 1)) {
      strides[static_cast<size_t>(view_d)] = view_numel * chunk_base_stride;
      view_numel *= shape[static_cast<size_t>(view_d)];
      --view_d;
    }
    if (view_numel != tensor_numel) return std::nullopt;
    if (tensor_d > 0) {
      chunk_base_stride = old_strides[static_cast<size_t>(tensor_d - 1)];
      tensor_numel = 1;
      view_numel = 1;
    }
  }
  if (view_d != -1) return std::nullopt;
  return strides;
}

std::string dims_to_string(const Dims& dims) {
  std::string out = "(";
  for (size_t i = 0; i < dims.size(); ++i) out += (i ? ", " : "") + std::to_string(dims[i]);
  return out + (dims.size() == 1 ? ",)" : ")");
}

}  // namespace

// ---- reshape, view, flatten, squeeze, unsqueeze ----

namespace {
// The shape `requested` asks for, with its one -1 resolved for x's number of elements.
Shape resolve_shape(const char* op, const Tensor& x, const Shape& requested) {
  Shape shape = requested;
  int64_t infer = -1, known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0)
        throw std::invalid_argument(std::string("[") + op +
                                    "] only one dimension can be inferred (-1) in " +
                                    shape_to_string(requested));
      infer = static_cast<int64_t>(i);
    } else if (shape[i] < 0) {
      throw std::invalid_argument(std::string("[") + op + "] invalid shape dimension " +
                                  std::to_string(shape[i]) + " in " + shape_to_string(requested));
    } else if (__builtin_mul_overflow(known, shape[i], &known)) {
      throw std::invalid_argument(std::string("[") + op + "] shape " + shape_to_string(requested) +
                                  " has too many elements");
    }
  }
  const int64_t numel = x.numel();
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw std::invalid_argument(std::string("[") + op + "] shape " + shape_to_string(requested) +
                                  " is invalid for input of size " + std::to_string(numel));
    shape[static_cast<size_t>(infer)] = numel / known;
  } else if (known != numel) {
    throw std::invalid_argument(std::string("[") + op + "] shape " + shape_to_string(requested) +
                                " is invalid for input of size " + std::to_string(numel));
  }
  return shape;
}

// A view when the strides allow (always for contiguous x); otherwise a copy if allowed.
Tensor reshape_impl(const char* op, const Tensor& x, const Shape& requested, bool allow_copy) {
  Shape shape = resolve_shape(op, x, requested);
  Tensor out;
  if (auto strides = view_strides(x.shape(), x.strides(), shape)) {
    out = alias(x, shape, *strides, x.offset());
  } else if (allow_copy) {
    Tensor copy = contiguous_for_kernel(x);  // outside autograd: this node's VJP covers it
    out = Tensor::view_of(copy.storage(), shape, contiguous_strides(shape), 0, x.dtype());
  } else {
    throw std::runtime_error(std::string("[") + op + "] view size " + shape_to_string(shape) +
                             " is not compatible with input tensor's size " + x.shape_str() +
                             " and stride " + shape_to_string(x.strides()) +
                             " (at least one dimension spans across two contiguous subspaces)."
                             " Use .reshape(...) instead.");
  }
  if (auto node = record(OpKind::Reshape, {&x})) set_grad_fn(out, std::move(node));
  return out;
}
}  // namespace

Tensor reshape(const Tensor& x, const Shape& shape) {
  return reshape_impl("reshape", x, shape, /*allow_copy=*/true);
}

Tensor view(const Tensor& x, const Shape& shape) {
  return reshape_impl("view", x, shape, /*allow_copy=*/false);
}

Tensor flatten(const Tensor& x, int64_t start_dim, int64_t end_dim) {
  if (x.ndim() == 0) return reshape(x, {1});
  const int64_t start = normalize_dim(start_dim, x.ndim(), "flatten");
  const int64_t end = normalize_dim(end_dim, x.ndim(), "flatten");
  if (start > end)
    throw std::invalid_argument("[flatten] start_dim " + std::to_string(start_dim) +
                                " comes after end_dim " + std::to_string(end_dim));
  Shape shape;
  int64_t merged = 1;
  for (int64_t d = 0; d < x.ndim(); ++d) {
    const int64_t size = x.shape()[static_cast<size_t>(d)];
    if (d < start || d > end) {
      shape.push_back(size);
    } else {
      merged *= size;
      if (d == end) shape.push_back(merged);
    }
  }
  return reshape(x, shape);
}

Tensor squeeze(const Tensor& x, std::optional<Dims> dims) {
  SmallVector<bool, 8> drop(static_cast<size_t>(x.ndim()), false);
  if (!dims) {
    for (int64_t d = 0; d < x.ndim(); ++d)
      drop[static_cast<size_t>(d)] = x.shape()[static_cast<size_t>(d)] == 1;
  } else {
    for (int64_t dim : *dims) {
      const int64_t d = normalize_dim(dim, x.ndim(), "squeeze");
      if (x.ndim() > 0) drop[static_cast<size_t>(d)] = x.shape()[static_cast<size_t>(d)] == 1;
    }
  }
  Shape shape;
  for (int64_t d = 0; d < x.ndim(); ++d)
    if (!drop[static_cast<size_t>(d)]) shape.push_back(x.shape()[static_cast<size_t>(d)]);
  return reshape(x, shape);
}

Tensor unsqueeze(const Tensor& x, int64_t dim) {
  const int64_t d = normalize_dim(dim, x.ndim() + 1, "unsqueeze");
  Shape shape = x.shape();
  shape.insert(static_cast<size_t>(d), 1);
  return reshape(x, shape);
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
    node->set_state(Permutation{perm});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_permute(OpNode& node, const Tensor& g) {
  const Dims& perm = node.state<Permutation>().perm;
  Dims inverse(perm.size());
  for (size_t i = 0; i < perm.size(); ++i)
    inverse[static_cast<size_t>(perm[i])] = static_cast<int64_t>(i);
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
  check_countable("expand", shape);
  Tensor out = alias(x, shape, strides, x.offset());
  if (auto node = record(OpKind::Expand, {&x})) set_grad_fn(out, std::move(node));
  return out;
}

std::vector<Tensor> vjp_expand(OpNode& node, const Tensor& g) {
  return {sum_to(g, node.input(0).shape)};
}

// ---- slicing ----

// Elements start, start + step, ... (size of them) along dim: a view.
Tensor slice(const Tensor& x, int64_t dim_in, int64_t start, int64_t step, int64_t size) {
  const int64_t dim = normalize_dim(dim_in, x.ndim(), "slice");
  const int64_t length = x.shape()[static_cast<size_t>(dim)];
  if (step <= 0) throw std::invalid_argument("[slice] step must be greater than zero");
  // (size - 1) * step < length - start, written so that huge arguments can't overflow.
  if (start < 0 || size < 0 ||
      (size > 0 && (start >= length || (size - 1) > (length - 1 - start) / step)))
    throw std::out_of_range("[slice] elements " + std::to_string(start) + " + k * " +
                            std::to_string(step) + " for k < " + std::to_string(size) +
                            " are out of range for dimension " + std::to_string(dim) +
                            " with size " + std::to_string(length));
  Shape shape = x.shape(), strides = x.strides();
  shape[static_cast<size_t>(dim)] = size;
  if (size > 1) strides[static_cast<size_t>(dim)] *= step;  // step < length here: no overflow
  const int64_t offset =
      x.offset() + (size > 0 ? start * x.strides()[static_cast<size_t>(dim)] : 0);
  Tensor out = alias(x, shape, strides, offset);
  if (auto node = record(OpKind::Slice, {&x})) {
    node->set_state(SliceRange{dim, start, step});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// The gradient flows back into the sliced positions; the others get 0.
std::vector<Tensor> vjp_slice(OpNode& node, const Tensor& g) {
  const SliceRange& r = node.state<SliceRange>();
  return {slice_backward(g, node.input(0).shape, r.dim, r.start, r.step)};
}

// zeros(shape) with g written at the positions slice(dim, start, step) selects: the adjoint.
Tensor slice_backward(const Tensor& g, const Shape& shape, int64_t dim, int64_t start,
                      int64_t step) {
  Tensor out = zeros(shape, g.dtype());
  {
    NoGradGuard no_grad;
    Tensor target = slice(out, dim, start, step, g.shape()[static_cast<size_t>(dim)]);
    if (target.shape() != g.shape())
      throw std::logic_error("[slice_backward] internal error: gradient shape " + g.shape_str() +
                             " does not fit " + target.shape_str());
    copy_values(target, g);
  }
  if (auto node = record(OpKind::SliceBackward, {&g})) {
    node->set_state(SliceRange{dim, start, step});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_slice_backward(OpNode& node, const Tensor& g) {
  const SliceRange& r = node.state<SliceRange>();
  return {slice(g, r.dim, r.start, r.step, node.input(0).shape[static_cast<size_t>(r.dim)])};
}

Tensor select(const Tensor& x, int64_t dim_in, int64_t index) {
  const int64_t dim = normalize_dim(dim_in, x.ndim(), "select");
  const int64_t size = x.shape()[static_cast<size_t>(dim)];
  if (index < -size || index >= size)
    throw std::out_of_range("[index] index " + std::to_string(index) +
                            " is out of bounds for dimension " + std::to_string(dim) +
                            " with size " + std::to_string(size));
  Tensor row = slice(x, dim, index < 0 ? index + size : index, 1, 1);
  Shape shape = x.shape();
  shape.erase(static_cast<size_t>(dim));
  return reshape(row, shape);
}

// ---- cat, stack ----

Tensor cat(const std::vector<Tensor>& tensors, int64_t dim_in) {
  if (tensors.empty()) throw std::invalid_argument("[cat] expected a non-empty list of tensors");
  const Tensor& first = tensors[0];
  if (first.ndim() == 0)
    throw std::invalid_argument(
        "[cat] zero-dimensional tensor (at position 0) cannot be "
        "concatenated");
  const int64_t dim = normalize_dim(dim_in, first.ndim(), "cat");
  DType dtype = first.dtype();
  Shape shape = first.shape();
  shape[static_cast<size_t>(dim)] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    bool fits = t.ndim() == first.ndim();
    for (int64_t d = 0; fits && d < t.ndim(); ++d)
      fits = d == dim || t.shape()[static_cast<size_t>(d)] == first.shape()[static_cast<size_t>(d)];
    if (!fits)
      throw std::invalid_argument("[cat] sizes of tensors must match except in dimension " +
                                  std::to_string(dim) + ": tensor " + std::to_string(i) +
                                  " has shape " + t.shape_str() + " but tensor 0 has shape " +
                                  first.shape_str());
    if (__builtin_add_overflow(shape[static_cast<size_t>(dim)], t.shape()[static_cast<size_t>(dim)],
                               &shape[static_cast<size_t>(dim)]))
      throw std::invalid_argument("[cat] the sizes along dimension " + std::to_string(dim) +
                                  " add up to more than int64 can count");
    dtype = promote_types(dtype, t.dtype());  // result_type, as every input has dimensions
  }
  Tensor out = Tensor::empty(shape, dtype);
  {
    NoGradGuard no_grad;
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      const int64_t size = t.shape()[static_cast<size_t>(dim)];
      if (size > 0) copy_values(slice(out, dim, offset, 1, size), t);
      offset += size;
    }
  }
  std::vector<const Tensor*> inputs;
  for (const Tensor& t : tensors) inputs.push_back(&t);
  if (auto node = record(OpKind::Cat, inputs.data(), inputs.size())) {
    node->set_state(AlongDim{dim});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// Each input gets back the slice of the gradient it filled.
std::vector<Tensor> vjp_cat(OpNode& node, const Tensor& g) {
  const int64_t dim = node.state<AlongDim>().dim;
  std::vector<Tensor> grads;
  int64_t offset = 0;
  for (size_t i = 0; i < node.next_edges().size(); ++i) {
    const int64_t size = node.input(i).shape[static_cast<size_t>(dim)];
    grads.push_back(node.needs_input_grad(i) ? slice(g, dim, offset, 1, size) : Tensor());
    offset += size;
  }
  return grads;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim_in) {
  if (tensors.empty()) throw std::invalid_argument("[stack] expected a non-empty list of tensors");
  for (size_t i = 1; i < tensors.size(); ++i)
    if (tensors[i].shape() != tensors[0].shape())
      throw std::invalid_argument("[stack] expects each tensor to be equal size, but got " +
                                  tensors[0].shape_str() + " at entry 0 and " +
                                  tensors[i].shape_str() + " at entry " + std::to_string(i));
  const int64_t dim = normalize_dim(dim_in, tensors[0].ndim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (const Tensor& t : tensors) expanded.push_back(unsqueeze(t, dim));
  return cat(expanded, dim);
}

// ---- as_strided, as_strided_scatter: how in-place ops on views rewrite their base ----

namespace {
// The view (shape, strides, offset) must lie inside `numel` row-major elements: one stride per
// size, no negative size, stride or offset, and its last element (offset + sum (size - 1) *
// stride, overflow-checked) below numel; an empty view may start at most at numel.
void check_geometry(const char* op, const Shape& shape, const Shape& strides, int64_t offset,
                    int64_t numel) {
  const std::string geometry = "shape " + shape_to_string(shape) + ", strides " +
                               shape_to_string(strides) + " and offset " + std::to_string(offset);
  if (strides.size() != shape.size())
    throw std::invalid_argument(std::string("[") + op + "] " + geometry +
                                ": expected one stride per dimension");
  bool empty = false, negative = offset < 0;
  for (size_t d = 0; d < shape.size(); ++d) {
    negative = negative || shape[d] < 0 || strides[d] < 0;
    empty = empty || shape[d] == 0;
  }
  if (negative)
    throw std::invalid_argument(std::string("[") + op + "] " + geometry +
                                ": negative sizes, strides and offsets are not supported");
  check_countable(op, shape);
  int64_t last = offset;
  bool overflow = false;
  for (size_t d = 0; !empty && d < shape.size(); ++d) {
    int64_t span;
    overflow = overflow || __builtin_mul_overflow(shape[d] - 1, strides[d], &span) ||
               __builtin_add_overflow(last, span, &last);
  }
  if (overflow || (empty ? offset > numel : last >= numel))
    throw std::out_of_range(std::string("[") + op + "] " + geometry +
                            " reach outside a tensor of " + std::to_string(numel) + " elements");
}
}  // namespace

Tensor as_strided(const Tensor& x, const Shape& shape, const Shape& strides, int64_t offset) {
  check_geometry("as_strided", shape, strides, offset, x.numel());
  Tensor source = contiguous_for_kernel(x);  // the geometry is relative to x's row-major layout
  Tensor out = alias(source, shape, strides, source.offset() + offset);
  if (auto node = record(OpKind::AsStrided, {&x})) {
    node->set_state(Geometry{shape, strides, offset});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_as_strided(OpNode& node, const Tensor& g) {
  const Shape& input_shape = node.input(0).shape;
  const Geometry& view = node.state<Geometry>();
  return {as_strided_scatter(zeros(input_shape, g.dtype()), g, view.strides, view.offset)};
}

Tensor as_strided_scatter(const Tensor& base, const Tensor& src, const Shape& strides,
                          int64_t offset) {
  check_geometry("as_strided_scatter", src.shape(), strides, offset, base.numel());
  Tensor out = Tensor::empty(base.shape(), promote_types(base.dtype(), src.dtype()));
  copy_values(out, base);
  Tensor region = Tensor::view_of(out.storage(), src.shape(), strides, offset, out.dtype());
  copy_values(region, src);
  if (auto node = record(OpKind::AsStridedScatter, {&base, &src})) {
    node->set_state(Geometry{src.shape(), strides, offset});
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// The written region's gradient goes to src; the rest to base.
std::vector<Tensor> vjp_as_strided_scatter(OpNode& node, const Tensor& g) {
  const Geometry& region = node.state<Geometry>();
  Tensor g_base, g_src;
  if (node.needs_input_grad(0))
    g_base = as_strided_scatter(g, zeros(region.shape, g.dtype()), region.strides, region.offset);
  if (node.needs_input_grad(1)) g_src = as_strided(g, region.shape, region.strides, region.offset);
  return {g_base, g_src};
}

}  // namespace bprop

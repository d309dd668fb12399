// Indexing: gather / scatter_add and index_select / index_add (each pair is the other's VJP),
// nonzero, and x[...] built from slices, views and index_select.
#include <stdexcept>
#include <string>

#include "bprop/capture.h"
#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

void require_int64(const char* op, const Tensor& index) {
  if (index.dtype() != DType::Int64)
    throw TypeError(std::string("[") + op + "] index must be an int64 tensor, got " +
                    dtype_name(index.dtype()));
}

void check_values_in_range(const char* op, const Tensor& values, int64_t size, int64_t dim) {
  const int64_t* p = values.data_as<int64_t>();
  for (int64_t i = 0; i < values.numel(); ++i)
    if (p[i] < 0 || p[i] >= size)
      throw std::out_of_range(std::string("[") + op + "] index " + std::to_string(p[i]) +
                              " is out of bounds for dimension " + std::to_string(dim) +
                              " with size " + std::to_string(size));
}

// Every index in [0, size), or IndexError naming the op. A captured step checks again on
// every replay: the indices are data.
void check_range(const char* op, const Tensor& index, int64_t size, int64_t dim) {
  Tensor values = contiguous_for_kernel(index);
  if (tape::Recording rec; rec)
    rec.push_host("check_indices",
                  [op, values, size, dim] { check_values_in_range(op, values, size, dim); });
  check_values_in_range(op, values, size, dim);
}

// gather's and scatter_add's shape rule: same ndim, and index no larger than x off `dim`.
void check_gather_shapes(const char* op, const Tensor& x, int64_t dim, const Tensor& index) {
  bool fits = index.ndim() == x.ndim();
  for (int64_t d = 0; fits && d < x.ndim(); ++d)
    fits = d == dim || index.shape()[static_cast<size_t>(d)] <= x.shape()[static_cast<size_t>(d)];
  if (!fits)
    throw std::invalid_argument(std::string("[") + op + "] index shape " + index.shape_str() +
                                " does not fit input shape " + x.shape_str() + " along dim " +
                                std::to_string(dim) +
                                " (same number of dims, and no larger in the others)");
}

// A 1-d index seen as a tensor of `shape` that varies only along dim (stride 0 elsewhere).
Tensor spread_index(const Tensor& index, const Shape& shape, int64_t dim) {
  Shape strides(shape.size(), 0);
  strides[static_cast<size_t>(dim)] = index.strides()[0];
  return Tensor::view_of(index.storage(), shape, strides, index.offset(), DType::Int64);
}

}  // namespace

// ---- gather, scatter_add ----

Tensor gather(const Tensor& x, int64_t dim_in, const Tensor& index) {
  require_int64("gather", index);
  const int64_t dim = normalize_dim(dim_in, x.ndim(), "gather");
  check_gather_shapes("gather", x, dim, index);
  if (x.ndim() > 0) check_range("gather", index, x.shape()[static_cast<size_t>(dim)], dim);
  Tensor out = Tensor::empty(index.shape(), x.dtype());
  if (out.numel() > 0 && x.ndim() > 0)
    launch(kernels::gather, static_cast<int>(out.ndim()), out.shape().data(), static_cast<int>(dim),
           operand(out), operand(x), operand(index));
  else if (out.numel() > 0)
    copy_values(out, x);
  if (auto node = record(OpKind::Gather, {&x})) {
    node->set_state(AlongDim{dim});
    node->save(index);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_gather(OpNode& node, const Tensor& g) {
  const Shape& shape = node.input(0).shape;
  return {scatter_add(zeros(shape, g.dtype()), node.state<AlongDim>().dim, node.saved(0), g)};
}

Tensor scatter_add(const Tensor& base, int64_t dim_in, const Tensor& index, const Tensor& src) {
  require_int64("scatter_add", index);
  const int64_t dim = normalize_dim(dim_in, base.ndim(), "scatter_add");
  check_gather_shapes("scatter_add", base, dim, index);
  bool fits = src.ndim() == index.ndim();
  for (int64_t d = 0; fits && d < src.ndim(); ++d)
    fits = index.shape()[static_cast<size_t>(d)] <= src.shape()[static_cast<size_t>(d)];
  if (!fits)
    throw std::invalid_argument("[scatter_add] index shape " + index.shape_str() +
                                " does not fit src shape " + src.shape_str());
  if (base.ndim() > 0)
    check_range("scatter_add", index, base.shape()[static_cast<size_t>(dim)], dim);
  DType dtype = base.dtype();
  Tensor out = cast_for_kernel(base, dtype).detach().clone();
  Tensor src_c = cast_for_kernel(src, dtype);
  if (index.numel() > 0) {
    if (base.ndim() > 0) {
      launch(kernels::scatter_add, static_cast<int>(index.ndim()), index.shape().data(),
             static_cast<int>(dim), operand(out), operand(src_c), operand(index));
    } else {
      NoGradGuard no_grad;
      copy_values(out, add(out, src_c));
    }
  }
  if (auto node = record(OpKind::ScatterAdd, {&base, &src})) {
    node->set_state(AlongDim{dim});
    node->save(index);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// base passes the gradient through; src receives it gathered from where it was added.
// base passes the gradient through; src receives it gathered from where it was added (and 0
// where src is larger than index).
std::vector<Tensor> vjp_scatter_add(OpNode& node, const Tensor& g) {
  Tensor g_src;
  if (node.needs_input_grad(1)) {
    g_src = gather(g, node.state<AlongDim>().dim, node.saved(0));
    const Shape& src_shape = node.input(1).shape;
    for (size_t d = 0; d < src_shape.size(); ++d) {
      if (g_src.shape()[d] == src_shape[d]) continue;
      Shape padded = g_src.shape();
      padded[d] = src_shape[d];
      g_src = slice_backward(g_src, padded, static_cast<int64_t>(d), 0, 1);
    }
  }
  return {g, g_src};
}

// ---- index_select, index_add ----

Tensor index_select(const Tensor& x, int64_t dim_in, const Tensor& index) {
  require_int64("index_select", index);
  if (index.ndim() > 1)
    throw std::invalid_argument("[index_select] index must be 0-d or 1-d, got shape " +
                                index.shape_str());
  const int64_t dim = normalize_dim(dim_in, x.ndim(), "index_select");
  Tensor flat_index = index.ndim() == 0 ? reshape(index, {1}) : index;
  const int64_t size = x.ndim() > 0 ? x.shape()[static_cast<size_t>(dim)] : 1;
  check_range("index_select", flat_index, size, dim);
  Shape shape = x.shape();
  if (x.ndim() > 0) shape[static_cast<size_t>(dim)] = flat_index.numel();
  Tensor out = Tensor::empty(shape, x.dtype());
  if (out.numel() > 0 && dim == 0 && x.ndim() > 0 && x.is_contiguous()) {
    // Whole rows (an embedding's lookup): one copy a row.
    Tensor index_c = contiguous_for_kernel(flat_index);
    const int64_t row_bytes =
        static_cast<int64_t>(itemsize(x.dtype())) * (out.numel() / flat_index.numel());
    launch(kernels::gather_rows, flat_index.numel(), row_bytes, x.data(), index_c.data(),
           out.data());
  } else if (out.numel() > 0) {
    if (x.ndim() > 0) {
      Tensor spread = spread_index(flat_index, shape, dim);
      launch(kernels::gather, static_cast<int>(shape.size()), shape.data(), static_cast<int>(dim),
             operand(out), operand(x), operand(spread));
    } else {
      copy_values(out, x);
    }
  }
  if (auto node = record(OpKind::IndexSelect, {&x})) {
    node->set_state(AlongDim{dim});
    node->save(flat_index);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_index_select(OpNode& node, const Tensor& g) {
  const Shape& shape = node.input(0).shape;
  if (shape.empty()) return {sum(g)};
  return {index_add(zeros(shape, g.dtype()), node.state<AlongDim>().dim, node.saved(0), g)};
}

Tensor index_add(const Tensor& base, int64_t dim_in, const Tensor& index, const Tensor& src) {
  require_int64("index_add", index);
  const int64_t dim = normalize_dim(dim_in, base.ndim(), "index_add");
  Tensor flat_index = index.ndim() == 0 ? reshape(index, {1}) : index;
  Shape expected = base.shape();
  if (base.ndim() > 0) expected[static_cast<size_t>(dim)] = flat_index.numel();
  if (src.shape() != expected)
    throw std::invalid_argument("[index_add] src shape " + src.shape_str() + " must be " +
                                shape_to_string(expected) + " for base shape " + base.shape_str() +
                                " and " + std::to_string(flat_index.numel()) +
                                " indices along dim " + std::to_string(dim));
  const int64_t size = base.ndim() > 0 ? base.shape()[static_cast<size_t>(dim)] : 1;
  check_range("index_add", flat_index, size, dim);
  Tensor out = base.detach().clone();
  Tensor src_c = cast_for_kernel(src, base.dtype());
  if (src.numel() > 0 && dim == 0 && base.ndim() > 0 && is_floating(base.dtype()) &&
      out.is_contiguous()) {
    // Whole rows (an embedding's gradient): rows added in index order.
    Tensor index_c = contiguous_for_kernel(flat_index), src_rows = contiguous_for_kernel(src_c);
    launch(kernels::scatter_add_rows, base.dtype(), flat_index.numel(),
           src.numel() / flat_index.numel(), src_rows.data(), index_c.data(), out.data());
  } else if (src.numel() > 0) {
    if (base.ndim() > 0) {
      Tensor spread = spread_index(flat_index, src.shape(), dim);
      launch(kernels::scatter_add, static_cast<int>(src.ndim()), src.shape().data(),
             static_cast<int>(dim), operand(out), operand(src_c), operand(spread));
    } else {
      NoGradGuard no_grad;
      copy_values(out, add(out, sum(src_c)));
    }
  }
  if (auto node = record(OpKind::IndexAdd, {&base, &src})) {
    node->set_state(AlongDim{dim});
    node->save(flat_index);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_index_add(OpNode& node, const Tensor& g) {
  Tensor g_src;
  if (node.needs_input_grad(1))
    g_src = node.input(0).shape.empty()
                ? expand(g, node.input(1).shape)
                : index_select(g, node.state<AlongDim>().dim, node.saved(0));
  return {g, g_src};
}

// ---- nonzero ----

Tensor nonzero(const Tensor& x) {
  check_not_capturing("a boolean mask index or nonzero() (its result's shape depends on data)");
  Tensor mask = contiguous_for_kernel(cast_for_kernel(x, DType::Bool));
  const bool* p = mask.data_as<bool>();
  const int64_t n = mask.numel(), ndim = x.ndim();
  int64_t count = 0;
  for (int64_t i = 0; i < n; ++i) count += p[i];
  Tensor out = Tensor::empty({count, ndim}, DType::Int64);
  int64_t* q = out.data_as<int64_t>();
  Shape strides = contiguous_strides(x.shape());
  for (int64_t i = 0; i < n; ++i) {
    if (!p[i]) continue;
    int64_t rest = i;
    for (int64_t d = 0; d < ndim; ++d) {
      *q++ = rest / strides[static_cast<size_t>(d)];
      rest %= strides[static_cast<size_t>(d)];
    }
  }
  return out;
}

// ---- x[items] ----

namespace {

struct Advanced {
  int64_t dim;   // position in the basic-indexed view
  Tensor index;  // int64, any shape; negative values already wrapped
};

int64_t clamp_slice_end(int64_t value, int64_t size) {
  if (value < 0) value += size;
  return value < 0 ? 0 : (value > size ? size : value);
}

}  // namespace

Tensor index(const Tensor& x, const std::vector<IndexItem>& items) {
  using Kind = IndexItem::Kind;
  // How many dims of x the items consume, to expand the Ellipsis.
  int64_t consumed = 0, ellipses = 0;
  for (const IndexItem& item : items) {
    if (item.kind == Kind::Int || item.kind == Kind::Slice) ++consumed;
    if (item.kind == Kind::Ellipsis) ++ellipses;
    if (item.kind == Kind::Tensor)
      consumed += item.tensor.dtype() == DType::Bool ? std::max<int64_t>(item.tensor.ndim(), 0) : 1;
  }
  if (ellipses > 1)
    throw std::out_of_range("[index] an index can only have a single ellipsis ('...')");
  if (consumed > x.ndim())
    throw std::out_of_range("[index] too many indices for tensor of dimension " +
                            std::to_string(x.ndim()) + " (got " + std::to_string(consumed) + ")");

  Tensor y = x;
  int64_t dim = 0;  // the dimension of y the next item applies to
  std::vector<Advanced> advanced;
  for (const IndexItem& item : items) {
    switch (item.kind) {
      case Kind::Ellipsis:
        dim += x.ndim() - consumed;
        break;
      case Kind::None:
        y = unsqueeze(y, dim);
        ++dim;
        break;
      case Kind::Int:
        y = select(y, dim, item.index);
        break;
      case Kind::Slice: {
        const int64_t size = y.shape()[static_cast<size_t>(dim)];
        if (item.step <= 0) throw std::invalid_argument("[index] slice step must be positive");
        const int64_t start = item.start ? clamp_slice_end(*item.start, size) : 0;
        const int64_t stop = item.stop ? clamp_slice_end(*item.stop, size) : size;
        // ceil((stop - start) / step), without overflow for a huge step
        const int64_t count = stop > start ? 1 + (stop - start - 1) / item.step : 0;
        if (!(start == 0 && item.step == 1 && count == size))
          y = slice(y, dim, count > 0 ? start : 0, item.step, count);
        ++dim;
        break;
      }
      case Kind::Tensor: {
        const Tensor& t = item.tensor;
        if (t.dtype() == DType::Bool) {
          // A mask over the next t.ndim() dims becomes one index tensor per dim.
          for (int64_t k = 0; k < t.ndim(); ++k)
            if (t.shape()[static_cast<size_t>(k)] != y.shape()[static_cast<size_t>(dim + k)])
              throw std::out_of_range("[index] the shape of the mask " + t.shape_str() +
                                      " at index " + std::to_string(k) +
                                      " does not match the shape of the indexed tensor " +
                                      y.shape_str() + " at index " + std::to_string(dim + k));
          if (t.ndim() == 0) {  // x[True] adds a dim of size 1, x[False] one of size 0
            check_not_capturing("indexing with a 0-d bool tensor (its value decides the shape)");
            const bool value = *contiguous_for_kernel(t).data_as<bool>();
            y = unsqueeze(y, dim);
            advanced.push_back(
                {dim, value ? zeros({1}, DType::Int64) : Tensor::empty({0}, DType::Int64)});
            ++dim;
            break;
          }
          Tensor coords = nonzero(t);
          for (int64_t k = 0; k < t.ndim(); ++k)
            advanced.push_back({dim + k, contiguous_for_kernel(select(coords, 1, k))});
          dim += t.ndim();
        } else if (t.dtype() == DType::Int64) {
          const int64_t size = y.shape()[static_cast<size_t>(dim)];
          NoGradGuard no_grad;
          // t + size only where t < 0 (t + size everywhere would overflow for huge t).
          Tensor negative =
              to_dtype(lt(t, Tensor::wrapped_scalar(Scalar(int64_t{0}))), DType::Int64);
          Tensor wrapped = add(t, mul(negative, Scalar(size)));
          check_range("index", wrapped, size, dim);
          advanced.push_back({dim, wrapped});
          ++dim;
        } else {
          throw std::out_of_range(std::string("[index] tensors used as indices must be int64 or "
                                              "bool, got ") +
                                  dtype_name(t.dtype()));
        }
        break;
      }
    }
  }
  if (advanced.empty()) return y;

  // Advanced indexing: broadcast the index tensors, move their dims to the front, flatten
  // them into one, and select with one linear index.
  Shape index_shape = advanced[0].index.shape();
  for (const Advanced& a : advanced) {
    try {
      index_shape = broadcast_shapes(index_shape, a.index.shape(), "index");
    } catch (const std::invalid_argument&) {
      throw std::out_of_range(
          "[index] shape mismatch: indexing tensors could not be broadcast "
          "together with shapes " +
          shape_to_string(index_shape) + " and " + a.index.shape_str());
    }
  }
  bool adjacent = true;
  for (size_t k = 1; k < advanced.size(); ++k)
    adjacent = adjacent && advanced[k].dim == advanced[k - 1].dim + 1;
  Dims order;
  SmallVector<bool, 8> is_advanced(static_cast<size_t>(y.ndim()), false);
  for (const Advanced& a : advanced) {
    order.push_back(a.dim);
    is_advanced[static_cast<size_t>(a.dim)] = true;
  }
  Shape rest;
  for (int64_t d = 0; d < y.ndim(); ++d)
    if (!is_advanced[static_cast<size_t>(d)]) {
      order.push_back(d);
      rest.push_back(y.shape()[static_cast<size_t>(d)]);
    }
  Tensor front = permute(y, order);
  Tensor linear;
  int64_t block = 1;
  {
    NoGradGuard no_grad;
    for (size_t k = advanced.size(); k-- > 0;) {
      Tensor term = mul(advanced[k].index, Tensor::wrapped_scalar(Scalar(block)));
      linear = linear.defined() ? add(term, linear) : term;
      block *= y.shape()[static_cast<size_t>(advanced[k].dim)];
    }
    linear = reshape(expand(linear, index_shape), {shape_numel(index_shape)});
  }
  Shape flat_shape{block};
  for (int64_t s : rest) flat_shape.push_back(s);
  Tensor picked = index_select(reshape(front, flat_shape), 0, linear);
  Shape out_shape = index_shape;
  for (int64_t s : rest) out_shape.push_back(s);
  Tensor out = reshape(picked, out_shape);
  // Adjacent advanced indices keep their place (numpy's rule); separated ones go first.
  const int64_t first = advanced[0].dim;
  if (!adjacent || first == 0) return out;
  const int64_t nb = static_cast<int64_t>(index_shape.size());
  Dims perm;
  for (int64_t d = 0; d < first; ++d) perm.push_back(nb + d);
  for (int64_t d = 0; d < nb; ++d) perm.push_back(d);
  for (int64_t d = nb + first; d < out.ndim(); ++d) perm.push_back(d);
  return permute(out, perm);
}

}  // namespace bprop

// libFuzzer target: the shape logic of the public C++ API (ops.h). The input is a little
// program: it builds a few tiny tensors of fuzzer-chosen shapes and dtypes, then applies a
// sequence of shape ops (broadcasting, reshape/view with -1, expand, permute/transpose,
// squeeze/unsqueeze/flatten, slice/select, as_strided, matmul, cat/stack, x[...] indexing,
// gather/index_select, reductions over dims, in-place ops on views) with fuzzer-chosen
// arguments, and finally runs backward through whatever requires grad.
//
// The documented user errors -- std::invalid_argument (TypeError included), std::out_of_range
// and std::runtime_error (tensor.h, ops.h) -- are expected and swallowed. A crash, a sanitizer
// report, any other exception (std::logic_error is the library's "internal error"), or a
// broken invariant checked here (every view stays inside its storage; reshape/view keep the
// row-major values; broadcast shapes follow numpy's rule) is a finding.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <optional>
#include <stdexcept>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/ops.h"

namespace {

using bprop::Dims;
using bprop::DType;
using bprop::Shape;
using bprop::Tensor;

constexpr int64_t kMaxNumel = 256;  // tensors kept between ops stay this small
constexpr int kMaxOps = 16;
constexpr size_t kMaxTensors = 4;

// FUZZ_SHAPES_TRACE=1 prints each op and result, to see what an input does.
const bool trace = std::getenv("FUZZ_SHAPES_TRACE") != nullptr;

[[noreturn]] void finding(const char* what) {
  std::fprintf(stderr, "fuzz_shapes: invariant violated: %s\n", what);
  std::abort();
}

// The input, consumed front to back; zeros once it runs out.
class Bytes {
 public:
  Bytes(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t u8() { return pos_ < size_ ? data_[pos_++] : 0; }
  bool flag() { return (u8() & 1) != 0; }
  int64_t in(int64_t lo, int64_t hi) { return lo + static_cast<int64_t>(u8() % (hi - lo + 1)); }
  // A size, dim, index or stride: mostly small (-4..9), sometimes an edge value.
  int64_t arg() {
    const uint8_t b = u8();
    if (b < 224) return static_cast<int64_t>(b % 14) - 4;
    static const int64_t kEdges[] = {-1,
                                     -5,
                                     16,
                                     255,
                                     256,
                                     257,
                                     int64_t{1} << 31,
                                     int64_t{1} << 32,
                                     int64_t{1} << 62,
                                     -(int64_t{1} << 62),
                                     std::numeric_limits<int64_t>::max(),
                                     std::numeric_limits<int64_t>::min(),
                                     std::numeric_limits<int64_t>::max() / 2 + 1,
                                     std::numeric_limits<int32_t>::max(),
                                     std::numeric_limits<int32_t>::min(),
                                     3037000500 /* just above sqrt(2^63) */};
    constexpr size_t n = sizeof(kEdges) / sizeof(kEdges[0]);
    if (b - 224u < n) return kEdges[b - 224u];
    uint64_t v = 0;  // eight raw bytes
    for (int i = 0; i < 8; ++i) v = (v << 8) | u8();
    return static_cast<int64_t>(v);
  }
  Shape shape(int64_t max_ndim) {
    Shape s;
    const int64_t n = in(0, max_ndim);
    for (int64_t i = 0; i < n; ++i) s.push_back(arg());
    return s;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

// numel without throwing: nothing when a dim is negative or the product overflows.
std::optional<int64_t> safe_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape)
    if (d < 0) return std::nullopt;
  for (int64_t d : shape)
    if (d == 0) return 0;
  for (int64_t d : shape)
    if (__builtin_mul_overflow(n, d, &n)) return std::nullopt;
  return n;
}

// Every element of t lies inside its storage (the view-bounds invariant).
void check_bounds(const Tensor& t) {
  const Shape& shape = t.shape();
  const Shape& strides = t.strides();
  if (shape.size() != strides.size()) finding("shape and strides differ in length");
  for (int64_t d : shape)
    if (d < 0) finding("negative size in a result");
  for (int64_t d : shape)
    if (d == 0) return;  // no elements, nothing to read
  __int128 lo = t.offset(), hi = t.offset();
  for (size_t i = 0; i < shape.size(); ++i) {
    const __int128 span = static_cast<__int128>(shape[i] - 1) * strides[i];
    (span < 0 ? lo : hi) += span;
  }
  const __int128 limit = static_cast<__int128>(t.storage()->nbytes() / bprop::itemsize(t.dtype()));
  if (lo < 0 || hi >= limit) finding("a view reaches outside its storage");
}

// The values of t in row-major order, as doubles (reads every element).
std::vector<double> values(const Tensor& t) {
  const Tensor c = t.contiguous();
  std::vector<double> out(static_cast<size_t>(c.numel()));
  for (size_t i = 0; i < out.size(); ++i) {
    switch (c.dtype()) {
      case DType::Bool:
        out[i] = c.data_as<bool>()[i];
        break;
      case DType::Int64:
        out[i] = static_cast<double>(c.data_as<int64_t>()[i]);
        break;
      case DType::Float32:
        out[i] = c.data_as<float>()[i];
        break;
      case DType::Float64:
        out[i] = c.data_as<double>()[i];
        break;
    }
  }
  return out;
}

// The product of t's sizes with zeros read as 1 (saturating): an empty tensor such as
// (0, 2^40) is cheap, but a reduction over its 0 or a matmul with it is not.
int64_t span(const Tensor& t) {
  int64_t n = 1;
  for (int64_t d : t.shape())
    if (__builtin_mul_overflow(n, std::max<int64_t>(d, 1), &n)) return INT64_MAX;
  return n;
}

// Whether an op fed t could allocate a huge result (a broadcast view of fuzzer-chosen size).
bool too_big(const Tensor& t) {
  const std::optional<int64_t> n = safe_numel(t.shape());
  return !n || *n > kMaxNumel;
}

// Bitwise, so that NaN (from the mean of nothing, say) equals itself.
bool same_values(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0);
}

DType pick_dtype(Bytes& in) {
  static const DType kTypes[] = {DType::Float32, DType::Float64, DType::Int64, DType::Bool};
  return kTypes[in.u8() % 4];
}

// A tiny tensor: up to 4 dims of size 0..4, values 0, 1, 2, ... (0/1 for bool).
Tensor make_tensor(Bytes& in) {
  Shape shape;
  const int64_t ndim = in.in(0, 4);
  for (int64_t i = 0; i < ndim; ++i) shape.push_back(in.in(0, 4));
  const DType dtype = pick_dtype(in);
  const int64_t n = *safe_numel(shape);
  Tensor t = bprop::arange(bprop::Scalar(int64_t{0}), bprop::Scalar(n), bprop::Scalar(int64_t{1}),
                           DType::Int64);
  if (dtype == DType::Bool) {
    t = bprop::to_dtype(t, DType::Bool);  // all true but the first
  } else {
    t = bprop::to_dtype(t, dtype);
  }
  t = bprop::reshape(t, shape);
  if (bprop::is_floating(dtype) && in.flag()) t.set_requires_grad(true);
  return t;
}

// A shape that often relates to `like` (same dims, some set to 1 or -1, some dropped or added),
// so that broadcasting, reshape and expand succeed often enough to go deeper.
Shape related_shape(Bytes& in, const Shape& like) {
  Shape s;
  const int64_t extra = in.in(0, 2);
  for (int64_t i = 0; i < extra; ++i) s.push_back(in.in(0, 3));
  size_t first = static_cast<size_t>(in.in(0, static_cast<int64_t>(like.size())));
  for (size_t i = first; i < like.size(); ++i) {
    switch (in.u8() % 6) {
      case 0:
        s.push_back(1);
        break;
      case 1:
        s.push_back(-1);
        break;
      case 2:
        s.push_back(in.arg());
        break;
      default:
        s.push_back(like[i]);
    }
  }
  return s;
}

Dims dims_for(Bytes& in, int64_t ndim) {
  Dims dims;
  const int64_t n = in.in(0, ndim + 1);
  for (int64_t i = 0; i < n; ++i) dims.push_back(in.flag() ? in.in(-ndim - 1, ndim) : in.arg());
  return dims;
}

int64_t dim_for(Bytes& in, int64_t ndim) { return in.flag() ? in.in(-ndim - 1, ndim) : in.arg(); }

// The reference for broadcast_shapes on non-negative sizes.
std::optional<Shape> reference_broadcast(const Shape& a, const Shape& b) {
  const size_t n = std::max(a.size(), b.size());
  Shape out(n, 1);
  for (size_t i = 0; i < n; ++i) {
    const int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    const int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da == db || db == 1)
      out[i] = da;
    else if (da == 1)
      out[i] = db;
    else
      return std::nullopt;
  }
  return out;
}

bool all_non_negative(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](int64_t d) { return d >= 0; });
}

// One op on the pool; returns the result (undefined when the op gives none).
Tensor step(Bytes& in, std::vector<Tensor>& pool) {
  const Tensor& x = pool[in.u8() % pool.size()];
  const Tensor& y = pool[in.u8() % pool.size()];
  const int64_t nd = x.ndim();
  const int code = in.u8() % 24;
  if (trace)
    std::fprintf(stderr, "op %d on %s and %s\n", code, x.shape_str().c_str(),
                 y.shape_str().c_str());
  switch (code) {
    case 0: {  // broadcast_shapes against numpy's rule
      const Shape a = in.flag() ? in.shape(5) : x.shape();
      const Shape b = in.flag() ? related_shape(in, a) : in.shape(5);
      std::optional<Shape> expected;
      const bool valid = all_non_negative(a) && all_non_negative(b);
      if (valid) expected = reference_broadcast(a, b);
      Shape got;
      try {
        got = bprop::broadcast_shapes(a, b, "fuzz");
      } catch (const std::invalid_argument&) {
        if (valid && expected) finding("broadcast_shapes rejected shapes numpy accepts");
        throw;
      }
      if (valid && (!expected || got != *expected))
        finding("broadcast_shapes disagrees with numpy");
      return Tensor();
    }
    case 1: {  // elementwise with broadcasting
      Tensor other = in.flag() ? y : bprop::expand(y, related_shape(in, x.shape()));
      if (too_big(other)) return Tensor();  // the result would be as big
      Tensor out = in.flag() ? bprop::add(x, other) : bprop::mul(x, other);
      if (out.shape() != bprop::broadcast_shapes(x.shape(), other.shape(), "fuzz"))
        finding("elementwise result shape is not the broadcast shape");
      return out;
    }
    case 2:
    case 3: {  // reshape / view: same values in row-major order
      const Shape s = related_shape(in, x.shape());
      Tensor out = (in.u8() & 1) ? bprop::reshape(x, s) : bprop::view(x, s);
      if (out.numel() != x.numel() || !same_values(values(out), values(x)))
        finding("reshape/view changed the values");
      return out;
    }
    case 4:
      return bprop::expand(x, in.flag() ? related_shape(in, x.shape()) : in.shape(6));
    case 5:
      return bprop::permute(x, dims_for(in, nd));
    case 6: {  // (arguments are read in sequence: gcc and clang order calls differently)
      const int64_t d0 = dim_for(in, nd), d1 = dim_for(in, nd);
      return bprop::transpose(x, d0, d1);
    }
    case 7:
      if (in.flag()) return bprop::squeeze(x);
      return bprop::squeeze(x, dims_for(in, nd));
    case 8:
      return bprop::unsqueeze(x, dim_for(in, nd + 1));
    case 9: {
      const int64_t start = dim_for(in, nd), end = dim_for(in, nd);
      return bprop::flatten(x, start, end);
    }
    case 10: {
      const int64_t dim = dim_for(in, nd), start = in.arg(), step = in.arg(), size = in.arg();
      return bprop::slice(x, dim, start, step, size);
    }
    case 11: {
      const int64_t dim = dim_for(in, nd);
      return bprop::select(x, dim, in.arg());
    }
    case 12: {
      const Shape shape = in.flag() ? related_shape(in, x.shape()) : in.shape(4);
      Shape strides;
      for (size_t i = 0; i < shape.size(); ++i) strides.push_back(in.arg());
      return bprop::as_strided(x, shape, strides, in.arg());
    }
    case 13: {  // matmul, with b often shaped to fit a
      if (span(x) > kMaxNumel || span(y) > kMaxNumel) return Tensor();  // a huge result
      Tensor b = y;
      if (in.flag() && nd >= 1) {
        Shape s = related_shape(in, x.shape());
        if (!s.empty()) std::swap(s.back(), s[s.size() > 1 ? s.size() - 2 : 0]);
        Tensor t = bprop::zeros(Shape(), x.dtype());
        b = bprop::expand(t, s);
        // span, not numel: an empty b, (1, 0, 2^31) say, still makes a huge (.., 2^31) result.
        if (span(b) > kMaxNumel) return Tensor();
      }
      return bprop::matmul(x, b);
    }
    case 14:
      if (in.flag()) return bprop::stack({x, y}, dim_for(in, nd + 1));
      return bprop::cat({x, y}, dim_for(in, nd));
    case 15:
    case 16: {  // x[...]
      std::vector<bprop::IndexItem> items;
      const int64_t n = in.in(0, 5);
      for (int64_t i = 0; i < n; ++i) {
        bprop::IndexItem item;
        switch (in.u8() % 6) {
          case 0:
            item.kind = bprop::IndexItem::Kind::Int;
            item.index = in.arg();
            break;
          case 1:
            item.kind = bprop::IndexItem::Kind::None;
            break;
          case 2:
            item.kind = bprop::IndexItem::Kind::Ellipsis;
            break;
          case 3: {  // an int64 index tensor of small values
            item.kind = bprop::IndexItem::Kind::Tensor;
            Shape s = in.shape(2);
            for (auto& d : s) d = std::clamp<int64_t>(d, 0, 4);
            std::vector<int64_t> v(static_cast<size_t>(*safe_numel(s)));
            for (auto& e : v) e = in.arg();
            Shape byte_strides = bprop::contiguous_strides(s);
            for (auto& b : byte_strides) b *= 8;
            item.tensor = bprop::from_strided_data(v.data(), s, byte_strides, DType::Int64);
            break;
          }
          case 4: {  // a bool mask
            item.kind = bprop::IndexItem::Kind::Tensor;
            Shape s = in.flag() ? x.shape() : in.shape(3);
            for (auto& d : s) d = std::clamp<int64_t>(d, 0, 4);
            if (!s.empty() && in.flag()) s.erase(0);
            std::vector<unsigned char> v(static_cast<size_t>(*safe_numel(s)));
            for (auto& e : v) e = in.u8() & 1;
            Shape byte_strides = bprop::contiguous_strides(s);
            item.tensor = bprop::from_strided_data(v.data(), s, byte_strides, DType::Bool);
            break;
          }
          default:
            item.kind = bprop::IndexItem::Kind::Slice;
            if (in.flag()) item.start = in.arg();
            if (in.flag()) item.stop = in.arg();
            item.step = in.flag() ? in.arg() : 1;
        }
        items.push_back(std::move(item));
      }
      return bprop::index(x, items);
    }
    case 17: {
      if (span(x) > kMaxNumel) return Tensor();  // summing the 0 of (0, 2^40) away is huge
      const Dims dims = dims_for(in, nd);
      const bool keepdim = in.flag();
      switch (in.u8() % 4) {
        case 0:
          return bprop::sum(x, dims, keepdim);
        case 1:
          return bprop::mean(x, dims, keepdim);
        case 2:
          return bprop::amax(x, dims, keepdim);
        default:
          return bprop::sum_to(x, related_shape(in, x.shape()));
      }
    }
    case 18: {  // gather / index_select with in-range-ish indices
      const int64_t dim = dim_for(in, nd);
      Shape s = in.flag() ? x.shape() : in.shape(nd);
      for (auto& d : s) d = std::clamp<int64_t>(d, 0, 4);
      const bool select = in.flag();
      if (select) s = Shape{std::clamp<int64_t>(in.arg(), 0, 4)};
      std::vector<int64_t> v(static_cast<size_t>(*safe_numel(s)));
      for (auto& e : v) e = in.flag() ? in.in(0, 3) : in.arg();
      Shape byte_strides = bprop::contiguous_strides(s);
      for (auto& b : byte_strides) b *= 8;
      Tensor index = bprop::from_strided_data(v.data(), s, byte_strides, DType::Int64);
      return select ? bprop::index_select(x, dim, index) : bprop::gather(x, dim, index);
    }
    case 19: {  // in place through a view: rewrites the base's history (as_strided_scatter)
      Tensor base = x.clone();  // a non-leaf copy that may require grad
      Tensor view = base;
      if (nd > 0 && in.flag()) {
        const int64_t dim = dim_for(in, nd), index = in.arg();
        view = bprop::select(base, dim, index);
      }
      if (view.ndim() >= 2 && in.flag()) view = bprop::transpose(view, 0, 1);
      if (in.flag())
        bprop::add_(view, y);
      else
        bprop::copy_(view, y);
      return base;
    }
    case 20:
      return x.clone();
    case 21: {  // a non-contiguous view to feed the next ops
      if (nd >= 2) return bprop::transpose(x, 0, nd - 1);
      if (nd == 1 && x.shape()[0] > 1) return bprop::slice(x, 0, 0, 2, (x.shape()[0] + 1) / 2);
      return bprop::expand(x, Shape{2});
    }
    case 22:
      return make_tensor(in);
    default:
      return bprop::to_dtype(x, pick_dtype(in));
  }
}

void run(Bytes& in) {
  std::vector<Tensor> pool;
  const int64_t n = in.in(1, 3);
  for (int64_t i = 0; i < n; ++i) pool.push_back(make_tensor(in));
  for (int i = 0; i < kMaxOps && !in.empty(); ++i) {
    Tensor out;
    try {
      out = step(in, pool);
    } catch (const std::invalid_argument& e) {  // TypeError too
      if (trace) std::fprintf(stderr, "  invalid_argument: %s\n", e.what());
      continue;
    } catch (const std::out_of_range& e) {
      if (trace) std::fprintf(stderr, "  out_of_range: %s\n", e.what());
      continue;
    } catch (const std::runtime_error& e) {
      if (trace) std::fprintf(stderr, "  runtime_error: %s\n", e.what());
      continue;
    }
    if (!out.defined()) continue;
    if (trace)
      std::fprintf(stderr, "  -> shape %s strides %s offset %lld storage %zu bytes\n",
                   out.shape_str().c_str(), bprop::shape_to_string(out.strides()).c_str(),
                   static_cast<long long>(out.offset()), out.storage()->nbytes());
    check_bounds(out);
    const std::optional<int64_t> numel = safe_numel(out.shape());
    if (!numel) finding("a result shape has no valid element count");
    if (*numel > kMaxNumel) continue;  // a huge broadcast view: don't feed it to more ops
    const std::vector<double> v = values(out);
    // Integer overflow in value arithmetic is not this target's subject: pool integers stay
    // below 2^20, so that no single op (a product, a sum of 256, a matmul) can overflow.
    if (out.dtype() == DType::Int64 &&
        std::any_of(v.begin(), v.end(), [](double e) { return std::abs(e) > 0x1p20; }))
      continue;
    if (pool.size() < kMaxTensors)
      pool.push_back(out);
    else
      pool[in.u8() % pool.size()] = out;
  }
  // Backward through everything recorded: the VJPs of the shape ops.
  for (const Tensor& t : pool) {
    if (!t.requires_grad()) continue;
    try {
      bprop::sum(t).backward();
    } catch (const std::invalid_argument&) {
    } catch (const std::out_of_range&) {
    } catch (const std::runtime_error&) {
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in(data, size);
  run(in);
  return 0;
}

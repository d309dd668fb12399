// Factory functions: zeros, ones, full, arange, linspace, eye, and copies of foreign data.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>

#include "bprop/capture.h"
#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"

namespace bprop {
namespace {

void fill_values(const Tensor& t, double value) {
  launch(kernels::fill, static_cast<int>(t.ndim()), t.shape().data(),
         {t.data(), t.dtype(), t.strides().data()}, value);
}

template <typename F>
void write_1d(const Tensor& out, int64_t n, DType dtype, F value_at);

// Writes value i of a row-major 1-d buffer.
template <typename F>
Tensor generate_1d(int64_t n, DType dtype, F value_at) {
  Tensor out = Tensor::empty({n}, dtype);
  if (tape::Recording rec; rec) {  // replay writes the same values again
    Tensor keep = out;
    rec.push_host("write_values",
                  [keep, n, dtype, value_at] { write_1d(keep, n, dtype, value_at); });
  }
  write_1d(out, n, dtype, value_at);
  return out;
}

template <typename F>
void write_1d(const Tensor& out, int64_t n, DType dtype, F value_at) {
  switch (dtype) {
    case DType::Float32: {
      float* p = out.data_as<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(value_at(i));
      break;
    }
    case DType::Float64: {
      double* p = out.data_as<double>();
      for (int64_t i = 0; i < n; ++i) p[i] = value_at(i);
      break;
    }
    case DType::Int64: {
      int64_t* p = out.data_as<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int64_t>(value_at(i));
      break;
    }
    case DType::Bool: {
      bool* p = out.data_as<bool>();
      for (int64_t i = 0; i < n; ++i) p[i] = value_at(i) != 0;
      break;
    }
  }
}

}  // namespace

Tensor zeros(const Shape& shape, DType dtype) { return Tensor::zeros(shape, dtype); }

Tensor ones(const Shape& shape, DType dtype) { return full(shape, Scalar(1.0), dtype); }

Tensor full(const Shape& shape, Scalar value, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype);
  {
    if (dtype == DType::Int64 && !value.is_floating()) {
      auto write = [out, v = value.to_int()] {
        int64_t* p = out.data_as<int64_t>();  // exact for integers beyond 2^53
        for (int64_t i = 0; i < out.numel(); ++i) p[i] = v;
      };
      if (tape::Recording rec; rec) rec.push_host("write_values", write);
      write();
    } else {
      fill_values(out, value.to_double());
    }
  }
  return out;
}

Tensor zeros_like(const Tensor& like) { return zeros(like.shape(), like.dtype()); }
Tensor ones_like(const Tensor& like) { return ones(like.shape(), like.dtype()); }
Tensor full_like(const Tensor& like, Scalar value) {
  return full(like.shape(), value, like.dtype());
}

Tensor arange(Scalar start, Scalar end, Scalar step, DType dtype) {
  const double s = start.to_double(), e = end.to_double(), st = step.to_double();
  if (st == 0.0) throw std::invalid_argument("[arange] step must be nonzero");
  if (!std::isfinite(s) || !std::isfinite(e))
    throw std::invalid_argument("[arange] unsupported range: " + std::to_string(s) + " -> " +
                                std::to_string(e));
  if ((st > 0 && e < s) || (st < 0 && e > s))
    throw std::invalid_argument(
        "[arange] upper bound and larger bound inconsistent with step "
        "sign (start " +
        std::to_string(s) + ", end " + std::to_string(e) + ", step " + std::to_string(st) + ")");
  const int64_t n = static_cast<int64_t>(std::ceil((e - s) / st));
  if (dtype == DType::Int64 && !start.is_floating() && !step.is_floating()) {
    const int64_t s0 = start.to_int(), step0 = step.to_int();
    Tensor out = Tensor::empty({n}, dtype);
    auto write = [out, n, s0, step0] {
      int64_t* p = out.data_as<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = s0 + i * step0;
    };
    if (tape::Recording rec; rec) rec.push_host("write_values", write);
    write();
    return out;
  }
  return generate_1d(n, dtype, [=](int64_t i) { return s + static_cast<double>(i) * st; });
}

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  if (steps < 0)
    throw std::invalid_argument("[linspace] number of steps must be non-negative, got " +
                                std::to_string(steps));
  if (steps == 1) return full({1}, Scalar(start), dtype);
  const double step = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
  // Fill from both ends (as PyTorch does) so the last value is exactly `end`.
  const int64_t half = steps / 2;
  return generate_1d(steps, dtype, [=](int64_t i) {
    return i < half ? start + step * static_cast<double>(i)
                    : end - step * static_cast<double>(steps - 1 - i);
  });
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (n < 0 || m < 0)
    throw std::invalid_argument("[eye] sizes must be non-negative, got " + std::to_string(n) +
                                " and " + std::to_string(m));
  Tensor out = Tensor::zeros({n, m}, dtype);
  // One diagonal view with stride m + 1, filled with ones.
  int64_t diag = std::min(n, m);
  Shape shape{diag}, strides{m + 1};
  launch(kernels::fill, 1, shape.data(), {out.data(), dtype, strides.data()}, 1.0);
  return out;
}

namespace {

// Copies a strided array element by element with memcpy, which has no alignment requirement,
// into a contiguous buffer.
void copy_misaligned(const char* source, const Shape& shape, const Shape& byte_strides,
                     int64_t itemsize, char* out) {
  const int64_t count = shape_numel(shape);
  Shape index(shape.size(), 0);
  int64_t offset = 0;  // of source element `index`, in bytes
  for (int64_t k = 0; k < count; ++k) {
    std::memcpy(out + k * itemsize, source + offset, static_cast<size_t>(itemsize));
    for (size_t d = shape.size(); d-- > 0;) {  // odometer: the last dim moves fastest
      if (++index[d] < shape[d]) {
        offset += byte_strides[d];
        break;
      }
      offset -= byte_strides[d] * (shape[d] - 1);
      index[d] = 0;
    }
  }
}

}  // namespace

Tensor from_strided_data(const void* data, const Shape& shape, const Shape& byte_strides,
                         DType dtype) {
  check_not_capturing("making a tensor from Python or numpy data");
  const int64_t size = static_cast<int64_t>(itemsize(dtype));
  Shape strides(shape.size());
  for (size_t d = 0; d < shape.size(); ++d) {
    if (byte_strides[d] % size != 0)
      throw std::invalid_argument("[tensor] byte stride " + std::to_string(byte_strides[d]) +
                                  " is not a multiple of the element size " + std::to_string(size));
    strides[d] = byte_strides[d] / size;
  }
  Tensor out = Tensor::empty(shape, dtype);
  if (reinterpret_cast<uintptr_t>(data) % static_cast<uintptr_t>(size) != 0) {
    // A misaligned source (a safetensors tensor after an odd-sized one, a numpy view at a byte
    // offset) can't be read as its element type: that is undefined behaviour. Copy the bytes.
    copy_misaligned(static_cast<const char*>(data), shape, byte_strides, size,
                    static_cast<char*>(out.data()));
    return out;
  }
  launch(kernels::copy, static_cast<int>(shape.size()), shape.data(),
         {out.data(), dtype, out.strides().data()},
         {const_cast<void*>(data), dtype, strides.data()});
  return out;
}

Tensor view_external(char* first, const Shape& shape, const Shape& strides, DType dtype,
                     std::shared_ptr<void> owner) {
  // The storage spans the elements the view touches, from the lowest address (strides may be
  // negative) to the highest; an empty view keeps one element's span.
  int64_t low = 0, high = 0;
  if (shape_numel(shape) > 0)
    for (size_t d = 0; d < shape.size(); ++d)
      if (shape[d] > 1) (strides[d] < 0 ? low : high) += strides[d] * (shape[d] - 1);
  const int64_t size = static_cast<int64_t>(itemsize(dtype));
  auto storage = std::make_shared<Storage>(
      first + low * size, static_cast<size_t>((high - low + 1) * size), std::move(owner));
  return Tensor::view_of(storage, shape, strides, -low, dtype);
}

}  // namespace bprop

// gelu and its slope over contiguous values: float32 in the vector kernels (Note [float32 gelu in
// float] in vector_kernels.inc), float64 with the C library's erfc and exp; split over the kernel
// threads (each value's arithmetic is the same on any).
#include <cmath>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"

namespace bprop::kernels {
namespace {

constexpr int64_t kGrain = 8192;

double normal_cdf(double x) { return 0.5 * std::erfc(-x * 0.7071067811865476); }

// The same limits as the float32 kernels (gelu_f32): -0 below -40 (NaN at -inf), the slope taken
// at x clamped to [-40, 40], where it is exactly 0 or 1 (NaN at +-inf). `factor` is Phi(x), or
// sigmoid(2u) for the tanh form.
double gelu_factor(double x, bool tanh_form) {
  if (!tanh_form) return normal_cdf(x);
  const double u = 0.7978845608028654 * (x + 0.044715 * x * x * x);
  return 1.0 / (1.0 + std::exp(-2.0 * u));
}

double gelu_value(double x, double factor) {
  if (x == -HUGE_VAL) return std::nan("");
  if (x < -40.0) return -0.0;
  return x * factor;
}

double gelu_slope(double x, double factor, bool tanh_form) {
  if (std::isinf(x)) return std::nan("");
  x = x > 40.0 ? 40.0 : x < -40.0 ? -40.0 : x;  // NaN stays NaN
  if (!tanh_form) return factor + x * 0.3989422804014327 * std::exp(-0.5 * x * x);
  const double du = 0.7978845608028654 * (1.0 + 3.0 * 0.044715 * x * x);
  return factor + 2.0 * x * factor * (1.0 - factor) * du;
}

}  // namespace

void gelu(DType dtype, int64_t n, bool tanh_form, const void* x, void* y, void* slope) {
  parallel_for(n, kGrain, [&](int64_t first, int64_t last) {
    if (dtype == DType::Float32) {
      vector_kernels().gelu_f32(
          static_cast<const float*>(x) + first, static_cast<float*>(y) + first,
          slope ? static_cast<float*>(slope) + first : nullptr, last - first, tanh_form);
      return;
    }
    const double* in = static_cast<const double*>(x);
    double* out = static_cast<double*>(y);
    double* saved = static_cast<double*>(slope);
    for (int64_t i = first; i < last; ++i) {
      const double a = gelu_factor(in[i], tanh_form);
      out[i] = gelu_value(in[i], a);
      if (saved) saved[i] = gelu_slope(in[i], a, tanh_form);
    }
  });
}

}  // namespace bprop::kernels

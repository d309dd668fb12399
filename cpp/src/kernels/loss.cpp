// softmax and log_softmax over contiguous rows, forward and backward; and cross_entropy of
// (rows x classes) logits against class indices, as one log-softmax + pick forward and one
// softmax - one-hot backward: each row's log-sum-exp is kept between the two.
// The targets come as `const void*`: launch() records a `const int64_t*` argument as a shape
// array. Rows split over the kernel threads; the reduction adds the row losses in row order, in
// double, so the bits do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"

namespace bprop::kernels {
namespace {

int64_t row_grain(int64_t classes) {
  return std::max<int64_t>(1, 8192 / std::max<int64_t>(classes, 1));
}

// exp(row[c] - shift) into out, for contiguous values; returns their sum (float32: summed in
// vector lanes, then the lanes folded in halves; float64: in order).
template <typename T>
double shifted_exp(const T* row, int64_t n, T shift, T* out) {
  if constexpr (sizeof(T) == 4) {
    // Not copied first: a copy's stores, read back at once by wider loads, can't be forwarded to
    // them, and that stall was a third of the time of a row of 65.
    return vector_kernels().exp_scaled_sum_f32(row, out, n, 1.0f, shift);
  }
  double sum = 0.0;
  for (int64_t c = 0; c < n; ++c) sum += out[c] = std::exp(row[c] - shift);
  return sum;
}

// The largest of n contiguous values (NaN ignored, as std::max does).
template <typename T>
T row_max(const T* row, int64_t n) {
  if constexpr (sizeof(T) == 4) return vector_kernels().scaled_max_f32(row, n, 1.0f);
  T m = -std::numeric_limits<T>::infinity();
  for (int64_t c = 0; c < n; ++c) m = std::max(m, row[c]);
  return m;
}

template <typename T>
void forward_typed(int64_t rows, int64_t classes, int reduction, const T* x, const int64_t* target,
                   int64_t ignore_index, T* out, T* lse) {
  std::vector<T> losses(reduction == 0 ? 0 : static_cast<size_t>(rows));
  T* row_loss = reduction == 0 ? out : losses.data();
  parallel_for(rows, row_grain(classes), [&](int64_t first, int64_t last) {
    std::vector<T> e(static_cast<size_t>(classes));
    for (int64_t r = first; r < last; ++r) {
      const T* row = x + r * classes;
      const T m = row_max(row, classes);
      // All -inf (or +inf) rows: the shift is 0, so the sums give -inf/NaN as the math does.
      const T shift = std::isfinite(m) ? m : T(0);
      const double sum = shifted_exp(row, classes, shift, e.data());
      lse[r] = static_cast<T>(shift + std::log(sum));
      row_loss[r] = target[r] == ignore_index ? T(0) : lse[r] - row[target[r]];
    }
  });
  if (reduction == 0) return;
  double total = 0.0;
  int64_t counted = 0;
  for (int64_t r = 0; r < rows; ++r) {
    total += row_loss[r];
    counted += target[r] != ignore_index;
  }
  // Mean over the counted rows: 0 / 0 = NaN when every target is ignored, as PyTorch gives.
  *out = static_cast<T>(reduction == 1 ? total / static_cast<double>(counted) : total);
}

template <typename T>
void backward_typed(int64_t rows, int64_t classes, int reduction, const T* x, const int64_t* target,
                    int64_t ignore_index, const T* lse, const T* g, T* dx) {
  T scale = reduction == 0 ? T(0) : g[0];
  if (reduction == 1) {
    int64_t counted = 0;
    for (int64_t r = 0; r < rows; ++r) counted += target[r] != ignore_index;
    scale = static_cast<T>(static_cast<double>(g[0]) / static_cast<double>(counted));
  }
  parallel_for(rows, row_grain(classes), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      T* out = dx + r * classes;
      if (target[r] == ignore_index) {
        std::fill(out, out + classes, T(0));
        continue;
      }
      shifted_exp(x + r * classes, classes, lse[r], out);  // softmax
      out[target[r]] -= T(1);
      const T row_scale = reduction == 0 ? g[r] : scale;
      for (int64_t c = 0; c < classes; ++c) out[c] *= row_scale;
    }
  });
}

template <typename T>
void softmax_typed(int64_t rows, int64_t cols, bool log, const T* x, T* y) {
  const VectorKernels& vk = vector_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const T* in = x + r * cols;
      T* out = y + r * cols;
      if constexpr (sizeof(T) == 4) {
        vk.softmax_row_f32(in, out, cols, log);
      } else {
        // (y must not be x: shifted_exp writes out before in[c] - shift reads in)
        const T shift = row_max(in, cols);  // even infinite, as softmax_row_f32
        const double sum = shifted_exp(in, cols, shift, out);
        if (log) {
          const T log_sum = static_cast<T>(std::log(sum));
          for (int64_t c = 0; c < cols; ++c) out[c] = (in[c] - shift) - log_sum;
        } else {
          const T inverse = T(1) / static_cast<T>(sum);
          for (int64_t c = 0; c < cols; ++c) out[c] *= inverse;
        }
      }
    }
  });
}

template <typename T>
void softmax_backward_typed(int64_t rows, int64_t cols, bool log, const T* y, const T* g, T* dx) {
  const VectorKernels& vk = vector_kernels();
  parallel_for(rows, row_grain(cols), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      const T *yr = y + r * cols, *gr = g + r * cols;
      T* out = dx + r * cols;
      if constexpr (sizeof(T) == 4) {
        vk.softmax_backward_row_f32(yr, gr, out, cols, log);
      } else {
        T sum = 0;
        for (int64_t c = 0; c < cols; ++c) sum += log ? gr[c] : gr[c] * yr[c];
        for (int64_t c = 0; c < cols; ++c)
          out[c] = log ? gr[c] - std::exp(yr[c]) * sum : yr[c] * (gr[c] - sum);
      }
    }
  });
}

}  // namespace

void softmax_rows(DType dtype, int64_t rows, int64_t cols, bool log, const void* x, void* y) {
  if (dtype == DType::Float32)
    softmax_typed(rows, cols, log, static_cast<const float*>(x), static_cast<float*>(y));
  else
    softmax_typed(rows, cols, log, static_cast<const double*>(x), static_cast<double*>(y));
}

void softmax_rows_backward(DType dtype, int64_t rows, int64_t cols, bool log, const void* y,
                           const void* g, void* dx) {
  if (dtype == DType::Float32)
    softmax_backward_typed(rows, cols, log, static_cast<const float*>(y),
                           static_cast<const float*>(g), static_cast<float*>(dx));
  else
    softmax_backward_typed(rows, cols, log, static_cast<const double*>(y),
                           static_cast<const double*>(g), static_cast<double*>(dx));
}

void cross_entropy_forward(DType dtype, int64_t rows, int64_t classes, int reduction, const void* x,
                           const void* target, int64_t ignore_index, void* out, void* lse) {
  if (dtype == DType::Float32)
    forward_typed(rows, classes, reduction, static_cast<const float*>(x),
                  static_cast<const int64_t*>(target), ignore_index, static_cast<float*>(out),
                  static_cast<float*>(lse));
  else
    forward_typed(rows, classes, reduction, static_cast<const double*>(x),
                  static_cast<const int64_t*>(target), ignore_index, static_cast<double*>(out),
                  static_cast<double*>(lse));
}

void cross_entropy_backward(DType dtype, int64_t rows, int64_t classes, int reduction,
                            const void* x, const void* target, int64_t ignore_index,
                            const void* lse, const void* g, void* dx) {
  if (dtype == DType::Float32)
    backward_typed(rows, classes, reduction, static_cast<const float*>(x),
                   static_cast<const int64_t*>(target), ignore_index,
                   static_cast<const float*>(lse), static_cast<const float*>(g),
                   static_cast<float*>(dx));
  else
    backward_typed(rows, classes, reduction, static_cast<const double*>(x),
                   static_cast<const int64_t*>(target), ignore_index,
                   static_cast<const double*>(lse), static_cast<const double*>(g),
                   static_cast<double*>(dx));
}

}  // namespace bprop::kernels

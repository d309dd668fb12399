// layer_norm and rms_norm over the last d values of contiguous rows: the rows split over the
// kernel threads (each row's arithmetic is the same whichever thread runs it), the per-row
// work in the vector kernels (Note [Normalisation rows] in vector_kernels.inc), and the
// weight's and bias's gradients as column sums in row order, split over columns.
#include <algorithm>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"

namespace bprop::kernels {
namespace {

// Rows per part: enough work per hand-off, in values.
int64_t norm_row_grain(int64_t d) { return std::max<int64_t>(1, 16384 / std::max<int64_t>(d, 1)); }

template <typename T>
void norm_typed(int64_t rows, int64_t d, bool rms, double eps, const T* x, const T* w, const T* b,
                T* y, T* mean, T* rstd) {
  const VectorKernels& vk = vector_kernels();
  parallel_for(rows, norm_row_grain(d), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      if constexpr (sizeof(T) == 4)
        vk.norm_row_f32(x + r * d, d, rms, eps, w, b, y + r * d, mean + r, rstd + r);
      else
        vk.norm_row_f64(x + r * d, d, rms, eps, w, b, y + r * d, mean + r, rstd + r);
    }
  });
}

template <typename T>
void norm_backward_typed(int64_t rows, int64_t d, bool rms, const T* x, const T* w, const T* mean,
                         const T* rstd, const T* g, T* dx) {
  const VectorKernels& vk = vector_kernels();
  parallel_for(rows, norm_row_grain(d), [&](int64_t first, int64_t last) {
    for (int64_t r = first; r < last; ++r) {
      if constexpr (sizeof(T) == 4)
        vk.norm_backward_row_f32(x + r * d, g + r * d, d, rms, mean[r], rstd[r], w, dx + r * d);
      else
        vk.norm_backward_row_f64(x + r * d, g + r * d, d, rms, mean[r], rstd[r], w, dx + r * d);
    }
  });
}

// dw[j] = sum over rows of g * xhat, db[j] = sum over rows of g. Rows go in fixed blocks of
// kRowBlock, each block's sums in T (vectorised along the row), the blocks' sums added in
// double in block order: the same bits for any thread count, and the rows split over threads
// even when d is small (a GPT's 128 columns).
template <typename T>
void norm_params_backward_typed(int64_t rows, int64_t d, const T* x, const T* mean, const T* rstd,
                                const T* g, T* dw, T* db) {
  constexpr int64_t kRowBlock = 32;
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  std::vector<T> partial(static_cast<size_t>(blocks * 2 * d));
  parallel_for(blocks, std::max<int64_t>(1, 8192 / (kRowBlock * std::max<int64_t>(d, 1))),
               [&](int64_t first, int64_t last) {
                 for (int64_t block = first; block < last; ++block) {
                   T* __restrict pw = partial.data() + block * 2 * d;
                   T* __restrict pb = pw + d;
                   std::fill(pw, pw + 2 * d, T(0));
                   const int64_t end = std::min(rows, (block + 1) * kRowBlock);
                   for (int64_t r = block * kRowBlock; r < end; ++r) {
                     const T* __restrict xr = x + r * d;
                     const T* __restrict gr = g + r * d;
                     const T m = mean[r], s = rstd[r];
                     for (int64_t j = 0; j < d; ++j) {
                       pw[j] += gr[j] * ((xr[j] - m) * s);
                       pb[j] += gr[j];
                     }
                   }
                 }
               });
  for (int64_t j = 0; j < d; ++j) {
    double sum_w = 0.0, sum_b = 0.0;
    for (int64_t block = 0; block < blocks; ++block) {
      sum_w += static_cast<double>(partial[block * 2 * d + j]);
      sum_b += static_cast<double>(partial[block * 2 * d + d + j]);
    }
    if (dw) dw[j] = static_cast<T>(sum_w);
    if (db) db[j] = static_cast<T>(sum_b);
  }
}

}  // namespace

void norm_rows(DType dtype, int64_t rows, int64_t d, bool rms, double eps, const void* x,
               const void* weight, const void* bias, void* y, void* mean, void* rstd) {
  if (dtype == DType::Float32)
    norm_typed(rows, d, rms, eps, static_cast<const float*>(x), static_cast<const float*>(weight),
               static_cast<const float*>(bias), static_cast<float*>(y), static_cast<float*>(mean),
               static_cast<float*>(rstd));
  else
    norm_typed(rows, d, rms, eps, static_cast<const double*>(x), static_cast<const double*>(weight),
               static_cast<const double*>(bias), static_cast<double*>(y),
               static_cast<double*>(mean), static_cast<double*>(rstd));
}

void norm_rows_backward(DType dtype, int64_t rows, int64_t d, bool rms, const void* x,
                        const void* weight, const void* mean, const void* rstd, const void* g,
                        void* dx) {
  if (dtype == DType::Float32)
    norm_backward_typed(rows, d, rms, static_cast<const float*>(x),
                        static_cast<const float*>(weight), static_cast<const float*>(mean),
                        static_cast<const float*>(rstd), static_cast<const float*>(g),
                        static_cast<float*>(dx));
  else
    norm_backward_typed(rows, d, rms, static_cast<const double*>(x),
                        static_cast<const double*>(weight), static_cast<const double*>(mean),
                        static_cast<const double*>(rstd), static_cast<const double*>(g),
                        static_cast<double*>(dx));
}

void norm_params_backward(DType dtype, int64_t rows, int64_t d, const void* x, const void* mean,
                          const void* rstd, const void* g, void* dweight, void* dbias) {
  if (dtype == DType::Float32)
    norm_params_backward_typed(rows, d, static_cast<const float*>(x),
                               static_cast<const float*>(mean), static_cast<const float*>(rstd),
                               static_cast<const float*>(g), static_cast<float*>(dweight),
                               static_cast<float*>(dbias));
  else
    norm_params_backward_typed(rows, d, static_cast<const double*>(x),
                               static_cast<const double*>(mean), static_cast<const double*>(rstd),
                               static_cast<const double*>(g), static_cast<double*>(dweight),
                               static_cast<double*>(dbias));
}

}  // namespace bprop::kernels

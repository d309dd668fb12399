// layer_norm and rms_norm over the last d values of contiguous rows: the rows split over the
// kernel threads (each row's arithmetic is the same whichever thread runs it), the per-row
// work in the vector kernels (Note [Normalisation rows] in vector_kernels.inc), and the
// weight's and bias's gradients as column sums of fixed blocks of rows, in the same pass as dx.
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

// dx row by row, and dw[j] = sum over rows of g * xhat, db[j] = sum over rows of g, in the same
// pass (x and g read once: a separate pass for dw and db took as long as dx's on the Intel Xeon
// of docs/performance.md). Rows go in fixed blocks of kRowBlock, each block's sums in T
// (vectorised along the row), the blocks' sums added in double in block order: the same bits
// for any thread count, and the rows split over threads even when d is small (a GPT's 128
// columns).
template <typename T>
void norm_backward_typed(int64_t rows, int64_t d, bool rms, const T* x, const T* w, const T* mean,
                         const T* rstd, const T* g, T* dx, T* dw, T* db) {
  constexpr int64_t kRowBlock = 32;
  const VectorKernels& vk = vector_kernels();
  const int64_t blocks = (rows + kRowBlock - 1) / kRowBlock;
  const bool sums = dw || db;
  std::vector<T> partial(sums ? static_cast<size_t>(blocks * 2 * d) : 0);
  const int64_t grain = std::max<int64_t>(1, norm_row_grain(d) / kRowBlock);
  parallel_for(blocks, grain, [&](int64_t first, int64_t last) {
    for (int64_t block = first; block < last; ++block) {
      T* pw = dw ? partial.data() + block * 2 * d : nullptr;
      T* pb = db ? partial.data() + block * 2 * d + d : nullptr;
      if (sums)
        std::fill(partial.data() + block * 2 * d, partial.data() + (block + 1) * 2 * d, T(0));
      const int64_t end = std::min(rows, (block + 1) * kRowBlock);
      for (int64_t r = block * kRowBlock; r < end; ++r) {
        T* dx_row = dx ? dx + r * d : nullptr;
        if constexpr (sizeof(T) == 4)
          vk.norm_backward_row_f32(x + r * d, g + r * d, d, rms, mean[r], rstd[r], w, dx_row, pw,
                                   pb);
        else
          vk.norm_backward_row_f64(x + r * d, g + r * d, d, rms, mean[r], rstd[r], w, dx_row, pw,
                                   pb);
      }
    }
  });
  if (!sums) return;
  // each column's block sums added in block order (which fixes the bits), a block at a time
  std::vector<double> total(static_cast<size_t>(2 * d), 0.0);
  for (int64_t block = 0; block < blocks; ++block) {
    const T* sums_of_block = partial.data() + block * 2 * d;
    for (int64_t j = 0; j < 2 * d; ++j) total[j] += static_cast<double>(sums_of_block[j]);
  }
  for (int64_t j = 0; j < d; ++j) {
    if (dw) dw[j] = static_cast<T>(total[j]);
    if (db) db[j] = static_cast<T>(total[d + j]);
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

void norm_backward(DType dtype, int64_t rows, int64_t d, bool rms, const void* x,
                   const void* weight, const void* mean, const void* rstd, const void* g, void* dx,
                   void* dweight, void* dbias) {
  if (dtype == DType::Float32)
    norm_backward_typed(rows, d, rms, static_cast<const float*>(x),
                        static_cast<const float*>(weight), static_cast<const float*>(mean),
                        static_cast<const float*>(rstd), static_cast<const float*>(g),
                        static_cast<float*>(dx), static_cast<float*>(dweight),
                        static_cast<float*>(dbias));
  else
    norm_backward_typed(rows, d, rms, static_cast<const double*>(x),
                        static_cast<const double*>(weight), static_cast<const double*>(mean),
                        static_cast<const double*>(rstd), static_cast<const double*>(g),
                        static_cast<double*>(dx), static_cast<double*>(dweight),
                        static_cast<double*>(dbias));
}

}  // namespace bprop::kernels

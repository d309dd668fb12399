#include <algorithm>
#include <stdexcept>

#include "kernels/kernels.h"

namespace bprop::kernels {
namespace {

// The i-k-j loop order streams rows of B and C, so the inner loop is contiguous and
// vectorises; blocking k keeps a panel of B in cache across rows of A.
template <typename T>
void gemm_typed(int64_t m, int64_t n, int64_t k, const T* a, int64_t lda, const T* b, int64_t ldb,
                T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
  constexpr int64_t kBlockK = 128;
  for (int64_t k0 = 0; k0 < k; k0 += kBlockK) {
    const int64_t k1 = std::min(k, k0 + kBlockK);
    for (int64_t i = 0; i < m; ++i) {
      T* c_row = c + i * ldc;
      for (int64_t p = k0; p < k1; ++p) {
        const T a_ip = a[i * lda + p];
        const T* b_row = b + p * ldb;
        for (int64_t j = 0; j < n; ++j) c_row[j] += a_ip * b_row[j];
      }
    }
  }
}

}  // namespace

void gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t lda, const void* b,
          int64_t ldb, void* c, int64_t ldc) {
  switch (dtype) {
    case DType::Float32:
      return gemm_typed(m, n, k, static_cast<const float*>(a), lda, static_cast<const float*>(b),
                        ldb, static_cast<float*>(c), ldc);
    case DType::Float64:
      return gemm_typed(m, n, k, static_cast<const double*>(a), lda, static_cast<const double*>(b),
                        ldb, static_cast<double*>(c), ldc);
    case DType::Int64:
      return gemm_typed(m, n, k, static_cast<const int64_t*>(a), lda,
                        static_cast<const int64_t*>(b), ldb, static_cast<int64_t*>(c), ldc);
    case DType::Bool:
      throw std::logic_error("kernel gemm has no bool version");
  }
}

}  // namespace bprop::kernels

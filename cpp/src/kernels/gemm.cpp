// GEMM in the BLIS/GotoBLAS structure: B is packed into KC x NR panels (kept in L3, one
// micro-panel in L1), A into MR x KC panels (an MC x KC block kept in L2), and a register-
// blocked micro-kernel (gemm_micro.inc) computes MR x NR tiles of C. Operands may have any
// strides, so matmul's backward passes transposed views without copying them. Small products
// skip packing. Work is split over blocks of C rows or panels of C columns, never over k, so
// every element of C is summed in the same order whatever the thread count.
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "kernels/gemm_micro.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/wrapping.h"

namespace bprop::kernels {
namespace {

constexpr int64_t kBlockK = 256;   // KC: depth of packed panels
constexpr int64_t kBlockM = 120;   // MC: rows of A per L2 block (a multiple of every MR)
constexpr int64_t kBlockN = 3072;  // NC: columns of B per L3 block (a multiple of every NR)

const MicroKernels& micro_kernels() {
  static const MicroKernels kernels = [] {
    switch (active_isa()) {
      case Isa::Avx512:
        return micro_kernels_avx512();
      case Isa::Avx2:
        return micro_kernels_avx2();
      case Isa::Scalar:
        break;
    }
    return micro_kernels_scalar();
  }();
  return kernels;
}

template <typename T>
const MicroKernel<T>& micro_kernel();
template <>
const MicroKernel<float>& micro_kernel<float>() {
  return micro_kernels().f32;
}
template <>
const MicroKernel<double>& micro_kernel<double>() {
  return micro_kernels().f64;
}

struct AlignedFree {
  void operator()(void* p) const { std::free(p); }
};
template <typename T>
std::unique_ptr<T, AlignedFree> aligned_buffer(int64_t count) {
  const size_t bytes = (static_cast<size_t>(count) * sizeof(T) + 63) / 64 * 64;
  void* p = std::aligned_alloc(64, std::max<size_t>(bytes, 64));
  if (!p) throw std::bad_alloc();
  return std::unique_ptr<T, AlignedFree>(static_cast<T*>(p));
}

// A[0:mc, 0:kc] into panels of MR rows: panel r holds a[p * MR + i] = A[r * MR + i][p], with
// zero rows past mc so the micro-kernel always runs whole tiles.
template <typename T>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, int mr, T* out) {
  for (int64_t r = 0; r < mc; r += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - r);
    for (int64_t p = 0; p < kc; ++p) {
      const T* src = a + r * rsa + p * csa;
      int64_t i = 0;
      for (; i < rows; ++i) out[i] = src[i * rsa];
      for (; i < mr; ++i) out[i] = T(0);
      out += mr;
    }
  }
}

// B[0:kc, 0:nc] into panels of NR columns: panel q holds b[p * NR + j] = B[p][q * NR + j].
template <typename T>
void pack_b_panel(int64_t kc, int64_t cols, const T* b, int64_t rsb, int64_t csb, int nr, T* out) {
  for (int64_t p = 0; p < kc; ++p) {
    const T* src = b + p * rsb;
    int64_t j = 0;
    if (csb == 1) {
      std::memcpy(out, src, static_cast<size_t>(cols) * sizeof(T));
      j = cols;
    } else {
      for (; j < cols; ++j) out[j] = src[j * csb];
    }
    for (; j < nr; ++j) out[j] = T(0);
    out += nr;
  }
}

// Small products: no packing, the i-p-j order streams rows of B and C.
template <typename T>
void gemm_small(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                int64_t rsb, int64_t csb, T* c, int64_t ldc) {
  for (int64_t i = 0; i < m; ++i) {
    T* c_row = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) c_row[j] = T(0);
    for (int64_t p = 0; p < k; ++p) {
      const T a_ip = a[i * rsa + p * csa];
      const T* b_row = b + p * rsb;
      if (csb == 1) {
        for (int64_t j = 0; j < n; ++j)
          c_row[j] = wrapping_add(c_row[j], wrapping_mul(a_ip, b_row[j]));
      } else {
        for (int64_t j = 0; j < n; ++j)
          c_row[j] = wrapping_add(c_row[j], wrapping_mul(a_ip, b_row[j * csb]));
      }
    }
  }
}

// Packing buffers, one pair per thread, grown as needed and kept for the next call.
template <typename T>
T* scratch(int which, int64_t count) {
  struct Buffer {
    std::unique_ptr<T, AlignedFree> data;
    int64_t capacity = 0;
  };
  thread_local Buffer buffers[2];
  Buffer& b = buffers[which];
  if (b.capacity < count) {
    b.data = aligned_buffer<T>(count);
    b.capacity = count;
  }
  return b.data.get();
}

// One thread's share: C[0:m, 0:n] of a product, in the BLIS loop order.
template <typename T>
void gemm_serial(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                 int64_t rsb, int64_t csb, T* c, int64_t ldc) {
  const MicroKernel<T>& kernel = micro_kernel<T>();
  const int mr = kernel.mr, nr = kernel.nr;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const int64_t kc_max = std::min<int64_t>(kBlockK, k);
  T* packed_b = scratch<T>(0, kc_max * std::min<int64_t>(kBlockN, (n + nr - 1) / nr * nr));
  T* packed_a = scratch<T>(1, kc_max * std::min<int64_t>(kBlockM, (m + mr - 1) / mr * mr));
  alignas(64) T tile[16 * 64];
  for (int64_t jc = 0; jc < n; jc += kBlockN) {
    const int64_t nc = std::min<int64_t>(kBlockN, n - jc);
    const int64_t panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < k; pc += kBlockK) {
      const int64_t kc = std::min<int64_t>(kBlockK, k - pc);
      const bool accumulate = pc > 0;
      for (int64_t q = 0; q < panels; ++q)
        pack_b_panel(kc, std::min<int64_t>(nr, nc - q * nr), b + pc * rsb + (jc + q * nr) * csb,
                     rsb, csb, nr, packed_b + q * kc * nr);
      for (int64_t ic = 0; ic < m; ic += kBlockM) {
        const int64_t mc = std::min<int64_t>(kBlockM, m - ic);
        pack_a(mc, kc, a + ic * rsa + pc * csa, rsa, csa, mr, packed_a);
        for (int64_t q = 0; q < panels; ++q) {
          const int64_t cols = std::min<int64_t>(nr, nc - q * nr);
          const T* bp = packed_b + q * kc * nr;
          for (int64_t r = 0; r < mc; r += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - r);
            T* c_tile = c + (ic + r) * ldc + jc + q * nr;
            const T* ap = packed_a + r * kc;
            if (rows == mr && cols == nr) {
              kernel.run(kc, ap, bp, c_tile, ldc, accumulate);
            } else {  // an edge tile: compute whole, keep the part inside C
              kernel.run(kc, ap, bp, tile, nr, false);
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j)
                  c_tile[i * ldc + j] =
                      accumulate ? c_tile[i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
            }
          }
        }
      }
    }
  }
}

// Threads take whole sub-rectangles of C (rows when C is tall, column panels when wide), each
// running the serial loops: one hand-off per product, and per-element sums unchanged.
template <typename T>
void gemm_blocked(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                  int64_t rsb, int64_t csb, T* c, int64_t ldc) {
  const MicroKernel<T>& kernel = micro_kernel<T>();
  const int64_t threads = num_threads();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * k;
  if (threads == 1 || flops < 4e6) return gemm_serial(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc);
  if (m >= n) {
    const int64_t units = (m + kernel.mr - 1) / kernel.mr;
    parallel_for(std::min(units, threads), 1, [&](int64_t first, int64_t last) {
      for (int64_t part = first; part < last; ++part) {
        const int64_t parts = std::min(units, threads);
        const int64_t r0 = units * part / parts * kernel.mr;
        const int64_t r1 = std::min(m, units * (part + 1) / parts * kernel.mr);
        gemm_serial(r1 - r0, n, k, a + r0 * rsa, rsa, csa, b, rsb, csb, c + r0 * ldc, ldc);
      }
    });
  } else {
    const int64_t units = (n + kernel.nr - 1) / kernel.nr;
    parallel_for(std::min(units, threads), 1, [&](int64_t first, int64_t last) {
      for (int64_t part = first; part < last; ++part) {
        const int64_t parts = std::min(units, threads);
        const int64_t c0 = units * part / parts * kernel.nr;
        const int64_t c1 = std::min(n, units * (part + 1) / parts * kernel.nr);
        gemm_serial(m, c1 - c0, k, a, rsa, csa, b + c0 * csb, rsb, csb, c + c0, ldc);
      }
    });
  }
}

template <typename T>
void gemm_typed(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                int64_t rsb, int64_t csb, T* c, int64_t ldc) {
  if (m == 0 || n == 0) return;
  if (m * n * k <= 16 * 16 * 16)
    gemm_small(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc);
  else
    gemm_blocked(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc);
}

}  // namespace

void gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, int64_t csa,
          const void* b, int64_t rsb, int64_t csb, void* c, int64_t ldc) {
  switch (dtype) {
    case DType::Float32:
      return gemm_typed(m, n, k, static_cast<const float*>(a), rsa, csa,
                        static_cast<const float*>(b), rsb, csb, static_cast<float*>(c), ldc);
    case DType::Float64:
      return gemm_typed(m, n, k, static_cast<const double*>(a), rsa, csa,
                        static_cast<const double*>(b), rsb, csb, static_cast<double*>(c), ldc);
    case DType::Int64:
      if (m > 0 && n > 0)
        gemm_small(m, n, k, static_cast<const int64_t*>(a), rsa, csa,
                   static_cast<const int64_t*>(b), rsb, csb, static_cast<int64_t*>(c), ldc);
      return;
    case DType::Bool:
      throw std::logic_error("kernel gemm has no bool version");
  }
}

}  // namespace bprop::kernels

namespace bprop::kernels {

void gemm_batched(DType dtype, int64_t batch, int64_t m, int64_t n, int64_t k, const void* a,
                  int64_t batch_stride_a, int64_t rsa, int64_t csa, const void* b,
                  int64_t batch_stride_b, int64_t rsb, int64_t csb, void* c) {
  const int64_t size = static_cast<int64_t>(itemsize(dtype));
  const char* a_data = static_cast<const char*>(a);
  const char* b_data = static_cast<const char*>(b);
  char* c_data = static_cast<char*>(c);
  // Many small products run one per thread; a large one uses the threads itself.
  parallel_for(batch, m * n * k > (1 << 18) ? batch : 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i)
      gemm(dtype, m, n, k, a_data + i * batch_stride_a * size, rsa, csa,
           b_data + i * batch_stride_b * size, rsb, csb, c_data + i * m * n * size, n);
  });
}

}  // namespace bprop::kernels

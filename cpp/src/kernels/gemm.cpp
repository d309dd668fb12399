// GEMM in the BLIS/GotoBLAS structure: B is packed into KC x NR panels (kept in L3, one
// micro-panel in L1), A into MR x KC panels (an MC x KC block kept in L2), and a register-
// blocked micro-kernel (gemm_micro.inc) computes MR x NR tiles of C. Operands may have any
// strides, so matmul's backward passes transposed views without copying them. Small products
// skip packing. Work is split over blocks of C rows or panels of C columns, never over k, so
// every element of C is summed in the same order whatever the thread count.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>
#include <stdexcept>

#include "kernels/cpu_info.h"
#include "kernels/gemm_micro.h"
#include "kernels/isa.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/wrapping.h"

namespace bprop::kernels {
namespace {

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

// Note [GEMM blocking]
// Packed B's KC x NR micro-panel is reused by every MR-row panel of A, so it should stay in L1
// with room for the A panel streaming past; packed A's MC x KC block stays in L2 while every
// panel of B passes; packed B's KC x NC block lives in this core's share of L3. The sizes are
// read from the machine (cpu_info.h), with 32 KiB / 1 MiB / 2 MiB a core where it says
// nothing, and BPROP_GEMM_BLOCKING=kc,mc,nc overrides them (for tuning experiments).
int64_t round_down(int64_t value, int64_t multiple) {
  return std::max(multiple, value / multiple * multiple);
}

template <typename T>
GemmBlocking derive_blocking(const MicroKernel<T>& kernel) {
  const CpuInfo& cpu = cpu_info();
  const int64_t l1 = cpu.l1d_bytes > 0 ? cpu.l1d_bytes : int64_t{32} << 10;
  const int64_t l2 = cpu.l2_bytes > 0 ? cpu.l2_bytes : int64_t{1} << 20;
  const int64_t l3_share =
      cpu.l3_bytes > 0 && cpu.l3_sharing > 0 ? cpu.l3_bytes / cpu.l3_sharing : int64_t{2} << 20;
  const int64_t size = sizeof(T);
  GemmBlocking b;
  b.mr = kernel.mr;
  b.nr = kernel.nr;
  b.kc = std::clamp<int64_t>(round_down(l1 * 2 / 3 / (kernel.nr * size), 16), 64, 512);
  b.mc = std::clamp<int64_t>(round_down(l2 / 2 / (b.kc * size), kernel.mr), kernel.mr,
                             round_down(1024, kernel.mr));
  b.nc = std::clamp<int64_t>(round_down(l3_share / 2 / (b.kc * size), kernel.nr), kernel.nr,
                             round_down(4096, kernel.nr));
  if (const char* env = std::getenv("BPROP_GEMM_BLOCKING")) {
    long long kc = 0, mc = 0, nc = 0;
    if (std::sscanf(env, "%lld,%lld,%lld", &kc, &mc, &nc) == 3 && kc > 0 && mc > 0 && nc > 0) {
      b.kc = kc;
      b.mc = round_down(mc, kernel.mr);
      b.nc = round_down(nc, kernel.nr);
    }
  }
  return b;
}

int64_t unpacked_a_max_panels() {
  static const int64_t panels = [] {
    const char* env = std::getenv("BPROP_GEMM_A_IN_PLACE_PANELS");
    return env ? std::atoll(env) : int64_t{12};
  }();
  return panels;
}

template <typename T>
const GemmBlocking& blocking() {
  static const GemmBlocking b = derive_blocking(micro_kernel<T>());
  return b;
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
  const GemmBlocking& blocks = blocking<T>();
  const int64_t block_k = blocks.kc, block_m = blocks.mc, block_n = blocks.nc;
  if (k == 0) {
    for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    return;
  }
  const int64_t kc_max = std::min<int64_t>(block_k, k);
  T* packed_b = scratch<T>(0, kc_max * std::min<int64_t>(block_n, (n + nr - 1) / nr * nr));
  T* packed_a = scratch<T>(1, kc_max * std::min<int64_t>(block_m, (m + mr - 1) / mr * mr));
  alignas(64) T tile[16 * 64];
  // Note [A in place]: packing A costs a pass over it (a transposition, for a row-major A) that
  // pays for itself only across many panels of B. With few panels, a row-major A is read in
  // place by the micro-kernel (the same sums in the same order: results are unchanged). On the
  // Xeon of docs/performance.md, 1 thread: n = 64 5.6 -> 3.7 us, 256 211 -> 184 us, 512 even,
  // 1024 slower; hence up to 12 panels (n <= 384 in float32 with AVX-512).
  // BPROP_GEMM_A_IN_PLACE_PANELS overrides the limit (0: always pack), for tests and tuning.
  const bool a_in_place = csa == 1 && (n + nr - 1) / nr <= unpacked_a_max_panels();
  for (int64_t jc = 0; jc < n; jc += block_n) {
    const int64_t nc = std::min<int64_t>(block_n, n - jc);
    const int64_t panels = (nc + nr - 1) / nr;
    for (int64_t pc = 0; pc < k; pc += block_k) {
      const int64_t kc = std::min<int64_t>(block_k, k - pc);
      const bool accumulate = pc > 0;
      for (int64_t q = 0; q < panels; ++q)
        pack_b_panel(kc, std::min<int64_t>(nr, nc - q * nr), b + pc * rsb + (jc + q * nr) * csb,
                     rsb, csb, nr, packed_b + q * kc * nr);
      for (int64_t ic = 0; ic < m; ic += block_m) {
        const int64_t mc = std::min<int64_t>(block_m, m - ic);
        const int64_t whole_rows = mc / mr * mr;
        // Note [A in place]: only a partial last strip is packed.
        if (!a_in_place)
          pack_a(mc, kc, a + ic * rsa + pc * csa, rsa, csa, mr, packed_a);
        else if (whole_rows < mc)
          pack_a(mc - whole_rows, kc, a + (ic + whole_rows) * rsa + pc, rsa, 1, mr,
                 packed_a + whole_rows * kc);
        for (int64_t q = 0; q < panels; ++q) {
          const int64_t cols = std::min<int64_t>(nr, nc - q * nr);
          const T* bp = packed_b + q * kc * nr;
          for (int64_t r = 0; r < mc; r += mr) {
            const int64_t rows = std::min<int64_t>(mr, mc - r);
            T* c_tile = c + (ic + r) * ldc + jc + q * nr;
            const T* ap = packed_a + r * kc;
            const bool in_place = a_in_place && rows == mr;
            const T* a_rows = a + (ic + r) * rsa + pc;
            if (rows == mr && cols == nr) {
              if (in_place)
                kernel.run_unpacked_a(kc, a_rows, rsa, bp, c_tile, ldc, accumulate);
              else
                kernel.run(kc, ap, bp, c_tile, ldc, accumulate);
            } else {  // an edge tile: compute whole, keep the part inside C
              if (in_place)
                kernel.run_unpacked_a(kc, a_rows, rsa, bp, tile, nr, false);
              else
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

double measure_fma_peak_gflops(double seconds) {
  const auto& kernels = micro_kernels();
  float sink[3] = {1.0f, 1e-7f, 0.0f};
  int64_t iterations = 1 << 14;
  while (true) {
    const auto start = std::chrono::steady_clock::now();
    const int fmas = kernels.fma_loop(iterations, sink);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (elapsed >= seconds || iterations >= (int64_t{1} << 40))
      return 2.0 * fmas * static_cast<double>(iterations) / elapsed / 1e9;
    iterations *= 2;
  }
}

GemmBlocking gemm_blocking(DType dtype) {
  if (dtype == DType::Float64) return blocking<double>();
  return blocking<float>();
}

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

// GEMM in the BLIS/GotoBLAS structure: B is packed into KC x NR panels (kept in L3, one
// micro-panel in L1), A into MR x KC panels (an MC x KC block kept in L2), and a register-
// blocked micro-kernel (gemm_micro.inc) computes MR x NR tiles of C. Operands may have any
// strides, so matmul's backward passes transposed views without copying them. Small products
// skip packing. Work is split over blocks of C rows or panels of C columns, and a product with a
// long k and a small C over two parts of k fixed by its shape (Note [Products split along k]),
// so every element of C is summed in the same order whatever the thread count.
#include <sys/stat.h>
#include <unistd.h>
#include <xmmintrin.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <initializer_list>
#include <memory>
#include <new>
#include <sstream>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bprop/small_vector.h"
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
const MicroKernel<T>* candidates();
template <>
const MicroKernel<float>* candidates<float>() {
  return micro_kernels().f32;
}
template <>
const MicroKernel<double>* candidates<double>() {
  return micro_kernels().f64;
}

// Index of a float dtype in per-dtype arrays: float32 0, float64 1.
template <typename T>
constexpr int dtype_slot() {
  return sizeof(T) == 4 ? 0 : 1;
}
int dtype_slot(DType dtype) { return dtype == DType::Float64 ? 1 : 0; }

template <typename T>
std::string kernel_name(const MicroKernel<T>& kernel) {
  return std::string(isa_name(active_isa())) + "-" + std::to_string(kernel.mr) + "x" +
         std::to_string(kernel.nr);
}

template <typename T>
int find_kernel(const std::string& name) {
  for (int i = 0; i < micro_kernels().count; ++i)
    if (kernel_name(candidates<T>()[i]) == name) return i;
  return -1;
}

// Note [GEMM blocking]
// Packed B's KC x NR micro-panel is reused by every MR-row panel of A, so it should stay in L1
// with room for the A panel streaming past; packed A's MC x KC block stays in L2 while every
// panel of B passes; packed B's KC x NC block lives in this core's share of L3. MC takes a
// sixth of L2, not half: B's panels and C's lines pass through L2 too, and on the Xeon of
// docs/performance.md (2 MiB L2, KC 256) MC 336 against 1020 gave n = 1024 160-167 against
// 152 GFLOP/s and n = 2048 151 against 139 (n = 512 even). The sizes are
// read from the machine (cpu_info.h), with 32 KiB / 1 MiB / 2 MiB a core where it says
// nothing, and BPROP_GEMM_BLOCKING=kc,mc,nc overrides them (for tuning experiments). KC is
// derived from the default candidate's NR and kept for every candidate: where the k loop is
// cut decides the rounding, so one KC keeps the bits the same whichever micro-kernel runs. The
// k loop takes ceil(k / KC) blocks of about equal size, ceil(k / blocks) steps and the rest last
// (784 as 4 x 196, 769 as 193, 193, 193, 190; not 3 x 256 and a 16 whose C updates cost as much
// as a whole block's): on the Xeon of docs/performance.md, 1 thread, interleaved, x @ W^T of
// the MLP's 256x784x512 1202 -> 1168 us, its 256x784x512 with B row-major 1152 -> 1133, other
// shapes within 1%.

// This core's L1d and L2 as the machine reports them, 32 KiB and 1 MiB where it says nothing.
int64_t l1_bytes() { return cpu_info().l1d_bytes > 0 ? cpu_info().l1d_bytes : int64_t{32} << 10; }
int64_t l2_bytes() { return cpu_info().l2_bytes > 0 ? cpu_info().l2_bytes : int64_t{1} << 20; }

int64_t round_down(int64_t value, int64_t multiple) {
  return std::max(multiple, value / multiple * multiple);
}

template <typename T>
GemmBlocking derive_blocking(const MicroKernel<T>& kernel) {
  const CpuInfo& cpu = cpu_info();
  const int64_t l1 = l1_bytes(), l2 = l2_bytes();
  const int64_t l3_share =
      cpu.l3_bytes > 0 && cpu.l3_sharing > 0 ? cpu.l3_bytes / cpu.l3_sharing : int64_t{2} << 20;
  const int64_t size = sizeof(T);
  const int64_t reference_nr = candidates<T>()[0].nr;
  GemmBlocking b;
  b.mr = kernel.mr;
  b.nr = kernel.nr;
  b.kc = std::clamp<int64_t>(round_down(l1 * 2 / 3 / (reference_nr * size), 16), 64, 512);
  b.mc = std::clamp<int64_t>(round_down(l2 / 6 / (b.kc * size), kernel.mr), kernel.mr,
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
  b.kernel = kernel_name(kernel);
  return b;
}

// A candidate with its blocking: what one product runs with.
// The tail is the candidate of the same NR with the fewest rows: a product whose A is read in
// place runs its last rows through it instead of a whole tile mostly of zeros (m = 64 with a
// 12-row tile: 4 rows left, 6-row tail). Same NR and KC, so the same bits.
template <typename T>
struct GemmPlan {
  const MicroKernel<T>* kernel;
  const MicroKernel<T>* tail;
  GemmBlocking blocking;
};

template <typename T>
const GemmPlan<T>& plan(int index) {
  static const auto plans = [] {
    std::array<GemmPlan<T>, kMaxMicroKernels> all{};
    const MicroKernel<T>* list = candidates<T>();
    for (int i = 0; i < micro_kernels().count; ++i) {
      const MicroKernel<T>* tail = &list[i];
      for (int j = 0; j < micro_kernels().count; ++j)
        if (list[j].nr == list[i].nr && list[j].mr < tail->mr) tail = &list[j];
      all[i] = {&list[i], tail, derive_blocking(list[i])};
    }
    return all;
  }();
  return plans[index];
}

// Note [A in place] (in gemm_serial) says why; the limit differs by instruction set because
// the micro-kernel reads MR rows of A in place at once, 12 with AVX-512 and 6 (or 4) with AVX2,
// and fewer row streams cost less. On the Zen 3 of docs/performance.md (AVX2, 6x16, 1 thread,
// time over OpenBLAS's in one process, two runs): 12 panels gave n = 256 1.14-1.16, 384 1.06,
// 512 1.11-1.15 and the GPT's 768x128x384 1.02-1.09; 48 panels 0.99, 1.00, 1.02-1.08 and
// 0.96-0.98, with n = 768 and 1024 even; 96 no better than 48.
int64_t unpacked_a_max_panels() {
  static const int64_t panels = [] {
    if (const char* env = std::getenv("BPROP_GEMM_A_IN_PLACE_PANELS"))
      return static_cast<int64_t>(std::atoll(env));
    return active_isa() == Isa::Avx2 ? int64_t{48} : int64_t{12};
  }();
  return panels;
}

// Note [B in place]
// Packing B copies it once a product, so that each panel's NR-column runs lie one after another
// for the strips of A that reuse it. Two cases don't repay the copy, and read a row-major B's
// whole panels where they lie instead (a panel's step p at its row p, b_step its row stride;
// only a last panel narrower than NR is packed, as a whole one would read past its rows' ends):
// - a B of at most half of L1 (k x n values), which stays in L1 whatever its layout: at n = 64
//   the copy is a tenth of the product;
// - a B of at most half of L2 reused by at most 8 strips of A (m <= 8 MR): the copy is a pass
//   over B that the strips' few reads of each panel don't repay (the MLP layer 64x784x128).
// With more strips the panels' strided rows, which share L1 sets, cost more than the copy
// (256x512x512 733 -> 797 us read in place). The same values in the same order: the same bits.
// On the Xeon of docs/performance.md, 1 thread, interleaved in one process against packing:
// n = 64 4.18 -> 3.83 us a call (numpy 4.00 in that run), 48 2.03 -> 1.92, 32 1.29 -> 1.24,
// 64x32x64 2.53 -> 2.34; 64x784x128 73.1 -> 67.3 (PyTorch 64.2).
// BPROP_GEMM_B_IN_PLACE_BYTES sets the first limit, and 0 turns both off (tests, tuning).
int64_t b_in_place_max_bytes() {
  static const int64_t bytes = [] {
    if (const char* env = std::getenv("BPROP_GEMM_B_IN_PLACE_BYTES"))
      return static_cast<int64_t>(std::atoll(env));
    return l1_bytes() / 2;
  }();
  return bytes;
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

// A panel whose source lines run along k: out[p * width + j] = src[j * stride + p] for j below
// `lines`, p below kc. That is a transposed float32 B's panel (B[p][j] at b[p + j * csb]: a
// Linear's weight as x @ W^T) and a row-major A's panel alike. In 4 x 4 blocks: four lines read
// along p, transposed in registers (SSE2, the baseline), written as four rows of the panel,
// instead of a gather of `width` strided elements at every p. Returns how many leading k steps
// it packed (a multiple of 4); the caller packs the rest.
int64_t pack_transposed_4x4(int64_t kc, int64_t lines, const float* src, int64_t stride, int width,
                            float* out) {
  if (lines % 4 != 0 || width % 4 != 0) return 0;
  const int64_t whole = kc / 4 * 4;
  for (int64_t j = 0; j < lines; j += 4) {
    const float* w0 = src + j * stride;
    for (int64_t p = 0; p < whole; p += 4) {
      __m128 r0 = _mm_loadu_ps(w0 + p), r1 = _mm_loadu_ps(w0 + stride + p);
      __m128 r2 = _mm_loadu_ps(w0 + 2 * stride + p), r3 = _mm_loadu_ps(w0 + 3 * stride + p);
      _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
      _mm_storeu_ps(out + p * width + j, r0);
      _mm_storeu_ps(out + (p + 1) * width + j, r1);
      _mm_storeu_ps(out + (p + 2) * width + j, r2);
      _mm_storeu_ps(out + (p + 3) * width + j, r3);
    }
  }
  return whole;
}

// kc runs of `count` contiguous values, run p at src + p * stride (a row-major B's rows, a
// column-major A's columns), into panels `width` wide: panel q holds out[(q * kc + p) * width + j]
// = run p's value q * width + j, zeros past count. A run at a time across every panel streams the
// source; panel by panel, each run gave a panel only `width` values (a cache line in float32 with
// AVX2), so a source not in cache was fetched a line per run at a run's stride, which the
// prefetchers follow poorly (the weight gradient's operands are activations, rarely in cache).
// kWidth > 0: width is kWidth, so each run's copy is a few vector moves, not a memcpy call
// (which cost more than the copy for small products: attention's tiles).
template <int kWidth, typename T>
void pack_runs_of(int64_t kc, int64_t count, const T* src, int64_t stride, int runtime_width,
                  T* out) {
  const int width = kWidth > 0 ? kWidth : runtime_width;
  const int64_t panels = (count + width - 1) / width, whole = count / width;
  for (int64_t p = 0; p < kc; ++p) {
    const T* run = src + p * stride;
    T* dst = out + p * width;
    for (int64_t q = 0; q < whole; ++q)
      std::memcpy(dst + q * kc * width, run + q * width, static_cast<size_t>(width) * sizeof(T));
    if (whole < panels) {
      const int64_t rest = count - whole * width;
      T* last = dst + whole * kc * width;
      std::memcpy(last, run + whole * width, static_cast<size_t>(rest) * sizeof(T));
      std::fill(last + rest, last + width, T(0));
    }
  }
}

// Every candidate's MR and NR (gemm_micro.inc): the widths pack_runs copies as fixed sizes.
using PackedWidths = std::integer_sequence<int, 4, 6, 8, 12, 16, 24, 32, 48>;

template <typename T, int... kWidths>
void pack_runs_among(std::integer_sequence<int, kWidths...>, int64_t kc, int64_t count,
                     const T* src, int64_t stride, int width, T* out) {
  const bool fixed =
      ((width == kWidths && (pack_runs_of<kWidths>(kc, count, src, stride, width, out), true)) ||
       ...);
  if (!fixed) pack_runs_of<0>(kc, count, src, stride, width, out);
}

template <typename T>
void pack_runs(int64_t kc, int64_t count, const T* src, int64_t stride, int width, T* out) {
  pack_runs_among(PackedWidths{}, kc, count, src, stride, width, out);
}

// A[0:mc, 0:kc] into panels of MR rows: panel r holds a[p * MR + i] = A[r * MR + i][p], with
// zero rows past mc so the micro-kernel always runs whole tiles. A whole panel of a row-major
// float32 A goes through pack_transposed_4x4 (on the Xeon of docs/performance.md, 1 thread,
// interleaved against the gather: sgemm n = 512 142-143 -> 152 GFLOP/s, the MLP layer
// 256x784x512 +2-5%, the rest within noise).
template <typename T>
void pack_a(int64_t mc, int64_t kc, const T* a, int64_t rsa, int64_t csa, int mr, T* out) {
  if (rsa == 1 && csa != 1) return pack_runs(kc, mc, a, csa, mr, out);  // column-major
  for (int64_t r = 0; r < mc; r += mr) {
    const int64_t rows = std::min<int64_t>(mr, mc - r);
    int64_t p = 0;
    if constexpr (std::is_same_v<T, float>) {
      if (csa == 1 && rows == mr) {
        p = pack_transposed_4x4(kc, rows, a + r * rsa, rsa, mr, out);
        out += p * mr;
      }
    }
    for (; p < kc; ++p) {
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
  if constexpr (std::is_same_v<T, float>) {
    if (rsb == 1 && csb != 1) {
      const int64_t done = pack_transposed_4x4(kc, cols, b, csb, nr, out);
      if (done > 0) {
        for (int64_t p = 0; p < done; ++p)
          for (int64_t j = cols; j < nr; ++j) out[p * nr + j] = 0.0f;
        b += done * rsb;
        out += done * nr;
        kc -= done;
      }
    }
  }
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

// B[0:kc, 0:nc] into its panels of NR columns (as pack_b_panel, panel q at out + q * kc * NR); a
// row-major B a row at a time across every panel (pack_runs).
template <typename T>
void pack_b(int64_t kc, int64_t nc, const T* b, int64_t rsb, int64_t csb, int nr, T* out) {
  if (csb == 1) return pack_runs(kc, nc, b, rsb, nr, out);
  for (int64_t q = 0; q * nr < nc; ++q)
    pack_b_panel(kc, std::min<int64_t>(nr, nc - q * nr), b + q * nr * csb, rsb, csb, nr,
                 out + q * kc * nr);
}

// Small products: no packing, the i-p-j order streams rows of B and C. accumulate: C += A B,
// the products added to C one p at a time.
template <typename T>
void gemm_small(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                int64_t rsb, int64_t csb, T* c, int64_t ldc, bool accumulate = false) {
  for (int64_t i = 0; i < m; ++i) {
    T* c_row = c + i * ldc;
    if (!accumulate)
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
  thread_local Buffer buffers[3];  // packed B, packed A, a second C (Note [Products split along k])
  Buffer& b = buffers[which];
  if (b.capacity < count) {
    b.data = aligned_buffer<T>(count);
    b.capacity = count;
  }
  return b.data.get();
}

// Note [C prefetch]
// The micro-kernel reads and writes C's tile only after its k loop, and the tile's rows are a
// row of C apart, in as many pages: no hardware prefetcher follows them. A C larger than L2
// comes from L3 or memory at every pass over k, a stall at the end of each tile. So the loop
// prefetches the next tile's rows into L2 before running the current one (into L2, not L1: with
// n a multiple of 1024 the rows share one L1 set and evict B's, see Note [Micro-kernel inner
// loop]). On the Xeon of docs/performance.md, 1 thread, interleaved in one process against the
// same build without it: n = 2048 128-129 -> 140-151 GFLOP/s (numpy 148-153), n = 1024 even to
// +3%, the MLP, GPT and small square shapes within +-2%. A C only written, once, needs it too,
// when it is cold: a training step's outputs are new buffers, from memory, where a product
// repeated in a loop writes the same buffer, in cache (and there prefetching cost 1-10%: the
// GPT's 768x128x384 348 -> 359 us, the MLP layer 64x784x128 69 -> 76). Left without it in a
// captured GPT step (1 thread, the same Xeon, per-launch times), the forward products took
// 768x128x512 885-930 us instead of 733-743 and 768x128x384 483-635 instead of 460-496 (one
// replay each way); the whole replay, 4 x 15 replays each way interleaved in one process,
// 36.6-37.4 ms instead of 35.9-36.5 (2 threads: 20.1-20.6 against 19.2-20.4); the MLP steps of
// 784-512 and 784-128 within 1% either way. So only a C of at most half of L1, which no miss
// can cost much, goes without (n = 64: 3.38 -> 3.29 us, 128^3 22.2 -> 20.9 in a loop).

// Note [GEMM epilogues]
// gemm_chain is a product followed by a chain of elementwise steps over it (a residual added, a
// bias and an activation, an activation's slope multiplied in): a captured program joins them
// (capture/passes.cpp) so that the product never makes a round trip through memory between the
// two. C is the chain's output operand, contiguous (ldc = n): the product is written there, and
// once the last k block of a block of C's rows is done (MC rows by all n columns, in L2), the
// chain runs on those rows in place, through elementwise_chain, reading C as the product. Where a
// thread's share is not whole rows (products split by columns, n past NC) the chain runs on all
// of C after the product instead. Either way every value is the product's, then the chain's
// steps in order, each on the very kernels the unfused launches run: eager's bits.
struct Epilogue {
  DType dtype;
  int64_t n;  // C's width: the chain's rows are C's rows
  const int64_t* steps;
  int64_t step_count;
  const ChainOperand* operands;  // Full operands m x n, contiguous; Row operands n values
  int64_t operand_count;
};

// The epilogue's chain over C's rows [first, first + rows).
void run_epilogue(const Epilogue& e, int64_t first, int64_t rows) {
  if (rows <= 0) return;
  const int64_t offset = first * e.n * static_cast<int64_t>(itemsize(e.dtype));
  // once per block of rows: the few operands of a chain without a heap allocation
  SmallVector<ChainOperand, 8> moved(e.operands, e.operands + e.operand_count);
  for (ChainOperand& o : moved)
    if (o.layout == ChainOperand::Full) o.data = static_cast<char*>(o.data) + offset;
  elementwise_chain(e.dtype, rows, e.n, e.steps, e.step_count, moved.data(), e.operand_count);
}

// One thread's share: C[0:m, 0:n] of a product, in the BLIS loop order. With an epilogue (Note
// [GEMM epilogues]), C's rows are rows epilogue_row.. of the chain's.
template <typename T>
void gemm_serial(const GemmPlan<T>& plan, int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa,
                 int64_t csa, const T* b, int64_t rsb, int64_t csb, T* c, int64_t ldc,
                 const GemmOptions& options = {}, const Epilogue* epilogue = nullptr,
                 int64_t epilogue_row = 0) {
  using Triangle = GemmOptions::Triangle;
  const MicroKernel<T>& main_kernel = *plan.kernel;
  const MicroKernel<T>& tail = *plan.tail;
  const int mr = main_kernel.mr, nr = main_kernel.nr;
  const GemmBlocking& blocks = plan.blocking;
  const int64_t block_k = blocks.kc, block_m = blocks.mc, block_n = blocks.nc;
  if (k == 0 || (epilogue && n > block_n)) {  // the chain after the whole product
    if (k == 0 && !options.accumulate)
      for (int64_t i = 0; i < m; ++i) std::fill(c + i * ldc, c + i * ldc + n, T(0));
    if (k > 0) gemm_serial(plan, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, options);
    if (epilogue) run_epilogue(*epilogue, epilogue_row, m);
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
  // 1024 slower; hence up to 12 panels (n <= 384 in float32 with AVX-512), and 48 with AVX2
  // (n <= 768, unpacked_a_max_panels).
  // BPROP_GEMM_A_IN_PLACE_PANELS overrides the limit (0: always pack), for tests and tuning.
  // A column-major A (rsa 1: a transposed view, as a weight gradient's dY^T) is laid out as
  // packed panels are, MR rows of a column a step, only with its column stride for a step: the
  // micro-kernel reads its whole strips in place the same way. But each panel of B reads the
  // strips again, from strided columns instead of a contiguous packed block: on the AMD EPYC of
  // docs/performance.md, 1 thread, interleaved against packing, in place gained up to 16 panels
  // (the GPT's weight gradients 384x128x768 72 -> 82 GFLOP/s, 128x128x768 66 -> 78, and with
  // the caches flushed 384x128x768 57 -> 70; 784x256x256 even) and lost from 24 (784x256x384 82
  // -> 77, 784x256x512 85 -> 77). So up to 16 panels, and no more than a row-major A's limit
  // (12 with AVX-512: on the Xeon of docs/performance.md, 1 thread, interleaved, at 16 panels
  // in place against packed, 784x256x512 1228 against 1145-1150 us, 128x768x512 587 against
  // 604, 512x256x512 even; at 4, the GPT's 384x768x128 399 against 488).
  // Note [C prefetch]: not for a C that fits in half of L1
  const bool prefetch_c = m * n * static_cast<int64_t>(sizeof(T)) > l1_bytes() / 2;
  const int64_t panels_of_n = (n + nr - 1) / nr;
  const bool a_in_place = csa == 1 && panels_of_n <= unpacked_a_max_panels();
  const bool a_columns_in_place =
      !a_in_place && rsa == 1 && panels_of_n <= std::min<int64_t>(unpacked_a_max_panels(), 16);
  const int64_t b_bytes = k * n * static_cast<int64_t>(sizeof(T));
  const bool b_in_place =
      csb == 1 && n <= block_n && b_in_place_max_bytes() > 0 &&
      (b_bytes <= b_in_place_max_bytes() || (m <= 8 * mr && b_bytes <= l2_bytes() / 2));
  for (int64_t jc = 0; jc < n; jc += block_n) {
    const int64_t nc = std::min<int64_t>(block_n, n - jc);
    const int64_t panels = (nc + nr - 1) / nr;
    const int64_t k_blocks = (k + block_k - 1) / block_k;
    const int64_t k_step = (k + k_blocks - 1) / k_blocks;  // Note [GEMM blocking]: k's blocks
    for (int64_t pc = 0; pc < k; pc += k_step) {
      const int64_t kc = std::min<int64_t>(k_step, k - pc);
      const bool accumulate = pc > 0 || options.accumulate;
      // Note [B in place]: whole panels read where they lie, the rest packed from packed_b
      const int64_t panels_in_place = b_in_place ? nc / nr : 0;
      if (panels_in_place < panels)
        pack_b(kc, nc - panels_in_place * nr, b + pc * rsb + (jc + panels_in_place * nr) * csb, rsb,
               csb, nr, packed_b);
      for (int64_t ic = 0; ic < m; ic += block_m) {
        const int64_t mc = std::min<int64_t>(block_m, m - ic);
        // Note [A in place]: the rows past the last whole strip go through the tail kernel,
        // in place while whole tail strips remain, and only its last partial strip is packed.
        const int64_t whole_rows = a_in_place || a_columns_in_place ? mc / mr * mr : 0;
        const int64_t tail_rows =
            a_in_place ? whole_rows + (mc - whole_rows) / tail.mr * tail.mr : whole_rows;
        if (a_in_place) {
          if (tail_rows < mc)
            pack_a(mc - tail_rows, kc, a + (ic + tail_rows) * rsa + pc, rsa, 1, tail.mr,
                   packed_a + tail_rows * kc);
        } else if (whole_rows < mc) {  // all of A packed, or the rows past the in-place strips
          pack_a(mc - whole_rows, kc, a + (ic + whole_rows) * rsa + pc * csa, rsa, csa, mr,
                 packed_a + whole_rows * kc);
        }
        for (int64_t q = 0; q < panels; ++q) {
          const int64_t cols = std::min<int64_t>(nr, nc - q * nr);
          const bool panel_in_place = q < panels_in_place;
          const T* bp = panel_in_place ? b + pc * rsb + jc + q * nr
                                       : packed_b + (q - panels_in_place) * kc * nr;
          const int64_t b_step = panel_in_place ? rsb : nr;
          for (int64_t r = 0; r < mc;) {
            const MicroKernel<T>& kernel = a_in_place && r >= whole_rows ? tail : main_kernel;
            const int64_t rows = std::min<int64_t>(kernel.mr, mc - r);
            T* c_tile = c + (ic + r) * ldc + jc + q * nr;
            const T* ap = packed_a + r * kc;
            const bool in_place = a_in_place && rows == kernel.mr;
            // a strip of A's columns in place, or a packed panel: MR values a step apart
            const bool columns_in_place = a_columns_in_place && r < whole_rows;
            // GemmOptions' triangles: this tile's k range within the block, or no tile at all
            const int64_t first_row = ic + r, last_row = ic + r + rows - 1;
            int64_t k_begin = 0, k_end = kc;
            if (options.triangle == Triangle::ALower)
              k_end = std::clamp<int64_t>(last_row + options.diagonal + 1 - pc, 0, kc);
            else if (options.triangle == Triangle::AUpper)
              k_begin = std::clamp<int64_t>(first_row + options.diagonal - pc, 0, kc);
            const bool wanted =
                options.triangle != Triangle::CLower || jc + q * nr <= last_row + options.diagonal;
            const T* a_rows = a + (ic + r) * rsa + pc + k_begin;
            const int64_t a_step = columns_in_place ? csa : kernel.mr;
            const T* a_columns =
                (columns_in_place ? a + (ic + r) + pc * csa : ap) + k_begin * a_step;
            const T* b_panel = bp + k_begin * b_step;
            const int64_t k_count = k_end - k_begin;
            r += kernel.mr;
            if (!wanted) continue;
            if (k_count <= 0) {  // A's part is all zeros: C's tile is 0, or unchanged
              if (!accumulate)
                for (int64_t i = 0; i < rows; ++i)
                  std::fill(c_tile + i * ldc, c_tile + i * ldc + cols, T(0));
              continue;
            }
            if (prefetch_c && (r < mc || q + 1 < panels)) {  // Note [C prefetch]: the next tile
              const T* next = r < mc ? c_tile + kernel.mr * ldc : c + ic * ldc + jc + (q + 1) * nr;
              const int64_t next_rows =
                  r < mc ? std::min<int64_t>(kernel.mr, mc - r) : std::min<int64_t>(mr, mc);
              const int64_t next_cols = r < mc ? cols : std::min<int64_t>(nr, nc - (q + 1) * nr);
              const size_t row_bytes = static_cast<size_t>(next_cols) * sizeof(T);
              for (int64_t i = 0; i < next_rows; ++i)
                for (size_t line = 0; line < row_bytes; line += 64)
                  _mm_prefetch(reinterpret_cast<const char*>(next + i * ldc) + line, _MM_HINT_T1);
            }
            if (rows == kernel.mr && cols == nr) {
              if (in_place)
                kernel.run_unpacked_a(k_count, a_rows, rsa, b_panel, b_step, c_tile, ldc,
                                      accumulate);
              else
                (columns_in_place ? kernel.run_columns_a : kernel.run)(
                    k_count, a_columns, a_step, b_panel, b_step, c_tile, ldc, accumulate);
            } else {  // an edge tile: compute whole, keep the part inside C
              if (in_place)
                kernel.run_unpacked_a(k_count, a_rows, rsa, b_panel, b_step, tile, nr, false);
              else
                (columns_in_place ? kernel.run_columns_a : kernel.run)(
                    k_count, a_columns, a_step, b_panel, b_step, tile, nr, false);
              for (int64_t i = 0; i < rows; ++i)
                for (int64_t j = 0; j < cols; ++j)
                  c_tile[i * ldc + j] =
                      accumulate ? c_tile[i * ldc + j] + tile[i * nr + j] : tile[i * nr + j];
            }
          }
        }
        // these rows' last k block is done: their values are the product's (n <= NC here)
        if (epilogue && pc + kc >= k) run_epilogue(*epilogue, epilogue_row + ic, mc);
      }
    }
  }
}

// Threads take whole sub-rectangles of C: rows when C is tall, column panels when wide, in whole
// tiles. Share `share` of `parts` covers [begin, end) of C's rows (by_rows) or columns.
struct Shares {
  bool by_rows;
  int64_t extent, unit, units;  // C's rows or columns, MR or NR, and how many tiles cover them
  int64_t count(int64_t threads) const { return std::min(units, threads); }
  int64_t begin(int64_t share, int64_t parts) const {
    return std::min(extent, units * share / parts * unit);
  }
  int64_t end(int64_t share, int64_t parts) const { return begin(share + 1, parts); }
};
template <typename T>
Shares shares_of(const GemmPlan<T>& plan, int64_t m, int64_t n) {
  const bool by_rows = m >= n;
  const int64_t extent = by_rows ? m : n, unit = by_rows ? plan.kernel->mr : plan.kernel->nr;
  return {by_rows, extent, unit, (extent + unit - 1) / unit};
}

// Note [Products split along k]
// A weight's gradient, dY^T X, sums over the tokens: k is long (768 in the GPT of
// benchmarks/bench_gpt.py) and C small (128 x 512). Split by C's rows or columns, each thread
// reads every token of A or B, while the kernels before it (split by tokens) left each half of
// them in the other core's cache: on the Intel Xeon of docs/performance.md, 2 threads, dY^T X
// at 512x128x768 took 400-457 us after an in-place multiply of its operands, 315 us alone.
// So where k is at least m + n, k is cut in two where an even count of equal blocks (Note [GEMM
// blocking]) has its middle, the first part summed into C, the second into a scratch C' (each
// part blocked along k as any product is), and then C += C' (with an epilogue, on each block of
// rows as it is summed): each thread reads its own tokens, and only C' crosses between cores
// (512x128x768 then 373 us after the multiply). The two parts are a function of the shape
// alone, never of the threads: one thread computes the same two parts and the same sum, so the
// bits are the same for any thread count (they differ in the last bits from an unsplit
// product's left-to-right sum over the k blocks; C' and its add cost one thread 2-6% of these
// products alone in a loop). Only for a C within L2, where the operands' traffic is what C'
// saves.
template <typename T>
bool splits_along_k(const GemmPlan<T>& plan, int64_t m, int64_t n, int64_t k,
                    const GemmOptions& options) {
  return options.triangle == GemmOptions::Triangle::None && k > plan.blocking.kc && k >= m + n &&
         m * n * static_cast<int64_t>(sizeof(T)) <= l2_bytes();
}

template <typename T>
void gemm_split_along_k(const GemmPlan<T>& plan, int64_t m, int64_t n, int64_t k, const T* a,
                        int64_t rsa, int64_t csa, const T* b, int64_t rsb, int64_t csb, T* c,
                        int64_t ldc, const GemmOptions& options, const Epilogue* epilogue) {
  // where the middle of an even count of equal blocks falls: group 0's k, the rest group 1's
  const int64_t blocks = (k + plan.blocking.kc - 1) / plan.blocking.kc;
  const int64_t even_blocks = (blocks + 1) / 2 * 2;
  const int64_t k_first = even_blocks / 2 * ((k + even_blocks - 1) / even_blocks);
  T* second = scratch<T>(2, m * n);
  // Each group's C in sub-rectangles as an unsplit product's, for half the threads (rounded up:
  // three threads run four parts).
  const Shares shares = shares_of(plan, m, n);
  const int64_t parts = shares.count((num_threads() + 1) / 2);
  parallel_for(2 * parts, 1, [&](int64_t first, int64_t last) {
    for (int64_t job = first; job < last; ++job) {
      const int64_t group = job / parts, share = job % parts;
      const int64_t k0 = group == 0 ? 0 : k_first, kg = group == 0 ? k_first : k - k_first;
      T* out = group == 0 ? c : second;
      const int64_t ld = group == 0 ? ldc : n;
      GemmOptions group_options = options;
      if (group == 1) group_options.accumulate = false;
      const int64_t begin = shares.begin(share, parts), end = shares.end(share, parts);
      if (shares.by_rows)
        gemm_serial(plan, end - begin, n, kg, a + begin * rsa + k0 * csa, rsa, csa, b + k0 * rsb,
                    rsb, csb, out + begin * ld, ld, group_options);
      else
        gemm_serial(plan, m, end - begin, kg, a + k0 * csa, rsa, csa, b + k0 * rsb + begin * csb,
                    rsb, csb, out + begin, ld, group_options);
    }
  });
  parallel_for(m, 1, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      T* row = c + i * ldc;
      const T* add = second + i * n;
      for (int64_t j = 0; j < n; ++j) row[j] += add[j];
    }
    if (epilogue) run_epilogue(*epilogue, first, last - first);
  });
}

// Threads take whole sub-rectangles of C (Shares), each running the serial loops: one hand-off
// per product, and per-element sums unchanged.
template <typename T>
void gemm_blocked(const GemmPlan<T>& plan, int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa,
                  int64_t csa, const T* b, int64_t rsb, int64_t csb, T* c, int64_t ldc,
                  const GemmOptions& options, const Epilogue* epilogue = nullptr) {
  const int64_t threads = num_threads();
  const double flops = 2.0 * static_cast<double>(m) * static_cast<double>(n) * k;
  if (flops >= 4e6 && splits_along_k(plan, m, n, k, options))
    return gemm_split_along_k(plan, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, options, epilogue);
  if (threads == 1 || flops < 4e6)
    return gemm_serial(plan, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, options, epilogue);
  // A part's rows start at r0 and its columns at c0: its triangles' diagonal moves by r0 - c0
  // (for ALower and AUpper, c0 is 0: k is never split).
  auto part_options = [&](int64_t r0, int64_t c0) {
    GemmOptions moved = options;
    moved.diagonal = options.diagonal + r0 - c0;
    return moved;
  };
  const Shares shares = shares_of(plan, m, n);
  const int64_t parts = shares.count(threads);
  parallel_for(parts, 1, [&](int64_t first, int64_t last) {
    for (int64_t part = first; part < last; ++part) {
      const int64_t begin = shares.begin(part, parts), end = shares.end(part, parts);
      if (shares.by_rows)
        gemm_serial(plan, end - begin, n, k, a + begin * rsa, rsa, csa, b, rsb, csb,
                    c + begin * ldc, ldc, part_options(begin, 0), epilogue, begin);
      else
        gemm_serial(plan, m, end - begin, k, a, rsa, csa, b + begin * csb, rsb, csb, c + begin, ldc,
                    part_options(0, options.triangle == GemmOptions::Triangle::CLower ? begin : 0));
    }
  });
  // split by columns, each part had only some of every row: the chain after the whole product
  if (!shares.by_rows && epilogue) run_epilogue(*epilogue, 0, m);
}

// Note [GEMM micro-kernel choice]
// Which candidate micro-kernel is fastest depends on the core (FMA ports, load ports, L1
// bandwidth), which no cache size tells. So at the first product the candidates race on six
// shapes (squares of 64 to 256, which read A in place or pack it, an MLP layer's, a wide one),
// round-robin so that a noisy neighbour slows all alike, best of several rounds, within
// kTuneBudgetSeconds (two shapes were not enough: on the Xeon of docs/performance.md AVX2's
// 4x24 won 256^3 and the MLP shape and lost n = 64, 128 and 512 by 10%; without the wide one
// AVX-512's 6x32 won and lost n = 2048 by 20%); the winner is kept in
// ~/.cache/bprop/gemm-kernels (XDG_CACHE_HOME is honoured) under the CPU's name, cache sizes and
// instruction set, and read from there next time. BPROP_TUNE=0 skips the race and the file (the
// first candidate runs), BPROP_TUNE=refresh races again; BPROP_GEMM_KERNEL=name[,name] names the
// candidate outright, and set_gemm_kernel switches it at run time (tests, benchmarks). Every
// candidate gives the same bits (the one KC of Note [GEMM blocking], one FMA chain per element), so
// the choice is speed only.
constexpr double kTuneBudgetSeconds = 0.05;

struct KernelChoice {
  int f32 = 0, f64 = 0;
  std::string chosen_by = "default";
  // Each candidate's speed on the race's shapes per padded flop (Note [Edge-aware choice]),
  // relative to the first candidate's; empty when no race ran (then the chosen one runs always).
  std::vector<double> speeds;
};

std::string tune_cache_path() {
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg)
    return std::string(xdg) + "/bprop/gemm-kernels";
  if (const char* home = std::getenv("HOME"); home && *home)
    return std::string(home) + "/.cache/bprop/gemm-kernels";
  return "";
}

// What a cached choice is valid for: the machine and the candidate list it was raced on.
std::string tune_cache_key() {
  const CpuInfo& cpu = cpu_info();
  // "race 6": choices an earlier race made are raced again (race 6 keeps the speeds).
  std::string key = cpu.model + "|" + std::to_string(cpu.l1d_bytes) + "|" +
                    std::to_string(cpu.l2_bytes) + "|race 6|";
  for (int i = 0; i < micro_kernels().count; ++i)
    key += kernel_name(candidates<float>()[i]) + (i + 1 < micro_kernels().count ? "," : "");
  return key;
}

// Lines "key<TAB>float32 kernel<TAB>float64 kernel<TAB>speeds", the speeds in candidate order,
// comma-separated, in units of 1/10000 (integers: no locale's decimal comma can garble them);
// other machines' lines are kept.
constexpr double kSpeedUnit = 10000;
bool read_cached_choice(const std::string& path, KernelChoice& choice) {
  std::ifstream in(path);
  std::string line;
  const std::string key = tune_cache_key() + "\t";
  while (std::getline(in, line)) {
    if (line.compare(0, key.size(), key) != 0) continue;
    const std::string rest = line.substr(key.size());
    std::stringstream fields(rest);
    std::string f32_name, f64_name, speed_list;
    if (!std::getline(fields, f32_name, '\t') || !std::getline(fields, f64_name, '\t') ||
        !std::getline(fields, speed_list))
      continue;
    const int f32 = find_kernel<float>(f32_name);
    const int f64 = find_kernel<double>(f64_name);
    std::vector<double> speeds;
    std::stringstream speed_fields(speed_list);
    for (std::string speed; std::getline(speed_fields, speed, ',');) {
      char* end = nullptr;
      const long long value = std::strtoll(speed.c_str(), &end, 10);
      if (end == speed.c_str() || *end != '\0' || value < 1 || value > 10000000) break;
      speeds.push_back(static_cast<double>(value) / kSpeedUnit);
    }
    if (f32 < 0 || f64 < 0 || static_cast<int>(speeds.size()) != micro_kernels().count) continue;
    choice.f32 = f32;
    choice.f64 = f64;
    choice.speeds = std::move(speeds);
    return true;
  }
  return false;
}

// Best effort: a cache that can't be written (read-only home, no HOME) only costs the next
// process its own race. Written to a temporary file and renamed, so a reader never sees half.
void write_cached_choice(const std::string& path, const KernelChoice& choice) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return;
  const std::string dir = path.substr(0, slash);
  ::mkdir(dir.substr(0, dir.rfind('/')).c_str(), 0755);
  ::mkdir(dir.c_str(), 0755);
  std::string kept;
  {
    std::ifstream in(path);
    std::string line;
    const std::string key = tune_cache_key() + "\t";
    while (std::getline(in, line))
      if (line.compare(0, key.size(), key) != 0) kept += line + "\n";
  }
  std::string speeds;
  for (const double speed : choice.speeds)
    speeds += (speeds.empty() ? "" : ",") + std::to_string(std::llround(speed * kSpeedUnit));
  kept += tune_cache_key() + "\t" + kernel_name(candidates<float>()[choice.f32]) + "\t" +
          kernel_name(candidates<double>()[choice.f64]) + "\t" + speeds + "\n";
  const std::string temporary = path + "." + std::to_string(::getpid()) + ".tmp";
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << kept;
    if (!out.flush()) {
      std::remove(temporary.c_str());
      return;
    }
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) std::remove(temporary.c_str());
}

// Note [Edge-aware choice]
// A product whose n is not a multiple of the micro-kernel's NR computes a last column panel
// partly of padding (and of m, a last row panel): a 768x128x65 product with 16-column tiles
// computes 80 columns, with 24-column ones 72. So each product runs the candidate that takes
// the least time for its m and n: the elements it computes, partial tiles counted whole, over
// its speed per computed element as the race measured it. Speeds within the race's noise (5%)
// count as equal, and a candidate other than the race's winner must save 3%, so that a product
// does not change kernel from one run's race to the next. On the Zen 3 of
// docs/performance.md (AVX2, 1 thread), where the two candidates compute equally fast, the
// GPT head's 768x128x65 takes 4x24 (1.11 -> 0.99x OpenBLAS's time) and everything else keeps
// 6x16. Every candidate gives the same bits, so the choice is speed only; set_gemm_kernel and
// BPROP_GEMM_KERNEL name one for every product.
constexpr double kEdgeChoiceMargin = 0.97;
// How much faster than the first a candidate must race to be chosen (Note [GEMM micro-kernel
// choice]), and how far apart two speeds must be to count as different.
constexpr double kRaceNoise = 0.05;

// The elements of C a plan computes for an m x n product, partial tiles counted whole: rows
// past the last whole strip of a row-major A read in place go through the tail kernel
// (Note [A in place]), otherwise A's last panel is padded to MR.
template <typename T>
double padded_work(const GemmPlan<T>& plan, int64_t m, int64_t n, bool a_row_major) {
  const int64_t mr = plan.kernel->mr, nr = plan.kernel->nr, tail_mr = plan.tail->mr;
  const int64_t panels = (n + nr - 1) / nr;
  const int64_t rows = a_row_major && panels <= unpacked_a_max_panels()
                           ? m / mr * mr + (m % mr + tail_mr - 1) / tail_mr * tail_mr
                           : (m + mr - 1) / mr * mr;
  return static_cast<double>(rows) * static_cast<double>(panels * nr);
}

// The fastest candidate for T over squares from 64 to 256 (which take different paths: whole or
// edge panels, and with AVX-512 A in place or packed; with AVX2 every race shape reads A in
// place, Note [A in place]), an MLP layer's shape and a wide product (where a tile of few rows
// loads B too often). The speeds are float32's; float64's candidates are the same tiles in half
// the lanes, and use them too.
template <typename T>
int race(std::chrono::steady_clock::time_point deadline, std::vector<double>& speeds) {
  const int count = micro_kernels().count;
  struct Shape {
    int64_t m, n, k;
  };
  constexpr int kShapes = 6;
  const Shape shapes[kShapes] = {{64, 64, 64},    {128, 128, 128}, {192, 192, 192},
                                 {256, 256, 256}, {64, 128, 784},  {384, 768, 256}};
  std::vector<T> a(384 * 784);
  std::vector<T> b(768 * 784);
  std::vector<T> c(384 * 768);
  for (size_t i = 0; i < a.size(); ++i) a[i] = static_cast<T>((i % 17) * 0.25 - 2);
  for (size_t i = 0; i < b.size(); ++i) b[i] = static_cast<T>((i % 13) * 0.5 - 3);
  std::array<std::array<double, kShapes>, kMaxMicroKernels> best{};
  for (auto& per_shape : best) per_shape.fill(1e30);
  for (int round = 0; round < 7 && std::chrono::steady_clock::now() < deadline; ++round)
    for (int s = 0; s < kShapes; ++s)
      for (int i = 0; i < count; ++i) {
        const Shape& shape = shapes[s];
        const auto start = std::chrono::steady_clock::now();
        gemm_serial(plan<T>(i), shape.m, shape.n, shape.k, a.data(), shape.k, int64_t{1}, b.data(),
                    shape.n, int64_t{1}, c.data(), shape.n);
        const double seconds =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        best[i][s] = std::min(best[i][s], seconds);
      }
  // The total of the best times: a product counts by its work, as in a training step, so the
  // wide shape weighs most. (Times relative to the fastest per shape, counting every shape
  // alike, let 6x32 win on small shapes by 2-5% each and lose n = 1024-2048 by 10-20%.)
  std::array<double, kMaxMicroKernels> score{};
  for (int i = 0; i < count; ++i)
    for (int s = 0; s < kShapes; ++s) score[i] += best[i][s];
  int fastest = 0;
  for (int i = 1; i < count; ++i)
    if (score[i] < score[fastest]) fastest = i;
  // The first candidate is the one known good on the machines measured; another must beat it by
  // 5%, more than the noise of a shared machine: on the Xeon of docs/performance.md, AVX2's
  // 4x24 and 6x16 trade places within 8% from shape to shape, and a race decided by noise
  // would make one run differ from the next.
  const int winner = score[fastest] < (1 - kRaceNoise) * score[0] ? fastest : 0;
  // Note [Edge-aware choice]: each one's speed per computed element, its partial tiles counted
  // whole, relative to the first's; those within the noise of the winner's count as equal to
  // it, so that only padding tells them apart and one run's choices are the next one's.
  speeds.assign(count, 1.0);
  for (int i = 0; i < count; ++i) {
    double padded = 0;
    for (const Shape& shape : shapes)
      padded += padded_work(plan<T>(i), shape.m, shape.n, true) * static_cast<double>(shape.k);
    speeds[i] = padded / score[i];
  }
  for (int i = 0; i < count; ++i)
    if (std::abs(speeds[i] / speeds[winner] - 1) < kRaceNoise) speeds[i] = speeds[winner];
  const double first = speeds[0];
  for (double& speed : speeds) speed /= first;
  return winner;
}

// "avx512-12x32, avx512-8x48, ..." for the messages that refuse an unknown name.
std::string listed_kernels(std::initializer_list<DType> dtypes) {
  std::string listed;
  for (const DType dtype : dtypes)
    for (const std::string& name : gemm_kernel_names(dtype))
      listed += (listed.empty() ? "" : ", ") + name;
  return listed;
}

// BPROP_GEMM_KERNEL's names, each for the dtype whose list has it; an unknown one is an error
// that lists the candidates.
bool forced_by_environment(KernelChoice& choice) {
  const char* env = std::getenv("BPROP_GEMM_KERNEL");
  if (!env || !*env) return false;
  std::stringstream names(env);
  std::string name;
  while (std::getline(names, name, ',')) {
    if (const int i = find_kernel<float>(name); i >= 0) {
      choice.f32 = i;
    } else if (const int j = find_kernel<double>(name); j >= 0) {
      choice.f64 = j;
    } else {
      throw std::invalid_argument("BPROP_GEMM_KERNEL=" + std::string(env) + ": '" + name +
                                  "' is not one of this machine's micro-kernels (" +
                                  listed_kernels({DType::Float32, DType::Float64}) + ")");
    }
  }
  choice.chosen_by = "BPROP_GEMM_KERNEL";
  return true;
}

KernelChoice decide_kernels() {
  KernelChoice choice;
  if (forced_by_environment(choice) || micro_kernels().count == 1) return choice;
  const char* tune = std::getenv("BPROP_TUNE");
  if (tune && std::strcmp(tune, "0") == 0) {
    choice.chosen_by = "default (BPROP_TUNE=0)";
    return choice;
  }
  const std::string path = tune_cache_path();
  const bool refresh = tune && std::strcmp(tune, "refresh") == 0;
  if (!refresh && !path.empty() && read_cached_choice(path, choice)) {
    choice.chosen_by = "cached in " + path;
    return choice;
  }
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                    std::chrono::duration<double>(kTuneBudgetSeconds));
  // float64's candidates are the same tiles in half the lanes: the float32 winner's shape serves
  // both, and the whole budget goes to one race.
  choice.f32 = race<float>(deadline, choice.speeds);
  choice.f64 = choice.f32;
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  char took[32];
  std::snprintf(took, sizeof took, "%.0f ms", ms);
  choice.chosen_by = std::string("raced at first use (") + took + ")";
  if (!path.empty()) write_cached_choice(path, choice);
  return choice;
}

// Published through an atomic rather than a function-local static: a static's initialisation
// guard would be held through the race, and a process forked meanwhile would wait on it
// forever. Threads that arrive together each race; the first to publish wins.
const KernelChoice& kernel_choice() {
  static std::atomic<const KernelChoice*> decided{nullptr};
  if (const KernelChoice* choice = decided.load(std::memory_order_acquire)) return *choice;
  auto* mine = new KernelChoice(decide_kernels());
  const KernelChoice* expected = nullptr;
  if (decided.compare_exchange_strong(expected, mine, std::memory_order_acq_rel)) return *mine;
  delete mine;
  return *expected;
}

// set_gemm_kernel's override per dtype: a candidate's index, or -1 for the chosen one.
std::atomic<int> g_forced_kernel[2] = {-1, -1};

// The candidate set_gemm_kernel forced for T, or else the one chosen at first use.
template <typename T>
int chosen_kernel() {
  const int forced = g_forced_kernel[dtype_slot<T>()].load(std::memory_order_relaxed);
  if (forced >= 0) return forced;
  const KernelChoice& choice = kernel_choice();
  return sizeof(T) == 4 ? choice.f32 : choice.f64;
}

template <typename T>
const GemmPlan<T>& active_plan() {
  return plan<T>(chosen_kernel<T>());
}

// The plan for one m x n product: the chosen candidate, or one the race measured enough faster
// per element to outweigh its padding here (Note [Edge-aware choice]).
template <typename T>
const GemmPlan<T>& plan_for(int64_t m, int64_t n, bool a_row_major) {
  const int chosen = chosen_kernel<T>();
  const KernelChoice& choice = kernel_choice();
  const int count = static_cast<int>(choice.speeds.size());
  const bool forced = g_forced_kernel[dtype_slot<T>()].load(std::memory_order_relaxed) >= 0;
  if (forced || count != micro_kernels().count) return plan<T>(chosen);  // or no race ran
  int best = chosen;
  double best_time =
      padded_work(plan<T>(chosen), m, n, a_row_major) / choice.speeds[chosen] * kEdgeChoiceMargin;
  for (int i = 0; i < count; ++i) {
    const double time = padded_work(plan<T>(i), m, n, a_row_major) / choice.speeds[i];
    if (i != chosen && time < best_time) best = i, best_time = time;
  }
  return plan<T>(best);
}

// Small products ignore the options' triangles: computing what may be skipped is allowed.
template <typename T>
void gemm_typed(int64_t m, int64_t n, int64_t k, const T* a, int64_t rsa, int64_t csa, const T* b,
                int64_t rsb, int64_t csb, T* c, int64_t ldc, const GemmOptions& options,
                const Epilogue* epilogue = nullptr) {
  if (m == 0 || n == 0) return;
  if (m * n * k <= 16 * 16 * 16) {
    gemm_small(m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, options.accumulate);
    if (epilogue) run_epilogue(*epilogue, 0, m);
  } else {
    gemm_blocked(plan_for<T>(m, n, csa == 1), m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, options,
                 epilogue);
  }
}

// The best rate of several timed runs, each about an eighth of `seconds`: a peak is the fastest
// the core goes, and a run the scheduler interrupted (a busy machine, a hypervisor) reads low.
// (Ending on the first run long enough to time picked exactly such a run when there was one:
// CI's sanitizer stage once read 0.3 GFLOP/s.) run(iterations) does the work and returns its
// floating-point operations.
template <typename Run>
double best_gflops(double seconds, Run run) {
  const double run_seconds = seconds / 8;
  int64_t iterations = 1;
  double best = 0.0, spent = 0.0;
  while (spent < seconds || best == 0.0) {
    const auto start = std::chrono::steady_clock::now();
    const double flops = run(iterations);
    const double elapsed =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    spent += elapsed;
    if (elapsed < run_seconds && iterations < (int64_t{1} << 40)) {
      iterations *= 2;  // too short to time well yet
      continue;
    }
    best = std::max(best, flops / elapsed / 1e9);
  }
  return best;
}

}  // namespace

double measure_fma_peak_gflops(double seconds) {
  float sink[3] = {1.0f, 1e-7f, 0.0f};
  return best_gflops(seconds, [&](int64_t iterations) {
    const int64_t rounds = iterations << 14;
    return 2.0 * micro_kernels().fma_loop(rounds, sink) * static_cast<double>(rounds);
  });
}

// The float32 micro-kernel as a product's inner loops run it: one KC x NR panel of B (L1), the
// MC x KC block of A packed in strips of MR (L2), each strip's tile added into C.
double measure_micro_kernel_gflops(double seconds) {
  const GemmPlan<float>& plan = active_plan<float>();
  const MicroKernel<float>& kernel = *plan.kernel;
  const int64_t kc = plan.blocking.kc, strips = std::max<int64_t>(1, plan.blocking.mc / kernel.mr);
  const auto a = aligned_buffer<float>(strips * kernel.mr * kc);
  const auto b = aligned_buffer<float>(kc * kernel.nr);
  const auto c = aligned_buffer<float>(strips * kernel.mr * kernel.nr);
  std::fill(a.get(), a.get() + strips * kernel.mr * kc, 0.5f);
  std::fill(b.get(), b.get() + kc * kernel.nr, 0.25f);
  std::fill(c.get(), c.get() + strips * kernel.mr * kernel.nr, 0.0f);
  return best_gflops(seconds, [&](int64_t iterations) {
    for (int64_t it = 0; it < iterations; ++it)
      for (int64_t s = 0; s < strips; ++s)
        kernel.run(kc, a.get() + s * kernel.mr * kc, kernel.mr, b.get(), kernel.nr,
                   c.get() + s * kernel.mr * kernel.nr, kernel.nr, true);
    return 2.0 * static_cast<double>(kernel.mr * kernel.nr * kc * strips) *
           static_cast<double>(iterations);
  });
}

GemmBlocking gemm_blocking(DType dtype) {
  GemmBlocking blocking =
      dtype == DType::Float64 ? active_plan<double>().blocking : active_plan<float>().blocking;
  const int forced = g_forced_kernel[dtype_slot(dtype)].load();
  blocking.chosen_by = forced >= 0 ? "set_gemm_kernel" : kernel_choice().chosen_by;
  if (forced < 0) blocking.speeds = kernel_choice().speeds;
  return blocking;
}

std::vector<std::string> gemm_kernel_names(DType dtype) {
  std::vector<std::string> names;
  for (int i = 0; i < micro_kernels().count; ++i)
    names.push_back(dtype == DType::Float64 ? kernel_name(candidates<double>()[i])
                                            : kernel_name(candidates<float>()[i]));
  return names;
}

std::string gemm_kernel_for(DType dtype, int64_t m, int64_t n) {
  if (dtype == DType::Float64) return plan_for<double>(m, n, true).blocking.kernel;
  if (dtype == DType::Float32) return plan_for<float>(m, n, true).blocking.kernel;
  throw std::invalid_argument("gemm_kernel_for: only float32 and float64 have micro-kernels");
}

void set_gemm_kernel(DType dtype, const std::string& name) {
  if (dtype != DType::Float32 && dtype != DType::Float64)
    throw std::invalid_argument("set_gemm_kernel: only float32 and float64 have micro-kernels");
  const int index = name.empty()              ? -1
                    : dtype == DType::Float64 ? find_kernel<double>(name)
                                              : find_kernel<float>(name);
  if (!name.empty() && index < 0)
    throw std::invalid_argument("set_gemm_kernel: '" + name + "' is not one of " +
                                listed_kernels({dtype}));
  g_forced_kernel[dtype_slot(dtype)].store(index);
}

void gemm(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa, int64_t csa,
          const void* b, int64_t rsb, int64_t csb, void* c, int64_t ldc) {
  gemm_with_options(dtype, m, n, k, a, rsa, csa, b, rsb, csb, c, ldc, GemmOptions{});
}

void gemm_with_options(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa,
                       int64_t csa, const void* b, int64_t rsb, int64_t csb, void* c, int64_t ldc,
                       const GemmOptions& options) {
  switch (dtype) {
    case DType::Float32:
      return gemm_typed(m, n, k, static_cast<const float*>(a), rsa, csa,
                        static_cast<const float*>(b), rsb, csb, static_cast<float*>(c), ldc,
                        options);
    case DType::Float64:
      return gemm_typed(m, n, k, static_cast<const double*>(a), rsa, csa,
                        static_cast<const double*>(b), rsb, csb, static_cast<double*>(c), ldc,
                        options);
    case DType::Int64:
      if (m > 0 && n > 0)
        gemm_small(m, n, k, static_cast<const int64_t*>(a), rsa, csa,
                   static_cast<const int64_t*>(b), rsb, csb, static_cast<int64_t*>(c), ldc,
                   options.accumulate);
      return;
    case DType::Bool:
      throw std::logic_error("kernel gemm has no bool version");
  }
}

void gemm_chain(DType dtype, int64_t m, int64_t n, int64_t k, const void* a, int64_t rsa,
                int64_t csa, const void* b, int64_t rsb, int64_t csb, int64_t output,
                const int64_t* steps, int64_t step_count, const ChainOperand* operands,
                int64_t operand_count) {
  if (dtype != DType::Float32 && dtype != DType::Float64)
    throw std::invalid_argument("[gemm_chain] float32 or float64 only");
  if (output < 0 || output >= operand_count || operands[output].layout != ChainOperand::Full)
    throw std::invalid_argument("[gemm_chain] the product's operand " + std::to_string(output) +
                                " is not one of the " + std::to_string(operand_count) +
                                " operands, or not a whole m x n one");
  const Epilogue epilogue{dtype, n, steps, step_count, operands, operand_count};
  if (dtype == DType::Float32)
    gemm_typed(m, n, k, static_cast<const float*>(a), rsa, csa, static_cast<const float*>(b), rsb,
               csb, static_cast<float*>(operands[output].data), n, GemmOptions{}, &epilogue);
  else
    gemm_typed(m, n, k, static_cast<const double*>(a), rsa, csa, static_cast<const double*>(b), rsb,
               csb, static_cast<double*>(operands[output].data), n, GemmOptions{}, &epilogue);
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

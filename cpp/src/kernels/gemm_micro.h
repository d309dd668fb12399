// GEMM micro-kernels, several candidate shapes per instruction set (see isa.h). Each computes
// an MR x NR tile of C from packed panels: C[i][j] (+)= sum_p a[p * MR + i] * b[p * NR + j],
// p < kc. Every candidate sums each element of C in the same order (p ascending, one FMA
// chain per element), so which one runs changes the speed, never the bits (Note [GEMM
// micro-kernel choice] in gemm.cpp).
#pragma once

#include <cstdint>

namespace bprop::kernels {

template <typename T>
struct MicroKernel {
  int mr, nr;  // named "<isa>-<mr>x<nr>" (gemm_kernel_names in kernels.h)
  // c is row-major with leading dimension ldc; accumulate adds to C instead of overwriting. A's
  // MR values of step p start at a + p * a_step, a_step MR: a packed panel. B's NR values of
  // step p start at b + p * b_step: b_step NR for a packed panel, or the row stride of a
  // row-major B read in place (Note [B in place] in gemm.cpp).
  void (*run)(int64_t kc, const T* a, int64_t a_step, const T* b, int64_t b_step, T* c, int64_t ldc,
              bool accumulate);
  // The same tile with A read in place: row i of the tile starts at a + i * rsa and its
  // elements are consecutive (a row-major A, not packed). For products too small to repay
  // packing A.
  void (*run_unpacked_a)(int64_t kc, const T* a, int64_t rsa, const T* b, int64_t b_step, T* c,
                         int64_t ldc, bool accumulate);
  // The same tile with a column-major A read in place (a transposed view's rows, as the weight
  // gradient's dY^T): A's MR values of step p at a + p * csa, prefetched ahead (Note
  // [Micro-kernel inner loop]).
  void (*run_columns_a)(int64_t kc, const T* a, int64_t csa, const T* b, int64_t b_step, T* c,
                        int64_t ldc, bool accumulate);
};

constexpr int kMaxMicroKernels = 4;

struct MicroKernels {
  // The candidates; the first is the default where nothing is tuned (BPROP_TUNE=0).
  MicroKernel<float> f32[kMaxMicroKernels];
  MicroKernel<double> f64[kMaxMicroKernels];
  int count;
  // Runs `iterations` rounds of float32 FMAs on registers only (no memory traffic), at this
  // instruction set's width; returns the FMAs done per round (for a roofline: the machine's
  // FMA peak, measured) and a value that keeps the loop from being optimised away.
  int (*fma_loop)(int64_t iterations, float* sink);
};

MicroKernels micro_kernels_scalar();
MicroKernels micro_kernels_avx2();
MicroKernels micro_kernels_avx512();

}  // namespace bprop::kernels

// GEMM micro-kernels, one set per instruction set (see isa.h). Each computes an MR x NR tile
// of C from packed panels: C[i][j] (+)= sum_p a[p * MR + i] * b[p * NR + j], p < kc.
#pragma once

#include <cstdint>

namespace bprop::kernels {

template <typename T>
struct MicroKernel {
  int mr, nr;
  // c is row-major with leading dimension ldc; accumulate adds to C instead of overwriting.
  void (*run)(int64_t kc, const T* a, const T* b, T* c, int64_t ldc, bool accumulate);
};

struct MicroKernels {
  MicroKernel<float> f32;
  MicroKernel<double> f64;
};

MicroKernels micro_kernels_scalar();
MicroKernels micro_kernels_avx2();
MicroKernels micro_kernels_avx512();

}  // namespace bprop::kernels

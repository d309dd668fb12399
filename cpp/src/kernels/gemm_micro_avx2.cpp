// GEMM micro-kernels for the avx2 path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 32
#define BPROP_MICRO_KERNELS_FN micro_kernels_avx2
#include "kernels/gemm_micro.inc"

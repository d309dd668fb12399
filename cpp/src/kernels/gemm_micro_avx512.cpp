// GEMM micro-kernels for the avx512 path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 64
#define BPROP_MICRO_KERNELS_FN micro_kernels_avx512
#include "kernels/gemm_micro.inc"

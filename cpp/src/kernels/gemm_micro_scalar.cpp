// GEMM micro-kernels for the scalar path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 16
#define BPROP_MICRO_KERNELS_FN micro_kernels_scalar
#include "kernels/gemm_micro.inc"

// Vector kernels for the avx512 path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 64
#define BPROP_VECTOR_KERNELS_FN vector_kernels_avx512
#include "kernels/vector_kernels.inc"

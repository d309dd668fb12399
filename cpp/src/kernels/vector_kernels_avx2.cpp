// Vector kernels for the avx2 path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 32
#define BPROP_VECTOR_KERNELS_FN vector_kernels_avx2
#include "kernels/vector_kernels.inc"

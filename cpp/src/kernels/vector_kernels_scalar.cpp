// Vector kernels for the scalar path; CMake compiles this file with that path's flags.
#define BPROP_VECTOR_BYTES 16
#define BPROP_VECTOR_KERNELS_FN vector_kernels_scalar
#include "kernels/vector_kernels.inc"

// Contiguous elementwise loops and sums, one set per instruction set (see isa.h), used by the
// strided kernels for their contiguous inner runs. float32 exp, log, tanh, sigmoid, erf and
// gelu are our own vectorised approximations, within 4 ULP of the correctly rounded result
// over the whole float range, with IEEE handling of infinities, NaN, overflow and subnormals;
// float64 uses the C library.
#pragma once

#include <cstdint>

#include "kernels/optimizer_update.h"

namespace bprop::kernels {

enum class VecUnary { Neg, Abs, Relu, Sqrt, Exp, Log, Tanh, Sigmoid, Erf };
enum class VecBinary { Add, Sub, Mul, Div, Maximum, Minimum };

struct VectorKernels {
  // out[i] = op(in[i]) for i < n; false if the op has no vector version here.
  bool (*unary_f32)(VecUnary op, float* out, const float* in, int64_t n);
  bool (*unary_f64)(VecUnary op, double* out, const double* in, int64_t n);
  // out[i] = a[i] op b[i], or a[i] op b[0] when b_is_scalar.
  bool (*binary_f32)(VecBinary op, float* out, const float* a, const float* b, int64_t n,
                     bool b_is_scalar);
  bool (*binary_f64)(VecBinary op, double* out, const double* a, const double* b, int64_t n,
                     bool b_is_scalar);
  // The sum of n contiguous values: float32 in blocks of float vector accumulators whose
  // results are added in double, float64 in several double accumulators.
  double (*sum_f32)(const float* in, int64_t n);
  double (*sum_f64)(const double* in, int64_t n);
  // One row of layer_norm (rms: rms_norm) over d contiguous values: y = (x - mean) * rstd,
  // times w and plus b where not null, the row's mean (0 for rms) and rstd stored
  // (Note [Normalisation rows] in vector_kernels.inc).
  void (*norm_row_f32)(const float* x, int64_t d, bool rms, double eps, const float* w,
                       const float* b, float* y, float* mean, float* rstd);
  void (*norm_row_f64)(const double* x, int64_t d, bool rms, double eps, const double* w,
                       const double* b, double* y, double* mean, double* rstd);
  // dx of that row from its output gradient g and the saved mean and rstd (dx may be null), and
  // g * xhat and g added into the column sums dw_sum and db_sum (where not null).
  void (*norm_backward_row_f32)(const float* x, const float* g, int64_t d, bool rms, float mean,
                                float rstd, const float* w, float* dx, float* dw_sum,
                                float* db_sum);
  void (*norm_backward_row_f64)(const double* x, const double* g, int64_t d, bool rms, double mean,
                                double rstd, const double* w, double* dx, double* dw_sum,
                                double* db_sum);
  // y = gelu(x) (tanh_form: PyTorch's approximate='tanh') over n values, in float (the tanh
  // form in double; Note [float32 gelu in float] in vector_kernels.inc); slope, when not null,
  // gets gelu'(x), the backward's factor (Note [gelu's saved slope]).
  void (*gelu_f32)(const float* x, float* y, float* slope, int64_t n, bool tanh_form);
  // One optimizer update of n contiguous float32 values (kernels/optimizer_update.h), for
  // adam_step and sgd_step (Note [Multi-tensor optimizer step] in optimizer_step.cpp).
  void (*adam_f32)(float* w, const float* g, float* m, float* v, int64_t n,
                   const AdamConstants<float>& c);
  void (*sgd_f32)(float* w, const float* g, float* buffer, int64_t n, const SGDConstants<float>& c);
  // Attention's online softmax over a row of n scores (kernels/attention.cpp): the largest
  // x[i] * scale; and out[i] = e^(x[i] * scale - shift), returning their sum (summed lane by
  // lane, then the lanes folded in halves: the same for any thread count). out may be x.
  float (*scaled_max_f32)(const float* x, int64_t n, float scale);
  float (*exp_scaled_sum_f32)(const float* x, float* out, int64_t n, float scale, float shift);
  // softmax (log: log_softmax) of n contiguous values into y, and its backward from the output
  // y: softmax dx = y (g - sum(g y)), log_softmax dx = g - e^y sum(g) (Note [Fused softmax] in
  // ops/nn.cpp). A row's sums are lane by lane, then the lanes folded: the same for any thread
  // count.
  void (*softmax_row_f32)(const float* x, float* y, int64_t n, bool log);
  void (*softmax_backward_row_f32)(const float* y, const float* g, float* dx, int64_t n, bool log);
};

const VectorKernels& vector_kernels();  // for the active instruction set

VectorKernels vector_kernels_scalar();
VectorKernels vector_kernels_avx2();
VectorKernels vector_kernels_avx512();

}  // namespace bprop::kernels

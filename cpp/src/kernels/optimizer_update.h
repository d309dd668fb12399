// The arithmetic of one optimizer update over a contiguous run of values, written once for
// the per-ISA float32 loops (vector_kernels.inc, which the compiler vectorises with that path's
// instructions) and the float64 loop (optimizer_step.cpp). The branches that depend only on
// the hyper-parameters are template arguments, so that each loop body is straight-line code.
#pragma once

#include <cstdint>

namespace bprop::kernels {

// One tensor's Adam constants in its dtype, bias corrections included (adam_step in
// kernels.h gives the update).
template <typename T>
struct AdamConstants {
  T step_size;  // lr / (1 - beta1^step)
  T one_minus_beta1, beta2, one_minus_beta2, eps;
  T decay;            // weight_decay (added to the gradient)
  T shrink;           // 1 - lr weight_decay (decoupled)
  T bias2;            // sqrt(1 - beta2^step)
  bool weight_decay;  // weight_decay != 0
  bool decoupled;
};

// One tensor's SGD constants in its dtype (sgd_step in kernels.h gives the update).
template <typename T>
struct SGDConstants {
  T lr, decay, momentum, keep;  // keep: 1 - dampening
  bool weight_decay;            // weight_decay != 0
  bool nesterov;
  bool first_step;  // the momentum buffer starts as d
};

// The loops below are compiled once per instruction set (each vector_kernels_<isa>.cpp with
// its own flags): internal linkage keeps each file's copy its own. With external linkage the
// linker would keep one copy of each template for all paths, say the AVX2 one, which the
// scalar path would then run on a CPU without AVX2.
namespace {

// sqrt through the builtins: std::sqrt(float) is an inline function with external linkage,
// which an unoptimised build emits, with this file's instructions, for the linker to merge.
inline float square_root(float x) { return __builtin_sqrtf(x); }
inline double square_root(double x) { return __builtin_sqrt(x); }

template <typename T, bool kDecay, bool kDecoupled>
void adam_values(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v,
                 int64_t n, const AdamConstants<T>& c) {
  for (int64_t i = 0; i < n; ++i) {
    T grad = g[i];
    T wi = w[i];
    if (kDecay) {
      if (kDecoupled)
        wi *= c.shrink;
      else
        grad += c.decay * wi;
    }
    const T mi = m[i] + c.one_minus_beta1 * (grad - m[i]);  // lerp(m, g, 1 - beta1)
    const T vi = v[i] * c.beta2 + c.one_minus_beta2 * grad * grad;
    const T denom = square_root(vi) / c.bias2 + c.eps;  // float's sqrt for float
    m[i] = mi;
    v[i] = vi;
    w[i] = wi + -c.step_size * (mi / denom);
  }
}

template <typename T>
void adam_run(T* w, const T* g, T* m, T* v, int64_t n, const AdamConstants<T>& c) {
  if (!c.weight_decay)
    adam_values<T, false, false>(w, g, m, v, n, c);
  else if (c.decoupled)
    adam_values<T, true, true>(w, g, m, v, n, c);
  else
    adam_values<T, true, false>(w, g, m, v, n, c);
}

template <typename T, bool kDecay, bool kMomentum, bool kNesterov, bool kFirst>
void sgd_values(T* __restrict w, const T* __restrict g, T* __restrict buffer, int64_t n,
                const SGDConstants<T>& c) {
  for (int64_t i = 0; i < n; ++i) {
    T d = kDecay ? g[i] + c.decay * w[i] : g[i];
    if (kMomentum) {
      const T b = kFirst ? d : c.momentum * buffer[i] + c.keep * d;
      buffer[i] = b;
      d = kNesterov ? d + c.momentum * b : b;
    }
    w[i] -= c.lr * d;
  }
}

template <typename T, bool kDecay>
void sgd_run_with(T* w, const T* g, T* buffer, int64_t n, const SGDConstants<T>& c) {
  if (!buffer)
    sgd_values<T, kDecay, false, false, false>(w, g, buffer, n, c);
  else if (c.nesterov)
    c.first_step ? sgd_values<T, kDecay, true, true, true>(w, g, buffer, n, c)
                 : sgd_values<T, kDecay, true, true, false>(w, g, buffer, n, c);
  else
    c.first_step ? sgd_values<T, kDecay, true, false, true>(w, g, buffer, n, c)
                 : sgd_values<T, kDecay, true, false, false>(w, g, buffer, n, c);
}

template <typename T>
void sgd_run(T* w, const T* g, T* buffer, int64_t n, const SGDConstants<T>& c) {
  c.weight_decay ? sgd_run_with<T, true>(w, g, buffer, n, c)
                 : sgd_run_with<T, false>(w, g, buffer, n, c);
}

}  // namespace

}  // namespace bprop::kernels

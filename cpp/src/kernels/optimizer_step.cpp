// adam_step and sgd_step (kernels.h): an optimizer's update of all its parameters in one call.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/optimizer_update.h"
#include "kernels/parallel.h"
#include "kernels/vector_kernels.h"

namespace bprop::kernels {

// Note [Multi-tensor optimizer step]
// An optimizer updated its parameters one at a time: a split over the threads for each (the
// small ones, a bias or a norm's weight, ran on the caller alone), and a scalar loop, as the
// C library's sqrt may set errno. AdamW over a GPT's 0.80M values in 27 tensors took 3.8-6.6 ms
// on one thread of an AMD EPYC (PyTorch's loop 4.3-6.4 ms; bench_kernels.py's optimizer rows),
// and takes 0.45-0.53 ms now. The tensors are laid end to end
// as one range of values, split once over the threads, and each part runs each tensor's piece
// of it through a loop the compiler vectorises with the active instruction set's width (float32:
// vector_kernels' adam_f32 / sgd_f32; float64: the baseline's two lanes), with each tensor's
// constants (its bias corrections, whether its momentum buffer starts now) worked out once.
// Each value's arithmetic is the same whatever the split, so the bits are the same for any
// thread count; between instruction-set paths they may differ in the last place (the wider
// paths fuse a multiply and an add). The tensors must not overlap: two threads may update
// two of them at once (the optimizers refuse a parameter listed twice; two different tensors
// over the same memory are the caller's to avoid).
namespace {

// Values a thread takes at least: below this, the caller updates everything alone.
constexpr int64_t kGrain = int64_t{1} << 15;

// Runs piece(tensor index, offset, count) over every value of the tensors laid end to end, split
// once over the kernel threads: each tensor's values in order, in one piece or several.
template <typename Tensors, typename Piece>
void over_all_values(const Tensors* tensors, int64_t count, Piece&& piece) {
  std::vector<int64_t> start(static_cast<size_t>(count) + 1, 0);  // where each tensor begins
  for (int64_t i = 0; i < count; ++i) start[i + 1] = start[i] + tensors[i].n;
  parallel_for(start.back(), kGrain, [&](int64_t first, int64_t last) {
    size_t i = static_cast<size_t>(std::upper_bound(start.begin(), start.end(), first) -
                                   start.begin() - 1);
    for (; first < last; ++i) {
      const int64_t end = std::min(last, start[i + 1]);
      if (end > first) piece(i, first - start[i], end - first);
      first = end;
    }
  });
}

template <typename T>
AdamConstants<T> adam_constants(const AdamHyper& h, int64_t step) {
  const double bias1 = 1.0 - std::pow(h.beta1, static_cast<double>(step));
  const double bias2 = std::sqrt(1.0 - std::pow(h.beta2, static_cast<double>(step)));
  return {static_cast<T>(h.lr / bias1),
          static_cast<T>(1.0 - h.beta1),
          static_cast<T>(h.beta2),
          static_cast<T>(1.0 - h.beta2),
          static_cast<T>(h.eps),
          static_cast<T>(h.weight_decay),
          static_cast<T>(1.0 - h.lr * h.weight_decay),
          static_cast<T>(bias2),
          h.weight_decay != 0.0,
          h.decoupled};
}

template <typename T>
void adam_step_as(const AdamHyper& hyper, const AdamTensor* tensors, int64_t count) {
  std::vector<AdamConstants<T>> constants;
  constants.reserve(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i)
    constants.push_back(adam_constants<T>(hyper, tensors[i].step));
  over_all_values(tensors, count, [&](size_t i, int64_t offset, int64_t n) {
    const AdamTensor& t = tensors[i];
    T* w = static_cast<T*>(t.w) + offset;
    const T* g = static_cast<const T*>(t.g) + offset;
    T* m = static_cast<T*>(t.m) + offset;
    T* v = static_cast<T*>(t.v) + offset;
    if constexpr (std::is_same_v<T, float>)
      vector_kernels().adam_f32(w, g, m, v, n, constants[i]);
    else
      adam_run<T>(w, g, m, v, n, constants[i]);
  });
}

template <typename T>
void sgd_step_as(const SGDHyper& hyper, const SGDTensor* tensors, int64_t count) {
  over_all_values(tensors, count, [&](size_t i, int64_t offset, int64_t n) {
    const SGDTensor& t = tensors[i];
    const SGDConstants<T> c{static_cast<T>(hyper.lr),
                            static_cast<T>(hyper.weight_decay),
                            static_cast<T>(hyper.momentum),
                            static_cast<T>(1.0 - hyper.dampening),
                            hyper.weight_decay != 0.0,
                            hyper.nesterov,
                            t.first_step};
    T* w = static_cast<T*>(t.w) + offset;
    const T* g = static_cast<const T*>(t.g) + offset;
    T* buffer = t.buffer ? static_cast<T*>(t.buffer) + offset : nullptr;
    if constexpr (std::is_same_v<T, float>)
      vector_kernels().sgd_f32(w, g, buffer, n, c);
    else
      sgd_run<T>(w, g, buffer, n, c);
  });
}

}  // namespace

void adam_step(DType dtype, const AdamHyper& hyper, const AdamTensor* tensors, int64_t count) {
  (dtype == DType::Float32 ? adam_step_as<float> : adam_step_as<double>)(hyper, tensors, count);
}

void sgd_step(DType dtype, const SGDHyper& hyper, const SGDTensor* tensors, int64_t count) {
  (dtype == DType::Float32 ? sgd_step_as<float> : sgd_step_as<double>)(hyper, tensors, count);
}

}  // namespace bprop::kernels

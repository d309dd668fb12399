// The n-d iteration shared by the elementwise kernels: merge dimensions that are contiguous
// for every operand, then run a 1-d inner loop per position of the outer dimensions. Large
// iterations are split over threads along their outermost dimension; each element is computed
// the same way whatever the split.
#pragma once

#include <cstdint>

#include "bprop/small_vector.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"

namespace bprop::kernels {

// Elements below which an elementwise loop stays on the calling thread.
constexpr int64_t kParallelElements = 1 << 16;

template <int NumOperands, typename Inner>
void for_each_strided(int ndim, const int64_t* shape, const Operand* const (&operands)[NumOperands],
                      Inner inner) {
  // No elements, nothing to do. This comes before strides are scaled to bytes: the stride of
  // an empty or size-1 dim may be anything (a huge one from as_strided, say).
  for (int d = 0; d < ndim; ++d)
    if (shape[d] == 0) return;
  // One dimension, small: the inner loop directly (the per-op path of tiny tensors).
  if (ndim == 1 && shape[0] < kParallelElements) {
    char* ptrs[NumOperands];
    int64_t byte_strides[NumOperands];
    for (int o = 0; o < NumOperands; ++o) {
      ptrs[o] = static_cast<char*>(operands[o]->data);
      const int64_t size = static_cast<int64_t>(itemsize(operands[o]->dtype));
      byte_strides[o] = shape[0] == 1 ? size : operands[o]->strides[0] * size;
    }
    inner(ptrs, byte_strides, shape[0]);
    return;
  }
  // Byte strides per operand, with size-1 dims dropped and mergeable dims merged.
  SmallVector<int64_t, 8> sizes;
  SmallVector<int64_t, 8> strides[NumOperands];
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 1) continue;
    bool merge = !sizes.empty();
    for (int o = 0; o < NumOperands && merge; ++o) {
      int64_t stride = operands[o]->strides[d] * static_cast<int64_t>(itemsize(operands[o]->dtype));
      merge = strides[o].back() == stride * shape[d];
    }
    if (merge) {
      sizes.back() *= shape[d];
      for (int o = 0; o < NumOperands; ++o)
        strides[o].back() =
            operands[o]->strides[d] * static_cast<int64_t>(itemsize(operands[o]->dtype));
    } else {
      sizes.push_back(shape[d]);
      for (int o = 0; o < NumOperands; ++o)
        strides[o].push_back(operands[o]->strides[d] *
                             static_cast<int64_t>(itemsize(operands[o]->dtype)));
    }
  }
  char* base[NumOperands];
  for (int o = 0; o < NumOperands; ++o) base[o] = static_cast<char*>(operands[o]->data);
  if (sizes.empty()) {  // a single element
    int64_t zero[NumOperands] = {};
    inner(base, zero, int64_t{1});
    return;
  }
  const int dims = static_cast<int>(sizes.size());
  int64_t total = 1;
  for (int d = 0; d < dims; ++d) total *= sizes[d];

  // Runs positions [first, last) of dimension 0 (of a 1-d iteration: elements).
  auto run = [&](int64_t first, int64_t last) {
    char* ptrs[NumOperands];
    int64_t inner_strides[NumOperands];
    for (int o = 0; o < NumOperands; ++o) {
      ptrs[o] = base[o] + first * strides[o][0];
      inner_strides[o] = strides[o][dims - 1];
    }
    if (dims == 1) {
      inner(ptrs, inner_strides, last - first);
      return;
    }
    const int64_t inner_size = sizes[dims - 1];
    SmallVector<int64_t, 8> counter(static_cast<size_t>(dims), 0);
    counter[0] = first;
    while (true) {
      inner(ptrs, inner_strides, inner_size);
      // Advance the outer counter (dims - 2 down to 0), odometer style.
      int d = dims - 2;
      for (; d >= 0; --d) {
        const int64_t limit = d == 0 ? last : sizes[d];
        if (++counter[d] < limit) {
          for (int o = 0; o < NumOperands; ++o) ptrs[o] += strides[o][d];
          break;
        }
        if (d == 0) return;
        for (int o = 0; o < NumOperands; ++o) ptrs[o] -= strides[o][d] * (sizes[d] - 1);
        counter[d] = 0;
      }
      if (d < 0) return;
    }
  };
  if (total < kParallelElements) return run(0, sizes[0]);
  const int64_t per_position = total / sizes[0];
  parallel_for(sizes[0], (kParallelElements / 2 + per_position - 1) / per_position, run);
}

}  // namespace bprop::kernels

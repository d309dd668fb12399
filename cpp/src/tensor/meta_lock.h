// Note [Autograd metadata and threads]
// Two threads that backpropagate separate graphs sharing a leaf (a model's parameters) both
// find or make the leaf's AccumulateGrad node and both add into its .grad; a third may read
// .grad meanwhile. Those two fields of a TensorImpl are therefore guarded by mutexes, picked
// from a small fixed pool by the TensorImpl's address (one mutex per tensor would add 40 bytes
// to every tensor). The pools are separate, and code holding one of these mutexes takes no
// other lock and never the Python GIL, so they cannot deadlock. The other fields of a
// TensorImpl are written only by in-place ops and requires_grad_(), which are the caller's to
// keep from racing with other uses of the same tensor (see "Threads" in docs/cpp.md).
#pragma once

#include <mutex>

#include "bprop/tensor.h"

namespace bprop::detail {

// Guards impl->grad.
std::mutex& grad_mutex(const TensorImpl* impl);
// Guards impl->grad_accumulator.
std::mutex& accumulator_mutex(const TensorImpl* impl);

// impl->grad = grad under grad_mutex; the previous gradient is released after unlocking.
void store_grad(TensorImpl& impl, Tensor grad);

}  // namespace bprop::detail

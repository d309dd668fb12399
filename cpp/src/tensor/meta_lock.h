// Note [Autograd metadata and threads]
// Two threads that backpropagate separate graphs sharing a leaf (a model's parameters) both
// find or make the leaf's AccumulateGrad node and both add into its .grad; a third may read
// .grad meanwhile. Those two fields of a TensorImpl are therefore guarded by mutexes, picked
// from a small fixed pool by the TensorImpl's address (one mutex per tensor would add 40 bytes
// to every tensor). The pools are separate, and code holding one of these mutexes takes no
// other lock and never the Python GIL, so they cannot deadlock. The other fields of a
// TensorImpl are written only by in-place ops and requires_grad_(), which are the caller's to
// keep from racing with other uses of the same tensor (see "Threads" in docs/cpp.md).
//
// Note [Fork safety]
// A child process has only the thread that called fork(); a lock another thread held at that
// moment stays held in the child forever, and what it guarded may be half written. So:
// - The short-held locks below (grad, accumulator, hook, generator) are all taken by a
//   pthread_atfork prepare handler and released on both sides of the fork: the fork happens
//   between critical sections. Their holders wait for no other lock but the kernels' pool
//   (add_scaled_ under a grad lock), whose own handlers run after these (registered first:
//   prepare handlers run in reverse order), and never for the Python GIL, which the forking
//   thread holds.
// - A node's execution lock is held across a VJP, which may call Python, so it can't be taken
//   before a fork. It records the fork generation of its holder: a child that meets a node a
//   thread of its parent was running raises instead of waiting forever (autograd.h), except
//   a leaf's AccumulateGrad, shared by every graph using the leaf, whose changes are whole
//   under the grad lock: the child takes it over.
// - The kernels' pool: kernels/parallel.cpp. Anomaly mode's trace provider: grad_mode.cpp.
#pragma once

#include <cstdint>
#include <mutex>

#include "bprop/tensor.h"

namespace bprop::detail {

// Guards impl->grad.
std::mutex& grad_mutex(const TensorImpl* impl);
// Guards impl->grad_accumulator.
std::mutex& accumulator_mutex(const TensorImpl* impl);

// Guards the tensor hooks of a Node or a TensorImpl (src/autograd/node.cpp).
std::mutex& hook_mutex(const void* owner);
// Guards the default random generator (tensor/random.cpp).
std::mutex& generator_mutex();

// 1 in a process that has not forked; each fork adds one in the child.
uint64_t fork_generation();

// impl->grad = grad under grad_mutex; the previous gradient is released after unlocking.
void store_grad(TensorImpl& impl, Tensor grad);

// While a capture records on this thread: the step touches leaf's .grad, reading it (reads)
// or setting it (Note [A .grad from before the recording] in launch/tape.h).
void touch_grad(const std::shared_ptr<TensorImpl>& leaf, bool reads);

}  // namespace bprop::detail

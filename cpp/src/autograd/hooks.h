// Running a tensor's hooks (register_hook, retain_grad) and a leaf's post-accumulate-grad
// hooks (register_post_accumulate_grad_hook), declared in bprop/autograd.h. Internal to
// src/autograd: the engine calls them outside the node's execution mutex, so a hook may itself
// call backward through the same node or leaf, and other threads do not wait for it.
#pragma once

#include <memory>

#include "bprop/tensor.h"

namespace bprop::autograd_detail {

// Calls the leaf's hooks of this moment, in order; while a capture records, records the call
// (so each replay calls the hooks of its own moment) and runs the hooks outside the recording.
void run_post_accumulate_grad_hooks(const std::shared_ptr<TensorImpl>& variable);

// The gradient with respect to the tensor `node` stands for (its output, or its leaf for an
// AccumulateGrad), after that tensor's hooks (register_hook); stores it into the .grad of the
// non-leaves that retain it. Called by the engine outside the node's execution mutex.
Tensor run_tensor_hooks(Node& node, Tensor gradient);

}  // namespace bprop::autograd_detail

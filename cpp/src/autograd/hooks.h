// Running a leaf's post-accumulate-grad hooks (register_post_accumulate_grad_hook in
// bprop/autograd.h). Internal to src/autograd: the engine calls it after an AccumulateGrad
// node has run and its execution mutex is released, so a hook may itself call backward
// through the same leaf, and other threads accumulating into the leaf do not wait for it.
#pragma once

#include <memory>

#include "bprop/tensor.h"

namespace bprop::autograd_detail {

// Calls the leaf's hooks of this moment, in order; while a capture records, records the call
// (so each replay calls the hooks of its own moment) and runs the hooks outside the recording.
void run_post_accumulate_grad_hooks(const std::shared_ptr<TensorImpl>& variable);

}  // namespace bprop::autograd_detail

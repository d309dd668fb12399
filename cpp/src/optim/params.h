// What every optimizer does the same way with its parameter list: check it on construction
// and clear the gradients. Internal to the optimizers (src/optim).
#pragma once

#include <stdexcept>
#include <string>
#include <vector>

#include "bprop/dtype.h"
#include "bprop/ops.h"
#include "bprop/tensor.h"

namespace bprop::optim_detail {

// Throws, naming the optimizer, for an empty list or a parameter that is undefined, not
// floating point, or not a leaf.
inline void check_parameters(const char* optimizer, const std::vector<Tensor>& params) {
  const std::string op = std::string("[") + optimizer + "] ";
  if (params.empty()) throw std::invalid_argument(op + "got an empty parameter list");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    if (!p.defined())
      throw std::invalid_argument(op + "parameter " + std::to_string(i) + " is None");
    if (!is_floating(p.dtype()))
      throw TypeError(op + "parameter " + std::to_string(i) + " has dtype " +
                      dtype_name(p.dtype()) + "; only floating point tensors can be optimized");
    if (!p.is_leaf())
      throw std::invalid_argument(op + "can't optimize a non-leaf tensor (parameter " +
                                  std::to_string(i) + ", shape " + p.shape_str() + ")");
  }
}

// PyTorch's zero_grad: drop each gradient (set_to_none) or zero it in place. Dropping is
// recorded for every parameter, .grad or not: in a captured step, code outside the
// recording (a hook, DistributedDataParallel's sync) may give a parameter a .grad between
// replays, and each replay must start without it, as the eager step would.
inline void zero_grads(const std::vector<Tensor>& params, bool set_to_none) {
  for (const Tensor& p : params) {
    if (set_to_none) {
      Tensor(p).set_grad(Tensor());  // (a capture records it)
      continue;
    }
    Tensor g = p.grad();
    if (g.defined()) zero_(g);
  }
}

}  // namespace bprop::optim_detail

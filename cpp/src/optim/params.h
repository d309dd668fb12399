// What every optimizer does the same way with its parameter list: check it on construction.
// Internal to the optimizers (src/optim).
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

}  // namespace bprop::optim_detail

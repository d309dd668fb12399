// What every optimizer does the same way with its parameter list: check it on construction.
// Internal to the optimizers (src/optim).
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "bprop/dtype.h"
#include "bprop/ops.h"
#include "bprop/tensor.h"

namespace bprop::optim_detail {

// Throws, naming the optimizer, for an empty list or a parameter that is undefined, not
// floating point, not a leaf, or listed twice (a step updates all parameters at once, Note
// [Multi-tensor optimizer step], so one listed twice would be updated by two threads at once).
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
  for (size_t i = 0; i < params.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      if (params[j].is_same(params[i]))
        throw std::invalid_argument(op + "parameter " + std::to_string(i) + " is parameter " +
                                    std::to_string(j) +
                                    " again: each parameter may be listed once");
  }
}

// Throws std::runtime_error, naming the optimizer, when parameter i's gradient (`what` is
// "gradient") or a state buffer no longer has the parameter's shape (and, for state, dtype):
// its .data was replaced after the state was made, e.g. by model.double(). Optimizers check
// every parameter before their step changes any.
inline void check_matches(const char* optimizer, size_t i, const Tensor& p, const Tensor& t,
                          const char* what) {
  const bool is_state = std::string(what) != "gradient";
  if (!t.defined() || (t.shape() == p.shape() && (!is_state || t.dtype() == p.dtype()))) return;
  throw std::runtime_error(
      std::string("[") + optimizer + "] parameter " + std::to_string(i) + " is " +
      dtype_name(p.dtype()) + " " + p.shape_str() + " but its " + what + " is " +
      dtype_name(t.dtype()) + " " + t.shape_str() +
      (is_state ? ": the parameter changed (e.g. model.double() or .data = ...) after the "
                  "optimizer made its state; create the optimizer again (or reset its state)"
                : ""));
}

}  // namespace bprop::optim_detail

// Optimizers. SGD is the lecture's update rule: w := w - lr * dL/dw.
#pragma once

#include <vector>

#include "bprop/tensor.h"

namespace bprop {

struct SGDOptions {
  double lr = 1e-3;
  double momentum = 0.0;
  double dampening = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

// PyTorch's SGD, update math included:
//   g = grad + weight_decay * w
//   b = g (first step), else momentum * b + (1 - dampening) * g     (with momentum)
//   g = g + momentum * b (nesterov), else b
//   w = w - lr * g
class SGD {
 public:
  // Every parameter must be a float leaf; lr, momentum and weight_decay must be >= 0, and
  // nesterov needs momentum > 0 and zero dampening. Throws std::invalid_argument otherwise.
  SGD(std::vector<Tensor> params, SGDOptions options);
  SGD(std::vector<Tensor> params, double lr) : SGD(std::move(params), SGDOptions{lr}) {}

  // One update of every parameter that has a gradient, in place and outside autograd; the
  // whole step is one C++ call.
  void step();
  // Drops the gradients (set_to_none, PyTorch's default) or zeroes them in place.
  void zero_grad(bool set_to_none = true);

  const std::vector<Tensor>& params() const { return params_; }
  const SGDOptions& options() const { return options_; }
  double lr() const { return options_.lr; }
  void set_lr(double lr);
  // The momentum buffer of parameter i (undefined before its first step with momentum).
  const Tensor& momentum_buffer(size_t i) const { return buffers_.at(i); }

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> buffers_;
  SGDOptions options_;
};

}  // namespace bprop

// Optimizers. SGD is the lecture's update rule: w := w - lr * dL/dw.
#pragma once

#include <vector>

#include "bprop/tensor.h"

namespace bprop {

class SGD {
 public:
  // Every parameter must be a float leaf that requires grad; lr must be >= 0.
  SGD(std::vector<Tensor> params, double lr);

  // w := w - lr * w.grad for each parameter with a gradient, in place, outside autograd.
  void step();
  // Drops the gradients (set_to_none, PyTorch's default) or zeroes them in place.
  void zero_grad(bool set_to_none = true);

  const std::vector<Tensor>& params() const { return params_; }
  double lr() const { return lr_; }
  void set_lr(double lr);

 private:
  std::vector<Tensor> params_;
  double lr_;
};

}  // namespace bprop

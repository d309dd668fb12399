// Optimizers. SGD is the lecture's update rule: w := w - lr * dL/dw.
#pragma once

#include <memory>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

// Drops each parameter's gradient (set_to_none, PyTorch's default) or zeroes it in place: the
// optimizers' zero_grad, and Python's Module.zero_grad. Dropping is recorded for every
// parameter, .grad or not: in a captured step, code outside the recording (a hook,
// DistributedDataParallel's sync) may give a parameter a .grad between replays, and each
// replay must start without it, as the eager step would.
void zero_grad(const std::vector<Tensor>& params, bool set_to_none = true);

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
class SGD : public std::enable_shared_from_this<SGD> {
 public:
  // Every parameter must be a float leaf; lr, momentum and weight_decay must be >= 0, and
  // nesterov needs momentum > 0 and zero dampening. Throws std::invalid_argument otherwise.
  SGD(std::vector<Tensor> params, SGDOptions options);
  SGD(std::vector<Tensor> params, double lr) : SGD(std::move(params), SGDOptions{lr}) {}

  // One update of every parameter that has a gradient, in place and outside autograd; the
  // whole step is one C++ call. A capture recording the step keeps the optimizer alive when a
  // shared_ptr owns it (the Python objects are); otherwise the caller must.
  void step();
  // Drops the gradients (set_to_none, PyTorch's default) or zeroes them in place.
  void zero_grad(bool set_to_none = true);

  const std::vector<Tensor>& params() const { return params_; }
  const SGDOptions& options() const { return options_; }
  // New hyper-parameters (checked as the constructor checks them), kept state.
  void set_options(SGDOptions options);
  // Forgets the momentum buffers.
  void reset_state();
  double lr() const { return options_.lr; }
  void set_lr(double lr);
  // The momentum buffer of parameter i (undefined before its first step with momentum).
  const Tensor& momentum_buffer(size_t i) const { return buffers_.at(i); }
  // Replaces parameter i's momentum buffer (shape checked; nothing changes on error).
  void set_momentum_buffer(size_t i, const Tensor& buffer);

 private:
  std::vector<Tensor> params_;
  std::vector<Tensor> buffers_;
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;
  // AdamW: weight decay applied to the parameter (w -= lr * wd * w) instead of the gradient.
  bool decoupled_weight_decay = false;
};

// PyTorch's Adam and AdamW (amsgrad off), update math in PyTorch's order:
//   g = grad (+ weight_decay * w for Adam; AdamW instead scales w by 1 - lr * weight_decay)
//   m = m + (1 - beta1) (g - m);  v = beta2 v + (1 - beta2) g^2;  t = t + 1
//   w = w - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
class Adam : public std::enable_shared_from_this<Adam> {
 public:
  // Throws std::invalid_argument for a negative lr, eps or weight decay, betas outside
  // [0, 1), or a non-leaf or non-float parameter.
  Adam(std::vector<Tensor> params, AdamOptions options);

  void step();  // every parameter with a gradient, in one call
  void zero_grad(bool set_to_none = true);

  const std::vector<Tensor>& params() const { return params_; }
  const AdamOptions& options() const { return options_; }
  // New hyper-parameters (checked as the constructor checks them), kept state.
  void set_options(AdamOptions options);
  // Forgets the moments and step counts.
  void reset_state();
  double lr() const { return options_.lr; }
  void set_lr(double lr);

  // Per-parameter state: steps taken, first and second moments (undefined before a step).
  int64_t step_count(size_t i) const { return steps_.at(i); }
  const Tensor& exp_avg(size_t i) const { return exp_avg_.at(i); }
  const Tensor& exp_avg_sq(size_t i) const { return exp_avg_sq_.at(i); }
  // Replaces parameter i's state (shapes and dtypes checked first; nothing changes on error).
  void set_state(size_t i, int64_t steps, const Tensor& exp_avg, const Tensor& exp_avg_sq);

 private:
  std::vector<Tensor> params_;
  std::vector<int64_t> steps_;
  std::vector<Tensor> exp_avg_, exp_avg_sq_;
  AdamOptions options_;
};

// The optimizers under the names torch.optim and bprop.optim use.
namespace optim {
using bprop::Adam;
using bprop::AdamOptions;
using bprop::SGD;
using bprop::SGDOptions;
}  // namespace optim

}  // namespace bprop

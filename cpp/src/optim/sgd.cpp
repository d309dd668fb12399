#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "bprop/optim.h"

namespace bprop {
namespace {
void check_lr(double lr) {
  if (!(lr >= 0.0))
    throw std::invalid_argument("[SGD] invalid learning rate: " + std::to_string(lr));
}
}  // namespace

SGD::SGD(std::vector<Tensor> params, double lr) : params_(std::move(params)), lr_(lr) {
  check_lr(lr);
  if (params_.empty()) throw std::invalid_argument("[SGD] got an empty parameter list");
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    if (!p.defined())
      throw std::invalid_argument("[SGD] parameter " + std::to_string(i) + " is None");
    if (!is_floating(p.dtype()))
      throw TypeError("[SGD] parameter " + std::to_string(i) + " has dtype " +
                      dtype_name(p.dtype()) + "; only floating point tensors can be optimized");
    if (!p.is_leaf())
      throw std::invalid_argument("[SGD] can't optimize a non-leaf tensor (parameter " +
                                  std::to_string(i) + ", shape " + p.shape_str() + ")");
  }
}

void SGD::set_lr(double lr) {
  check_lr(lr);
  lr_ = lr;
}

void SGD::step() {
  NoGradGuard no_grad;
  for (const Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    add_scaled_(p, g, -lr_);  // w := w - lr * dL/dw
  }
}

void SGD::zero_grad(bool set_to_none) {
  for (const Tensor& p : params_) {
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (set_to_none) {
      p.impl()->grad = Tensor();
    } else {
      zero_(g);
    }
  }
}

}  // namespace bprop

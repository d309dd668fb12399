#include <cmath>
#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "bprop/optim.h"
#include "kernels/parallel.h"
#include "launch/tape.h"
#include "optim/params.h"

namespace bprop {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("[Adam] invalid " + what);
}

// One parameter's update in a single pass, in PyTorch's order of operations.
template <typename T>
void adam_update(T* w, const T* g, T* m, T* v, int64_t n, const AdamOptions& o, int64_t step) {
  const double bias1 = 1.0 - std::pow(o.beta1, static_cast<double>(step));
  const double bias2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(step)));
  const T step_size = static_cast<T>(o.lr / bias1);
  const T one_minus_beta1 = static_cast<T>(1.0 - o.beta1), beta2 = static_cast<T>(o.beta2);
  const T one_minus_beta2 = static_cast<T>(1.0 - o.beta2), eps = static_cast<T>(o.eps);
  const T decay = static_cast<T>(o.weight_decay), bias2 = static_cast<T>(bias2_sqrt);
  const T shrink = static_cast<T>(1.0 - o.lr * o.weight_decay);
  // Split over the kernel threads element by element (the same bits for any split).
  kernels::parallel_for(n, optim_detail::kUpdateGrain, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      T grad = g[i];
      if (o.weight_decay != 0.0) {
        if (o.decoupled_weight_decay)
          w[i] *= shrink;
        else
          grad += decay * w[i];
      }
      m[i] += one_minus_beta1 * (grad - m[i]);              // lerp(m, g, 1 - beta1)
      v[i] = v[i] * beta2 + one_minus_beta2 * grad * grad;  // v * beta2 + (1 - beta2) g g
      const T denom = std::sqrt(v[i]) / bias2 + eps;
      w[i] += -step_size * (m[i] / denom);
    }
  });
}

}  // namespace

namespace {
void check_options(const AdamOptions& options) {
  check(options.lr >= 0.0, "learning rate: " + std::to_string(options.lr));
  check(options.eps >= 0.0, "epsilon value: " + std::to_string(options.eps));
  check(options.beta1 >= 0.0 && options.beta1 < 1.0,
        "beta parameter at index 0: " + std::to_string(options.beta1));
  check(options.beta2 >= 0.0 && options.beta2 < 1.0,
        "beta parameter at index 1: " + std::to_string(options.beta2));
  check(options.weight_decay >= 0.0, "weight_decay value: " + std::to_string(options.weight_decay));
}
}  // namespace

void Adam::set_options(AdamOptions options) {
  check_options(options);
  options_ = options;
}

void Adam::reset_state() {
  for (size_t i = 0; i < params_.size(); ++i) {
    steps_[i] = 0;
    exp_avg_[i] = Tensor();
    exp_avg_sq_[i] = Tensor();
  }
}

Adam::Adam(std::vector<Tensor> params, AdamOptions options)
    : params_(std::move(params)), options_(options) {
  check_options(options);
  optim_detail::check_parameters("Adam", params_);
  steps_.assign(params_.size(), 0);
  exp_avg_.resize(params_.size());
  exp_avg_sq_.resize(params_.size());
}

void Adam::set_lr(double lr) {
  check(lr >= 0.0, "learning rate: " + std::to_string(lr));
  options_.lr = lr;
}

void Adam::step() {
  // A captured step replays the whole update, with the state it has then; rec stays alive
  // through the update so that its own launches are not recorded as well.
  tape::Recording rec;
  if (rec) {
    if (std::shared_ptr<Adam> owned = weak_from_this().lock())
      rec.push([owned] { owned->step(); });
    else
      rec.push([this] { step(); });
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    optim_detail::check_matches("Adam", i, params_[i], params_[i].grad(), "gradient");
    optim_detail::check_matches("Adam", i, params_[i], exp_avg_[i], "exp_avg");
    optim_detail::check_matches("Adam", i, params_[i], exp_avg_sq_[i], "exp_avg_sq");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    if (!exp_avg_[i].defined()) {
      exp_avg_[i] = zeros(p.shape(), p.dtype());
      exp_avg_sq_[i] = zeros(p.shape(), p.dtype());
    }
    const int64_t step = ++steps_[i];
    // A strided parameter or gradient is updated through contiguous copies.
    Tensor w = p.is_contiguous() ? p : p.contiguous();
    Tensor gc = g.is_contiguous() && g.dtype() == p.dtype() ? g : g.to(p.dtype()).contiguous();
    if (p.dtype() == DType::Float32)
      adam_update(w.data_as<float>(), gc.data_as<float>(), exp_avg_[i].data_as<float>(),
                  exp_avg_sq_[i].data_as<float>(), p.numel(), options_, step);
    else
      adam_update(w.data_as<double>(), gc.data_as<double>(), exp_avg_[i].data_as<double>(),
                  exp_avg_sq_[i].data_as<double>(), p.numel(), options_, step);
    if (!w.is_same(p)) copy_(p, w);
    p.storage()->bump_version();
  }
}

void Adam::zero_grad(bool set_to_none) { bprop::zero_grad(params_, set_to_none); }

void Adam::set_state(size_t i, int64_t steps, const Tensor& exp_avg, const Tensor& exp_avg_sq) {
  const Tensor& p = params_.at(i);
  for (const Tensor* t : {&exp_avg, &exp_avg_sq})
    if (!t->defined() || t->shape() != p.shape())
      throw std::invalid_argument("[Adam] state for parameter " + std::to_string(i) +
                                  " must have its shape " + p.shape_str());
  if (steps < 0) throw std::invalid_argument("[Adam] a step count can't be negative");
  steps_[i] = steps;
  exp_avg_[i] = exp_avg.to(p.dtype()).contiguous().clone();
  exp_avg_sq_[i] = exp_avg_sq.to(p.dtype()).contiguous().clone();
}

}  // namespace bprop

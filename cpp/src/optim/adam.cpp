#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "bprop/optim.h"
#include "kernels/kernels.h"
#include "launch/tape.h"
#include "optim/params.h"

namespace bprop {
namespace {

void check(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("[Adam] invalid " + what);
}

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
      rec.push_host("Adam.step", [owned] { owned->step(); });
    else
      rec.push_host("Adam.step", [this] { step(); });
  }
  NoGradGuard no_grad;
  for (size_t i = 0; i < params_.size(); ++i) {
    optim_detail::check_matches("Adam", i, params_[i], params_[i].grad(), "gradient");
    optim_detail::check_matches("Adam", i, params_[i], exp_avg_[i], "exp_avg");
    optim_detail::check_matches("Adam", i, params_[i], exp_avg_sq_[i], "exp_avg_sq");
  }
  // Every buffer first, so that a failure changes nothing; then one update of all the
  // parameters (Note [Multi-tensor optimizer step] in kernels/optimizer_step.cpp), one list
  // per dtype.
  std::vector<kernels::AdamTensor> tensors[2];    // float32, float64
  std::vector<Tensor> inputs;                     // the contiguous copies the lists point into
  std::vector<std::pair<size_t, Tensor>> copied;  // strided parameters, updated through copies
  std::vector<std::pair<size_t, std::pair<Tensor, Tensor>>> made;  // first steps' state
  std::vector<size_t> updated;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    Tensor m = exp_avg_[i], v = exp_avg_sq_[i];
    if (!m.defined()) {
      m = zeros(p.shape(), p.dtype());
      v = zeros(p.shape(), p.dtype());
      made.push_back({i, {m, v}});
    }
    Tensor w = p.is_contiguous() ? p : p.contiguous();
    Tensor gc = g.is_contiguous() && g.dtype() == p.dtype() ? g : g.to(p.dtype()).contiguous();
    tensors[p.dtype() == DType::Float32 ? 0 : 1].push_back(
        {w.data(), gc.data(), m.data(), v.data(), p.numel(), steps_[i] + 1});
    inputs.push_back(gc);
    if (!w.is_same(p)) copied.emplace_back(i, w);
    updated.push_back(i);
  }
  for (auto& [i, state] : made) {
    exp_avg_[i] = state.first;
    exp_avg_sq_[i] = state.second;
  }
  const kernels::AdamHyper hyper{options_.lr,           options_.beta1,
                                 options_.beta2,        options_.eps,
                                 options_.weight_decay, options_.decoupled_weight_decay};
  kernels::adam_step(DType::Float32, hyper, tensors[0].data(),
                     static_cast<int64_t>(tensors[0].size()));
  kernels::adam_step(DType::Float64, hyper, tensors[1].data(),
                     static_cast<int64_t>(tensors[1].size()));
  for (auto& [i, w] : copied) copy_(params_[i], w);
  for (size_t i : updated) {
    ++steps_[i];
    params_[i].storage()->bump_version();
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

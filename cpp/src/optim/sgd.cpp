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

void check_nonnegative(const char* what, double value) {
  if (!(value >= 0.0))
    throw std::invalid_argument(std::string("[SGD] invalid ") + what + ": " +
                                std::to_string(value));
}

void check_options(const SGDOptions& options) {
  check_nonnegative("learning rate", options.lr);
  check_nonnegative("momentum value", options.momentum);
  check_nonnegative("weight_decay value", options.weight_decay);
  if (options.nesterov && (options.momentum <= 0.0 || options.dampening != 0.0))
    throw std::invalid_argument("[SGD] Nesterov momentum requires a momentum and zero dampening");
}
}  // namespace

void SGD::set_options(SGDOptions options) {
  check_options(options);
  options_ = options;
}

void SGD::reset_state() {
  for (Tensor& b : buffers_) b = Tensor();
}

SGD::SGD(std::vector<Tensor> params, SGDOptions options)
    : params_(std::move(params)), options_(options) {
  check_options(options);
  optim_detail::check_parameters("SGD", params_);
  buffers_.resize(params_.size());
}

void SGD::set_lr(double lr) {
  check_nonnegative("learning rate", lr);
  options_.lr = lr;
}

void SGD::step() {
  // A captured step replays the whole update, with the state it has then; rec stays alive
  // through the update so that its own launches are not recorded as well.
  tape::Recording rec;
  if (rec) {
    if (std::shared_ptr<SGD> owned = weak_from_this().lock())
      rec.push_host("SGD.step", [owned] { owned->step(); });
    else
      rec.push_host("SGD.step", [this] { step(); });
  }
  NoGradGuard no_grad;
  const bool use_momentum = options_.momentum != 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    optim_detail::check_matches("SGD", i, params_[i], params_[i].grad(), "gradient");
    optim_detail::check_matches("SGD", i, params_[i], buffers_[i], "momentum_buffer");
  }
  // Contiguous parameters in one update of them all (Note [Multi-tensor optimizer step] in
  // kernels/optimizer_step.cpp), one list per dtype, after every buffer is made; strided ones
  // (or gradients of another dtype) after them, with the same math in tensor ops, one by one
  // (a failure there leaves the ones before it updated, as before, and its own untouched).
  std::vector<kernels::SGDTensor> tensors[2];   // float32, float64
  std::vector<std::pair<size_t, Tensor>> made;  // momentum buffers of first steps
  std::vector<size_t> updated;
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    const Tensor& g = p.grad();
    if (!g.defined() || !(p.is_contiguous() && g.is_contiguous() && g.dtype() == p.dtype()))
      continue;
    const bool first_step = use_momentum && !buffers_[i].defined();
    Tensor buffer = first_step ? zeros(p.shape(), p.dtype()) : buffers_[i];
    if (first_step) made.emplace_back(i, buffer);
    tensors[p.dtype() == DType::Float32 ? 0 : 1].push_back(
        {p.data(), g.data(), use_momentum ? buffer.data() : nullptr, p.numel(), first_step});
    updated.push_back(i);
  }
  for (auto& [i, buffer] : made) buffers_[i] = buffer;
  const kernels::SGDHyper hyper{options_.lr, options_.momentum, options_.dampening,
                                options_.weight_decay, options_.nesterov};
  kernels::sgd_step(DType::Float32, hyper, tensors[0].data(),
                    static_cast<int64_t>(tensors[0].size()));
  kernels::sgd_step(DType::Float64, hyper, tensors[1].data(),
                    static_cast<int64_t>(tensors[1].size()));
  for (size_t i : updated) params_[i].storage()->bump_version();
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined() || (p.is_contiguous() && g.is_contiguous() && g.dtype() == p.dtype()))
      continue;
    // strided parameters (or gradients of another dtype): the same math with tensor ops
    const bool first_step = use_momentum && !buffers_[i].defined();
    Tensor d = options_.weight_decay != 0.0 ? add(g, mul(p, options_.weight_decay)) : g;
    Tensor b;  // the new momentum buffer, kept once the parameter is updated
    if (use_momentum) {
      b = first_step ? d.clone()
                     : add(mul(buffers_[i], options_.momentum), mul(d, 1.0 - options_.dampening));
      d = options_.nesterov ? add(d, mul(b, options_.momentum)) : b;
    }
    add_scaled_(p, d, -options_.lr);
    if (use_momentum) buffers_[i] = b;
  }
}

void SGD::set_momentum_buffer(size_t i, const Tensor& buffer) {
  const Tensor& p = params_.at(i);
  if (!buffer.defined() || buffer.shape() != p.shape())
    throw std::invalid_argument("[SGD] momentum buffer for parameter " + std::to_string(i) +
                                " must have its shape " + p.shape_str());
  buffers_[i] = buffer.to(p.dtype()).contiguous().clone();
}

void SGD::zero_grad(bool set_to_none) { bprop::zero_grad(params_, set_to_none); }

}  // namespace bprop

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

void check_nonnegative(const char* what, double value) {
  if (!(value >= 0.0))
    throw std::invalid_argument(std::string("[SGD] invalid ") + what + ": " +
                                std::to_string(value));
}

// The update of one contiguous parameter in a single pass over its elements, split over the
// kernel threads (element by element: the same bits for any split). It is bound by memory
// bandwidth, which one core doesn't saturate.
template <typename T>
void sgd_update(T* w, const T* g, T* buffer, int64_t n, const SGDOptions& o, bool first_step) {
  const T lr = static_cast<T>(o.lr), wd = static_cast<T>(o.weight_decay);
  const T momentum = static_cast<T>(o.momentum), keep = static_cast<T>(1.0 - o.dampening);
  kernels::parallel_for(n, optim_detail::kUpdateGrain, [&](int64_t first, int64_t last) {
    for (int64_t i = first; i < last; ++i) {
      T d = o.weight_decay != 0.0 ? g[i] + wd * w[i] : g[i];
      if (buffer) {
        buffer[i] = first_step ? d : momentum * buffer[i] + keep * d;
        d = o.nesterov ? d + momentum * buffer[i] : buffer[i];
      }
      w[i] -= lr * d;
    }
  });
}

}  // namespace

namespace {
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
      rec.push([owned] { owned->step(); });
    else
      rec.push([this] { step(); });
  }
  NoGradGuard no_grad;
  const bool use_momentum = options_.momentum != 0.0;
  for (size_t i = 0; i < params_.size(); ++i) {
    optim_detail::check_matches("SGD", i, params_[i], params_[i].grad(), "gradient");
    optim_detail::check_matches("SGD", i, params_[i], buffers_[i], "momentum_buffer");
  }
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    Tensor g = p.grad();
    if (!g.defined()) continue;
    const bool first_step = use_momentum && !buffers_[i].defined();
    if (first_step) buffers_[i] = zeros(p.shape(), p.dtype());
    if (p.is_contiguous() && g.is_contiguous() && g.dtype() == p.dtype()) {
      if (p.dtype() == DType::Float32)
        sgd_update(p.data_as<float>(), g.data_as<float>(),
                   use_momentum ? buffers_[i].data_as<float>() : nullptr, p.numel(), options_,
                   first_step);
      else
        sgd_update(p.data_as<double>(), g.data_as<double>(),
                   use_momentum ? buffers_[i].data_as<double>() : nullptr, p.numel(), options_,
                   first_step);
    } else {  // strided parameters: the same math with tensor ops
      Tensor d = options_.weight_decay != 0.0 ? add(g, mul(p, options_.weight_decay)) : g;
      if (use_momentum) {
        Tensor& b = buffers_[i];
        b = first_step ? d.clone()
                       : add(mul(b, options_.momentum), mul(d, 1.0 - options_.dampening));
        d = options_.nesterov ? add(d, mul(b, options_.momentum)) : b;
      }
      add_scaled_(p, d, -options_.lr);
      continue;
    }
    p.storage()->bump_version();
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

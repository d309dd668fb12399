// bprop::nn layers: thin compositions of the registered ops, so their gradients are the ops'.
#include <cmath>
#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
#include "bprop/nn.h"
#include "bprop/ops.h"

namespace bprop::nn {

namespace {

// U(-bound, bound), as a fresh leaf that requires grad.
Tensor uniform_parameter(const Shape& shape, double bound, DType dtype) {
  NoGradGuard no_grad;
  Tensor values = (rand(shape, dtype) * 2.0 - 1.0) * bound;
  return values.set_requires_grad(true);
}

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool bias, DType dtype)
    : in_features_(in_features), out_features_(out_features) {
  if (in_features <= 0 || out_features <= 0)
    throw std::invalid_argument("[Linear] in_features and out_features must be positive, got (" +
                                std::to_string(in_features) + ", " + std::to_string(out_features) +
                                ")");
  if (dtype != DType::Float32 && dtype != DType::Float64)
    throw std::invalid_argument(
        std::string("[Linear] parameters must be float32 or float64, got ") + dtype_name(dtype));
  const double bound = 1.0 / std::sqrt(static_cast<double>(in_features));
  weight_ = uniform_parameter({out_features, in_features}, bound, dtype);
  if (bias) bias_ = uniform_parameter({out_features}, bound, dtype);
}

Tensor Linear::forward(const Tensor& input) const {
  if (!input.defined()) throw std::invalid_argument("[Linear] input is an undefined tensor");
  if (input.ndim() < 1 || input.size(-1) != in_features_)
    throw std::invalid_argument("[Linear] input of shape " + shape_to_string(input.shape()) +
                                " does not end in in_features = " + std::to_string(in_features_));
  return linear(input, weight_, bias_);
}

std::vector<Tensor> Linear::parameters() const {
  if (bias_.defined()) return {weight_, bias_};
  return {weight_};
}

std::string Linear::name() const {
  return "Linear(in_features=" + std::to_string(in_features_) +
         ", out_features=" + std::to_string(out_features_) +
         ", bias=" + (bias_.defined() ? "True" : "False") + ")";
}

Tensor Tanh::forward(const Tensor& input) const { return tanh(input); }
Tensor ReLU::forward(const Tensor& input) const { return relu(input); }
Tensor Sigmoid::forward(const Tensor& input) const { return sigmoid(input); }

void Sequential::push_back(std::shared_ptr<Module> module) {
  if (!module) throw std::invalid_argument("[Sequential] cannot add a null module");
  modules_.push_back(std::move(module));
}

Tensor Sequential::forward(const Tensor& input) const {
  Tensor out = input;
  for (const auto& module : modules_) out = module->forward(out);
  return out;
}

std::vector<Tensor> Sequential::parameters() const {
  std::vector<Tensor> params;
  for (const auto& module : modules_)
    for (Tensor& p : module->parameters()) params.push_back(std::move(p));
  return params;
}

std::string Sequential::name() const {
  std::string text = "Sequential(";
  for (size_t i = 0; i < modules_.size(); ++i) text += (i ? ", " : "") + modules_[i]->name();
  return text + ")";
}

Module& Sequential::operator[](size_t index) const {
  if (index >= modules_.size())
    throw std::out_of_range("[Sequential] index " + std::to_string(index) +
                            " is out of range for " + std::to_string(modules_.size()) + " modules");
  return *modules_[index];
}

}  // namespace bprop::nn

// Layers for building networks in C++, mirroring bprop.nn (and torch.nn) in names and math:
//
//   bprop::nn::Sequential net(nn::Linear(784, 128), nn::ReLU(), nn::Linear(128, 10));
//   bprop::optim::SGD opt(net.parameters(), 0.1);
//   Tensor loss = cross_entropy(net(x), y);
//
// Modules are value-type handles, like Tensor: copying one shares its parameters, so a
// Sequential built from a Linear trains the same weights that the Linear names. forward() of
// a module never changes its parameters; an optimizer does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bprop/dtype.h"
#include "bprop/tensor.h"

namespace bprop::nn {

// The interface every layer implements.
class Module {
 public:
  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& input) const = 0;
  // The trainable tensors, in a fixed order (that of torch's named_parameters()).
  virtual std::vector<Tensor> parameters() const { return {}; }
  virtual std::string name() const = 0;
  Tensor operator()(const Tensor& input) const { return forward(input); }
};

// y = x W^T + b, W of shape (out_features, in_features). Both initialised as PyTorch does,
// from U(-1/sqrt(in_features), 1/sqrt(in_features)), drawn from bprop's generator (seed it with
// manual_seed). Throws std::invalid_argument for a non-positive size or a non-float dtype, and
// forward() for an input whose last dimension is not in_features.
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true,
         DType dtype = default_dtype());
  Tensor forward(const Tensor& input) const override;
  std::vector<Tensor> parameters() const override;
  std::string name() const override;

  int64_t in_features() const { return in_features_; }
  int64_t out_features() const { return out_features_; }
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined when built with bias = false

 private:
  int64_t in_features_, out_features_;
  Tensor weight_, bias_;
};

// Elementwise activations, parameter-free.
class Tanh : public Module {
 public:
  Tensor forward(const Tensor& input) const override;
  std::string name() const override { return "Tanh()"; }
};
class ReLU : public Module {
 public:
  Tensor forward(const Tensor& input) const override;
  std::string name() const override { return "ReLU()"; }
};
class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& input) const override;
  std::string name() const override { return "Sigmoid()"; }
};

// Applies its modules in order. Built from modules by value (each copy shares the original's
// parameters) or from shared pointers to user-defined Module subclasses.
class Sequential : public Module {
 public:
  Sequential() = default;
  // (One Sequential argument copies it, as a copy constructor must; push_back nests one.)
  template <typename... Modules, typename = std::enable_if_t<
                                     (std::is_base_of_v<Module, std::decay_t<Modules>> && ...) &&
                                     !(sizeof...(Modules) == 1 &&
                                       (std::is_same_v<std::decay_t<Modules>, Sequential> && ...))>>
  explicit Sequential(Modules&&... modules) {
    (push_back(std::forward<Modules>(modules)), ...);
  }

  template <typename M, typename = std::enable_if_t<std::is_base_of_v<Module, std::decay_t<M>>>>
  void push_back(M&& module) {
    modules_.push_back(std::make_shared<std::decay_t<M>>(std::forward<M>(module)));
  }
  // Throws std::invalid_argument for a null pointer.
  void push_back(std::shared_ptr<Module> module);

  Tensor forward(const Tensor& input) const override;
  std::vector<Tensor> parameters() const override;
  std::string name() const override;  // "Sequential(Linear(in_features=2, ...), Tanh())"

  size_t size() const { return modules_.size(); }
  // Throws std::out_of_range past the end.
  Module& operator[](size_t index) const;

 private:
  std::vector<std::shared_ptr<Module>> modules_;
};

}  // namespace bprop::nn

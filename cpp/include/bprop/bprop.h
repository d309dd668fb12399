// bprop: reverse-mode automatic differentiation in C++.
//
// Build a graph by calling ops on tensors that require grad, call backward() on a scalar,
// read the gradients from the leaves, and update them. The lecture's small tanh network,
// trained by SGD to compute XOR (examples/cpp/xor is this, complete):
//
//   #include <bprop/bprop.h>
//   using namespace bprop;
//
//   Tensor x = from_vector<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
//   Tensor y = from_vector<float>({0, 1, 1, 0}, {4, 1});
//   Tensor w1 = (randn({2, 8}) * 0.7).set_requires_grad(true);
//   Tensor b1 = zeros({8}).set_requires_grad(true);
//   Tensor w2 = (randn({8, 1}) * 0.5).set_requires_grad(true);
//   Tensor b2 = zeros({1}).set_requires_grad(true);
//   optim::SGD opt({w1, b1, w2, b2}, optim::SGDOptions{0.1, /*momentum=*/0.9});
//   for (int step = 0; step < 500; ++step) {
//     Tensor h = tanh(matmul(x, w1) + b1);               // forward, in topological order
//     Tensor loss = mse_loss(matmul(h, w2) + b2, y);
//     opt.zero_grad();
//     loss.backward();   // reverse order; each op adds its vector-Jacobian product to its inputs
//     opt.step();        // w := w - lr dL/dw (with momentum)
//   }
//
// The same network from layers: nn::Sequential net(nn::Linear(2, 8), nn::Tanh(),
// nn::Linear(8, 1)), trained with optim::SGD(net.parameters(), ...) or a Trainer.
//
// Headers: tensor.h (Tensor, Storage), ops.h (operations), autograd.h (graph and engine),
// optim.h (SGD, Adam; also as bprop::optim::), nn.h (nn::Linear, nn::Sequential and activations),
// io.h (safetensors checkpoints), capture.h (captured replay), trainer.h (Trainer). Errors are C++
// exceptions: std::invalid_argument for bad values or shapes, bprop::TypeError for bad dtypes,
// std::out_of_range for bad indices/dims, std::runtime_error for misuse of autograd.
#pragma once

#include <initializer_list>
#include <type_traits>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/capture.h"
#include "bprop/dlpack.h"
#include "bprop/dtype.h"
#include "bprop/io.h"
#include "bprop/nn.h"
#include "bprop/ops.h"
#include "bprop/optim.h"
#include "bprop/tensor.h"
#include "bprop/threads.h"
#include "bprop/trainer.h"

namespace bprop {

// A tensor with a copy of `values` (float, double or int64_t), laid out row-major in `shape`.
// Throws std::invalid_argument when the values do not fill the shape.
template <typename T>
Tensor from_vector(const std::vector<T>& values, const Shape& shape) {
  static_assert(std::is_same_v<T, float> || std::is_same_v<T, double> || std::is_same_v<T, int64_t>,
                "from_vector takes float, double or int64_t values");
  constexpr DType dtype = std::is_same_v<T, float>    ? DType::Float32
                          : std::is_same_v<T, double> ? DType::Float64
                                                      : DType::Int64;
  if (static_cast<int64_t>(values.size()) != shape_numel(shape))
    throw std::invalid_argument("[from_vector] " + std::to_string(values.size()) +
                                " values do not fill shape " + shape_to_string(shape));
  Shape strides = contiguous_strides(shape);
  for (auto& s : strides) s *= sizeof(T);
  return from_strided_data(values.data(), shape, strides, dtype);
}

// The values of a tensor, converted to T (float, double or int64_t), in row-major order.
template <typename T>
std::vector<T> to_vector(const Tensor& tensor);

}  // namespace bprop

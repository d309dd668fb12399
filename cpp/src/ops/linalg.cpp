// Matrix products: mm (a registry op) and matmul, which adapts vectors to it.
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

Tensor mm(const Tensor& a, const Tensor& b) {
  if (a.shape()[1] != b.shape()[0])
    throw std::invalid_argument("[matmul] shapes " + a.shape_str() + " and " + b.shape_str() +
                                " are not aligned: " + std::to_string(a.shape()[1]) +
                                " != " + std::to_string(b.shape()[0]));
  if (a.dtype() != b.dtype())
    throw TypeError(std::string("[matmul] expected both operands to have the same dtype, got ") +
                    dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  if (a.dtype() == DType::Bool) throw TypeError("[matmul] is not supported for bool tensors");
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  Tensor ac = contiguous_for_kernel(a), bc = contiguous_for_kernel(b);
  Tensor out = Tensor::empty({m, n}, a.dtype());
  if (m > 0 && n > 0) kernels::gemm(a.dtype(), m, n, k, ac.data(), k, bc.data(), n, out.data(), n);
  if (auto node = record(OpKind::Mm, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

}  // namespace

// dA = G B^T, dB = A^T G: the lecture's "flowing backward" in matrix form.
std::vector<Tensor> vjp_mm(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) ga = matmul(g, transpose(b, 0, 1));
  if (node.needs_input_grad(1)) gb = matmul(transpose(a, 0, 1), g);
  return {ga, gb};
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  const int64_t na = a.ndim(), nb = b.ndim();
  if (na == 0 || nb == 0 || na > 2 || nb > 2)
    throw std::invalid_argument("[matmul] supports 1-D and 2-D operands, got shapes " +
                                a.shape_str() + " and " + b.shape_str());
  if (na == 2 && nb == 2) return mm(a, b);
  // Vectors become a row (left) or a column (right), and that dimension is dropped again.
  Tensor a2 = na == 1 ? reshape(a, {1, a.shape()[0]}) : a;
  Tensor b2 = nb == 1 ? reshape(b, {b.shape()[0], 1}) : b;
  if (a2.shape()[1] != b2.shape()[0])
    throw std::invalid_argument("[matmul] shapes " + a.shape_str() + " and " + b.shape_str() +
                                " are not aligned: " + std::to_string(a2.shape()[1]) +
                                " != " + std::to_string(b2.shape()[0]));
  Tensor product = mm(a2, b2);
  Shape shape;
  if (na == 2) shape.push_back(a.shape()[0]);
  if (nb == 2) shape.push_back(b.shape()[1]);
  return reshape(product, shape);
}

}  // namespace bprop

// Matrix products: mm (a registry op) and matmul, which adapts vectors to it.
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "launch/launch.h"
#include "ops/op_node.h"

namespace bprop {
namespace {
// Both operands share one numeric dtype, or TypeError naming the op.
void check_dtypes(const char* op, const Tensor& a, const Tensor& b) {
  if (a.dtype() != b.dtype())
    throw TypeError(std::string("[") + op +
                    "] expected both operands to have the same dtype, got " +
                    dtype_name(a.dtype()) + " and " + dtype_name(b.dtype()));
  if (a.dtype() == DType::Bool)
    throw TypeError(std::string("[") + op + "] is not supported for bool tensors");
}
}  // namespace

Tensor mm(const Tensor& a, const Tensor& b) {
  if (a.ndim() != 2 || b.ndim() != 2)
    throw std::invalid_argument("[mm] expects 2-D tensors, got shapes " + a.shape_str() + " and " +
                                b.shape_str());
  if (a.shape()[1] != b.shape()[0])
    throw std::invalid_argument("[mm] shapes " + a.shape_str() + " and " + b.shape_str() +
                                " are not aligned: " + std::to_string(a.shape()[1]) +
                                " != " + std::to_string(b.shape()[0]));
  check_dtypes("mm", a, b);
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  Tensor out = Tensor::empty({m, n}, a.dtype());
  // Strided operands go to the kernel as they are: a transposed view costs no copy.
  launch(kernels::gemm, a.dtype(), m, n, k, a.data(), a.strides()[0], a.strides()[1], b.data(),
         b.strides()[0], b.strides()[1], out.data(), n);
  if (auto node = record(OpKind::Mm, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

// dA = G B^T, dB = A^T G: the lecture's "flowing backward" in matrix form. When B is the
// transpose of a row-major matrix (a Linear's weight: x @ W^T), dB is computed as (G^T A)^T,
// whose transpose is row-major like W: the gradient then reaches W.grad without a copy, where
// A^T G would have been transposed into a new tensor. Both sum the same products in the same
// order, so the bits are the same.
std::vector<Tensor> vjp_mm(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) ga = matmul(g, transpose(b, 0, 1));
  if (node.needs_input_grad(1)) {
    const bool b_is_transposed = b.strides()[0] == 1 && b.strides()[1] == b.shape()[0];
    gb = b_is_transposed ? transpose(matmul(transpose(g, 0, 1), a), 0, 1)
                         : matmul(transpose(a, 0, 1), g);
  }
  return {ga, gb};
}

// ---- bmm: a batch of matrix products, (B, n, k) @ (B, k, m) ----

Tensor bmm(const Tensor& a, const Tensor& b) {
  if (a.ndim() != 3 || b.ndim() != 3 || a.shape()[0] != b.shape()[0] ||
      a.shape()[2] != b.shape()[1])
    throw std::invalid_argument("[bmm] shapes " + a.shape_str() + " and " + b.shape_str() +
                                " are not (B, n, k) and (B, k, m)");
  check_dtypes("bmm", a, b);
  const int64_t batch = a.shape()[0], m = a.shape()[1], k = a.shape()[2], n = b.shape()[2];
  Tensor out = Tensor::empty({batch, m, n}, a.dtype());
  launch(kernels::gemm_batched, a.dtype(), batch, m, n, k, a.data(), a.strides()[0], a.strides()[1],
         a.strides()[2], b.data(), b.strides()[0], b.strides()[1], b.strides()[2], out.data());
  if (auto node = record(OpKind::Bmm, {&a, &b})) {
    node->save(a);
    node->save(b);
    set_grad_fn(out, std::move(node));
  }
  return out;
}

std::vector<Tensor> vjp_bmm(OpNode& node, const Tensor& g) {
  Tensor a = node.saved(0), b = node.saved(1);
  Tensor ga, gb;
  if (node.needs_input_grad(0)) ga = bmm(g, transpose(b, 1, 2));
  if (node.needs_input_grad(1)) gb = bmm(transpose(a, 1, 2), g);
  return {ga, gb};
}

// ---- matmul: every rank torch.matmul accepts ----

Tensor matmul(const Tensor& a, const Tensor& b) {
  const int64_t na = a.ndim(), nb = b.ndim();
  if (na == 0 || nb == 0)
    throw std::invalid_argument("[matmul] both arguments need at least 1 dimension, got shapes " +
                                a.shape_str() + " and " + b.shape_str());
  // Vectors become a row (left) or a column (right); that dimension is dropped at the end.
  Tensor a2 = na == 1 ? reshape(a, {1, a.shape()[0]}) : a;
  Tensor b2 = nb == 1 ? reshape(b, {b.shape()[0], 1}) : b;
  const int64_t k = a2.shape()[a2.shape().size() - 1];
  if (k != b2.shape()[b2.shape().size() - 2])
    throw std::invalid_argument("[matmul] shapes " + a.shape_str() + " and " + b.shape_str() +
                                " are not aligned: " + std::to_string(k) +
                                " != " + std::to_string(b2.shape()[b2.shape().size() - 2]));
  check_dtypes("matmul", a, b);
  if (na == 2 && nb == 2) return mm(a, b);
  const int64_t n = a2.shape()[a2.shape().size() - 2], m = b2.shape()[b2.shape().size() - 1];
  Shape batch_a(a2.shape().begin(), a2.shape().end() - 2);
  Shape batch_b(b2.shape().begin(), b2.shape().end() - 2);
  Tensor product;
  Shape batch;
  if (batch_b.empty()) {
    // (..., n, k) @ (k, m): fold the batch into the rows, one matrix product.
    batch = batch_a;
    Tensor rows = batch_a.empty() ? a2 : reshape(a2, {shape_numel(batch_a) * n, k});
    product = mm(rows, b2);
  } else {
    batch = broadcast_shapes(batch_a, batch_b, "matmul");
    Shape shape_a = batch, shape_b = batch;
    shape_a.push_back(n);
    shape_a.push_back(k);
    shape_b.push_back(k);
    shape_b.push_back(m);
    const int64_t count = shape_numel(batch);
    product = bmm(reshape(expand(a2, shape_a), {count, n, k}),
                  reshape(expand(b2, shape_b), {count, k, m}));
  }
  Shape shape = batch;
  if (na > 1) shape.push_back(n);
  if (nb > 1) shape.push_back(m);
  return reshape(product, shape);
}

}  // namespace bprop

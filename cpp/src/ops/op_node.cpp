// OpNode, the node every registry op records (ops/op_node.h), and the helpers op families
// share to hand tensors to the kernels.
#include "ops/op_node.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "launch/launch.h"

namespace bprop {

// ---- OpNode ----

std::shared_ptr<OpNode> record(OpKind kind, const Tensor* const* inputs, size_t count) {
  if (!is_grad_enabled()) return nullptr;
  bool any = false;
  for (size_t i = 0; i < count; ++i) any = any || inputs[i]->requires_grad();
  if (!any) return nullptr;
  auto node = std::make_shared<OpNode>(kind);
  node->next_edges().reserve(count);
  node->inputs_.reserve(count);
  if (is_anomaly_enabled()) node->set_forward_trace(current_forward_trace());
  for (size_t i = 0; i < count; ++i) {
    const Tensor* input = inputs[i];
    node->next_edges().push_back(gradient_edge(*input));
    node->inputs_.push_back({input->shape(), input->dtype()});
  }
  return node;
}

void set_grad_fn(Tensor& output, std::shared_ptr<OpNode> node) {
  output.impl()->requires_grad = true;
  output.impl()->grad_fn = std::move(node);
}

Tensor OpNode::saved(size_t i) const {
  if (released_)
    throw std::runtime_error(
        std::string("[") + name() +
        "] Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the graph "
        "are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if "
        "you need to backward through the graph a second time.");
  return saved_[i].unpack(name().c_str());
}

void OpNode::release_saved() {
  saved_.clear();
  released_ = true;
}

std::vector<Tensor> OpNode::apply(const Tensor& grad_output) {
  std::vector<Tensor> grads = op_vjp(kind_)(*this, grad_output);
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined() || !needs_input_grad(i)) {
      grads[i] = Tensor();
      continue;
    }
    if (grads[i].shape() != inputs_[i].shape)
      throw std::logic_error(std::string("[") + name() + "] internal error: VJP gave shape " +
                             grads[i].shape_str() + " for input " + std::to_string(i) +
                             " of shape " + shape_to_string(inputs_[i].shape));
    if (grads[i].dtype() != inputs_[i].dtype) grads[i] = to_dtype(grads[i], inputs_[i].dtype);
  }
  return grads;
}

// ---- shared helpers ----

Shape broadcast_strides(const Tensor& tensor, const Shape& shape) {
  const size_t lead = shape.size() - tensor.shape().size();
  Shape strides(shape.size(), 0);
  for (size_t d = lead; d < shape.size(); ++d) {
    size_t src = d - lead;
    strides[d] = tensor.shape()[src] == 1 && shape[d] != 1 ? 0 : tensor.strides()[src];
  }
  return strides;
}

Tensor cast_for_kernel(const Tensor& tensor, DType dtype) {
  if (tensor.dtype() == dtype) return tensor;
  Tensor out = Tensor::empty(tensor.shape(), dtype);
  launch(kernels::copy, static_cast<int>(tensor.ndim()), tensor.shape().data(),
         {out.data(), dtype, out.strides().data()},
         {tensor.data(), tensor.dtype(), tensor.strides().data()});
  return out;
}

Tensor contiguous_for_kernel(const Tensor& tensor) {
  if (tensor.is_contiguous()) return tensor;
  Tensor out = Tensor::empty(tensor.shape(), tensor.dtype());
  launch(kernels::copy, static_cast<int>(tensor.ndim()), tensor.shape().data(),
         {out.data(), out.dtype(), out.strides().data()},
         {tensor.data(), tensor.dtype(), tensor.strides().data()});
  return out;
}

void copy_values(const Tensor& dst, const Tensor& src) {
  Shape strides = broadcast_strides(src, dst.shape());
  launch(kernels::copy, static_cast<int>(dst.ndim()), dst.shape().data(),
         {dst.data(), dst.dtype(), dst.strides().data()},
         {src.data(), src.dtype(), strides.data()});
}

int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t bound = std::max<int64_t>(ndim, 1);  // a 0-d tensor accepts dim 0 and -1
  if (dim < -bound || dim >= bound)
    throw std::out_of_range(std::string("[") + op + "] dimension " + std::to_string(dim) +
                            " is out of range for a tensor of " + std::to_string(ndim) +
                            " dimensions (expected to be in range of [" + std::to_string(-bound) +
                            ", " + std::to_string(bound - 1) + "])");
  return dim < 0 ? dim + bound : dim;
}

}  // namespace bprop

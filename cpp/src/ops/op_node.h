// OpNode: the graph node every registry op records, and the helpers ops use to record it.
//
// An op's forward computes its output with the kernels; then, if grad mode is on and an input
// requires grad, record() makes an OpNode with one edge per input, the op saves what its VJP
// needs, and set_grad_fn() makes the node the output's grad_fn. The node's apply() calls the
// op's VJP from the registry and checks that each gradient has its input's shape and dtype.
#pragma once

#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "ops/registry.h"

namespace bprop {

struct InputMeta {
  Shape shape;
  DType dtype;
};

class OpNode final : public Node {
 public:
  explicit OpNode(OpKind kind) : kind_(kind) {}

  std::string name() const override { return grad_fn_name(kind_); }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release_saved() override;

  OpKind kind() const { return kind_; }
  const InputMeta& input(size_t i) const { return inputs_[i]; }

  void save(const Tensor& tensor) { saved_.emplace_back(tensor, false); }
  // For the op's own output: call after set_grad_fn().
  void save_output(const Tensor& output) { saved_.emplace_back(output, true); }
  // The i-th saved tensor; throws if backward already freed it (retain_graph=false).
  Tensor saved(size_t i) const;

  // Op-specific attributes; each op's definition says which it uses.
  Dims dims;
  Dims ints;
  Shape shape;
  bool keepdim = false;
  double scalar = 0.0;

 private:
  friend std::shared_ptr<OpNode> record(OpKind, const Tensor* const*, size_t);
  OpKind kind_;
  bool released_ = false;
  InlineVector<InputMeta, 2> inputs_;
  InlineVector<SavedTensor, 3> saved_;
};

// The node for an op on `inputs`, or null when no gradient is needed (grad mode off, or no
// input requires grad).
std::shared_ptr<OpNode> record(OpKind kind, const Tensor* const* inputs, size_t count);
inline std::shared_ptr<OpNode> record(OpKind kind, std::initializer_list<const Tensor*> inputs) {
  return record(kind, inputs.begin(), inputs.size());
}
void set_grad_fn(Tensor& output, std::shared_ptr<OpNode> node);

// Helpers shared by op families.
// Strides that make `tensor` iterate over `shape` (stride 0 along broadcast dimensions).
Shape broadcast_strides(const Tensor& tensor, const Shape& shape);
// A copy converted to `dtype`, outside autograd; `tensor` itself when it already has it.
Tensor cast_for_kernel(const Tensor& tensor, DType dtype);
// `tensor` if contiguous, else a contiguous copy; outside autograd either way.
Tensor contiguous_for_kernel(const Tensor& tensor);
// dst = src (broadcast to dst's shape, converted to its dtype), outside autograd; no version
// bump (callers writing to a user's tensor bump it).
void copy_values(const Tensor& dst, const Tensor& src);
// A dimension index in [0, ndim), or std::out_of_range naming the op.
int64_t normalize_dim(int64_t dim, int64_t ndim, const char* op);

}  // namespace bprop

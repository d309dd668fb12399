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
#include <variant>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "bprop/window.h"
#include "kernels/kernels.h"
#include "ops/registry.h"

namespace bprop {

// What an op keeps beside its saved tensors, one struct per kind of state: the forward sets
// it with node->set_state(...), the VJP reads it by name with node.state<...>().
struct ReducedDims {  // sum, prod, amax, amin, max(dim), min(dim)
  Dims dims;          // the reduced dimensions, normalized
  bool keepdim = false;
};
struct AlongDim {  // cat, gather, scatter_add, index_select, index_add, softmax, log_softmax
  int64_t dim = 0;
};
struct SliceRange {  // slice, slice_backward: positions start, start + step, ... along dim
  int64_t dim = 0;
  int64_t start = 0;
  int64_t step = 1;
};
struct Permutation {  // permute
  Dims perm;
};
struct Exponent {  // pow with a Python-number exponent
  double value = 0.0;
};
struct Geometry {  // as_strided and as_strided_scatter: the view they read or write
  Shape shape;
  Shape strides;
  int64_t offset = 0;
};
struct Normalization {  // layer_norm, rms_norm: over the last `ndim` dimensions
  int64_t ndim = 1;
  double eps = 0.0;
  bool has_weight = false;
  bool has_bias = false;
};
struct AttentionState {  // scaled_dot_product_attention
  double scale = 1.0;
  bool causal = false;
};
struct ClassTargets {  // cross_entropy against class indices
  int64_t ignore_index = -100;
  Reduction reduction = Reduction::Mean;
};
struct GeluForm {  // gelu: PyTorch's approximate='tanh' or the exact erf form
  bool tanh = false;
};
// unfold2d and fold2d keep their Window2d.
using OpState =
    std::variant<std::monostate, ReducedDims, AlongDim, SliceRange, Permutation, Exponent, Geometry,
                 Window2d, Normalization, GeluForm, AttentionState, ClassTargets>;

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

  template <typename State>
  void set_state(State state) {
    state_ = std::move(state);
  }
  template <typename State>
  const State& state() const {
    return std::get<State>(state_);
  }

 private:
  friend std::shared_ptr<OpNode> record(OpKind, const Tensor* const*, size_t);
  OpKind kind_;
  bool released_ = false;
  InlineVector<InputMeta, 2> inputs_;
  InlineVector<SavedTensor, 3> saved_;
  OpState state_;
};

// The node for an op on `inputs`, or null when no gradient is needed (grad mode off, or no
// input requires grad).
std::shared_ptr<OpNode> record(OpKind kind, const Tensor* const* inputs, size_t count);
inline std::shared_ptr<OpNode> record(OpKind kind, std::initializer_list<const Tensor*> inputs) {
  return record(kind, inputs.begin(), inputs.size());
}
void set_grad_fn(Tensor& output, std::shared_ptr<OpNode> node);

// Helpers shared by op families.
// The kernels' view of `tensor`: its data and dtype, with its own strides or `strides` (broadcast
// ones, say).
inline kernels::Operand operand(const Tensor& tensor) {
  return {tensor.data(), tensor.dtype(), tensor.strides().data()};
}
inline kernels::Operand operand(const Tensor& tensor, const Shape& strides) {
  return {tensor.data(), tensor.dtype(), strides.data()};
}
// PyTorch's type promotion categories, in promotion order (bool < integer < floating).
enum class DTypeCategory { Bool, Integer, Float };
inline DTypeCategory dtype_category(DType dtype) {
  return dtype == DType::Bool    ? DTypeCategory::Bool
         : dtype == DType::Int64 ? DTypeCategory::Integer
                                 : DTypeCategory::Float;
}
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

// In-place ops: add_ sub_ mul_ div_ clamp_ fill_ zero_ copy_.
//
// Note [In-place ops and autograd]
// An in-place op computes its result out of place with the differentiable ops, then writes it
// into self's storage and bumps the storage's version. Tensors saved for backward remember the
// version they were saved at, so a later backward through them raises instead of using the
// overwritten values. When the op must be recorded (grad mode on, and self or other requires
// grad), it runs on a differentiable clone of self, so that its own saved tensors are not the
// ones being overwritten, and self's grad_fn is rebased onto the result's: gradients reaching
// self then flow through the op into self's previous history.
//
// When self is a view, its base changed too. The base's history is rebased onto
// as_strided_scatter(base, result) -- the old base with the result written into the view's
// positions -- and the view's onto as_strided of that, so gradients reaching either flow
// correctly. (Other views of the same base keep their old history, as their values do not
// depend on the write only where they don't overlap it; PyTorch regenerates them instead.)
//
// Refused, as in PyTorch: recording on a leaf that requires grad or on a view of one (its .grad
// would lose the update; use no_grad, as optimizers do), and writing to a tensor whose elements
// overlap in memory (an expanded tensor).
#include <functional>
#include <stdexcept>
#include <string>

#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

bool overlaps_itself(const Tensor& t) {
  for (size_t d = 0; d < t.shape().size(); ++d)
    if (t.strides()[d] == 0 && t.shape()[d] > 1) return true;
  return false;
}

Tensor apply_inplace(const char* op, const Tensor& self, const Tensor& other,
                     const std::function<Tensor(const Tensor&)>& compute) {
  const bool grad_mode = is_grad_enabled();
  const std::shared_ptr<TensorImpl>& base_impl = self.impl()->view_base;
  if (grad_mode && self.is_leaf() && self.requires_grad() && !base_impl)
    throw std::runtime_error(std::string("[") + op +
                             "] a leaf tensor that requires grad is being used in an in-place "
                             "operation; update it inside bprop.no_grad() (as optimizers do), "
                             "or use an out-of-place op");
  if (overlaps_itself(self))
    throw std::runtime_error(std::string("[") + op +
                             "] unsupported operation: more than one element of the written-to "
                             "tensor (shape " +
                             self.shape_str() + ", strides " + shape_to_string(self.strides()) +
                             ") refers to a single memory location; clone() it first");
  Tensor base = base_impl ? Tensor(base_impl) : Tensor();
  const bool recording =
      grad_mode && (self.requires_grad() || (other.defined() && other.requires_grad()) ||
                    (base.defined() && base.requires_grad()));
  if (recording && base.defined()) {
    if (base.is_leaf() && base.requires_grad())
      throw std::runtime_error(std::string("[") + op +
                               "] a view of a leaf tensor that requires grad is being used in "
                               "an in-place operation; update it inside bprop.no_grad()");
    if (!base.is_contiguous() || base.offset() != 0)
      throw std::runtime_error(std::string("[") + op +
                               "] an in-place operation on a view of a non-contiguous tensor "
                               "cannot be recorded for autograd; use .clone() first");
  }
  Tensor result;
  {
    GradModeGuard mode(recording);
    result = compute(recording ? self.clone() : self);
  }
  if (dtype_category(result.dtype()) > dtype_category(self.dtype()))
    throw TypeError(std::string("[") + op + "] result type " + dtype_name(result.dtype()) +
                    " can't be cast to the desired output type " + dtype_name(self.dtype()));
  if (result.shape() != self.shape())
    throw std::invalid_argument(std::string("[") + op + "] output with shape " + self.shape_str() +
                                " doesn't match the broadcast shape " + result.shape_str());
  Tensor new_base;
  if (recording && base.defined()) {
    GradModeGuard mode(true);
    new_base =
        as_strided_scatter(base, to_dtype(result, self.dtype()), self.strides(), self.offset());
  }
  copy_values(self, result);
  self.storage()->bump_version();
  if (recording && base.defined()) {
    base.impl()->grad_fn = new_base.grad_fn();
    base.impl()->requires_grad = true;
    GradModeGuard mode(true);
    Tensor view = as_strided(new_base, self.shape(), self.strides(), self.offset());
    self.impl()->grad_fn = view.grad_fn();
    self.impl()->requires_grad = true;
  } else if (recording) {
    self.impl()->grad_fn = result.grad_fn();
    self.impl()->requires_grad = result.requires_grad();
  }
  return self;
}

}  // namespace

Tensor add_(const Tensor& self, const Tensor& other, Scalar alpha) {
  return apply_inplace("add_", self, other, [&](const Tensor& s) {
    return alpha.to_double() == 1.0 ? add(s, other) : add(s, mul(other, alpha));
  });
}

Tensor sub_(const Tensor& self, const Tensor& other, Scalar alpha) {
  return apply_inplace("sub_", self, other, [&](const Tensor& s) {
    return alpha.to_double() == 1.0 ? sub(s, other) : sub(s, mul(other, alpha));
  });
}

Tensor mul_(const Tensor& self, const Tensor& other) {
  return apply_inplace("mul_", self, other, [&](const Tensor& s) { return mul(s, other); });
}

Tensor div_(const Tensor& self, const Tensor& other) {
  return apply_inplace("div_", self, other, [&](const Tensor& s) { return div(s, other); });
}

Tensor clamp_(const Tensor& self, const Tensor& min, const Tensor& max) {
  Tensor bound = min.defined() && min.requires_grad() ? min : max;
  return apply_inplace("clamp_", self, bound, [&](const Tensor& s) { return clamp(s, min, max); });
}

// Recorded as where(true, value, self): the value, with a zero gradient for the old self.
Tensor fill_(const Tensor& self, Scalar value) {
  return apply_inplace("fill_", self, Tensor(), [&](const Tensor& s) {
    return where(full(s.shape(), Scalar(true), DType::Bool), Tensor::wrapped_scalar(value), s);
  });
}

Tensor zero_(const Tensor& self) { return fill_(self, Scalar(int64_t{0})); }

Tensor copy_(const Tensor& self, const Tensor& src) {
  return apply_inplace("copy_", self, src, [&](const Tensor& s) {
    Shape shape = broadcast_shapes(s.shape(), src.shape(), "copy_");
    if (shape != s.shape())
      throw std::invalid_argument("[copy_] source of shape " + src.shape_str() +
                                  " cannot be broadcast to " + s.shape_str());
    // where(true, src, self): self's old history gets a zero gradient but stays connected,
    // so self still requires grad (as in PyTorch) even when src doesn't.
    return where(full(s.shape(), Scalar(true), DType::Bool), expand(src, s.shape()), s);
  });
}

}  // namespace bprop

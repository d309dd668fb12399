// Tensor: a cheap, copyable handle to an n-d view of a shared, refcounted storage.
//
//   Storage     one buffer of bytes, shared by all the views of it, with a version counter
//               that every in-place write bumps (autograd checks it on saved tensors).
//   TensorImpl  shape, strides (in elements, may be 0 for broadcast dims), offset, dtype, and
//               the autograd metadata: requires_grad, grad, grad_fn.
//   Tensor      a shared_ptr to a TensorImpl. Copying a Tensor copies the handle, not the data.
//
// Tensors that are results of differentiable ops carry their grad_fn (the Node that computes
// the vector-Jacobian product); leaves that require grad own a lazily made AccumulateGrad node.
// See autograd.h for the graph and ops.h for the operations.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <new>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "bprop/dtype.h"
#include "bprop/small_vector.h"

namespace bprop {

using Shape = SmallVector<int64_t, 6>;

// A Python-like number: bool, integer or float. Ops take it where PyTorch takes a Scalar.
class Scalar {
 public:
  enum class Kind : uint8_t { Bool, Int, Float };
  Scalar() : kind_(Kind::Int), i_(0) {}
  Scalar(bool v) : kind_(Kind::Bool), i_(v) {}
  Scalar(int v) : kind_(Kind::Int), i_(v) {}
  Scalar(int64_t v) : kind_(Kind::Int), i_(v) {}
  Scalar(double v) : kind_(Kind::Float), d_(v) {}
  Kind kind() const { return kind_; }
  bool is_floating() const { return kind_ == Kind::Float; }
  double to_double() const { return kind_ == Kind::Float ? d_ : static_cast<double>(i_); }
  int64_t to_int() const { return kind_ == Kind::Float ? static_cast<int64_t>(d_) : i_; }

 private:
  Kind kind_;
  union {
    int64_t i_;
    double d_;
  };
};

// Errors a Python user should see as TypeError (the others use the standard exceptions:
// std::invalid_argument -> ValueError, std::out_of_range -> IndexError,
// std::runtime_error -> RuntimeError).
class TypeError : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A tensor's buffer could not be allocated. It is a std::bad_alloc (MemoryError in Python)
// whose message names the shape, dtype and bytes asked for, so a typo like zeros(2**40) is
// recognisable; code that catches std::bad_alloc keeps working.
class OutOfMemory : public std::bad_alloc {
 public:
  explicit OutOfMemory(std::string message) : message_(std::move(message)) {}
  const char* what() const noexcept override { return message_.c_str(); }

 private:
  std::string message_;
};

class Storage {
 public:
  // An owned, 64-byte aligned buffer; zero-filled when asked (kernels that write every
  // element don't pay for it).
  explicit Storage(size_t nbytes, bool zeroed = false);
  // A buffer owned by someone else (e.g. a numpy array), kept alive by `owner`.
  Storage(void* data, size_t nbytes, std::shared_ptr<void> owner);
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  // Atomic: a thread may write a tensor in place while another checks a saved copy of it.
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_;
  size_t nbytes_;
  std::shared_ptr<void> owner_;  // null when we own data_
  std::atomic<uint64_t> version_{0};
  // Tiny tensors (scalars, the 4-element tensors of small models) live inside the Storage
  // object itself: one allocation fewer on the per-op path.
  // (16-byte alignment, not more: an over-aligned Storage would need aligned operator new.)
  static constexpr size_t kInlineBytes = 32;
  alignas(16) unsigned char inline_[kInlineBytes];
};

class Node;
class TensorImpl;
struct PostAccumulateGradHooks;  // bprop/autograd.h
struct TensorHooks;              // bprop/autograd.h

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // A new contiguous tensor whose values are unspecified until written.
  static Tensor empty(const Shape& shape, DType dtype);
  // A new contiguous tensor of zeros.
  static Tensor zeros(const Shape& shape, DType dtype);
  // A view of `storage`: no copy.
  static Tensor view_of(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                        int64_t offset, DType dtype);
  // A 0-d tensor holding a Python number; it takes part in type promotion like a Python
  // scalar does in PyTorch (it never upcasts a tensor of the same kind).
  static Tensor wrapped_scalar(Scalar value);

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  const Shape& shape() const;
  const Shape& strides() const;
  int64_t offset() const;
  DType dtype() const;
  int64_t ndim() const { return static_cast<int64_t>(shape().size()); }
  int64_t numel() const;
  int64_t size(int64_t dim) const;    // negative dims count from the end
  int64_t stride(int64_t dim) const;  // in elements
  bool is_contiguous() const;
  bool is_wrapped_scalar() const;
  const std::shared_ptr<Storage>& storage() const;
  // Address of element 0 of this view.
  void* data() const;
  template <typename T>
  T* data_as() const {
    return static_cast<T*>(data());
  }

  // Autograd metadata.
  bool requires_grad() const;
  // Only float leaves may require grad; throws otherwise.
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const;
  const std::shared_ptr<Node>& grad_fn() const;
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  // Shares storage, cuts the graph.
  Tensor detach() const;
  // PyTorch's `t.data = other`: this tensor views other's storage with other's shape, strides
  // and dtype, and keeps its identity and autograd metadata (requires_grad, grad_fn, .grad,
  // hooks). Throws std::runtime_error when the tensor requires grad and other is not floating
  // point, or when it is a non-leaf whose shape or dtype would change (its graph expects
  // them). Like an in-place write, it must not race with other uses of the tensor.
  void set_data(const Tensor& other);
  // Runs reverse-mode accumulation into the .grad of every leaf this tensor depends on.
  // retain_graph defaults to create_graph, as in PyTorch.
  void backward(const Tensor& gradient = Tensor(), std::optional<bool> retain_graph = std::nullopt,
                bool create_graph = false) const;

  // Values.
  Scalar item() const;
  Tensor contiguous() const;  // this tensor if already contiguous
  Tensor clone() const;       // differentiable copy
  Tensor to(DType dtype) const;
  std::string shape_str() const;

 private:
  static Tensor allocate(const Shape& shape, DType dtype, bool zeroed);
  std::shared_ptr<TensorImpl> impl_;
};

class TensorImpl {
 public:
  TensorImpl(std::shared_ptr<Storage> storage, Shape shape, Shape strides, int64_t offset,
             DType dtype);
  TensorImpl(const TensorImpl&) = delete;
  TensorImpl& operator=(const TensorImpl&) = delete;
  // Releases grad_fn without recursion: see Note [Iterative graph teardown] in autograd.h.
  ~TensorImpl();

  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;
  int64_t offset;
  DType dtype;
  bool requires_grad = false;
  bool wrapped_scalar = false;
  bool retains_grad = false;  // non-leaves only: retain_grad() was called (bprop/autograd.h)
  // Set on results of view ops (reshape, permute, expand, slicing, ...): the tensor whose
  // storage they share, always a non-view. An in-place op on a view rewrites the base's
  // history too (see Note [In-place ops and autograd] in ops/inplace.cpp).
  std::shared_ptr<TensorImpl> view_base;
  std::shared_ptr<Node> grad_fn;
  std::weak_ptr<Node> grad_accumulator;  // leaves only; made on first use
  Tensor grad;
  // Leaves only, null when none (see register_post_accumulate_grad_hook in autograd.h);
  // replaced, never changed in place, under the grad mutex.
  std::shared_ptr<const PostAccumulateGradHooks> post_accumulate_grad_hooks;
  // Leaves only, null when none (register_hook in autograd.h; a non-leaf's are on its
  // grad_fn); replaced, never changed in place, under a pooled mutex of src/autograd.
  std::shared_ptr<const TensorHooks> tensor_hooks;
};

// The global generator behind rand, randn and randint (src/tensor/random.cpp; manual_seed is
// in ops.h). Its state is an int64 tensor of kRngStateWords: xoshiro256++'s four words, then
// the initial seed; set_rng_state(get_rng_state()) brings back exactly the same future draws.
// set_rng_state throws TypeError for another dtype and std::runtime_error for another shape
// or an all-zero state. Neither may be called while a capture records.
constexpr int64_t kRngStateWords = 5;
Tensor get_rng_state();
void set_rng_state(const Tensor& state);
// The seed last given to manual_seed (or seed()), or the generator's fixed default one.
uint64_t initial_seed();
// Reseeds from std::random_device (non-deterministic); returns the seed.
uint64_t seed();

// "(3, 4)" as Python prints shapes.
std::string shape_to_string(const Shape& shape);
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
// Throws std::invalid_argument, naming `op`, unless the sizes (zeros read as 1) multiply to at
// most 2^60. Then no element count, stride or offset computed from them overflows, even in
// bytes and for an empty shape such as (0, 2^40, 2^40). contiguous_strides checks it.
void check_countable(const char* op, const Shape& shape);

}  // namespace bprop

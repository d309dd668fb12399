#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "autograd/hooks.h"
#include "bprop/autograd.h"
#include "bprop/ops.h"
#include "launch/tape.h"
#include "tensor/meta_lock.h"

namespace bprop {

// ---- Note [Iterative graph teardown] ----

namespace {
thread_local std::vector<std::shared_ptr<Node>>* t_pending_release = nullptr;
}  // namespace

void release_node(std::shared_ptr<Node>&& node) {
  if (!node) return;
  if (node.use_count() > 1) {  // someone else still owns it: no teardown starts here
    node.reset();
    return;
  }
  if (t_pending_release) {  // inside a teardown loop already: queue it
    t_pending_release->push_back(std::move(node));
    return;
  }
  // The queue keeps its capacity between teardowns: no allocation per released graph.
  thread_local std::vector<std::shared_ptr<Node>> pending;
  t_pending_release = &pending;
  pending.push_back(std::move(node));
  while (!pending.empty()) {
    std::shared_ptr<Node> last = std::move(pending.back());
    pending.pop_back();
    last.reset();  // ~Node queues the nodes it owned instead of freeing them recursively
  }
  t_pending_release = nullptr;
}

Node::~Node() {
  for (Edge& edge : next_edges_) release_node(std::move(edge.node));
}

// ---- SavedTensor ----

SavedTensor::SavedTensor(const Tensor& tensor, bool is_output)
    : is_output_(is_output),
      requires_grad_(tensor.requires_grad()),
      saved_version_(tensor.storage()->version()) {
  if (is_output) {
    data_ = tensor.detach();
    output_grad_fn_ = tensor.grad_fn();
  } else {
    data_ = tensor;
  }
}

Tensor SavedTensor::unpack(const char* op_name) const {
  uint64_t version = data_.storage()->version();
  if (version != saved_version_)
    throw std::runtime_error(
        std::string("[") + op_name +
        "] one of the tensors needed for gradient computation has been modified by an inplace "
        "operation: [" +
        dtype_name(data_.dtype()) + " " + data_.shape_str() + "] is at version " +
        std::to_string(version) + "; expected version " + std::to_string(saved_version_) +
        " instead. Hint: compute the loss again after an optimizer step, or .clone() the tensor "
        "before modifying it; to find the operation that saved it, run the forward pass "
        "under `with bprop.autograd.detect_anomaly():`.");
  if (!is_output_) return data_;
  Tensor alias = data_.detach();
  if (auto grad_fn = output_grad_fn_.lock()) {
    alias.impl()->grad_fn = std::move(grad_fn);
    alias.impl()->requires_grad = requires_grad_;
  }
  return alias;
}

// ---- execution (Note [Threads] in bprop/autograd.h) ----

void Node::begin_execution() {
  const uint64_t generation = detail::fork_generation();
  for (int attempt = 0;; ++attempt) {
    uint64_t holder = 0;
    if (execution_holder_.compare_exchange_weak(holder, generation, std::memory_order_acquire,
                                                std::memory_order_relaxed))
      return;
    if (holder != 0 && holder != generation) {  // Note [Fork safety] in tensor/meta_lock.h
      // A leaf's accumulator changes .grad only under the grad lock, which the fork was
      // between: whatever it had done is whole, and the child may take the node over.
      if (accumulated_leaf()) {
        if (execution_holder_.compare_exchange_strong(holder, generation,
                                                      std::memory_order_acquire))
          return;
        continue;
      }
      throw std::runtime_error(
          "[backward] a thread of the parent process was running this graph's " + name() +
          " node when the process forked, so the node is half run in this child process; "
          "build the graph again in the child");
    }
    // Another thread is running this node: two threads backpropagating one graph, which is
    // rare and waits at most one node's VJP. A backoff rather than a condition variable, which
    // a fork could leave held.
    if (attempt < 64)
      std::this_thread::yield();
    else
      std::this_thread::sleep_for(std::chrono::microseconds(50));
  }
}

// ---- AccumulateGrad ----

namespace {
// A gradient the engine made and nobody else sees can become .grad without a copy.
bool can_steal(const Tensor& grad) {
  return grad.impl_ptr().use_count() == 1 && grad.storage().use_count() == 1 &&
         grad.is_contiguous() && grad.offset() == 0 && !grad.requires_grad();
}
}  // namespace

namespace {
std::shared_ptr<const PostAccumulateGradHooks> hooks_of(const TensorImpl& leaf) {
  std::lock_guard<std::mutex> lock(detail::grad_mutex(&leaf));
  return leaf.post_accumulate_grad_hooks;
}
}  // namespace

namespace autograd_detail {
// A capture records, at this point, which tensor is the leaf's .grad and the call of its
// hooks: several captures (and eager steps between them) may each have bound their own .grad
// (Note on .grad in bprop/capture.h), and each replay calls the hooks of its own moment. The
// hooks run outside the recording.
void run_post_accumulate_grad_hooks(const std::shared_ptr<TensorImpl>& variable) {
  std::shared_ptr<const PostAccumulateGradHooks> hooks = hooks_of(*variable);
  auto call_hooks = [&] {
    if (!hooks) return;
    const Tensor leaf(variable);
    for (const auto& entry : hooks->hooks) (*entry.second)(leaf);
  };
  tape::now_and_on_replay("bind_grad", call_hooks, [variable, grad = Tensor(variable).grad()] {
    detail::store_grad(*variable, grad);
    run_post_accumulate_grad_hooks(variable);
  });
}
}  // namespace autograd_detail

uint64_t register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook) {
  if (!leaf.defined() || leaf.grad_fn() || !leaf.requires_grad())
    throw std::runtime_error(
        std::string("[register_post_accumulate_grad_hook] hooks go on leaf tensors that "
                    "require grad (parameters); this tensor ") +
        (!leaf.defined()  ? "is undefined"
         : leaf.grad_fn() ? "is the output of an op (" + leaf.grad_fn()->name() + ")"
                          : "does not require grad"));
  static std::atomic<uint64_t> next_handle{1};
  const uint64_t handle = next_handle.fetch_add(1, std::memory_order_relaxed);
  auto entry = std::make_shared<const PostAccumulateGradHook>(std::move(hook));
  TensorImpl& impl = *leaf.impl();
  std::shared_ptr<const PostAccumulateGradHooks> old;  // released after the unlock
  std::lock_guard<std::mutex> lock(detail::grad_mutex(&impl));
  auto updated = std::make_shared<PostAccumulateGradHooks>(impl.post_accumulate_grad_hooks
                                                               ? *impl.post_accumulate_grad_hooks
                                                               : PostAccumulateGradHooks{});
  updated->hooks.emplace_back(handle, std::move(entry));
  old = std::exchange(impl.post_accumulate_grad_hooks, std::move(updated));
  return handle;
}

bool remove_post_accumulate_grad_hook(const Tensor& leaf, uint64_t handle) {
  if (!leaf.defined()) return false;
  TensorImpl& impl = *leaf.impl();
  std::shared_ptr<const PostAccumulateGradHooks> old;  // released after the unlock
  std::lock_guard<std::mutex> lock(detail::grad_mutex(&impl));
  if (!impl.post_accumulate_grad_hooks) return false;
  auto updated = std::make_shared<PostAccumulateGradHooks>(*impl.post_accumulate_grad_hooks);
  auto& hooks = updated->hooks;
  const size_t before = hooks.size();
  hooks.erase(std::remove_if(hooks.begin(), hooks.end(),
                             [handle](const auto& entry) { return entry.first == handle; }),
              hooks.end());
  if (hooks.size() == before) return false;
  old =
      std::exchange(impl.post_accumulate_grad_hooks, hooks.empty() ? nullptr : std::move(updated));
  return true;
}

// Several threads may accumulate into one leaf at once (Note [Autograd metadata and threads]
// in tensor/meta_lock.h). An in-place accumulation runs under the leaf's grad mutex; a new
// .grad is computed outside it, since building it may record a graph (and, in anomaly mode,
// call into Python), then installed only if .grad is still the one it was computed from, with
// the same contents.
std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  if (grad_output.shape() != variable_->shape)
    throw std::logic_error("[AccumulateGrad] internal error: gradient of shape " +
                           grad_output.shape_str() + " for a leaf of shape " +
                           shape_to_string(variable_->shape));
  detail::touch_grad(variable_, true);  // Note [A .grad from before the recording]
  std::mutex& mutex = detail::grad_mutex(variable_.get());
  const bool create_graph = is_grad_enabled();  // the engine sets grad mode to create_graph
  while (true) {
    Tensor grad;  // the .grad this update starts from, and its contents' version
    uint64_t version = 0;
    {
      std::lock_guard<std::mutex> lock(mutex);
      grad = variable_->grad;
      if (grad.defined()) version = grad.storage()->version();
    }
    // Whether .grad is still what this update started from: the same tensor, not added into
    // in place by another thread meanwhile (add_scaled_ bumps the version).
    auto unchanged = [&] {
      return variable_->grad.is_same(grad) &&
             (!grad.defined() || grad.storage()->version() == version);
    };
    const bool in_place =
        grad.defined() &&
        !(create_graph && (grad.requires_grad() || grad_output.requires_grad())) &&
        !grad.requires_grad() && grad.is_contiguous();
    if (in_place) {  // as PyTorch accumulates
      std::lock_guard<std::mutex> lock(mutex);
      if (!unchanged()) continue;  // replaced meanwhile: start again
      add_scaled_(grad, grad_output, 1.0);
      break;
    }
    Tensor updated;
    if (!grad.defined()) {
      if (create_graph && grad_output.grad_fn())  // a graph the engine just built: keep it
        updated = grad_output;
      else if (create_graph && grad_output.requires_grad())  // the user's seed: a graph of it
        updated = grad_output.clone();
      else  // never alias a tensor someone else holds: .grad is accumulated in place later
        updated = can_steal(grad_output) ? grad_output : grad_output.detach().clone();
    } else {
      // Out of place: the sum is recorded (create_graph), or .grad is a graph or a view we
      // can't write.
      updated = add(grad, grad_output);
    }
    std::lock_guard<std::mutex> lock(mutex);
    if (!unchanged()) continue;  // another thread's contribution would be lost: start again
    std::swap(variable_->grad, updated);  // the old .grad goes after the unlock
    break;
  }
  return {};  // the engine runs the leaf's hooks next, outside this node's execution mutex
}

// ---- tensor hooks (register_hook, retain_grad) ----

namespace {
// Node::tensor_hooks_ and TensorImpl::tensor_hooks are guarded by detail::hook_mutex, a small
// pool picked by address (tensor/meta_lock.h). Code holding one takes no other lock and calls
// no hook.
using detail::hook_mutex;

std::atomic<uint64_t> next_tensor_hook{1};

std::shared_ptr<const TensorHooks> leaf_hooks(const TensorImpl& leaf) {
  std::lock_guard<std::mutex> lock(hook_mutex(&leaf));
  return leaf.tensor_hooks;
}

// Applies edit to a copy of the hooks of the leaf (if given) or of the node; returns whether
// it changed them. The old list is released after the unlock: it may hold the last reference
// to a removed hook, whose destruction may take the Python GIL.
template <typename Edit>
bool edit_hooks(TensorImpl* leaf, Node* node, Edit edit) {
  bool changed = false;
  auto update =
      [&](const std::shared_ptr<const TensorHooks>& hooks) -> std::shared_ptr<const TensorHooks> {
    auto updated = std::make_shared<TensorHooks>(hooks ? *hooks : TensorHooks{});
    changed = edit(*updated);
    if (!changed) return hooks;
    if (updated->hooks.empty() && updated->retained.empty()) return nullptr;
    return updated;
  };
  std::shared_ptr<const TensorHooks> old;
  if (leaf) {
    std::lock_guard<std::mutex> lock(hook_mutex(leaf));
    std::shared_ptr<const TensorHooks> updated = update(leaf->tensor_hooks);
    old = std::exchange(leaf->tensor_hooks, std::move(updated));
  } else {
    old = node->update_tensor_hooks(update);
  }
  return changed;
}

void check_requires_grad(const char* op, const Tensor& tensor, const char* what) {
  if (!tensor.defined()) throw std::invalid_argument(std::string("[") + op + "] tensor is None");
  if (!tensor.requires_grad()) throw std::runtime_error(std::string("[") + op + "] " + what);
}

// retain_grad's hook: .grad = gradient the first time, .grad + gradient after (out of place,
// as PyTorch; recorded when create_graph is on).
void store_retained(TensorImpl& impl, const Tensor& gradient) {
  Tensor old;
  {
    std::lock_guard<std::mutex> lock(detail::grad_mutex(&impl));
    old = impl.grad;
  }
  detail::store_grad(impl, old.defined() ? add(old, gradient) : gradient.clone());
}
}  // namespace

std::shared_ptr<const TensorHooks> Node::tensor_hooks() const {
  if (!has_tensor_hooks_.load(std::memory_order_acquire)) return nullptr;
  std::lock_guard<std::mutex> lock(hook_mutex(this));
  return tensor_hooks_;
}

std::shared_ptr<const TensorHooks> Node::update_tensor_hooks(const TensorHooksEdit& edit) {
  std::lock_guard<std::mutex> lock(hook_mutex(this));
  std::shared_ptr<const TensorHooks> updated = edit(tensor_hooks_);
  has_tensor_hooks_.store(updated != nullptr, std::memory_order_release);
  return std::exchange(tensor_hooks_, std::move(updated));
}

HookHandle register_hook(const Tensor& tensor, TensorHook hook) {
  check_requires_grad("register_hook", tensor,
                      "cannot register a hook on a tensor that doesn't require gradient");
  const uint64_t id = next_tensor_hook.fetch_add(1, std::memory_order_relaxed);
  auto entry = std::make_shared<const TensorHook>(std::move(hook));
  const std::shared_ptr<Node>& node = tensor.grad_fn();
  edit_hooks(node ? nullptr : tensor.impl(), node.get(), [&](TensorHooks& hooks) {
    hooks.hooks.emplace_back(id, entry);
    return true;
  });
  if (node) return HookHandle({}, node, id);
  return HookHandle(tensor.impl_ptr(), {}, id);
}

bool HookHandle::remove() {
  std::shared_ptr<TensorImpl> leaf = leaf_.lock();
  std::shared_ptr<Node> node = node_.lock();
  if (!leaf && !node) return false;
  return edit_hooks(leaf.get(), node.get(), [this](TensorHooks& hooks) {
    auto& list = hooks.hooks;
    const size_t before = list.size();
    list.erase(std::remove_if(list.begin(), list.end(),
                              [this](const auto& entry) { return entry.first == id_; }),
               list.end());
    return list.size() != before;
  });
}

void retain_grad(const Tensor& tensor) {
  check_requires_grad("retain_grad", tensor,
                      "can't retain_grad on Tensor that has requires_grad=False");
  const std::shared_ptr<Node>& node = tensor.grad_fn();
  if (!node) return;  // a leaf's .grad is kept anyway
  tensor.impl()->retains_grad = true;
  edit_hooks(nullptr, node.get(), [&](TensorHooks& hooks) {
    const std::shared_ptr<TensorImpl>& self = tensor.impl_ptr();
    for (const auto& weak : hooks.retained)  // compared without lock(): see edit_hooks
      if (!weak.owner_before(self) && !self.owner_before(weak)) return false;
    hooks.retained.push_back(self);
    return true;
  });
}

bool retains_grad(const Tensor& tensor) {
  return tensor.defined() && tensor.grad_fn() && tensor.impl()->retains_grad;
}

namespace autograd_detail {
Tensor run_tensor_hooks(Node& node, Tensor gradient) {
  const std::shared_ptr<TensorImpl>* leaf = node.accumulated_leaf();
  std::shared_ptr<const TensorHooks> hooks = leaf ? leaf_hooks(**leaf) : node.tensor_hooks();
  if (!hooks) return gradient;
  for (const auto& entry : hooks->hooks) {
    Tensor replaced = (*entry.second)(gradient);
    if (!replaced.defined()) continue;
    if (replaced.shape() != gradient.shape())
      throw std::runtime_error("[register_hook] a hook changed the size of the gradient: it got " +
                               gradient.shape_str() + " and returned " + replaced.shape_str());
    if (replaced.dtype() != gradient.dtype())
      throw std::runtime_error(std::string("[register_hook] a hook changed the type of the "
                                           "gradient: it got ") +
                               dtype_name(gradient.dtype()) + " and returned " +
                               dtype_name(replaced.dtype()));
    gradient = std::move(replaced);
  }
  for (const auto& weak : hooks->retained) {
    std::shared_ptr<TensorImpl> impl = weak.lock();
    // Still made by this node: an in-place op since gave it another grad_fn otherwise.
    if (impl && impl->grad_fn.get() == &node) store_retained(*impl, gradient);
  }
  return gradient;
}
}  // namespace autograd_detail

// ---- edges ----

Edge gradient_edge(const Tensor& tensor) {
  TensorImpl* impl = tensor.impl();
  if (impl->grad_fn) return Edge{impl->grad_fn};
  if (!impl->requires_grad) return Edge{};
  std::shared_ptr<Node> accumulator;
  {
    std::lock_guard<std::mutex> lock(detail::accumulator_mutex(impl));
    accumulator = impl->grad_accumulator.lock();
    if (!accumulator) {
      accumulator = std::make_shared<AccumulateGrad>(tensor.impl_ptr());
      impl->grad_accumulator = accumulator;
    }
  }
  return Edge{std::move(accumulator)};
}

// ---- Custom functions ----

namespace {

struct TensorMeta {
  Shape shape;
  DType dtype;
  int64_t numel;
};

std::string shape_string(const Shape& shape) {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + "]";
}

// The node of a custom function. With several outputs, each output's grad_fn is a
// CustomOutputNode whose one edge leads here; the engine gives a node one gradient, so each of
// them places its output's gradient, flattened, at that output's offset in a zero vector of
// all outputs' elements, and the engine's sum of those is every output's gradient at once.
// Packing and unpacking are bprop ops, so with create_graph they are differentiable.
class CustomFunctionNode final : public Node {
 public:
  CustomFunctionNode(std::string name, CustomBackward backward, std::vector<TensorMeta> inputs,
                     std::vector<TensorMeta> outputs)
      : name_(std::move(name)),
        backward_(std::move(backward)),
        inputs_(std::move(inputs)),
        outputs_(std::move(outputs)) {
    packed_dtype_ = outputs_.front().dtype;
    for (const TensorMeta& out : outputs_) {
      offsets_.push_back(total_);
      total_ += out.numel;
      if (out.dtype != packed_dtype_) packed_dtype_ = DType::Float64;
    }
  }
  std::string name() const override { return name_; }
  void release_saved() override {
    released_ = true;
    backward_ = nullptr;
    saved_.clear();
  }
  std::vector<Tensor> apply(const Tensor& grad_output) override;

  void save(const Tensor& tensor, bool is_output) { saved_.emplace_back(tensor, is_output); }
  // Output i's gradient, as a slice of the packed vector of all of them.
  Tensor pack(const Tensor& grad, size_t i) const {
    std::vector<Tensor> parts;
    const int64_t before = offsets_[i], after = total_ - offsets_[i] - outputs_[i].numel;
    if (before > 0) parts.push_back(zeros(Shape{before}, packed_dtype_));
    parts.push_back(reshape(grad.dtype() == packed_dtype_ ? grad : to_dtype(grad, packed_dtype_),
                            Shape{outputs_[i].numel}));
    if (after > 0) parts.push_back(zeros(Shape{after}, packed_dtype_));
    return parts.size() == 1 ? parts.front() : cat(parts, 0);
  }

 private:
  std::string name_;
  CustomBackward backward_;
  std::vector<TensorMeta> inputs_;
  std::vector<TensorMeta> outputs_;
  std::vector<SavedTensor> saved_;
  std::vector<int64_t> offsets_;
  int64_t total_ = 0;
  DType packed_dtype_ = DType::Float32;
  bool released_ = false;
};

class CustomOutputNode final : public Node {
 public:
  CustomOutputNode(const std::shared_ptr<CustomFunctionNode>& function, size_t index)
      : index_(index) {
    next_edges_.push_back(Edge{function});
  }
  std::string name() const override { return function().name(); }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    return {function().pack(grad_output, index_)};
  }

 private:
  const CustomFunctionNode& function() const {
    return static_cast<const CustomFunctionNode&>(*next_edges_[0].node);
  }
  size_t index_;
};

std::vector<Tensor> CustomFunctionNode::apply(const Tensor& grad_output) {
  if (released_)
    throw std::runtime_error(
        "[" + name_ +
        "] Trying to backward through the graph a second time (or directly access saved "
        "tensors after they have already been freed). Saved intermediate values of the graph "
        "are freed when you call .backward() or autograd.grad(). Specify retain_graph=True if "
        "you need to backward through the graph a second time.");
  std::vector<Tensor> grads;
  if (outputs_.size() == 1) {
    grads.push_back(grad_output);
  } else {
    for (size_t i = 0; i < outputs_.size(); ++i) {
      Tensor g =
          reshape(slice(grad_output, 0, offsets_[i], 1, outputs_[i].numel), outputs_[i].shape);
      grads.push_back(g.dtype() == outputs_[i].dtype ? g : to_dtype(g, outputs_[i].dtype));
    }
  }
  std::vector<Tensor> saved;
  saved.reserve(saved_.size());
  for (const SavedTensor& s : saved_) saved.push_back(s.unpack(name_.c_str()));
  // A copy: backward may run code that releases this node's function (it takes a lock only
  // the engine holds, but the callable's own state stays alive for the call either way).
  CustomBackward backward = backward_;
  std::vector<Tensor> result = backward(grads, saved);
  if (result.size() != inputs_.size())
    throw std::runtime_error("[" + name_ + "] function " + name_ +
                             " returned an incorrect number of gradients (expected " +
                             std::to_string(inputs_.size()) + ", got " +
                             std::to_string(result.size()) + ")");
  for (size_t i = 0; i < result.size(); ++i) {
    Tensor& g = result[i];
    if (!g.defined()) continue;
    if (!needs_input_grad(i)) {
      g = Tensor();
      continue;
    }
    if (g.shape() != inputs_[i].shape)
      throw std::runtime_error(
          "[" + name_ + "] Function " + name_ + " returned an invalid gradient at index " +
          std::to_string(i) + " - got " + shape_string(g.shape()) +
          " but expected shape compatible with " + shape_string(inputs_[i].shape));
    if (g.dtype() != inputs_[i].dtype) g = to_dtype(g, inputs_[i].dtype);
  }
  return result;
}

TensorMeta meta_of(const Tensor& t) { return TensorMeta{t.shape(), t.dtype(), t.numel()}; }

}  // namespace

std::vector<Tensor> custom_function(const std::string& name, const std::vector<Tensor>& inputs,
                                    const std::vector<Tensor>& outputs,
                                    const std::vector<Tensor>& saved, CustomBackward backward) {
  if (tape::active_tape())
    throw std::runtime_error(
        "[" + name +
        "] a custom autograd function can't run while bp.compile records a step: its backward "
        "is not a bprop op that a replay could run. Call it outside the compiled step, or "
        "write it with bprop ops");
  if (outputs.empty())
    throw std::invalid_argument("[" + name + "] a custom function needs at least one output");
  for (const Tensor& out : outputs)
    if (!out.defined() || !is_floating(out.dtype()))
      throw std::invalid_argument("[" + name +
                                  "] the outputs of a custom function that needs a gradient "
                                  "must be floating point tensors");
  bool any = false;
  for (const Tensor& in : inputs) any = any || (in.defined() && in.requires_grad());
  if (!any || !is_grad_enabled()) return outputs;
  if (!backward) throw std::invalid_argument("[" + name + "] backward must be set");

  std::vector<TensorMeta> input_meta, output_meta;
  for (const Tensor& in : inputs)
    input_meta.push_back(in.defined() ? meta_of(in) : TensorMeta{Shape{}, DType::Float32, 0});
  for (const Tensor& out : outputs) output_meta.push_back(meta_of(out));
  auto node = std::make_shared<CustomFunctionNode>(name, std::move(backward), std::move(input_meta),
                                                   std::move(output_meta));
  for (const Tensor& in : inputs)
    node->next_edges().push_back(in.defined() ? gradient_edge(in) : Edge{});
  if (is_anomaly_enabled()) node->set_forward_trace(current_forward_trace());

  std::vector<Tensor> result;
  for (size_t i = 0; i < outputs.size(); ++i) {
    Tensor alias = outputs[i].detach();
    alias.impl()->requires_grad = true;
    if (outputs.size() == 1) {
      alias.impl()->grad_fn = node;
    } else {
      auto out_node = std::make_shared<CustomOutputNode>(node, i);
      out_node->set_forward_trace(node->forward_trace());
      alias.impl()->grad_fn = std::move(out_node);
    }
    result.push_back(std::move(alias));
  }
  for (const Tensor& s : saved) {
    if (!s.defined()) throw std::invalid_argument("[" + name + "] saved tensors must be defined");
    size_t j = 0;
    while (j < outputs.size() && !(s.defined() && s.impl() == outputs[j].impl())) ++j;
    if (j < outputs.size())
      node->save(result[j], true);
    else
      node->save(s, false);
  }
  return result;
}

}  // namespace bprop

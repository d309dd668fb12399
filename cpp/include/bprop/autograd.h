// Autograd: the graph that differentiable ops record, and the engine that walks it backward.
//
// Every differentiable op that has an input requiring grad makes one Node and stores it as
// its output's grad_fn. A Node has one output and one Edge per input: the Node that will
// receive the gradient of that input (the input's grad_fn, or the AccumulateGrad node of a
// leaf), or null where the input needs no gradient. Backward is the lecture's algorithm:
//
//   1. walk the graph from the outputs (iteratively) and count, for each node, the edges
//      that point at it: its number of successors in the forward graph;
//   2. seed the outputs' gradients (1 for a scalar loss);
//   3. run a node once all its successors have contributed: its gradient is the SUM of their
//      contributions (the multi-path chain rule), which the hooks of its tensor may replace
//      (register_hook), and its vector-Jacobian product turns that into gradients for its
//      inputs, which flow along its edges.
//
// Each node's gradient is computed once and reused by all its predecessors, so backward costs
// as much as forward. VJPs are written with the library's own ops (symbol-to-symbol): with
// create_graph=true they run with grad mode on, so the gradients they return are graphs
// themselves and can be differentiated again.
//
// Note [Fused backward]
// With create_graph=false the engine runs VJPs with grad mode off, and a VJP may then use a
// fused kernel (tanh's g * (1 - y*y) in one pass) instead of composing ops. The fused kernel
// computes the same formula in the same rounding order, so both paths agree bit for bit
// (tested); with create_graph=true the composed, differentiable form always runs.
//
// Note [Threads]
// Separate graphs may be built and backpropagated on separate threads at once; grad mode is
// per thread, like PyTorch's. Graphs may share leaves: each thread's backward adds into the
// shared .grad under a lock (the order of the additions, and so the last bits of a sum of
// three or more, then depends on timing). Graphs may share nodes too, as when two threads
// call backward on outputs of one forward pass: the engine runs each node between its
// begin_execution() and end_execution(), one thread at a time, so both get the right gradients if
// both pass retain_graph=true; without it the first to run a node frees what the node saved, and
// the other raises the usual "backward through the graph a second time" error there (partial
// gradients may already be in .grad, as after any failed backward). Building new ops on a graph's
// tensors while another thread backpropagates through it is fine. What is not: writing a tensor
// (in-place ops, requires_grad_(), optimizer steps) while another thread reads or writes it. That
// is a data race on the values, as in any library; a graph that saved the tensor usually notices
// the write (its version changed) and raises, but reading it at the same moment is undefined.
//
// Note [Iterative graph teardown]
// A chain y = f(f(...f(x))) of a million ops is a linked list of a million Nodes. Freeing it
// by plain shared_ptr destructors would recurse a million deep and overflow the stack. Node and
// TensorImpl destructors therefore hand the Nodes they own to release_node(), which frees them
// in a loop when it is not already inside one.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "bprop/small_vector.h"
#include "bprop/tensor.h"

namespace bprop {

// Tensor hooks (PyTorch's Tensor.register_hook): hook(grad) is called with the gradient with
// respect to a tensor once backward (or grad()) has summed it, before it flows on: for a
// non-leaf, before its grad_fn's VJP; for a leaf, before it is added into .grad. A hook may
// return a replacement of the same shape and dtype, or an undefined Tensor to keep the
// gradient. Hooks run in the order they were registered, on the thread running backward, with
// grad mode set to create_graph (so the gradient, and what a hook computes from it, is
// differentiable then); an exception a hook throws ends that backward. A non-leaf's hooks live
// on its grad_fn of the moment of registration, a leaf's on the leaf. A hook that holds its
// own tensor makes a cycle that is never freed. In a captured step the hooks run while
// recording: the ops they run on bprop tensors are recorded and replayed, anything else they
// do happens once.
using TensorHook = std::function<Tensor(const Tensor& grad)>;
struct TensorHooks {
  // Shared, so that copying the list copies no std::function (see PostAccumulateGradHooks).
  std::vector<std::pair<uint64_t, std::shared_ptr<const TensorHook>>> hooks;
  // Non-leaf tensors made by this node that retain their gradient (retain_grad): after the
  // hooks, the gradient is added into their .grad.
  std::vector<std::weak_ptr<TensorImpl>> retained;
};

struct Edge {
  std::shared_ptr<Node> node;  // null: this input needs no gradient
};

// What a node kept from forward for its VJP. Outputs are kept without their grad_fn (a node
// holding its own output would be a reference cycle) and get it back, weakly, when unpacked.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& tensor, bool is_output);
  // Throws if the tensor was modified in place since it was saved.
  Tensor unpack(const char* op_name) const;
  bool defined() const { return data_.defined(); }

 private:
  Tensor data_;
  std::weak_ptr<Node> output_grad_fn_;
  bool is_output_ = false;
  bool requires_grad_ = false;
  uint64_t saved_version_ = 0;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  virtual ~Node();

  // "AddBackward0", as PyTorch names grad_fns.
  virtual std::string name() const = 0;
  // The vector-Jacobian product: given the gradient of this node's output, the gradients of
  // its inputs (one per edge; undefined where the edge is null or the gradient is zero).
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Frees what forward saved; a later apply() that needs it throws (retain_graph=false).
  virtual void release_saved() {}
  // The leaf whose .grad this node accumulates into (AccumulateGrad), else null. A virtual
  // call, not a dynamic_cast: the engine asks it of every node it runs.
  virtual const std::shared_ptr<TensorImpl>* accumulated_leaf() const { return nullptr; }

  // Where the forward op was called from; recorded in anomaly mode only.
  const std::string& forward_trace() const { return forward_trace_; }
  void set_forward_trace(std::string trace) { forward_trace_ = std::move(trace); }

  using Edges = InlineVector<Edge, 2>;
  Edges& next_edges() { return next_edges_; }
  const Edges& next_edges() const { return next_edges_; }
  bool needs_input_grad(size_t i) const {
    return i < next_edges_.size() && next_edges_[i].node != nullptr;
  }

  // The engine runs this node (apply, then release_saved) between these two calls: two threads
  // backpropagating through one graph take turns at each node (Note [Threads]). Not a mutex, so
  // that a forked child can tell a node that a thread of its parent was running at the fork:
  // begin_execution() then throws instead of waiting forever.
  void begin_execution();
  void end_execution() { execution_holder_.store(0, std::memory_order_release); }

  // The hooks of the tensor this node made (register_hook, retain_grad), null when none.
  std::shared_ptr<const TensorHooks> tensor_hooks() const;
  // Replaces them by edit(current hooks) under their lock, a new list each time (a backward
  // that read the old one keeps it); returns the old list, for the caller to release after the
  // lock. edit must take no lock and call no hook.
  using TensorHooksEdit =
      std::function<std::shared_ptr<const TensorHooks>(const std::shared_ptr<const TensorHooks>&)>;
  std::shared_ptr<const TensorHooks> update_tensor_hooks(const TensorHooksEdit& edit);

 protected:
  Edges next_edges_;
  std::string forward_trace_;

 private:
  // 0 when no thread runs this node, else the fork generation of the process whose thread does
  // (Note [Fork safety] in src/tensor/meta_lock.h).
  std::atomic<uint64_t> execution_holder_{0};
  std::shared_ptr<const TensorHooks> tensor_hooks_;  // under a pooled mutex (node.cpp)
  std::atomic<bool> has_tensor_hooks_{false};        // read without the lock on the hot path
};

// The node at the bottom of the graph: adds the incoming gradient into a leaf's .grad.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> variable) : variable_(std::move(variable)) {}
  std::string name() const override { return "AccumulateGrad"; }
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  const std::shared_ptr<TensorImpl>* accumulated_leaf() const override { return &variable_; }
  const std::shared_ptr<TensorImpl>& variable() const { return variable_; }

 private:
  std::shared_ptr<TensorImpl> variable_;
};

// Hands a node to the iterative teardown: see Note [Iterative graph teardown].
void release_node(std::shared_ptr<Node>&& node);

// The edge a gradient for `tensor` flows into: its grad_fn, its leaf accumulator, or null.
Edge gradient_edge(const Tensor& tensor);

// Post-accumulate-grad hooks (PyTorch's Tensor.register_post_accumulate_grad_hook): after
// backward() has added into a leaf's .grad, it calls the leaf's hooks, in the order they were
// registered, with the leaf, on the thread running backward; an exception a hook throws ends
// that backward. bprop::grad() calls none, as it touches no .grad. A hook may run backward
// itself; hooks registered or removed during a call take effect from the next one. In a
// captured step the call is part of the recording: each replay calls the leaf's hooks of that
// moment at the same point. While recording, the hooks run outside the recording, so what
// they do is not captured (it runs again, for real, when a replay calls them) and they may
// read values; a hook there should change .grad in place, since later recorded launches keep
// reading the .grad tensor they recorded. The leaf owns its hooks: a hook holding the leaf
// itself makes a cycle that is never freed.
using PostAccumulateGradHook = std::function<void(const Tensor& leaf)>;
struct PostAccumulateGradHooks {
  // (handle, hook): shared, so that copying the list copies no std::function (one wrapping a
  // Python callable takes the GIL to be copied, which is not allowed under the leaf's lock).
  std::vector<std::pair<uint64_t, std::shared_ptr<const PostAccumulateGradHook>>> hooks;
};
// Throws std::runtime_error unless `leaf` is a leaf that requires grad. Returns the handle.
uint64_t register_post_accumulate_grad_hook(const Tensor& leaf, PostAccumulateGradHook hook);
// Returns whether the handle named one of the leaf's hooks.
bool remove_post_accumulate_grad_hook(const Tensor& leaf, uint64_t handle);

// What register_hook returns: remove() takes the hook off (false if it was already off, or
// its tensor or node is gone). It holds neither the tensor nor the node alive.
class HookHandle {
 public:
  HookHandle() = default;
  HookHandle(std::weak_ptr<TensorImpl> leaf, std::weak_ptr<Node> node, uint64_t id)
      : leaf_(std::move(leaf)), node_(std::move(node)), id_(id) {}
  bool remove();
  uint64_t id() const { return id_; }

 private:
  std::weak_ptr<TensorImpl> leaf_;
  std::weak_ptr<Node> node_;
  uint64_t id_ = 0;
};
// Throws std::runtime_error unless `tensor` requires grad.
HookHandle register_hook(const Tensor& tensor, TensorHook hook);
// PyTorch's Tensor.retain_grad(): backward also stores the gradient with respect to this
// non-leaf in its .grad (after its hooks, accumulating over backward calls); a no-op on a
// leaf. Throws std::runtime_error unless `tensor` requires grad. The gradient is stored by the
// grad_fn the tensor has now: after an in-place op gives the tensor a new grad_fn, call it
// again.
void retain_grad(const Tensor& tensor);
// Whether retain_grad() was called on this non-leaf (false for leaves, as PyTorch).
bool retains_grad(const Tensor& tensor);

// Custom functions (PyTorch's autograd.Function, in C++): an op whose forward the caller has
// already computed (with any code, graph or no graph) and whose VJP is `backward`.
// custom_function(name, inputs, outputs, saved, backward) returns aliases of `outputs` (same
// storage, detached from any graph they had) whose grad_fn is one node with an edge per input;
// the outputs themselves are unchanged. backward(grad_outputs, saved) gets one gradient per
// output (zeros for an output no gradient reached) and the tensors of `saved` (an entry that is
// one of `outputs` comes back as its alias with the grad_fn, so a differentiable backward
// differentiates through it; each is checked for in-place changes since), and returns one
// gradient per input: undefined for none, else the input's shape (its dtype is converted to
// the input's). It runs with grad mode set to create_graph, so composing bprop ops makes
// the gradient differentiable again. When grad mode is off or no input requires grad,
// `outputs` are returned as they are, without a node. Outputs must be floating point. After a
// backward without retain_graph, `backward` is released (a second one throws). Not capturable:
// throws std::runtime_error while a capture is recording (the replay could not call `backward`).
using CustomBackward = std::function<std::vector<Tensor>(const std::vector<Tensor>& grad_outputs,
                                                         const std::vector<Tensor>& saved)>;
std::vector<Tensor> custom_function(const std::string& name, const std::vector<Tensor>& inputs,
                                    const std::vector<Tensor>& outputs,
                                    const std::vector<Tensor>& saved, CustomBackward backward);

// Grad mode: when off, ops record no graph. Thread-local, like PyTorch's.
bool is_grad_enabled();
void set_grad_enabled(bool enabled);

class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(is_grad_enabled()) { set_grad_enabled(enabled); }
  ~GradModeGuard() { set_grad_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

struct NoGradGuard : GradModeGuard {
  NoGradGuard() : GradModeGuard(false) {}
};

// Anomaly mode: nodes record where their forward ran (from the trace provider), and backward
// raises at the first node whose VJP returns NaN, naming the node and that place.
bool is_anomaly_enabled();
void set_anomaly_enabled(bool enabled);
// Returns a description of the caller's location (the Python package installs one that gives
// the Python traceback); empty by default.
void set_forward_trace_provider(std::function<std::string()> provider);
std::string current_forward_trace();

// Reverse-mode differentiation of `outputs`, seeded with `grad_outputs` (an undefined entry
// means ones, allowed only for single-element outputs).
//
// With `inputs` empty, gradients are accumulated into the .grad of the leaves (backward()),
// and an empty vector is returned. Otherwise the gradients of `outputs` with respect to
// `inputs` are returned and no .grad is touched (grad()); an input the outputs do not depend
// on gives an undefined Tensor if allow_unused, and an error otherwise.
std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& grad_outputs, bool retain_graph,
                                 bool create_graph, const std::vector<Tensor>& inputs = {},
                                 bool allow_unused = false);

// torch.autograd.grad; retain_graph defaults to create_graph.
std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs = {},
                         std::optional<bool> retain_graph = std::nullopt, bool create_graph = false,
                         bool allow_unused = false);

}  // namespace bprop

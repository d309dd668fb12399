// The backward engine: the lecture's bprop over the recorded graph. See autograd.h.
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/hooks.h"
#include "bprop/autograd.h"
#include "bprop/ops.h"

namespace bprop {
namespace {

// Node -> position of discovery: open addressing on the pointer, much cheaper per lookup than
// std::unordered_map on the engine's hot path (two lookups per edge).
class NodeIndex {
 public:
  static constexpr size_t kMissing = ~size_t{0};

  size_t find(const Node* node) const {
    if (slots_.empty()) return kMissing;
    for (size_t i = hash(node);; i = (i + 1) & mask_) {
      if (slots_[i].node == node) return slots_[i].index;
      if (!slots_[i].node) return kMissing;
    }
  }
  // The index of node, inserting `next` if it is new; `inserted` says which.
  size_t insert(const Node* node, size_t next, bool* inserted) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    for (size_t i = hash(node);; i = (i + 1) & mask_) {
      if (slots_[i].node == node) {
        *inserted = false;
        return slots_[i].index;
      }
      if (!slots_[i].node) {
        slots_[i] = {node, next};
        ++count_;
        *inserted = true;
        return next;
      }
    }
  }

 private:
  struct Slot {
    const Node* node = nullptr;
    size_t index = 0;
  };
  size_t hash(const Node* node) const {
    return (reinterpret_cast<uintptr_t>(node) >> 4) * 0x9E3779B97F4A7C15ULL >> 20 & mask_;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    count_ = 0;
    bool inserted;
    for (const Slot& slot : old)
      if (slot.node) insert(slot.node, slot.index, &inserted);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

struct GraphTask {
  std::vector<Node*> nodes;  // indexed by position of discovery
  NodeIndex index;
  std::vector<int64_t> dependencies;  // edges pointing at each node still to deliver
  std::vector<Tensor> buffers;        // summed incoming gradient per node
  std::vector<char> needed;           // whether running the node can reach an input

  size_t add(Node* node, bool* inserted) {
    size_t i = index.insert(node, nodes.size(), inserted);
    if (*inserted) {
      nodes.push_back(node);
      dependencies.push_back(0);
    }
    return i;
  }
  size_t at(const Node* node) const { return index.find(node); }
};

// The gradients arriving over several paths are summed: the multi-path chain rule.
void accumulate(Tensor& buffer, const Tensor& gradient) {
  buffer = buffer.defined() ? add(buffer, gradient) : gradient;
}

// Iterative depth-first walk from the roots: counts each node's dependencies and returns the
// nodes in post-order (every node after all the nodes it points to).
std::vector<size_t> discover(GraphTask& task, const std::vector<Node*>& roots) {
  std::vector<size_t> post_order;
  std::vector<std::pair<Node*, size_t>> stack;  // node, next edge to visit
  for (Node* root : roots) {
    bool inserted;
    task.add(root, &inserted);
    if (!inserted) continue;
    stack.emplace_back(root, 0);
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      const auto& edges = node->next_edges();
      if (next < edges.size()) {
        Node* child = edges[next++].node.get();
        if (!child) continue;
        size_t child_index = task.add(child, &inserted);
        ++task.dependencies[child_index];
        if (inserted) stack.emplace_back(child, 0);
      } else {
        post_order.push_back(task.at(node));
        stack.pop_back();
      }
    }
  }
  return post_order;
}

// Anomaly mode: the first VJP that returns NaN stops backward, naming where its forward ran.
void check_for_nan(const Node& node, const std::vector<Tensor>& grads) {
  NoGradGuard no_grad;
  for (size_t i = 0; i < grads.size(); ++i) {
    const Tensor& g = grads[i];
    if (!g.defined() || !is_floating(g.dtype()) || g.numel() == 0) continue;
    if (sum(ne(g, g)).item().to_int() == 0) continue;
    std::string message = "[detect_anomaly] Function '" + node.name() +
                          "' returned nan values in its " + std::to_string(i) + "th output.";
    if (!node.forward_trace().empty())
      message += "\nThe forward call that created it was:\n" + node.forward_trace();
    throw std::runtime_error(message);
  }
}

}  // namespace

std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& grad_outputs, bool retain_graph,
                                 bool create_graph, const std::vector<Tensor>& inputs,
                                 bool allow_unused) {
  const bool accumulate_into_leaves = inputs.empty();
  const std::string op = accumulate_into_leaves ? "[backward] " : "[grad] ";
  if (outputs.empty()) throw std::invalid_argument(op + "no outputs to differentiate");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(op + "got " + std::to_string(grad_outputs.size()) +
                                " gradients for " + std::to_string(outputs.size()) + " outputs");

  // Roots and their seed gradients.
  std::vector<std::shared_ptr<Node>> roots;
  std::vector<Tensor> seeds;
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!out.defined())
      throw std::invalid_argument(op + "output " + std::to_string(i) + " is None");
    if (!out.requires_grad())
      throw std::runtime_error(op + "element " + std::to_string(i) +
                               " of tensors does not require grad and does not have a grad_fn");
    Tensor seed = i < grad_outputs.size() ? grad_outputs[i] : Tensor();
    if (!seed.defined()) {
      if (out.numel() != 1)
        throw std::runtime_error(op +
                                 "grad can be implicitly created only for scalar outputs; output " +
                                 std::to_string(i) + " has shape " + out.shape_str() +
                                 ", so pass gradient= (a tensor of that shape)");
      seed = ones_like(out);
    } else {
      if (seed.shape() != out.shape())
        throw std::invalid_argument(op + "Mismatch in shape: gradient " + std::to_string(i) +
                                    " has a shape of " + seed.shape_str() + " and output " +
                                    std::to_string(i) + " has a shape of " + out.shape_str());
      if (!is_floating(seed.dtype()))
        throw TypeError(op + "gradient " + std::to_string(i) + " has dtype " +
                        dtype_name(seed.dtype()) + " but must be floating point");
      if (seed.dtype() != out.dtype()) seed = to_dtype(seed, out.dtype());
    }
    roots.push_back(gradient_edge(out).node);
    seeds.push_back(seed);
  }

  // The nodes whose incoming gradient grad() returns.
  std::unordered_map<Node*, std::vector<size_t>> captures;
  std::vector<std::shared_ptr<Node>> input_nodes;  // keeps fresh accumulators alive
  for (size_t j = 0; j < inputs.size(); ++j) {
    const Tensor& in = inputs[j];
    if (!in.defined() || !in.requires_grad())
      throw std::runtime_error(op + "input " + std::to_string(j) +
                               " does not require grad, so it has no gradient");
    input_nodes.push_back(gradient_edge(in).node);
    captures[input_nodes.back().get()].push_back(j);
  }

  GraphTask task;
  std::vector<Node*> root_ptrs;
  for (auto& root : roots) root_ptrs.push_back(root.get());
  std::vector<size_t> post_order = discover(task, root_ptrs);
  task.buffers.resize(task.nodes.size());
  task.needed.assign(task.nodes.size(), accumulate_into_leaves ? 1 : 0);
  if (!accumulate_into_leaves) {
    // Run only the nodes whose VJP leads to an input's node (children come first). An
    // input's own node is not run for it: its incoming gradient is the answer.
    std::vector<char> reaches(task.nodes.size(), 0);  // the node is, or leads to, an input's
    for (size_t i : post_order) {
      Node* node = task.nodes[i];
      bool needed = false;
      for (const Edge& edge : node->next_edges())
        if (edge.node && reaches[task.at(edge.node.get())]) needed = true;
      task.needed[i] = needed;
      reaches[i] = needed || captures.count(node) != 0;
    }
  }

  GradModeGuard grad_mode(create_graph);
  std::vector<size_t> ready;
  for (size_t i = 0; i < roots.size(); ++i) {
    size_t index = task.at(roots[i].get());
    accumulate(task.buffers[index], seeds[i]);
  }
  for (auto& root : roots) {
    size_t index = task.at(root.get());
    if (task.dependencies[index] == 0) {
      task.dependencies[index] = -1;  // queued once even if it is several roots
      ready.push_back(index);
    }
  }

  std::vector<Tensor> captured(inputs.size());
  while (!ready.empty()) {
    size_t index = ready.back();
    ready.pop_back();
    Node* node = task.nodes[index];
    Tensor gradient = std::move(task.buffers[index]);
    auto capture = captures.find(node);
    if (capture != captures.end())
      for (size_t j : capture->second) captured[j] = gradient;

    const bool run = task.needed[index] && gradient.defined() &&
                     !(!accumulate_into_leaves && node->accumulated_leaf());
    std::vector<Tensor> input_grads;
    if (run) {
      {
        std::lock_guard<std::mutex> lock(node->execution_mutex());  // Note [Threads]
        input_grads = node->apply(gradient);
        if (!retain_graph) node->release_saved();
      }
      if (is_anomaly_enabled()) check_for_nan(*node, input_grads);
      if (const std::shared_ptr<TensorImpl>* leaf = node->accumulated_leaf())
        autograd_detail::run_post_accumulate_grad_hooks(*leaf);
    }
    gradient = Tensor();
    const auto& edges = node->next_edges();
    for (size_t k = 0; k < edges.size(); ++k) {
      Node* child = edges[k].node.get();
      if (!child) continue;
      size_t child_index = task.at(child);
      if (k < input_grads.size() && input_grads[k].defined())
        accumulate(task.buffers[child_index], input_grads[k]);
      if (--task.dependencies[child_index] == 0) ready.push_back(child_index);
    }
  }

  if (!accumulate_into_leaves && !allow_unused) {
    for (size_t j = 0; j < captured.size(); ++j)
      if (!captured[j].defined())
        throw std::runtime_error(op + "input " + std::to_string(j) +
                                 " appears to not have been used in the graph. Set "
                                 "allow_unused=True if this is the desired behavior.");
  }
  return captured;
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, std::optional<bool> retain_graph,
                         bool create_graph, bool allow_unused) {
  if (inputs.empty())
    throw std::invalid_argument("[grad] no inputs to differentiate with respect to");
  return run_backward(outputs, grad_outputs, retain_graph.value_or(create_graph), create_graph,
                      inputs, allow_unused);
}

}  // namespace bprop

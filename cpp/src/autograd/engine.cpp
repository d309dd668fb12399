// The backward engine: the lecture's bprop over the recorded graph. See autograd.h.
#include <cstdint>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "autograd/hooks.h"
#include "autograd/node_index.h"
#include "bprop/autograd.h"
#include "bprop/ops.h"

namespace bprop {
namespace {

// One backward call: what it was asked (roots, seeds, inputs) and what it has found so far.
struct GraphTask {
  std::string op;                      // "[backward] " or "[grad] ", for error messages
  bool accumulate_into_leaves = true;  // backward(); grad() returns gradients instead
  bool retain_graph = false;
  std::vector<std::shared_ptr<Node>> roots;
  std::vector<Tensor> seeds;  // one per root
  // grad(): the nodes whose incoming gradient is returned, and which inputs each answers.
  std::unordered_map<Node*, std::vector<size_t>> input_positions;
  std::vector<std::shared_ptr<Node>> input_nodes;  // keeps fresh accumulators alive

  std::vector<Node*> nodes;  // indexed by position of discovery
  autograd_detail::NodeIndex index;
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

// Phase 1: each output's node is a root, seeded with its gradient (1 for a scalar output).
Tensor seed_for(const std::string& op, const Tensor& out, const Tensor& given, size_t i) {
  if (!given.defined()) {
    if (out.numel() != 1)
      throw std::runtime_error(op +
                               "grad can be implicitly created only for scalar outputs; output " +
                               std::to_string(i) + " has shape " + out.shape_str() +
                               ", so pass gradient= (a tensor of that shape)");
    return ones_like(out);
  }
  if (given.shape() != out.shape())
    throw std::invalid_argument(op + "Mismatch in shape: gradient " + std::to_string(i) +
                                " has a shape of " + given.shape_str() + " and output " +
                                std::to_string(i) + " has a shape of " + out.shape_str());
  if (!is_floating(given.dtype()))
    throw TypeError(op + "gradient " + std::to_string(i) + " has dtype " +
                    dtype_name(given.dtype()) + " but must be floating point");
  return given.dtype() != out.dtype() ? to_dtype(given, out.dtype()) : given;
}

void seed_roots(GraphTask& task, const std::vector<Tensor>& outputs,
                const std::vector<Tensor>& grad_outputs) {
  const std::string& op = task.op;
  if (outputs.empty()) throw std::invalid_argument(op + "no outputs to differentiate");
  if (!grad_outputs.empty() && grad_outputs.size() != outputs.size())
    throw std::invalid_argument(op + "got " + std::to_string(grad_outputs.size()) +
                                " gradients for " + std::to_string(outputs.size()) + " outputs");
  for (size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    if (!out.defined())
      throw std::invalid_argument(op + "output " + std::to_string(i) + " is None");
    if (!out.requires_grad())
      throw std::runtime_error(op + "element " + std::to_string(i) +
                               " of tensors does not require grad and does not have a grad_fn");
    task.seeds.push_back(
        seed_for(op, out, i < grad_outputs.size() ? grad_outputs[i] : Tensor(), i));
    task.roots.push_back(gradient_edge(out).node);
  }
}

// grad(): the node of each input, whose incoming gradient is that input's answer.
void find_inputs(GraphTask& task, const std::vector<Tensor>& inputs) {
  for (size_t j = 0; j < inputs.size(); ++j) {
    const Tensor& in = inputs[j];
    if (!in.defined() || !in.requires_grad())
      throw std::runtime_error(task.op + "input " + std::to_string(j) +
                               " does not require grad, so it has no gradient");
    task.input_nodes.push_back(gradient_edge(in).node);
    task.input_positions[task.input_nodes.back().get()].push_back(j);
  }
}

// Phase 2: iterative depth-first walk from the roots: counts each node's dependencies and
// returns the nodes in post-order (every node after all the nodes it points to).
std::vector<size_t> discover(GraphTask& task) {
  std::vector<size_t> post_order;
  std::vector<std::pair<Node*, size_t>> stack;  // node, next edge to visit
  for (const auto& root_node : task.roots) {
    Node* root = root_node.get();
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

// Phase 3: which nodes to run. backward() runs them all; grad() only those whose VJP leads to
// an input's node (children come first in post-order). An input's own node is not run for
// it: its incoming gradient is the answer.
void mark_needed(GraphTask& task, const std::vector<size_t>& post_order) {
  task.needed.assign(task.nodes.size(), task.accumulate_into_leaves ? 1 : 0);
  if (task.accumulate_into_leaves) return;
  std::vector<char> reaches(task.nodes.size(), 0);  // the node is, or leads to, an input's
  for (size_t i : post_order) {
    Node* node = task.nodes[i];
    bool needed = false;
    for (const Edge& edge : node->next_edges())
      if (edge.node && reaches[task.at(edge.node.get())]) needed = true;
    task.needed[i] = needed;
    reaches[i] = needed || task.input_positions.count(node) != 0;
  }
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

// One node's VJP: the gradients of its inputs from the gradient of its output.
std::vector<Tensor> evaluate(const GraphTask& task, Node& node, const Tensor& gradient) {
  std::vector<Tensor> input_grads;
  {
    struct Execution {  // Note [Threads]
      Node& node;
      explicit Execution(Node& n) : node(n) { node.begin_execution(); }
      ~Execution() { node.end_execution(); }
    } execution(node);
    input_grads = node.apply(gradient);
    if (!task.retain_graph) node.release_saved();
  }
  if (is_anomaly_enabled()) check_for_nan(node, input_grads);
  if (const std::shared_ptr<TensorImpl>* leaf = node.accumulated_leaf())
    autograd_detail::run_post_accumulate_grad_hooks(*leaf);
  return input_grads;
}

// Phase 4: the sweep in reverse topological order. A node is ready once every edge pointing at
// it has delivered; its summed gradient then flows through its VJP to its children.
std::vector<Tensor> sweep(GraphTask& task, size_t input_count) {
  task.buffers.resize(task.nodes.size());
  std::vector<size_t> ready;
  for (size_t i = 0; i < task.roots.size(); ++i)
    accumulate(task.buffers[task.at(task.roots[i].get())], task.seeds[i]);
  for (const auto& root : task.roots) {
    size_t index = task.at(root.get());
    if (task.dependencies[index] == 0) {
      task.dependencies[index] = -1;  // queued once even if it is several roots
      ready.push_back(index);
    }
  }
  std::vector<Tensor> captured(input_count);
  while (!ready.empty()) {
    size_t index = ready.back();
    ready.pop_back();
    Node* node = task.nodes[index];
    Tensor gradient = std::move(task.buffers[index]);
    auto answers = task.input_positions.find(node);
    // The tensor's hooks see its summed gradient, wherever backward goes with it next.
    if (gradient.defined() && (task.needed[index] || answers != task.input_positions.end()))
      gradient = autograd_detail::run_tensor_hooks(*node, std::move(gradient));
    if (answers != task.input_positions.end())
      for (size_t j : answers->second) captured[j] = gradient;
    const bool run = task.needed[index] && gradient.defined() &&
                     !(!task.accumulate_into_leaves && node->accumulated_leaf());
    std::vector<Tensor> input_grads;
    if (run) input_grads = evaluate(task, *node, gradient);
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
  return captured;
}

// Phase 5: grad() without allow_unused refuses an input no gradient reached.
void check_unused(const GraphTask& task, const std::vector<Tensor>& captured) {
  for (size_t j = 0; j < captured.size(); ++j)
    if (!captured[j].defined())
      throw std::runtime_error(task.op + "input " + std::to_string(j) +
                               " appears to not have been used in the graph. Set "
                               "allow_unused=True if this is the desired behavior.");
}

}  // namespace

std::vector<Tensor> run_backward(const std::vector<Tensor>& outputs,
                                 const std::vector<Tensor>& grad_outputs, bool retain_graph,
                                 bool create_graph, const std::vector<Tensor>& inputs,
                                 bool allow_unused) {
  GraphTask task;
  task.accumulate_into_leaves = inputs.empty();
  task.op = task.accumulate_into_leaves ? "[backward] " : "[grad] ";
  task.retain_graph = retain_graph;
  seed_roots(task, outputs, grad_outputs);
  find_inputs(task, inputs);
  mark_needed(task, discover(task));
  GradModeGuard grad_mode(create_graph);
  std::vector<Tensor> captured = sweep(task, inputs.size());
  if (!task.accumulate_into_leaves && !allow_unused) check_unused(task, captured);
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

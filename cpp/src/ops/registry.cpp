#include "ops/registry.h"

#include "bprop/ops.h"
#include "ops/op_node.h"

namespace bprop {
namespace {

struct Entry {
  const char* name;
  const char* grad_fn_name;
  VjpFn vjp;
};

const Entry kOps[] = {
#define BPROP_OP_DIFF(kind, name, ...) {#name, BPROP_OP_GRAD_FN_NAME(__VA_ARGS__), &vjp_##name},
#define BPROP_OP_NONDIFF(kind, name, ...) {#name, BPROP_OP_GRAD_FN_NAME(__VA_ARGS__), nullptr},
    BPROP_DIFFERENTIABLE_OPS(BPROP_OP_DIFF) BPROP_NONDIFFERENTIABLE_OPS(BPROP_OP_NONDIFF)
#undef BPROP_OP_DIFF
#undef BPROP_OP_NONDIFF
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == static_cast<size_t>(OpKind::Count),
              "every op in the registry has a table entry");

}  // namespace

const char* op_name(OpKind kind) { return kOps[static_cast<size_t>(kind)].name; }
const char* grad_fn_name(OpKind kind) { return kOps[static_cast<size_t>(kind)].grad_fn_name; }
VjpFn op_vjp(OpKind kind) { return kOps[static_cast<size_t>(kind)].vjp; }

std::vector<OpInfo> op_names() {
  std::vector<OpInfo> infos;
  for (const Entry& entry : kOps) infos.push_back({entry.name, entry.vjp != nullptr});
  return infos;
}

}  // namespace bprop

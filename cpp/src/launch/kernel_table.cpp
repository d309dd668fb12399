// The kernels a captured program can launch, by name (Note [Captured programs] in
// launch/program.h). A kernel started through launch() must be listed here: recording a launch
// of one that is not throws std::logic_error, which the capture tests would meet first.
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "launch/program.h"

namespace bprop::tape {

// X(kernel, how many of its leading Operand parameters it writes)
// clang-format off
#define BPROP_PROGRAM_KERNELS(X) \
  X(unary, 1)                    \
  X(binary, 1)                   \
  X(compare, 1)                  \
  X(where, 1)                    \
  X(copy, 1)                     \
  X(tanh_backward, 1)            \
  X(sigmoid_backward, 1)         \
  X(fill, 1)                     \
  X(zero_bytes, 0)               \
  X(store_scalar, 0)             \
  X(add_scaled, 1)               \
  X(reduce, 1)                   \
  X(arg_reduce, 2)               \
  X(argsort, 1)                  \
  X(gather, 1)                   \
  X(scatter_add, 1)              \
  X(gemm, 0)                     \
  X(gemm_batched, 0)             \
  X(unfold2d, 0)                 \
  X(fold2d, 0)                   \
  X(norm_rows, 0)                \
  X(norm_backward, 0)            \
  X(attention_forward, 0)        \
  X(attention_backward, 0)       \
  X(cross_entropy_forward, 0)    \
  X(cross_entropy_backward, 0)   \
  X(softmax_rows, 0)             \
  X(softmax_rows_backward, 0)    \
  X(gather_rows, 0)              \
  X(scatter_add_rows, 0)         \
  X(gelu, 0)
// clang-format on

namespace {
// Chain operands from per-operand pairs (buffer, layout) starting at args[first].
std::vector<kernels::ChainOperand> chain_operands(const std::vector<Arg>& a, size_t first,
                                                  const BufferPool& pool) {
  std::vector<kernels::ChainOperand> operands;
  for (size_t i = first; i + 1 < a.size(); i += 2)
    operands.push_back(
        {pool.resolve(a[i].buffer), static_cast<kernels::ChainOperand::Layout>(
                                        program_detail::Decoded<int64_t>(a[i + 1], pool).value)});
  return operands;
}

// elementwise_chain's arguments in a program: dtype, rows, cols (Int), the steps (Array), then
// per operand its buffer (Buffer) and layout (Int). Written by capture/passes.cpp.
void invoke_elementwise_chain(const Instr& instr, const BufferPool& pool) {
  const auto& a = instr.args;
  auto int_at = [&](size_t i) { return program_detail::Decoded<int64_t>(a[i], pool).value; };
  const std::vector<kernels::ChainOperand> operands = chain_operands(a, 4, pool);
  kernels::elementwise_chain(static_cast<DType>(int_at(0)), int_at(1), int_at(2), a[3].array.data(),
                             static_cast<int64_t>(a[3].array.size()) / kernels::ChainStep::kFields,
                             operands.data(), static_cast<int64_t>(operands.size()));
}

// gemm_chain's arguments in a program: dtype, m, n, k (Int), a (Buffer), rsa, csa (Int),
// b (Buffer), rsb, csb, output (Int), the steps (Array), then per operand its buffer (Buffer)
// and layout (Int). Written by capture/passes.cpp.
void invoke_gemm_chain(const Instr& instr, const BufferPool& pool) {
  const auto& a = instr.args;
  auto int_at = [&](size_t i) { return program_detail::Decoded<int64_t>(a[i], pool).value; };
  const std::vector<kernels::ChainOperand> operands = chain_operands(a, 12, pool);
  kernels::gemm_chain(static_cast<DType>(int_at(0)), int_at(1), int_at(2), int_at(3),
                      pool.resolve(a[4].buffer), int_at(5), int_at(6), pool.resolve(a[7].buffer),
                      int_at(8), int_at(9), int_at(10), a[11].array.data(),
                      static_cast<int64_t>(a[11].array.size()) / kernels::ChainStep::kFields,
                      operands.data(), static_cast<int64_t>(operands.size()));
}
}  // namespace

const std::vector<KernelInfo>& kernel_table() {
#define BPROP_PROGRAM_KERNEL_ENTRY(kernel, outputs)                             \
  KernelInfo{#kernel, reinterpret_cast<const void*>(&kernels::kernel), outputs, \
             &invoke<&kernels::kernel>},
  static const std::vector<KernelInfo> table = {
      BPROP_PROGRAM_KERNELS(BPROP_PROGRAM_KERNEL_ENTRY) KernelInfo{
          "elementwise_chain", reinterpret_cast<const void*>(&kernels::elementwise_chain), 0,
          &invoke_elementwise_chain},
      KernelInfo{"gemm_chain", reinterpret_cast<const void*>(&kernels::gemm_chain), 0,
                 &invoke_gemm_chain}};
#undef BPROP_PROGRAM_KERNEL_ENTRY
  return table;
}

int kernel_index(const void* address) {
  const auto& table = kernel_table();
  for (size_t i = 0; i < table.size(); ++i)
    if (table[i].address == address) return static_cast<int>(i);
  return -1;
}

int kernel_index(const std::string& name) {
  const auto& table = kernel_table();
  for (size_t i = 0; i < table.size(); ++i)
    if (name == table[i].name) return static_cast<int>(i);
  return -1;
}

}  // namespace bprop::tape

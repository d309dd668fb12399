// launch(kernel, args...): how the layers above the kernels call one. It calls the kernel and,
// while a capture records on this thread (launch/tape.h), records the call with copies of its
// arguments as plain data (Note [Captured programs] in launch/program.h), so that the kernels
// themselves stay free of capture.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "launch/program.h"
#include "launch/tape.h"

namespace bprop {

namespace launch_detail {

template <typename... T>
int ndim_of(const std::tuple<T...>& values) {
  int ndim = 0;
  bool found = false;
  std::apply(
      [&](const auto&... v) {
        auto take = [&](const auto& x) {
          if constexpr (std::is_same_v<std::decay_t<decltype(x)>, int>)
            if (!found) ndim = x, found = true;
        };
        (take(v), ...);
      },
      values);
  return ndim;
}

// Whether a kernel's first int parameter (ndim, which sizes its arrays) comes before its
// first array parameter, or it has no arrays.
template <typename... Params>
constexpr bool ndim_precedes_arrays() {
  constexpr bool is_int[] = {std::is_same_v<std::decay_t<Params>, int>..., false};
  constexpr bool is_array[] = {(std::is_same_v<std::decay_t<Params>, const int64_t*> ||
                                std::is_same_v<std::decay_t<Params>, kernels::Operand>)...,
                               false};
  for (size_t i = 0; i < sizeof...(Params); ++i) {
    if (is_int[i]) return true;
    if (is_array[i]) return false;
  }
  return true;
}

template <typename T>
struct NonDeduced {
  using type = T;
};

// Appends a launch of kernel with these arguments to the tape `rec` records on.
template <typename... Params>
void record(const tape::Recording& rec, void (*kernel)(Params...),
            const std::decay_t<Params>&... args) {
  const int index = tape::kernel_index(reinterpret_cast<const void*>(kernel));
  if (index < 0) throw std::logic_error("[capture] a kernel missing from launch/kernel_table.cpp");
  const tape::KernelInfo& info = tape::kernel_table()[static_cast<size_t>(index)];
  const int ndim = ndim_of(std::tuple<std::decay_t<Params>...>(args...));
  const tape::BufferPool& pool = *rec.tape().pool();
  tape::Instr instr;
  instr.kernel = index;
  instr.name = info.name;
  int operands = 0;
  auto add = [&](const auto& x) {
    using T = std::decay_t<decltype(x)>;
    const bool out = std::is_same_v<T, kernels::Operand> && operands++ < info.output_operands;
    instr.args.push_back(tape::program_detail::encode<T>(x, ndim, pool, out));
  };
  (add(args), ...);
  rec.push(std::move(instr));
}

}  // namespace launch_detail

// The arguments are the kernel's own (not deduced), so braced Operands work as in a call.
template <typename... Params>
void launch(void (*kernel)(Params...), typename launch_detail::NonDeduced<Params>::type... args) {
  static_assert(launch_detail::ndim_precedes_arrays<Params...>(),
                "launch: a kernel taking arrays needs its int ndim before them");
  // Alive until the kernel returns, so that nothing it starts is recorded a second time.
  tape::Recording rec;
  if (rec) launch_detail::record(rec, kernel, args...);
  kernel(args...);
}

// Records a launch as launch() would, without running the kernel now: for work already done
// another way (a buffer the allocator zeroed) that a replay must repeat.
template <typename... Params>
void record_launch(void (*kernel)(Params...),
                   typename launch_detail::NonDeduced<Params>::type... args) {
  static_assert(launch_detail::ndim_precedes_arrays<Params...>(),
                "launch: a kernel taking arrays needs its int ndim before them");
  if (tape::Recording rec; rec) launch_detail::record(rec, kernel, args...);
}

}  // namespace bprop

// launch(kernel, args...): how the layers above the kernels call one. It calls the kernel and,
// while a capture records on this thread (launch/tape.h), records the call with copies of its
// shape and stride arrays, so that the kernels themselves stay free of capture.
#pragma once

#include <cstdint>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "kernels/kernels.h"
#include "launch/tape.h"

namespace bprop {

namespace launch_detail {

// What a recorded launch keeps of one kernel argument. A kernel's arrays are described by its
// first int parameter (ndim): shapes (const int64_t*) and the strides of each Operand are
// copied; buffer addresses (an Operand's, any other pointer's) are kept as BufferRefs, which
// a capture's memory plan resolves; every other argument (dtypes, sizes) is kept by value.
template <typename T, typename = void>
struct Saved {
  T value;
  Saved(T v, int) : value(v) {}
  T get() const { return value; }
};
// A buffer address: through the recording's pool (Note [Capture memory] in launch/tape.h).
template <typename T>
struct Saved<T*, std::enable_if_t<(std::is_object_v<T> || std::is_void_v<T>) &&
                                  !std::is_same_v<T, const int64_t>>> {
  tape::BufferRef ref;
  Saved(T* p, int) : ref(p) {}
  T* get() const { return static_cast<T*>(ref.get()); }
};
template <>
struct Saved<const int64_t*> {
  std::vector<int64_t> values;
  Saved(const int64_t* p, int ndim) : values(p, p + ndim) {}
  const int64_t* get() const { return values.data(); }
};
template <>
struct Saved<kernels::Operand> {
  tape::BufferRef data;
  DType dtype;
  std::vector<int64_t> strides;
  Saved(const kernels::Operand& o, int ndim)
      : data(o.data), dtype(o.dtype), strides(o.strides, o.strides + ndim) {}
  kernels::Operand get() const { return {data.get(), dtype, strides.data()}; }
};

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

}  // namespace launch_detail

// The arguments are the kernel's own (not deduced), so braced Operands work as in a call.
template <typename... Params>
void launch(void (*kernel)(Params...), typename launch_detail::NonDeduced<Params>::type... args) {
  static_assert(launch_detail::ndim_precedes_arrays<Params...>(),
                "launch: a kernel taking arrays needs its int ndim before them");
  // Alive until the kernel returns, so that nothing it starts is recorded a second time.
  tape::Recording rec;
  if (rec) {
    const std::tuple<std::decay_t<Params>...> values(args...);
    const int ndim = launch_detail::ndim_of(values);
    auto saved = std::apply(
        [ndim](const auto&... v) {
          return std::make_tuple(launch_detail::Saved<std::decay_t<decltype(v)>>(v, ndim)...);
        },
        values);
    rec.push(
        [kernel, saved] { std::apply([kernel](const auto&... s) { kernel(s.get()...); }, saved); });
  }
  kernel(args...);
}

}  // namespace bprop

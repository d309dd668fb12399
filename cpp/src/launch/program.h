// A captured step as a program: plain data a replay runs and the capture's passes rewrite.
//
// Note [Captured programs]
// Each kernel launch a capture records (launch/launch.h) becomes an Instr: the kernel by its
// name in kernel_table() (launch/kernel_table.cpp) and its arguments as plain data, namely
// values (ints, doubles, enums, dtypes, small structs such as Window2d, by their bytes),
// arrays (shapes; an Operand's strides) and buffers (a slot of the capture's pool and an
// offset, or an address made before the recording; Note [Capture memory] in launch/tape.h).
// Nothing in a kernel Instr is a pointer into the recording process's objects except the
// addresses of buffers the step did not make (parameters, inputs, optimizer state), so a
// replay looks the kernel up again by index and decodes its arguments, and the passes
// (capture/passes.cpp) can read which buffers each launch reads and writes.
//
// Work outside the kernels that a replay must repeat (binding a .grad, an optimizer's step
// over its parameter list, re-checking index values, redrawing a dropout mask) stays a named
// host step: a closure over the objects it needs. The passes treat each as touching only
// what it holds (buffers alive at the end of the recording) and never move or drop one.
#pragma once

#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bprop/dtype.h"
#include "kernels/kernels.h"
#include "launch/tape.h"

namespace bprop::tape {

// A kernel a program can launch: its name, its address (to find it when recording) and the
// function that calls it with decoded arguments.
struct KernelInfo {
  const char* name;
  const void* address;
  int output_operands;  // how many leading Operand parameters it writes
  void (*invoke)(const Instr& instr, const BufferPool& pool);
};
const std::vector<KernelInfo>& kernel_table();
// The table index of the kernel at `address`, or -1.
int kernel_index(const void* address);
// The table index of the kernel named `name`, or -1.
int kernel_index(const std::string& name);

// Runs one instruction of a program recorded with `pool`.
inline void run(const Instr& instr, const BufferPool& pool) {
  if (instr.kernel < 0)
    instr.host();
  else
    kernel_table()[static_cast<size_t>(instr.kernel)].invoke(instr, pool);
}

// The passes over a recorded program (Note [Program passes] in capture/passes.cpp), between
// its pool's end_recording() and plan(); none runs when BPROP_FUSION=0 is set. What they did:
struct PassReport {
  size_t dropped = 0;    // launches whose results nothing used
  size_t fused = 0;      // elementwise launches joined into the launch that read their result
  size_t forwarded = 0;  // copies whose source's writer now writes their destination
  size_t pieces = 0;     // zero-padded pieces added into their sum in place
  size_t epilogues = 0;  // elementwise launches joined into the product they read
};
PassReport optimize(std::vector<Instr>& program, BufferPool& pool);

// One line per instruction: its name and arguments (buffers as s<slot>+offset or @address).
std::string describe(const std::vector<Instr>& program);
// One instruction's line, without the newline.
std::string describe(const Instr& instr);

namespace program_detail {

template <typename T>
constexpr bool is_shape_v = std::is_same_v<T, const int64_t*>;
template <typename T>
constexpr bool is_buffer_v =
    std::is_pointer_v<T> && !is_shape_v<T> &&
    (std::is_object_v<std::remove_pointer_t<T>> || std::is_void_v<std::remove_pointer_t<T>>);

// A kernel argument as plain data, while recording: `pool` maps buffer addresses to slots;
// `ndim` sizes shapes and strides; `out` says whether an Operand is one the kernel writes.
template <typename T>
Arg encode(const T& v, int ndim, const BufferPool& pool, bool out) {
  Arg a;
  if constexpr (is_shape_v<T>) {
    a.kind = Arg::Kind::Array;
    a.array.assign(v, v + ndim);
  } else if constexpr (std::is_same_v<T, kernels::Operand>) {
    a.kind = Arg::Kind::Operand;
    a.written = out;
    a.dtype = v.dtype;
    a.buffer = pool.refer(v.data);
    a.array.assign(v.strides, v.strides + ndim);
  } else if constexpr (is_buffer_v<T>) {
    a.kind = Arg::Kind::Buffer;
    a.written = !std::is_const_v<std::remove_pointer_t<T>>;
    a.buffer = pool.refer(v);
  } else {
    static_assert(std::is_trivially_copyable_v<T>, "a kernel value argument is plain bytes");
    a.kind = std::is_integral_v<T> || std::is_enum_v<T> ? Arg::Kind::Int
             : std::is_floating_point_v<T>              ? Arg::Kind::Float
                                                        : Arg::Kind::Bytes;
    a.bytes.resize(sizeof(T));
    std::memcpy(a.bytes.data(), &v, sizeof(T));
  }
  return a;
}

// The argument back, for a replay.
template <typename T>
struct Decoded {
  T value;
  explicit Decoded(const Arg& a, const BufferPool& pool) {
    if constexpr (is_shape_v<T>) {
      value = a.array.data();
    } else if constexpr (std::is_same_v<T, kernels::Operand>) {
      value = {pool.resolve(a.buffer), a.dtype, a.array.data()};
    } else if constexpr (is_buffer_v<T>) {
      value = static_cast<T>(pool.resolve(a.buffer));
    } else {
      std::memcpy(&value, a.bytes.data(), sizeof(T));
    }
  }
};

template <typename... P>
constexpr size_t arity(void (*)(P...)) {
  return sizeof...(P);
}

template <auto Kernel, typename... P, size_t... I>
void invoke_with(void (*)(P...), const Arg* args, const BufferPool& pool,
                 std::index_sequence<I...>) {
  Kernel(Decoded<std::decay_t<P>>(args[I], pool).value...);
}

}  // namespace program_detail

// kernel_table()'s invoker of `Kernel`.
template <auto Kernel>
void invoke(const Instr& instr, const BufferPool& pool) {
  program_detail::invoke_with<Kernel>(Kernel, instr.args.data(), pool,
                                      std::make_index_sequence<program_detail::arity(Kernel)>{});
}

}  // namespace bprop::tape

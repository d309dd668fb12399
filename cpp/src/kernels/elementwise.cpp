#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "kernels/strided_loop.h"
#include "kernels/vector_kernels.h"
#include "kernels/wrapping.h"

namespace bprop::kernels {
namespace {

template <typename T>
T& at(char* p, int64_t stride, int64_t i) {
  return *reinterpret_cast<T*>(p + stride * i);
}

// One inner loop for any map out = f(in...), with a contiguous fast path the compiler can
// vectorise.
template <typename Out, typename In, typename F>
void map1(char** p, const int64_t* s, int64_t n, F f) {
  if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
    Out* out = reinterpret_cast<Out*>(p[0]);
    const In* in = reinterpret_cast<const In*>(p[1]);
    for (int64_t i = 0; i < n; ++i) out[i] = f(in[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) at<Out>(p[0], s[0], i) = f(at<In>(p[1], s[1], i));
  }
}

template <typename Out, typename In, typename F>
void map2(char** p, const int64_t* s, int64_t n, F f) {
  if (s[0] == sizeof(Out) && s[1] == sizeof(In) && s[2] == sizeof(In)) {
    Out* out = reinterpret_cast<Out*>(p[0]);
    const In* a = reinterpret_cast<const In*>(p[1]);
    const In* b = reinterpret_cast<const In*>(p[2]);
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (s[0] == sizeof(Out) && s[1] == sizeof(In) && s[2] == 0) {
    Out* out = reinterpret_cast<Out*>(p[0]);
    const In* a = reinterpret_cast<const In*>(p[1]);
    const In b = *reinterpret_cast<const In*>(p[2]);
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b);
  } else {
    for (int64_t i = 0; i < n; ++i)
      at<Out>(p[0], s[0], i) = f(at<In>(p[1], s[1], i), at<In>(p[2], s[2], i));
  }
}

template <typename T>
T integer_pow(T base, T exponent) {
  T result = 1;
  while (exponent > 0) {
    if (exponent & 1) result = wrapping_mul(result, base);
    base = wrapping_mul(base, base);
    exponent >>= 1;
  }
  return result;
}

// c ? x : y without a branch: the bits of x where c, else y's (NaN payloads and -0 kept).
template <typename T>
T pick_bits(bool c, T x, T y) {
  using Bits = std::conditional_t<sizeof(T) == 8, uint64_t,
                                  std::conditional_t<sizeof(T) == 4, uint32_t, uint8_t>>;
  static_assert(sizeof(Bits) == sizeof(T));
  Bits bx, by;
  std::memcpy(&bx, &x, sizeof x);
  std::memcpy(&by, &y, sizeof y);
  const Bits mask = static_cast<Bits>(Bits(0) - static_cast<Bits>(c));
  const Bits picked = static_cast<Bits>((bx & mask) | (by & static_cast<Bits>(~mask)));
  T out;
  std::memcpy(&out, &picked, sizeof out);
  return out;
}

[[noreturn]] void unsupported(const char* kernel, DType dtype) {
  throw std::logic_error(std::string("kernel ") + kernel + " has no " + dtype_name(dtype) +
                         " version");
}

}  // namespace

namespace {
bool vector_unary(UnaryOp op, VecUnary* out) {
  switch (op) {
    case UnaryOp::Neg:
      return *out = VecUnary::Neg, true;
    case UnaryOp::Abs:
      return *out = VecUnary::Abs, true;
    case UnaryOp::Relu:
      return *out = VecUnary::Relu, true;
    case UnaryOp::Sqrt:
      return *out = VecUnary::Sqrt, true;
    case UnaryOp::Exp:
      return *out = VecUnary::Exp, true;
    case UnaryOp::Log:
      return *out = VecUnary::Log, true;
    case UnaryOp::Tanh:
      return *out = VecUnary::Tanh, true;
    case UnaryOp::Sigmoid:
      return *out = VecUnary::Sigmoid, true;
    case UnaryOp::Erf:
      return *out = VecUnary::Erf, true;
    default:
      return false;
  }
}

bool vector_binary(BinaryOp op, VecBinary* out) {
  switch (op) {
    case BinaryOp::Add:
      return *out = VecBinary::Add, true;
    case BinaryOp::Sub:
      return *out = VecBinary::Sub, true;
    case BinaryOp::Mul:
      return *out = VecBinary::Mul, true;
    case BinaryOp::Div:
      return *out = VecBinary::Div, true;
    case BinaryOp::Maximum:
      return *out = VecBinary::Maximum, true;
    case BinaryOp::Minimum:
      return *out = VecBinary::Minimum, true;
    default:
      return false;
  }
}

// NOTE: written so that exp never overflows: for x < 0, e^x / (1 + e^x).
template <typename T>
T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  T e = std::exp(x);
  return e / (T(1) + e);
}
}  // namespace

void unary(UnaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& in) {
  const Operand* const ops[2] = {&out, &in};
  VecUnary vec_op;
  const bool vectorised = vector_unary(op, &vec_op);
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      unsupported("unary", out.dtype);
    } else {
      for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
        if constexpr (std::is_floating_point_v<T>) {
          if (vectorised && s[0] == sizeof(T) && s[1] == sizeof(T)) {
            const VectorKernels& vk = vector_kernels();
            const bool done = std::is_same_v<T, float>
                                  ? vk.unary_f32(vec_op, reinterpret_cast<float*>(p[0]),
                                                 reinterpret_cast<const float*>(p[1]), n)
                                  : vk.unary_f64(vec_op, reinterpret_cast<double*>(p[0]),
                                                 reinterpret_cast<const double*>(p[1]), n);
            if (done) return;
          }
        }
        switch (op) {
#define BPROP_UNARY_KERNEL_CASE(kind, floating_only, value)        \
  case UnaryOp::kind:                                              \
    if constexpr (std::is_floating_point_v<T> || !(floating_only)) \
      return map1<T, T>(p, s, n, [](T x) { return value; });       \
    break;
          BPROP_UNARY_KERNELS(BPROP_UNARY_KERNEL_CASE)
#undef BPROP_UNARY_KERNEL_CASE
        }
        unsupported("unary", out.dtype);
      });
    }
  });
}

void binary(BinaryOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
            const Operand& b) {
  const Operand* const ops[3] = {&out, &a, &b};
  VecBinary vec_op;
  const bool vectorised = vector_binary(op, &vec_op);
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
      if constexpr (std::is_floating_point_v<T>) {
        if (vectorised && s[0] == sizeof(T) && s[1] == sizeof(T) &&
            (s[2] == sizeof(T) || s[2] == 0)) {
          const VectorKernels& vk = vector_kernels();
          if constexpr (std::is_same_v<T, float>) {
            if (vk.binary_f32(vec_op, reinterpret_cast<float*>(p[0]),
                              reinterpret_cast<const float*>(p[1]),
                              reinterpret_cast<const float*>(p[2]), n, s[2] == 0))
              return;
          } else {
            if (vk.binary_f64(vec_op, reinterpret_cast<double*>(p[0]),
                              reinterpret_cast<const double*>(p[1]),
                              reinterpret_cast<const double*>(p[2]), n, s[2] == 0))
              return;
          }
        }
      }
      if constexpr (std::is_same_v<T, bool>) {
        // bool + bool is logical or, bool * bool logical and (as in PyTorch).
        switch (op) {
          case BinaryOp::Add:
            return map2<T, T>(p, s, n, [](T x, T y) { return x || y; });
          case BinaryOp::Mul:
          case BinaryOp::Minimum:
            return map2<T, T>(p, s, n, [](T x, T y) { return x && y; });
          case BinaryOp::Maximum:
            return map2<T, T>(p, s, n, [](T x, T y) { return x || y; });
          default:
            unsupported("binary", out.dtype);
        }
      } else {
        switch (op) {
          case BinaryOp::Add:
            return map2<T, T>(p, s, n, [](T x, T y) { return wrapping_add(x, y); });
          case BinaryOp::Sub:
            return map2<T, T>(p, s, n, [](T x, T y) { return wrapping_sub(x, y); });
          case BinaryOp::Mul:
            return map2<T, T>(p, s, n, [](T x, T y) { return wrapping_mul(x, y); });
          case BinaryOp::Div:
            return map2<T, T>(p, s, n, [](T x, T y) { return x / y; });
          case BinaryOp::Maximum:
            return map2<T, T>(p, s, n, [](T x, T y) { return x != x || x > y ? x : y; });
          case BinaryOp::Minimum:
            return map2<T, T>(p, s, n, [](T x, T y) { return x != x || x < y ? x : y; });
          case BinaryOp::Pow:
            if constexpr (std::is_floating_point_v<T>) {
              return map2<T, T>(p, s, n, [](T x, T y) { return std::pow(x, y); });
            } else {
              return map2<T, T>(p, s, n, [](T x, T y) { return integer_pow(x, y); });
            }
        }
      }
    });
  });
}

void compare(CompareOp op, int ndim, const int64_t* shape, const Operand& out, const Operand& a,
             const Operand& b) {
  const Operand* const ops[3] = {&out, &a, &b};
  visit_element_type(a.dtype, [&](auto tag) {
    using T = decltype(tag);
    for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
      switch (op) {
        case CompareOp::Eq:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x == y; });
        case CompareOp::Ne:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x != y; });
        case CompareOp::Lt:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x < y; });
        case CompareOp::Le:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x <= y; });
        case CompareOp::Gt:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x > y; });
        case CompareOp::Ge:
          return map2<bool, T>(p, s, n, [](T x, T y) { return x >= y; });
      }
    });
  });
}

void where(int ndim, const int64_t* shape, const Operand& out, const Operand& cond,
           const Operand& a, const Operand& b) {
  const Operand* const ops[4] = {&out, &cond, &a, &b};
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
      // Contiguous runs (each of a and b contiguous or one value) in loops the compiler
      // vectorises, picking by bit masks (pick_bits) instead of a branch the condition's
      // pattern decides: a relu's backward, where(x > 0, g, 0) over 256x512 random values,
      // took 500 us (4 ns an element, numpy's as long) on the AMD EPYC of docs/performance.md.
      constexpr int64_t kSize = sizeof(T);
      auto pick = [](bool c, T x, T y) { return pick_bits(c, x, y); };
      if (s[0] == kSize && s[1] == sizeof(bool) && (s[2] == kSize || s[2] == 0) &&
          (s[3] == kSize || s[3] == 0)) {
        T* o = reinterpret_cast<T*>(p[0]);
        const bool* c = reinterpret_cast<const bool*>(p[1]);
        const T* x = reinterpret_cast<const T*>(p[2]);
        const T* y = reinterpret_cast<const T*>(p[3]);
        if (s[2] == kSize && s[3] == kSize) {
          for (int64_t i = 0; i < n; ++i) o[i] = pick(c[i], x[i], y[i]);
        } else if (s[2] == kSize) {
          const T y0 = *y;
          for (int64_t i = 0; i < n; ++i) o[i] = pick(c[i], x[i], y0);
        } else if (s[3] == kSize) {
          const T x0 = *x;
          for (int64_t i = 0; i < n; ++i) o[i] = pick(c[i], x0, y[i]);
        } else {
          const T x0 = *x, y0 = *y;
          for (int64_t i = 0; i < n; ++i) o[i] = pick(c[i], x0, y0);
        }
        return;
      }
      for (int64_t i = 0; i < n; ++i)
        at<T>(p[0], s[0], i) =
            at<bool>(p[1], s[1], i) ? at<T>(p[2], s[2], i) : at<T>(p[3], s[3], i);
    });
  });
}

void copy(int ndim, const int64_t* shape, const Operand& out, const Operand& in) {
  const Operand* const ops[2] = {&out, &in};
  visit_element_type(out.dtype, [&](auto out_tag) {
    using Out = decltype(out_tag);
    visit_element_type(in.dtype, [&](auto in_tag) {
      using In = decltype(in_tag);
      for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
        if constexpr (std::is_same_v<Out, In>) {
          if (s[0] == sizeof(Out) && s[1] == sizeof(In)) {
            std::memcpy(p[0], p[1], static_cast<size_t>(n) * sizeof(Out));
            return;
          }
        }
        if constexpr (std::is_same_v<Out, bool>) {
          map1<Out, In>(p, s, n, [](In x) { return x != In(0); });
        } else if constexpr (std::is_same_v<Out, int64_t> && std::is_floating_point_v<In>) {
          // NOTE: NaN, inf and values beyond int64's range have no int64 value (casting them is
          // undefined behaviour); they become INT64_MIN, what x86's conversion (and PyTorch
          // there) gives.
          map1<Out, In>(p, s, n, [](In x) {
            return x >= In(-0x1p63) && x < In(0x1p63) ? static_cast<Out>(x) : INT64_MIN;
          });
        } else {
          map1<Out, In>(p, s, n, [](In x) { return static_cast<Out>(x); });
        }
      });
    });
  });
}

namespace {
template <typename F>
void fused_backward(int ndim, const int64_t* shape, const Operand& out, const Operand& g,
                    const Operand& y, F formula) {
  const Operand* const ops[3] = {&out, &g, &y};
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
        map2<T, T>(p, s, n, [&](T gv, T yv) { return formula(gv, yv); });
      });
    } else {
      unsupported("fused backward", out.dtype);
    }
  });
}
}  // namespace

// NOTE: this file is compiled for baseline x86-64 (no FMA), so these round exactly like the
// composed ops they replace.
void tanh_backward(int ndim, const int64_t* shape, const Operand& out, const Operand& g,
                   const Operand& y) {
  fused_backward(ndim, shape, out, g, y, [](auto gv, auto yv) {
    using T = decltype(gv);
    return gv * (T(1) - yv * yv);
  });
}

void sigmoid_backward(int ndim, const int64_t* shape, const Operand& out, const Operand& g,
                      const Operand& y) {
  fused_backward(ndim, shape, out, g, y, [](auto gv, auto yv) {
    using T = decltype(gv);
    return gv * (yv * (T(1) - yv));
  });
}

void fill(int ndim, const int64_t* shape, const Operand& out, double value) {
  const Operand* const ops[1] = {&out};
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    const T v = static_cast<T>(value);
    for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
      for (int64_t i = 0; i < n; ++i) at<T>(p[0], s[0], i) = v;
    });
  });
}

// Note [Fused elementwise chains]
// A captured program (capture/passes.cpp) turns a run of elementwise launches, each of whose
// results but the last is read only by the next, into one elementwise_chain: instead of
// writing a whole intermediate tensor and reading it back in the next pass, each thread takes
// blocks of about kChainBlock values (whole rows, so a row-broadcast operand such as a bias
// lines up) and runs every step on its block, intermediates in per-thread temporaries that
// stay in L1/L2. Each step calls the very kernel (`unary`, `binary`) its launch would have, on
// block-sized operands of the same layout (contiguous, a repeated row, a scalar), so every
// value takes the same vector or scalar path and gets the same bits as the unfused launches;
// the vector kernels treat a tail through one padded vector, so where a block ends does not
// matter either.
namespace {
constexpr int64_t kChainBlock = 2048;
}

void elementwise_chain(DType dtype, int64_t rows, int64_t cols, const int64_t* steps,
                       int64_t step_count, const ChainOperand* operands, int64_t operand_count) {
  if (dtype != DType::Float32 && dtype != DType::Float64)
    throw std::invalid_argument("[elementwise_chain] float32 or float64 only");
  const int64_t item = static_cast<int64_t>(itemsize(dtype));
  int64_t temporaries = 0;
  for (int64_t s = 0; s < step_count; ++s)
    for (int f = 2; f < ChainStep::kFields; ++f) {
      const int64_t reg = steps[s * ChainStep::kFields + f];
      if (reg >= operand_count)
        throw std::invalid_argument("[elementwise_chain] step " + std::to_string(s) +
                                    " names operand " + std::to_string(reg) + " of " +
                                    std::to_string(operand_count));
      temporaries = std::max(temporaries, -reg);
    }
  const int64_t block_rows = std::max<int64_t>(1, kChainBlock / std::max<int64_t>(cols, 1));
  const int64_t blocks = (rows + block_rows - 1) / block_rows;
  const int64_t per_block = block_rows * cols;
  static const int64_t row_strides[2] = {0, 1}, scalar_strides[2] = {0, 0};
  const int64_t full_strides[2] = {cols, 1};
  // Enough blocks per thread that a part is worth waking a worker for.
  const int64_t grain =
      std::max<int64_t>(1, kParallelElements / 2 / std::max<int64_t>(per_block, 1));
  parallel_for(blocks, grain, [&](int64_t first, int64_t last) {
    std::vector<char> scratch(static_cast<size_t>(temporaries * per_block * item + 64));
    char* base = reinterpret_cast<char*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) &
                                         ~uintptr_t{63});
    for (int64_t block = first; block < last; ++block) {
      const int64_t row0 = block * block_rows;
      const int64_t shape[2] = {std::min(block_rows, rows - row0), cols};
      auto operand = [&](int64_t reg) -> Operand {
        if (reg < 0) return {base + (-1 - reg) * per_block * item, dtype, full_strides};
        const ChainOperand& o = operands[reg];
        switch (o.layout) {
          case ChainOperand::Row:
            return {o.data, dtype, row_strides};
          case ChainOperand::Scalar:
            return {o.data, dtype, scalar_strides};
          default:
            return {static_cast<char*>(o.data) + row0 * cols * item, dtype, full_strides};
        }
      };
      for (int64_t s = 0; s < step_count; ++s) {
        const int64_t* step = steps + s * ChainStep::kFields;
        if (step[0] == ChainStep::Unary)
          unary(static_cast<UnaryOp>(step[1]), 2, shape, operand(step[2]), operand(step[3]));
        else
          binary(static_cast<BinaryOp>(step[1]), 2, shape, operand(step[2]), operand(step[3]),
                 operand(step[4]));
      }
    }
  });
}

void zero_bytes(int64_t nbytes, void* out) {
  if (nbytes > 0) std::memset(out, 0, static_cast<size_t>(nbytes));
}

void store_scalar(int64_t size, uint64_t bits, void* out) {
  std::memcpy(out, &bits, static_cast<size_t>(size));
}

void add_scaled(int ndim, const int64_t* shape, const Operand& out, const Operand& in,
                double alpha) {
  const Operand* const ops[2] = {&out, &in};
  visit_element_type(out.dtype, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_floating_point_v<T>) {
      const T scale = static_cast<T>(alpha);
      for_each_strided(ndim, shape, ops, [&](char** p, const int64_t* s, int64_t n) {
        if (s[0] == sizeof(T) && s[1] == sizeof(T)) {
          T* o = reinterpret_cast<T*>(p[0]);
          const T* x = reinterpret_cast<const T*>(p[1]);
          for (int64_t i = 0; i < n; ++i) o[i] += scale * x[i];
        } else {
          for (int64_t i = 0; i < n; ++i) at<T>(p[0], s[0], i) += scale * at<T>(p[1], s[1], i);
        }
      });
    } else {
      unsupported("add_scaled", out.dtype);
    }
  });
}

}  // namespace bprop::kernels

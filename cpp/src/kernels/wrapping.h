// Integer arithmetic that wraps around (two's complement), as int64 tensors do in numpy and
// PyTorch. Signed overflow is undefined behaviour in C++, so the kernels' int64 sums, products
// and negations go through the unsigned type; for floating point these are the plain operators.
#pragma once

#include <type_traits>

namespace bprop::kernels {

template <typename T>
constexpr T wrapping_add(T x, T y) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(x) + static_cast<U>(y));
  } else {
    return x + y;
  }
}

template <typename T>
constexpr T wrapping_sub(T x, T y) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(x) - static_cast<U>(y));
  } else {
    return x - y;
  }
}

template <typename T>
constexpr T wrapping_mul(T x, T y) {
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    using U = std::make_unsigned_t<T>;
    return static_cast<T>(static_cast<U>(x) * static_cast<U>(y));
  } else {
    return x * y;
  }
}

template <typename T>
constexpr T wrapping_neg(T x) {
  return wrapping_sub(T(0), x);
}

}  // namespace bprop::kernels

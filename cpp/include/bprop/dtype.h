// Element types. The enum order is the promotion order: promoting two dtypes of the same
// kind picks the later one, and bool < integer < floating point across kinds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bprop {

enum class DType : uint8_t { Bool = 0, Int64 = 1, Float32 = 2, Float64 = 3 };

// Calls visit(T{}) with T the C++ element type of dtype (bool, int64_t, float, double) and
// returns its result: one switch for code generic over the element type.
template <typename Visit>
decltype(auto) visit_element_type(DType dtype, Visit&& visit) {
  switch (dtype) {
    case DType::Bool:
      return visit(bool{});
    case DType::Int64:
      return visit(int64_t{});
    case DType::Float32:
      return visit(float{});
    case DType::Float64:
      break;
  }
  return visit(double{});
}

inline size_t itemsize(DType dtype) {
  return visit_element_type(dtype, [](auto t) { return sizeof(t); });
}

inline const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return "bool";
    case DType::Int64:
      return "int64";
    case DType::Float32:
      return "float32";
    case DType::Float64:
      return "float64";
  }
  return "?";
}

inline bool is_floating(DType dtype) { return dtype == DType::Float32 || dtype == DType::Float64; }

// The smallest dtype that holds values of both.
inline DType promote_types(DType a, DType b) { return a > b ? a : b; }

// The dtype Python floats become (float32 unless set_default_dtype(float64) was called).
DType default_dtype();
// Throws std::invalid_argument unless dtype is floating point.
void set_default_dtype(DType dtype);

}  // namespace bprop

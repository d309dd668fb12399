// Element types. The enum order is the promotion order: promoting two dtypes of the same
// kind picks the later one, and bool < integer < floating point across kinds.
#pragma once

#include <cstddef>
#include <cstdint>

namespace bprop {

enum class DType : uint8_t { Bool = 0, Int64 = 1, Float32 = 2, Float64 = 3 };

inline size_t itemsize(DType dtype) {
  switch (dtype) {
    case DType::Bool:
      return 1;
    case DType::Int64:
      return 8;
    case DType::Float32:
      return 4;
    case DType::Float64:
      return 8;
  }
  return 0;
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

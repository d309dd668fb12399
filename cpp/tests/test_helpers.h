// Helpers shared by the C++ tests: small tensors from literals, and value checks.
#pragma once

#include <bprop/bprop.h>
#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

namespace bprop_test {

using bprop::DType;
using bprop::Shape;
using bprop::Tensor;

// A float64 tensor holding `values` row-major in `shape`, optionally a leaf requiring grad.
inline Tensor f64(const std::vector<double>& values, const Shape& shape,
                  bool requires_grad = false) {
  Tensor t = bprop::from_vector<double>(values, shape);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline Tensor f32(const std::vector<float>& values, const Shape& shape,
                  bool requires_grad = false) {
  Tensor t = bprop::from_vector<float>(values, shape);
  if (requires_grad) t.set_requires_grad(true);
  return t;
}

inline std::vector<double> values(const Tensor& t) { return bprop::to_vector<double>(t); }

inline double scalar_of(const Tensor& t) { return t.item().to_double(); }

// Shape first, then every value within `tol` (relative to max(1, |expected|)).
inline void check_values(const Tensor& actual, const Shape& shape,
                         const std::vector<double>& expected, double tol = 1e-12) {
  REQUIRE(actual.defined());
  CHECK_MESSAGE(actual.shape() == shape,
                "shape " << actual.shape_str() << " != expected " << bprop::shape_to_string(shape));
  REQUIRE(actual.numel() == static_cast<int64_t>(expected.size()));
  std::vector<double> got = values(actual);
  for (size_t i = 0; i < expected.size(); ++i) {
    const double scale = std::fmax(1.0, std::fabs(expected[i]));
    CHECK_MESSAGE(std::fabs(got[i] - expected[i]) <= tol * scale,
                  "element " << i << ": got " << got[i] << ", expected " << expected[i]);
  }
}

// The gradient a leaf accumulated, checked like check_values.
inline void check_grad(const Tensor& leaf, const std::vector<double>& expected,
                       double tol = 1e-12) {
  REQUIRE_MESSAGE(leaf.grad().defined(), "leaf has no .grad");
  CHECK(leaf.grad().dtype() == leaf.dtype());
  check_values(leaf.grad(), leaf.shape(), expected, tol);
}

inline bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

}  // namespace bprop_test

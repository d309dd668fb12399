// Forward values of every op, broadcasting and type promotion.
#include <doctest/doctest.h>

#include <cmath>
#include <set>
#include <string>
#include <vector>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

Tensor ints(std::vector<int64_t> v, const Shape& shape) {
  Shape strides = contiguous_strides(shape);
  for (auto& s : strides) s *= static_cast<int64_t>(sizeof(int64_t));
  return from_strided_data(v.data(), shape, strides, DType::Int64);
}

std::vector<int64_t> bools(const Tensor& t) {
  CHECK(t.dtype() == DType::Bool);
  return to_vector<int64_t>(t);
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

}  // namespace

TEST_SUITE("ops forward") {
  TEST_CASE("add sub mul div with broadcasting") {
    Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor row = f64({10, 20, 30}, {3});
    Tensor col = f64({1, 2}, {2, 1});
    check_values(add(a, row), {2, 3}, {11, 22, 33, 14, 25, 36});
    check_values(a + row, {2, 3}, {11, 22, 33, 14, 25, 36});
    check_values(sub(a, col), {2, 3}, {0, 1, 2, 2, 3, 4});
    check_values(a - col, {2, 3}, {0, 1, 2, 2, 3, 4});
    check_values(mul(a, col), {2, 3}, {1, 2, 3, 8, 10, 12});
    check_values(a * row, {2, 3}, {10, 40, 90, 40, 100, 180});
    check_values(div(a, col), {2, 3}, {1, 2, 3, 2, 2.5, 3});
    check_values(a / row, {2, 3}, {0.1, 0.1, 0.1, 0.4, 0.25, 0.2});
    // (2, 1) with (1, 3) broadcasts both ways.
    check_values(add(col, reshape(row, {1, 3})), {2, 3}, {11, 21, 31, 12, 22, 32});
    // 0-d tensors broadcast against anything.
    check_values(mul(a, full({}, Scalar(2.0), DType::Float64)), {2, 3}, {2, 4, 6, 8, 10, 12});
  }

  TEST_CASE("ops with Python-like scalars") {
    Tensor a = f64({1, 2, 4}, {3});
    check_values(a + 1.0, {3}, {2, 3, 5});
    check_values(1.0 + a, {3}, {2, 3, 5});
    check_values(a - 1.0, {3}, {0, 1, 3});
    check_values(1.0 - a, {3}, {0, -1, -3});
    check_values(a * 3.0, {3}, {3, 6, 12});
    check_values(3.0 * a, {3}, {3, 6, 12});
    check_values(a / 2.0, {3}, {0.5, 1, 2});
    check_values(-a, {3}, {-1, -2, -4});
    check_values(neg(a), {3}, {-1, -2, -4});
    check_values(add(a, Scalar(2)), {3}, {3, 4, 6});
    check_values(sub(a, Scalar(2)), {3}, {-1, 0, 2});
    check_values(mul(a, Scalar(2)), {3}, {2, 4, 8});
    check_values(div(a, Scalar(4)), {3}, {0.25, 0.5, 1});
  }

  TEST_CASE("type promotion") {
    Tensor f = f32({1.5f, 2.5f}, {2});
    Tensor d = f64({1, 2}, {2});
    Tensor i = ints({3, 4}, {2});
    CHECK(add(f, d).dtype() == DType::Float64);
    CHECK(add(f, i).dtype() == DType::Float32);
    CHECK(add(i, i).dtype() == DType::Int64);
    CHECK(to_vector<int64_t>(add(i, i)) == std::vector<int64_t>{6, 8});
    // Python numbers never upcast a tensor of their kind...
    CHECK(add(f, 1.0).dtype() == DType::Float32);
    CHECK(add(i, Scalar(1)).dtype() == DType::Int64);
    // ...but a float number makes an int tensor floating (the default dtype).
    CHECK(add(i, 0.5).dtype() == DType::Float32);
    check_values(add(i, 0.5), {2}, {3.5, 4.5});
    // True division gives floats.
    Tensor q = div(i, ints({2, 8}, {2}));
    CHECK(q.dtype() == DType::Float32);
    check_values(q, {2}, {1.5, 0.5});
    // A 0-d tensor of a higher kind promotes; one of the same kind does not.
    CHECK(add(i, full({}, Scalar(1.0), DType::Float64)).dtype() == DType::Float64);
    CHECK(add(f, full({}, Scalar(1.0), DType::Float64)).dtype() == DType::Float32);
    CHECK(result_type(f, d) == DType::Float64);
    CHECK(result_type(i, f) == DType::Float32);
    // Bool with bool adds as bool (logical or), with an int as int.
    Tensor b = gt(d, full({}, Scalar(1.5), DType::Float64));
    CHECK(add(b, b).dtype() == DType::Bool);
    CHECK(add(b, i).dtype() == DType::Int64);
  }

  TEST_CASE("pow") {
    Tensor a = f64({1, 2, 3}, {3});
    check_values(pow(a, Scalar(2.0)), {3}, {1, 4, 9});
    check_values(pow(a, Scalar(0.5)), {3}, {1, std::sqrt(2.0), std::sqrt(3.0)});
    check_values(pow(a, Scalar(-1.0)), {3}, {1, 0.5, 1.0 / 3.0});
    check_values(pow(a, f64({3, 2, 0.5}, {3})), {3}, {1, 4, std::sqrt(3.0)});
    check_values(pow(f64({2}, {1}), a), {3}, {2, 4, 8});  // broadcast base
    Tensor ip = pow(ints({2, 3}, {2}), Scalar(3));
    CHECK(ip.dtype() == DType::Int64);
    CHECK(to_vector<int64_t>(ip) == std::vector<int64_t>{8, 27});
  }

  TEST_CASE("exp log tanh sigmoid relu") {
    const std::vector<double> xs = {-2.0, -0.5, 0.0, 0.5, 2.0};
    Tensor x = f64(xs, {5});
    std::vector<double> e, t, s, r;
    for (double v : xs) {
      e.push_back(std::exp(v));
      t.push_back(std::tanh(v));
      s.push_back(sigmoid_ref(v));
      r.push_back(v > 0 ? v : 0.0);
    }
    check_values(exp(x), {5}, e);
    check_values(tanh(x), {5}, t);
    check_values(sigmoid(x), {5}, s);
    check_values(relu(x), {5}, r);
    check_values(log(f64({1, std::exp(1.0), 0.25}, {3})), {3}, {0, 1, std::log(0.25)});
    CHECK(std::isinf(values(log(f64({0}, {1})))[0]));

    // float32 agrees with double to float precision.
    Tensor x32 = f32({-2.0f, -0.5f, 0.0f, 0.5f, 2.0f}, {5});
    CHECK(tanh(x32).dtype() == DType::Float32);
    check_values(tanh(x32), {5}, t, 1e-6);
    check_values(sigmoid(x32), {5}, s, 1e-6);
    check_values(exp(x32), {5}, e, 1e-6);
    // Extreme inputs saturate rather than overflow to nan.
    check_values(tanh(f64({-50, 50}, {2})), {2}, {-1, 1});
    check_values(sigmoid(f64({-800, 800}, {2})), {2}, {0, 1});
  }

  TEST_CASE("expm1 is exp(x) - 1 without cancellation near 0") {
    // exp(1e-12) - 1 in double keeps only about 4 digits; expm1 keeps them all.
    Tensor x = f64({-2.0, -1e-12, 0.0, 1e-12, 0.5}, {5}, true);
    Tensor y = expm1(x);
    check_values(y, {5}, {std::expm1(-2.0), -1e-12, 0.0, 1e-12, std::expm1(0.5)});
    CHECK(values(y)[3] == std::expm1(1e-12));
    sum(y).backward();
    check_values(x.grad(), {5},
                 {std::exp(-2.0), std::exp(-1e-12), 1.0, std::exp(1e-12), std::exp(0.5)});
  }

  TEST_CASE("where and comparisons") {
    Tensor a = f64({1, 2, 3}, {3});
    Tensor b = f64({3, 2, 1}, {3});
    CHECK(bools(eq(a, b)) == std::vector<int64_t>{0, 1, 0});
    CHECK(bools(ne(a, b)) == std::vector<int64_t>{1, 0, 1});
    CHECK(bools(lt(a, b)) == std::vector<int64_t>{1, 0, 0});
    CHECK(bools(le(a, b)) == std::vector<int64_t>{1, 1, 0});
    CHECK(bools(gt(a, b)) == std::vector<int64_t>{0, 0, 1});
    CHECK(bools(ge(a, b)) == std::vector<int64_t>{0, 1, 1});
    check_values(where(gt(a, b), a, b), {3}, {3, 2, 3});
    // Broadcast condition and branches.
    Tensor cond = gt(f64({0, 1}, {2, 1}), full({}, Scalar(0.5), DType::Float64));
    check_values(where(cond, a, full({}, Scalar(-1.0), DType::Float64)), {2, 3},
                 {-1, -1, -1, 1, 2, 3});
  }

  TEST_CASE("sum and mean") {
    Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor all = sum(x);
    CHECK(all.ndim() == 0);
    CHECK(scalar_of(all) == 21);
    check_values(sum(x, {0}), {3}, {5, 7, 9});
    check_values(sum(x, {1}), {2}, {6, 15});
    check_values(sum(x, {-1}, true), {2, 1}, {6, 15});
    check_values(sum(x, {0, 1}, true), {1, 1}, {21});
    check_values(mean(x), {}, {3.5});
    check_values(mean(x, {0}), {3}, {2.5, 3.5, 4.5});
    check_values(mean(x, {1}, true), {2, 1}, {2, 5});
    // Reductions of views and of integers.
    check_values(sum(transpose(x, 0, 1), {1}), {3}, {5, 7, 9});
    check_values(sum(expand(f64({1, 2}, {2, 1}), {2, 5}), {1}), {2}, {5, 10});
    Tensor si = sum(ints({1, 2, 3}, {3}));
    CHECK(si.dtype() == DType::Int64);
    CHECK(si.item().to_int() == 6);
    // 3-d, middle dim.
    Tensor y = reshape(arange(Scalar(0), Scalar(24), Scalar(1), DType::Float64), {2, 3, 4});
    check_values(sum(y, {1}), {2, 4}, {12, 15, 18, 21, 48, 51, 54, 57});
    // A float32 sum of a million ones is exact (accumulated in double).
    CHECK(scalar_of(sum(ones({1000, 1000}))) == 1e6);
    // The empty sum is 0, the empty mean is nan (PyTorch).
    CHECK(scalar_of(sum(zeros({0, 3}, DType::Float64))) == 0.0);
    CHECK(std::isnan(scalar_of(mean(zeros({0}, DType::Float64)))));
  }

  TEST_CASE("sum_to reduces a broadcast shape") {
    Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    check_values(sum_to(g, {3}), {3}, {5, 7, 9});
    check_values(sum_to(g, {2, 1}), {2, 1}, {6, 15});
    check_values(sum_to(g, {1, 3}), {1, 3}, {5, 7, 9});
    check_values(sum_to(g, {}), {}, {21});
    CHECK(sum_to(g, {2, 3}).is_same(g));
  }

  TEST_CASE("matmul of matrices and vectors") {
    Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor b = f64({7, 8, 9, 10, 11, 12}, {3, 2});
    check_values(matmul(a, b), {2, 2}, {58, 64, 139, 154});
    Tensor v = f64({1, 0, -1}, {3});
    check_values(matmul(a, v), {2}, {-2, -2});
    check_values(matmul(f64({1, -1}, {2}), a), {3}, {-3, -3, -3});
    check_values(matmul(v, f64({4, 5, 6}, {3})), {}, {-2});
    // Views: transposed operands.
    check_values(matmul(transpose(b, 0, 1), transpose(a, 0, 1)), {2, 2}, {58, 139, 64, 154});
    // Empty inner dimension gives zeros.
    check_values(matmul(zeros({2, 0}, DType::Float64), zeros({0, 2}, DType::Float64)), {2, 2},
                 {0, 0, 0, 0});
  }

  TEST_CASE("matmul agrees with a naive loop on odd sizes") {
    const int64_t m = 37, k = 53, n = 29;
    manual_seed(7);
    for (DType dtype : {DType::Float32, DType::Float64}) {
      Tensor a = randn({m, k}, dtype), b = randn({k, n}, dtype);
      std::vector<double> av = values(a), bv = values(b), expected(static_cast<size_t>(m * n));
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < n; ++j) {
          double acc = 0.0;
          for (int64_t p = 0; p < k; ++p) acc += av[i * k + p] * bv[p * n + j];
          expected[static_cast<size_t>(i * n + j)] = acc;
        }
      Tensor c = matmul(a, b);
      CHECK(c.dtype() == dtype);
      check_values(c, {m, n}, expected, dtype == DType::Float32 ? 1e-4 : 1e-12);
    }
    Tensor i64 = matmul(ints({1, 2, 3, 4}, {2, 2}), ints({1, 0, 0, 1}, {2, 2}));
    CHECK(i64.dtype() == DType::Int64);
    CHECK(to_vector<int64_t>(i64) == std::vector<int64_t>{1, 2, 3, 4});
  }

  TEST_CASE("to_dtype and clone") {
    Tensor x = f64({1.25, -2.5}, {2});
    Tensor y = to_dtype(x, DType::Float32);
    CHECK(y.dtype() == DType::Float32);
    check_values(y, {2}, {1.25, -2.5});
    Tensor c = x.clone();
    CHECK(c.storage().get() != x.storage().get());
    check_values(c, {2}, {1.25, -2.5});
  }

  TEST_CASE("op registry lists every op") {
    std::set<std::string> differentiable, other;
    for (const OpInfo& info : op_names())
      (info.differentiable ? differentiable : other).insert(info.name);
    for (const char* name :
         {"add", "sub", "mul", "div", "neg", "pow", "pow_scalar", "exp", "log", "tanh", "sigmoid",
          "relu", "where", "to_dtype", "sum", "mm", "reshape", "permute", "expand"})
      CHECK_MESSAGE(differentiable.count(name) == 1, name);
    for (const char* name : {"eq", "ne", "lt", "le", "gt", "ge"})
      CHECK_MESSAGE(other.count(name) == 1, name);
  }
}

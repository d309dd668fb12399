// User errors are exceptions of the documented types, naming the op and the shapes.
#include <doctest/doctest.h>

#include <stdexcept>
#include <string>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

Tensor int_tensor() { return arange(Scalar(0), Scalar(4), Scalar(1), DType::Int64); }
Tensor bool_tensor() { return gt(f64({1, -1}, {2}), full({}, Scalar(0.0), DType::Float64)); }

template <typename F>
std::string message_of(F f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_SUITE("errors") {
  TEST_CASE("matmul shape mismatch is std::invalid_argument naming op and shapes") {
    Tensor a = zeros({3, 4}), b = zeros({5, 6});
    CHECK_THROWS_AS(matmul(a, b), std::invalid_argument);
    const std::string msg = message_of([&] { matmul(a, b); });
    CHECK(contains(msg, "[matmul]"));
    CHECK(contains(msg, "(3, 4)"));
    CHECK(contains(msg, "(5, 6)"));
    CHECK_THROWS_AS(matmul(zeros({3}), zeros({4})), std::invalid_argument);
    CHECK_THROWS_AS(matmul(zeros({2, 3}), zeros({2})), std::invalid_argument);
    CHECK_THROWS_AS(matmul(zeros({2}), zeros({3, 2})), std::invalid_argument);
    CHECK_THROWS_AS(matmul(zeros({2, 2, 3}), zeros({2, 2})), std::invalid_argument);
    CHECK_THROWS_AS(matmul(zeros({2, 2, 3}), zeros({4, 3, 2})), std::invalid_argument);
    CHECK_THROWS_AS(matmul(zeros({}), zeros({2})), std::invalid_argument);
  }

  TEST_CASE("other shape errors are std::invalid_argument") {
    CHECK_THROWS_AS(add(zeros({2, 3}), zeros({4})), std::invalid_argument);
    CHECK(contains(message_of([] { add(zeros({2, 3}), zeros({4})); }), "[add]"));
    CHECK_THROWS_AS(mul(zeros({2}), zeros({3})), std::invalid_argument);
    CHECK_THROWS_AS(where(bool_tensor(), zeros({2}), zeros({3})), std::invalid_argument);
    CHECK_THROWS_AS(reshape(zeros({2, 3}), {4}), std::invalid_argument);
    CHECK_THROWS_AS(reshape(zeros({2, 3}), {-1, -1}), std::invalid_argument);
    CHECK_THROWS_AS(reshape(zeros({2, 3}), {-1, 4}), std::invalid_argument);
    CHECK_THROWS_AS(reshape(zeros({2, 3}), {-2, 3}), std::invalid_argument);
    CHECK_THROWS_AS(expand(zeros({2, 3}), {3}), std::invalid_argument);
    CHECK_THROWS_AS(expand(zeros({2, 3}), {4, 3}), std::invalid_argument);
    CHECK_THROWS_AS(expand(zeros({3}), {-1, 3}), std::invalid_argument);
    CHECK_THROWS_AS(permute(zeros({2, 3}), {0}), std::invalid_argument);
    CHECK_THROWS_AS(permute(zeros({2, 3}), {1, 1}), std::invalid_argument);
    CHECK_THROWS_AS(sum(zeros({2, 3}), {1, 1}), std::invalid_argument);
    CHECK_THROWS_AS(Tensor::empty({-1}, DType::Float32), std::invalid_argument);
    CHECK_THROWS_AS(from_vector<double>({1, 2, 3}, {2, 2}), std::invalid_argument);
    CHECK_THROWS_AS(zeros({2}).item(), std::invalid_argument);
    CHECK_THROWS_AS(arange(Scalar(0), Scalar(3), Scalar(0), DType::Int64), std::invalid_argument);
    CHECK_THROWS_AS(arange(Scalar(0), Scalar(3), Scalar(-1), DType::Int64), std::invalid_argument);
    CHECK_THROWS_AS(eye(-1, 2), std::invalid_argument);
    CHECK_THROWS_AS(linspace(0, 1, -1), std::invalid_argument);
    CHECK_THROWS_AS(pow(int_tensor(), Scalar(-1)), std::invalid_argument);
    CHECK_THROWS_AS(add_scaled_(zeros({2}), zeros({2, 2}), 1.0), std::invalid_argument);
  }

  TEST_CASE("bad dims are std::out_of_range") {
    Tensor x = zeros({2, 3});
    CHECK_THROWS_AS(transpose(x, 0, 2), std::out_of_range);
    CHECK_THROWS_AS(transpose(x, -3, 0), std::out_of_range);
    CHECK_THROWS_AS(sum(x, {2}), std::out_of_range);
    CHECK_THROWS_AS(sum(x, {-3}), std::out_of_range);
    CHECK_THROWS_AS(mean(x, {5}), std::out_of_range);
    CHECK_THROWS_AS(permute(x, {0, 2}), std::out_of_range);
    CHECK_THROWS_AS(x.size(2), std::out_of_range);
    CHECK_THROWS_AS(x.stride(-3), std::out_of_range);
    CHECK(contains(message_of([&] { transpose(x, 0, 2); }), "[transpose]"));
    // A 0-d tensor accepts dims 0 and -1 only.
    Tensor s = zeros({});
    CHECK_NOTHROW(sum(s, {0}));
    CHECK_NOTHROW(sum(s, {-1}));
    CHECK_THROWS_AS(sum(s, {1}), std::out_of_range);
  }

  TEST_CASE("autograd misuse is std::runtime_error") {
    // Only floating point tensors can require gradients.
    Tensor i = int_tensor();
    CHECK_THROWS_AS(i.set_requires_grad(true), std::runtime_error);
    CHECK_FALSE(i.requires_grad());
    CHECK_NOTHROW(i.set_requires_grad(false));
    CHECK_THROWS_AS(bool_tensor().set_requires_grad(true), std::runtime_error);
    // Only leaves.
    Tensor x = f64({1, 2}, {2}, true);
    Tensor y = mul(x, 2.0);
    CHECK_THROWS_AS(y.set_requires_grad(false), std::runtime_error);
    // Backward of a tensor that needs no gradient, and of a non-scalar without a seed.
    CHECK_THROWS_AS(f64({1}, {1}).backward(), std::runtime_error);
    CHECK_THROWS_AS(y.backward(), std::runtime_error);
    CHECK_THROWS_AS(y.backward(f64({1, 2, 3}, {3})), std::invalid_argument);
    CHECK_THROWS_AS(grad({sum(y)}, {}), std::invalid_argument);
    CHECK_THROWS_AS(run_backward({}, {}, false, false), std::invalid_argument);
  }

  TEST_CASE("bprop::TypeError for bad dtypes") {
    static_assert(std::is_base_of<std::invalid_argument, TypeError>::value,
                  "TypeError is an invalid_argument");
    CHECK_THROWS_AS(matmul(zeros({2, 2}, DType::Float32), zeros({2, 2}, DType::Float64)),
                    TypeError);
    CHECK_THROWS_AS(matmul(bool_tensor(), bool_tensor()), TypeError);
    CHECK_THROWS_AS(where(int_tensor(), zeros({4}), zeros({4})), TypeError);
    CHECK_THROWS_AS(mean(int_tensor()), TypeError);
    CHECK_THROWS_AS(sub(bool_tensor(), bool_tensor()), TypeError);
    CHECK_THROWS_AS(neg(bool_tensor()), TypeError);
    CHECK_THROWS_AS(-bool_tensor(), TypeError);
    CHECK_THROWS_AS(relu(bool_tensor()), TypeError);
    CHECK_THROWS_AS(set_default_dtype(DType::Int64), TypeError);
    CHECK(default_dtype() == DType::Float32);
    CHECK_THROWS_AS(add_scaled_(int_tensor(), int_tensor(), 1.0), TypeError);
    Tensor x = f64({1, 2}, {2}, true);
    CHECK_THROWS_AS(x.set_grad(zeros({2}, DType::Float32)), TypeError);
    CHECK_THROWS_AS(x.set_grad(zeros({3}, DType::Float64)), std::invalid_argument);
    CHECK_THROWS_AS(mul(x, 2.0).backward(int_tensor()), std::invalid_argument);  // shape first
    CHECK_THROWS_AS(mul(x, 2.0).backward(arange(Scalar(0), Scalar(2), Scalar(1), DType::Int64)),
                    TypeError);
    CHECK_THROWS_AS(SGD({int_tensor()}, 0.1), TypeError);
  }

  TEST_CASE("SGD argument errors") {
    Tensor w = f64({1}, {1}, true);
    CHECK_THROWS_AS(SGD({w}, -0.1), std::invalid_argument);
    CHECK_THROWS_AS(SGD({}, 0.1), std::invalid_argument);
    CHECK_THROWS_AS(SGD({Tensor()}, 0.1), std::invalid_argument);
    CHECK_THROWS_AS(SGD({mul(w, 2.0)}, 0.1), std::invalid_argument);
    Tensor v = f64({2}, {1}, true);
    CHECK_THROWS_WITH_AS(
        SGD({w, v, w}, 0.1),
        "[SGD] parameter 2 is parameter 0 again: each parameter may be listed once",
        std::invalid_argument);
    CHECK_THROWS_AS(Adam({v, v}, AdamOptions{}), std::invalid_argument);
    SGD opt({w}, 0.1);
    CHECK_THROWS_AS(opt.set_lr(-1.0), std::invalid_argument);
    CHECK(opt.lr() == 0.1);
  }

  TEST_CASE("errors leave the graph usable") {
    Tensor x = f64({1, 2}, {2}, true);
    Tensor y = mul(x, 3.0);
    CHECK_THROWS_AS(matmul(y, zeros({3, 3}, DType::Float64)), std::invalid_argument);
    sum(y).backward();
    check_grad(x, {3, 3});
  }
}

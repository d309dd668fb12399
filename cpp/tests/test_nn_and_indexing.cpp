// Op families used from C++: indexing, reductions with indices, in-place rules,
// convolution against a direct loop, and the losses.
#include <cmath>
#include <stdexcept>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

TEST_SUITE("nn and indexing") {
  TEST_CASE("basic and advanced indexing, with gradients scattered back") {
    Tensor x = f64({0, 1, 2, 3, 4, 5}, {2, 3}, true);
    IndexItem row;
    row.kind = IndexItem::Kind::Int;
    row.index = -1;
    check_values(index(x, {row}), {3}, {3, 4, 5});
    IndexItem picks;
    picks.kind = IndexItem::Kind::Tensor;
    picks.tensor = from_vector<double>({2, 2, 0}, {3}).to(DType::Int64);
    IndexItem all;  // ':' then the picks along dim 1
    Tensor y = index(x, {all, picks});
    check_values(y, {2, 3}, {2, 2, 0, 5, 5, 3});
    sum(y).backward();
    check_grad(x, {1, 0, 2, 1, 0, 2});  // repeated indices accumulate
    row.index = 2;
    CHECK_THROWS_AS(index(x, {row}), std::out_of_range);
  }

  TEST_CASE("max along a dim gives the first index, and the gradient goes there") {
    Tensor x = f64({1, 3, 3, 2}, {4}, true);
    auto [value, where] = max(x, 0);
    CHECK(scalar_of(value) == 3.0);
    CHECK(where.item().to_int() == 1);
    value.backward();
    check_grad(x, {0, 1, 0, 0});
    x.set_grad(Tensor());
    amax(x).backward();  // ties share evenly
    check_grad(x, {0, 0.5, 0.5, 0});
  }

  TEST_CASE("conv2d matches a direct loop, stride and padding included") {
    Tensor input = f64({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
    Tensor weight = f64({1, 0, -1, 2}, {1, 1, 2, 2});
    Window2d window;
    window.stride_h = window.stride_w = 2;
    window.padding_h = window.padding_w = 1;
    Tensor out = conv2d(input, weight, Tensor(), window);
    // Output (3, 3): each position sums w * x over the 2x2 window at (2i - 1, 2j - 1).
    std::vector<double> expected;
    auto at = [&](int64_t r, int64_t c) {
      return r < 0 || r > 3 || c < 0 || c > 3 ? 0.0 : static_cast<double>(r * 4 + c + 1);
    };
    for (int64_t i = 0; i < 3; ++i)
      for (int64_t j = 0; j < 3; ++j) {
        const int64_t r = 2 * i - 1, c = 2 * j - 1;
        expected.push_back(1 * at(r, c) + 0 * at(r, c + 1) - 1 * at(r + 1, c) +
                           2 * at(r + 1, c + 1));
      }
    check_values(out, {1, 1, 3, 3}, expected);
  }

  TEST_CASE("cross_entropy is finite at logits of +-1000 and matches log-softmax") {
    Tensor logits = f64({1000, -1000, 0, 0, 1, 2}, {2, 3}, true);
    Tensor target = from_vector<double>({0, 2}, {2}).to(DType::Int64);
    Tensor loss = cross_entropy(logits, target);
    const double second = -(2 - std::log(std::exp(0.0) + std::exp(1.0) + std::exp(2.0)));
    CHECK(scalar_of(loss) == doctest::Approx((0.0 + second) / 2).epsilon(1e-12));
    loss.backward();
    for (double g : values(logits.grad())) CHECK(std::isfinite(g));
    Tensor bad = from_vector<double>({0, 3}, {2}).to(DType::Int64);
    CHECK_THROWS_AS(cross_entropy(logits, bad), std::out_of_range);
  }

  TEST_CASE("in-place: leaf refused, non-leaf rebased, saved tensors checked") {
    Tensor x = f64({1, 2}, {2}, true);
    CHECK_THROWS_AS(mul_(x, Tensor::wrapped_scalar(Scalar(2.0))), std::runtime_error);
    Tensor y = mul(x, 2.0);
    mul_(y, Tensor::wrapped_scalar(Scalar(3.0)));
    sum(y).backward();
    check_grad(x, {6, 6});
    Tensor z = mul(x, 1.0);
    Tensor w = tanh(z);  // saves its output
    add_(w, Tensor::wrapped_scalar(Scalar(1.0)));
    std::string message;
    try {
      sum(w).backward();
    } catch (const std::runtime_error& e) {
      message = e.what();
    }
    CHECK(contains(message, "TanhBackward0"));
    CHECK(contains(message, "version"));
  }
}

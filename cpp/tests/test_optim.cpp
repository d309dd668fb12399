// SGD: the update rule w := w - lr dL/dw, and the lecture's networks trained with it.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

// The lecture's network: 3 inputs, 2 hidden tanh units, 1 output, no biases.
//   A = X W1,  Z = tanh(A),  y_hat = Z W2,  L = mean((y_hat - y)^2)
struct TanhNet {
  Tensor w1;  // (3, 2): w1[j, i] = w_{ji}^{(1)}, from input j to hidden unit i
  Tensor w2;  // (2, 1): w2[i, 0] = w_i^{(2)}

  Tensor forward(const Tensor& x) const { return matmul(tanh(matmul(x, w1)), w2); }
  Tensor loss(const Tensor& x, const Tensor& y) const {
    return mean(pow(sub(forward(x), y), Scalar(2.0)));
  }
};

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("SGD step: w := w - lr times grad in place and outside autograd") {
    Tensor w = f64({1, 2, 3}, {3}, true);
    Tensor untouched = f64({5}, {1}, true);
    SGD opt({w, untouched}, 0.1);
    CHECK(opt.params().size() == 2);
    CHECK(opt.lr() == 0.1);
    const auto storage = w.storage();
    const uint64_t version = w.storage()->version();
    w.set_grad(f64({0.5, -1, 2}, {3}));
    opt.step();
    check_values(w, {3}, {0.95, 2.1, 2.8});
    check_values(untouched, {1}, {5});          // no gradient: skipped
    CHECK(w.storage().get() == storage.get());  // in place
    CHECK(w.storage()->version() == version + 1);
    CHECK(w.is_leaf());
    CHECK(w.requires_grad());
    CHECK(w.grad_fn().get() == nullptr);

    opt.set_lr(1.0);
    opt.step();
    check_values(w, {3}, {0.45, 3.1, 0.8});

    opt.zero_grad(/*set_to_none=*/false);
    REQUIRE(w.grad().defined());
    check_grad(w, {0, 0, 0});
    opt.zero_grad();
    CHECK_FALSE(w.grad().defined());
    opt.step();  // nothing to do
    check_values(w, {3}, {0.45, 3.1, 0.8});

    // float32 parameters, and lr = 0.
    Tensor v = f32({1.0f, -1.0f}, {2}, true);
    SGD zero_lr({v}, 0.0);
    sum(mul(v, v)).backward();
    zero_lr.step();
    check_values(v, {2}, {1, -1});
    SGD opt32({v}, 0.25);
    opt32.step();
    check_values(v, {2}, {0.5, -0.5});
  }

  TEST_CASE("a fresh forward after a step sees the new weights") {
    // One step of the lecture's single neuron: y_hat = x^T w, L = (y_hat - y)^2,
    // dL/dw = 2 (y_hat - y) x.
    Tensor x = f64({1, 2, 3}, {1, 3});
    Tensor w = f64({0.1, 0.2, 0.3}, {3, 1}, true);
    SGD opt({w}, 0.01);
    Tensor loss = sum(pow(sub(matmul(x, w), 2.0), Scalar(2.0)));
    const double y_hat = 0.1 + 0.4 + 0.9, delta = y_hat - 2.0;
    CHECK(scalar_of(loss) == doctest::Approx(delta * delta));
    loss.backward();
    check_grad(w, {2 * delta * 1, 2 * delta * 2, 2 * delta * 3});
    opt.step();
    check_values(w, {3, 1}, {0.1 - 0.02 * delta, 0.2 - 0.04 * delta, 0.3 - 0.06 * delta});
    // The old graph saved w, which the step modified: backward through it again is an error.
    CHECK_THROWS_AS(loss.backward(), std::runtime_error);
    opt.zero_grad();
    Tensor loss2 = sum(pow(sub(matmul(x, w), 2.0), Scalar(2.0)));
    CHECK(scalar_of(loss2) < scalar_of(loss));
  }

  TEST_CASE("lecture tanh network: gradients match the lecture's formulas") {
    const std::vector<double> xv = {0.5, -1.0, 2.0};
    const double y = 0.7, lr = 0.1;
    TanhNet net{f64({0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, {3, 2}, true),
                f64({0.8, -0.9}, {2, 1}, true)};
    const std::vector<double> w1 = values(net.w1), w2 = values(net.w2);

    Tensor x = f64(xv, {1, 3});
    Tensor loss = net.loss(x, f64({y}, {1, 1}));
    loss.backward();

    // The lecture, by hand: a_i = sum_j w_ji x_j, z_i = tanh(a_i), y_hat = sum_i w_i z_i.
    double a[2], z[2], y_hat = 0.0;
    for (int i = 0; i < 2; ++i) {
      a[i] = 0.0;
      for (int j = 0; j < 3; ++j) a[i] += w1[j * 2 + i] * xv[j];
      z[i] = std::tanh(a[i]);
      y_hat += w2[i] * z[i];
    }
    const double delta = y_hat - y;
    CHECK(scalar_of(loss) == doctest::Approx(delta * delta).epsilon(1e-12));
    // dL/dw_i^(2) = 2 delta z_i
    check_grad(net.w2, {2 * delta * z[0], 2 * delta * z[1]});
    // dL/dw_ji^(1) = 2 delta w_i^(2) (1 - tanh^2(a_i)) x_j = 2 delta_i x_j
    std::vector<double> g1(6);
    for (int j = 0; j < 3; ++j)
      for (int i = 0; i < 2; ++i) g1[j * 2 + i] = 2 * delta * w2[i] * (1 - z[i] * z[i]) * xv[j];
    check_grad(net.w1, g1);

    // And the update w := w - eta dL/dw.
    SGD opt({net.w1, net.w2}, lr);
    opt.step();
    check_values(net.w2, {2, 1}, {w2[0] - lr * 2 * delta * z[0], w2[1] - lr * 2 * delta * z[1]});
    std::vector<double> w1_new(6);
    for (size_t k = 0; k < 6; ++k) w1_new[k] = w1[k] - lr * g1[k];
    check_values(net.w1, {3, 2}, w1_new);
  }

  TEST_CASE("lecture tanh network: SGD training lowers the loss") {
    manual_seed(2024);
    // Targets from a teacher network of the same shape, so the loss can approach 0.
    const TanhNet teacher{f64({1.0, -0.5, 0.5, 1.5, -1.0, 0.25}, {3, 2}), f64({1.2, -0.8}, {2, 1})};
    Tensor x = randn({32, 3}, DType::Float64);
    Tensor y;
    {
      NoGradGuard no_grad;
      y = teacher.forward(x);
    }
    TanhNet net{mul(randn({3, 2}, DType::Float64), 0.5).detach().set_requires_grad(true),
                mul(randn({2, 1}, DType::Float64), 0.5).detach().set_requires_grad(true)};
    CHECK(net.w1.is_leaf());
    SGD opt({net.w1, net.w2}, 0.1);

    std::vector<double> losses;
    for (int step = 0; step < 500; ++step) {
      Tensor loss = net.loss(x, y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      losses.push_back(scalar_of(loss));
    }
    MESSAGE("tanh net loss: " << losses.front() << " -> " << losses.back());
    for (double l : losses) REQUIRE(std::isfinite(l));
    CHECK(losses.back() < 0.05 * losses.front());
    // Falling: each block of 100 steps ends lower than it started.
    for (size_t s = 100; s < losses.size(); s += 100) CHECK(losses[s] < losses[s - 100]);
  }

  TEST_CASE("lecture single neuron trained in float32") {
    // y = x^T w_true, learnt from zeros by full-batch SGD, the bprop.h example.
    Tensor x = f32({1, 2, 3, -1, 0.5f, 1, 0, -1.5f, 0.5f, 2, 1, -1}, {4, 3});
    Tensor w_true = f32({0.5f, -1.0f, 2.0f}, {3, 1});
    Tensor y = matmul(x, w_true);
    Tensor w = zeros({3, 1}).set_requires_grad(true);
    SGD opt({w}, 0.05);
    double first = 0.0, last = 0.0;
    for (int step = 0; step < 400; ++step) {
      Tensor loss = mean(pow(matmul(x, w) - y, Scalar(2.0)));
      CHECK(loss.dtype() == DType::Float32);
      opt.zero_grad();
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = scalar_of(loss);
    }
    CHECK(last < 1e-6 * first);
    check_values(w, {3, 1}, {0.5, -1.0, 2.0}, 1e-3);
  }
}

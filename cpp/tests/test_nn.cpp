// bprop::nn modules and the bprop::optim names, used as a C++ app would.
#include <cmath>
#include <stdexcept>
#include <vector>

#include "bprop/bprop.h"
#include "doctest/doctest.h"

using namespace bprop;

TEST_SUITE("nn") {
  TEST_CASE("Linear has PyTorch's shapes, init bounds and math") {
    manual_seed(3);
    nn::Linear layer(4, 3);
    CHECK(layer.weight().shape() == Shape{3, 4});
    CHECK(layer.bias().shape() == Shape{3});
    CHECK(layer.weight().requires_grad());
    CHECK(layer.parameters().size() == 2);
    const std::vector<float> w = to_vector<float>(layer.weight());
    for (float v : w) CHECK(std::fabs(v) <= 0.5f);  // 1 / sqrt(4)
    CHECK(std::fabs(w[0] - w[1]) > 0.0f);           // actually random

    Tensor x = from_vector<float>({1, 2, 3, 4, -1, 0, 2, 1}, {2, 4});
    const std::vector<float> y = to_vector<float>(layer(x));
    const std::vector<float> b = to_vector<float>(layer.bias());
    const std::vector<float> xs = to_vector<float>(x);
    for (int i = 0; i < 2; ++i)
      for (int o = 0; o < 3; ++o) {
        double expected = b[o];
        for (int k = 0; k < 4; ++k) expected += xs[i * 4 + k] * w[o * 4 + k];
        CHECK(y[i * 3 + o] == doctest::Approx(expected).epsilon(1e-5));
      }
    CHECK(layer.name() == "Linear(in_features=4, out_features=3, bias=True)");
    CHECK(nn::Linear(4, 3, false).parameters().size() == 1);
    CHECK(nn::Linear(2, 2, true, DType::Float64).weight().dtype() == DType::Float64);
  }

  TEST_CASE("Linear rejects bad sizes, dtypes and inputs with the op's name") {
    CHECK_THROWS_WITH_AS(nn::Linear(0, 3), doctest::Contains("[Linear]"), std::invalid_argument);
    CHECK_THROWS_WITH_AS(nn::Linear(2, 3, true, DType::Int64), doctest::Contains("int64"),
                         std::invalid_argument);
    nn::Linear layer(4, 3);
    CHECK_THROWS_WITH_AS(layer(zeros({2, 5})), doctest::Contains("(2, 5)"), std::invalid_argument);
    CHECK_THROWS_AS(layer(Tensor()), std::invalid_argument);
  }

  TEST_CASE("Sequential composes, shares parameters with its parts, and indexes checked") {
    manual_seed(0);
    nn::Linear first(2, 8);
    nn::Sequential net(first, nn::Tanh(), nn::Linear(8, 1), nn::Sigmoid());
    CHECK(net.size() == 4);
    CHECK(net.parameters().size() == 4);
    CHECK(net.parameters()[0].is_same(first.weight()));  // a copy shares, like Tensor
    CHECK(net.name().rfind("Sequential(Linear(in_features=2, out_features=8", 0) == 0);
    CHECK(net[1].name() == "Tanh()");
    CHECK_THROWS_AS(net[4], std::out_of_range);
    CHECK_THROWS_AS(net.push_back(std::shared_ptr<nn::Module>()), std::invalid_argument);

    Tensor out = net(from_vector<float>({0.5f, -0.5f}, {1, 2}));
    CHECK(out.shape() == Shape{1, 1});
    const float value = to_vector<float>(out)[0];
    CHECK(value > 0.0f);
    CHECK(value < 1.0f);
    net.push_back(nn::ReLU());
    CHECK(net.size() == 5);

    nn::Sequential copy(net);  // a copy, not a Sequential wrapping it; parameters shared
    CHECK(copy.size() == 5);
    CHECK(copy.parameters()[0].is_same(first.weight()));
    nn::Sequential outer;
    outer.push_back(net);  // nesting is explicit
    CHECK(outer.size() == 1);
    CHECK(outer.parameters().size() == 4);
  }

  TEST_CASE("bprop::optim::SGD trains a Sequential on XOR") {
    manual_seed(0);
    nn::Sequential net(nn::Linear(2, 8), nn::Tanh(), nn::Linear(8, 1));
    optim::SGD opt(net.parameters(), optim::SGDOptions{0.1, 0.9});
    const Tensor x = from_vector<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
    const Tensor y = from_vector<float>({0, 1, 1, 0}, {4, 1});
    double first = 0, last = 0;
    for (int step = 0; step < 300; ++step) {
      Tensor loss = mse_loss(net(x), y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      (step == 0 ? first : last) = loss.item().to_double();
    }
    CHECK(first > 0.1);
    CHECK(last < 1e-3);
    optim::Adam adam(net.parameters(), optim::AdamOptions{});
    CHECK_NOTHROW(adam.zero_grad());
  }
}

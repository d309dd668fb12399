// Checkpoints and Adam from C++: what a native app uses without Python.
#include <cstdio>
#include <fstream>
#include <stdexcept>
#include <string>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

TEST_SUITE("io and adam") {
  TEST_CASE("safetensors round trip keeps names, dtypes, shapes and values") {
    const std::string path = "bprop_test_roundtrip.safetensors";
    Tensor w = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor strided = transpose(w, 0, 1);
    Tensor flags = gt(f64({1, -1}, {2}), Tensor::wrapped_scalar(Scalar(0.0)));
    save_safetensors(path, {{"w", w}, {"wt", strided}, {"flags", flags}}, {{"epoch", "3"}});
    SafetensorsFile file = load_safetensors(path);
    std::remove(path.c_str());
    REQUIRE(file.tensors.size() == 3);
    CHECK(file.tensors[0].first == "w");
    check_values(file.tensors[1].second, {3, 2}, {1, 4, 2, 5, 3, 6});
    CHECK(file.tensors[2].second.dtype() == DType::Bool);
    CHECK(file.metadata.at("epoch") == "3");
  }

  TEST_CASE("malformed bytes raise std::invalid_argument, never crash") {
    std::string good;
    {
      const std::string path = "bprop_test_good.safetensors";
      save_safetensors(path, {{"a", f64({1, 2}, {2})}});
      std::ifstream in(path, std::ios::binary);
      good.assign(std::istreambuf_iterator<char>(in), {});
      std::remove(path.c_str());
    }
    CHECK_NOTHROW(parse_safetensors(good, "good"));
    for (size_t cut = 0; cut < good.size(); ++cut)
      CHECK_THROWS_AS(parse_safetensors(good.substr(0, cut), "cut"), std::invalid_argument);
    std::string flipped = good;
    flipped[3] = '\x7f';  // a header length far beyond the file
    CHECK_THROWS_AS(parse_safetensors(flipped, "flipped"), std::invalid_argument);
  }

  TEST_CASE("Adam's first step follows its definition") {
    Tensor w = f64({2.0}, {1}, true);
    Adam adam({w}, AdamOptions{0.1});
    sum(mul(w, w)).backward();  // g = 4: m_hat = 4, v_hat = 16
    adam.step();
    CHECK(scalar_of(w) == doctest::Approx(2.0 - 0.1 * 4.0 / (4.0 + 1e-8)).epsilon(1e-14));
    CHECK(adam.step_count(0) == 1);
    CHECK_THROWS_AS(Adam({f64({1.0}, {1}, true)}, AdamOptions{0.1, 1.0}), std::invalid_argument);
  }
}

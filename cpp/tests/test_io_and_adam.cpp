// Checkpoints and Adam from C++: what a native app uses without Python.
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

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

  TEST_CASE("safetensors save is atomic: mode kept, no temporaries, failures change nothing") {
    namespace fs = std::filesystem;
    const fs::path folder =
        fs::temp_directory_path() / ("bprop_test_save_" + std::to_string(::getpid()));
    fs::remove_all(folder);
    fs::create_directory(folder);
    const std::string path = (folder / "m.safetensors").string();
    {
      std::ofstream(path) << "old";
    }
    fs::permissions(path, fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read);
    // A symlink where the old writer put its temporary is never written through.
    fs::create_symlink(folder / "victim", path + ".tmp");
    save_safetensors(path, {{"a", f64({1, 2}, {2})}});
    CHECK(!fs::exists(folder / "victim"));
    CHECK((fs::status(path).permissions() & fs::perms::all) ==
          (fs::perms::owner_read | fs::perms::owner_write | fs::perms::group_read));
    check_values(load_safetensors(path).tensors[0].second, {2}, {1, 2});
    std::ifstream in(path, std::ios::binary);
    const std::string bytes((std::istreambuf_iterator<char>(in)), {});
    // Failures: a NUL in the path, a missing directory, a directory as the target.
    CHECK_THROWS_WITH_AS(save_safetensors(path + std::string(1, '\0') + "x", {}),
                         "[save] the path contains a NUL character", std::invalid_argument);
    CHECK_THROWS_WITH_AS(load_safetensors(path + std::string(1, '\0') + "x"),
                         "[load] the path contains a NUL character", std::invalid_argument);
    CHECK_THROWS_AS(save_safetensors((folder / "missing" / "m").string(), {}), std::system_error);
    fs::create_directory(folder / "d");
    try {
      save_safetensors((folder / "d").string(), {{"a", f64({3}, {1})}});
      FAIL("saving over a directory succeeded");
    } catch (const std::system_error& e) {
      CHECK(e.code().value() == EISDIR);
      CHECK(std::string(e.what()).rfind("[save] ", 0) == 0);
    }
    std::ifstream again(path, std::ios::binary);
    CHECK(std::string((std::istreambuf_iterator<char>(again)), {}) == bytes);
    std::vector<std::string> names;
    for (const auto& entry : fs::directory_iterator(folder))
      names.push_back(entry.path().filename().string());
    std::sort(names.begin(), names.end());
    CHECK(names == std::vector<std::string>{"d", "m.safetensors", "m.safetensors.tmp"});
    fs::remove_all(folder);
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

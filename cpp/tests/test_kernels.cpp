// Kernel correctness: GEMM against a float64 reference for many sizes, transposes and strides,
// on whichever instruction set path is active (CTest runs this file once per path with
// BPROP_ISA set); results independent of the thread count; a working pool after fork().
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

std::vector<double> random_values(int64_t n, std::mt19937_64& rng) {
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<size_t>(n));
  for (double& x : v) x = normal(rng);
  return v;
}

// The product of a (m, k) and b (k, n) as float64, whatever their layouts.
std::vector<double> reference_matmul(const Tensor& a, const Tensor& b) {
  std::vector<double> av = to_vector<double>(a), bv = to_vector<double>(b);
  const int64_t m = a.shape()[0], k = a.shape()[1], n = b.shape()[1];
  std::vector<double> c(static_cast<size_t>(m * n), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t p = 0; p < k; ++p)
      for (int64_t j = 0; j < n; ++j) c[i * n + j] += av[i * k + p] * bv[p * n + j];
  return c;
}

// A (rows, cols) operand in one of four layouts: row-major, transposed view, a view with a
// step of 2 in both dims, or a view of a wider buffer.
Tensor make_operand(int64_t rows, int64_t cols, int layout, DType dtype, std::mt19937_64& rng) {
  switch (layout) {
    case 0:
      return from_vector<double>(random_values(rows * cols, rng), {rows, cols}).to(dtype);
    case 1:
      return transpose(from_vector<double>(random_values(rows * cols, rng), {cols, rows}).to(dtype),
                       0, 1);
    case 2: {
      Tensor big =
          from_vector<double>(random_values(4 * rows * cols, rng), {2 * rows, 2 * cols}).to(dtype);
      return slice(slice(big, 0, 1, 2, rows), 1, 0, 2, cols);
    }
    default: {
      Tensor wide =
          from_vector<double>(random_values(rows * (cols + 3), rng), {rows, cols + 3}).to(dtype);
      return slice(wide, 1, 2, 1, cols);
    }
  }
}

void check_product(int64_t m, int64_t n, int64_t k, int layout_a, int layout_b, DType dtype,
                   std::mt19937_64& rng) {
  Tensor a = make_operand(m, k, layout_a, dtype, rng);
  Tensor b = make_operand(k, n, layout_b, dtype, rng);
  std::vector<double> expected = reference_matmul(a, b);
  std::vector<double> got = to_vector<double>(mm(a, b));
  const double eps = dtype == DType::Float32 ? 1e-6 : 1e-14;
  double worst = 0.0;
  for (size_t i = 0; i < expected.size(); ++i)
    worst = std::fmax(worst, std::fabs(got[i] - expected[i]) /
                                 (std::sqrt(static_cast<double>(k)) + std::fabs(expected[i])));
  CHECK_MESSAGE(worst <= 8 * eps, "m=" << m << " n=" << n << " k=" << k << " layouts " << layout_a
                                       << "," << layout_b << " worst relative error " << worst);
}

}  // namespace

TEST_SUITE("kernels") {
  TEST_CASE("gemm matches a float64 reference: sizes 1..300, primes, every layout") {
    std::mt19937_64 rng(7);
    const int64_t sizes[] = {1,  2,  3,  5,  7,   13,  16,  31,  32,
                             33, 61, 64, 97, 127, 128, 131, 257, 300};
    std::uniform_int_distribution<int> pick(0, static_cast<int>(std::size(sizes)) - 1);
    for (DType dtype : {DType::Float32, DType::Float64})
      for (int layout_a = 0; layout_a < 4; ++layout_a)
        for (int layout_b = 0; layout_b < 4; ++layout_b)
          for (int trial = 0; trial < 6; ++trial)
            check_product(sizes[pick(rng)], sizes[pick(rng)], sizes[pick(rng)], layout_a, layout_b,
                          dtype, rng);
    // Shapes of an MLP step and its backward transposes.
    check_product(64, 128, 784, 0, 0, DType::Float32, rng);
    check_product(784, 128, 64, 1, 0, DType::Float32, rng);
    check_product(64, 784, 128, 0, 1, DType::Float32, rng);
  }

  TEST_CASE("gemm gives the same bits with 1 and 2 threads") {
    std::mt19937_64 rng(11);
    Tensor a = from_vector<double>(random_values(300 * 257, rng), {300, 257}).to(DType::Float32);
    Tensor b = from_vector<double>(random_values(257 * 301, rng), {257, 301}).to(DType::Float32);
    const int before = get_num_threads();
    set_num_threads(1);
    std::vector<float> one = to_vector<float>(mm(a, b));
    set_num_threads(2);
    std::vector<float> two = to_vector<float>(mm(a, b));
    set_num_threads(before);
    CHECK(std::memcmp(one.data(), two.data(), one.size() * sizeof(float)) == 0);
  }

  TEST_CASE("the thread pool works in a child process after fork") {
    set_num_threads(2);
    Tensor a = ones({256, 256});
    mm(a, a);  // the pool exists before the fork
    const pid_t child = fork();
    REQUIRE(child >= 0);
    if (child == 0) {
      Tensor c = mm(a, a);
      _exit(to_vector<float>(c)[0] == 256.0f ? 0 : 1);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
  }

  TEST_CASE("set_num_threads rejects nonsense") {
    CHECK_THROWS_AS(set_num_threads(0), std::invalid_argument);
    CHECK(get_num_threads() >= 1);
  }
}

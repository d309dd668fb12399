// Kernel correctness: GEMM against a float64 reference for many sizes, transposes and strides,
// on whichever instruction set path is active (CTest runs this file once per path with
// BPROP_ISA set); results independent of the thread count; a working pool after fork().
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernels/kernels.h"
#include "kernels/vector_kernels.h"
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

// Distance in units in the last place between two floats (0 for two NaNs).
int64_t ulp_distance(float a, float b) {
  if (std::isnan(a) || std::isnan(b)) return std::isnan(a) && std::isnan(b) ? 0 : INT32_MAX;
  if (a == b) return 0;
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0) ia = INT32_MIN - ia;  // order the bit patterns like the values
  if (ib < 0) ib = INT32_MIN - ib;
  return std::llabs(static_cast<int64_t>(ia) - ib);
}

}  // namespace

TEST_SUITE("kernels") {
  TEST_CASE("float32 exp, log, tanh, sigmoid are within 4 ULP over the whole float range") {
    // Every 257th bit pattern (16.7 million floats: all signs, exponents and subnormals),
    // plus the edges: infinities, NaN, zeros, the overflow and underflow thresholds.
    std::vector<float> inputs;
    for (uint64_t bits = 0; bits < (uint64_t{1} << 32); bits += 257) {
      const uint32_t u = static_cast<uint32_t>(bits);
      float f;
      std::memcpy(&f, &u, 4);
      inputs.push_back(f);
    }
    for (float f : {INFINITY, -INFINITY, NAN, 0.0f, -0.0f, 88.7228394f, 88.72284f, -87.33655f,
                    -103.972084f, -103.97209f, 1e-45f, -1e-45f, 1.17549435e-38f, 9.1f, 0.625f})
      inputs.push_back(f);
    Tensor x = from_vector<float>(inputs, {static_cast<int64_t>(inputs.size())});
    struct Case {
      const char* name;
      Tensor (*op)(const Tensor&);
      double (*reference)(double);
    };
    const Case cases[] = {
        {"exp", &bprop::exp, [](double v) { return std::exp(v); }},
        {"log", &bprop::log, [](double v) { return std::log(v); }},
        {"tanh", &bprop::tanh, [](double v) { return std::tanh(v); }},
        {"sigmoid", &bprop::sigmoid, [](double v) { return 1.0 / (1.0 + std::exp(-v)); }},
    };
    for (const Case& c : cases) {
      std::vector<float> got = to_vector<float>(c.op(x));
      int64_t worst = 0;
      float worst_at = 0.0f;
      for (size_t i = 0; i < inputs.size(); ++i) {
        const float expected = static_cast<float>(c.reference(static_cast<double>(inputs[i])));
        const int64_t distance = ulp_distance(got[i], expected);
        if (distance > worst) {
          worst = distance;
          worst_at = inputs[i];
        }
      }
      CHECK_MESSAGE(worst <= 4, c.name << " is " << worst << " ULP off at " << worst_at);
    }
  }

  TEST_CASE("attention's row helpers: max of x * scale, e^(x scale - shift) and its sum") {
    const kernels::VectorKernels& vk = kernels::vector_kernels();
    std::mt19937_64 rng(5);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (int64_t n = 0; n <= 70; ++n) {
      std::vector<float> x(static_cast<size_t>(n) + 1);
      for (float& v : x) v = normal(rng);
      const float sentinel = x[static_cast<size_t>(n)];
      const float scale = 0.37f;
      float want_max = -INFINITY;
      for (int64_t i = 0; i < n; ++i) want_max = std::max(want_max, x[i] * scale);
      CHECK(vk.scaled_max_f32(x.data(), n, scale) == want_max);
      const float shift = n > 0 ? want_max : 0.0f;
      std::vector<double> want(static_cast<size_t>(n));
      double want_sum = 0.0;
      for (int64_t i = 0; i < n; ++i)
        want_sum += want[i] = std::exp(static_cast<double>(x[i]) * scale - shift);
      // Into another buffer (cross_entropy's way; x unchanged), then in place (attention's).
      const std::vector<float> before = x;
      std::vector<float> out(x.size(), sentinel);
      const float sum_apart = vk.exp_scaled_sum_f32(x.data(), out.data(), n, scale, shift);
      CHECK(x == before);
      const float got_sum = vk.exp_scaled_sum_f32(x.data(), x.data(), n, scale, shift);
      CHECK(sum_apart == got_sum);
      for (int64_t i = 0; i < n; ++i) {
        CHECK(std::fabs(x[i] - want[i]) <= 2e-6 * want[i] + 1e-30);
        CHECK(out[i] == x[i]);
      }
      CHECK(std::fabs(got_sum - want_sum) <= 1e-5 * want_sum);
      CHECK(x[static_cast<size_t>(n)] == sentinel);  // nothing written past n
      CHECK(out[static_cast<size_t>(n)] == sentinel);
    }
  }

  TEST_CASE("float32 sums of 10 million values stay close to the float64 sum") {
    std::mt19937_64 rng(3);
    std::uniform_real_distribution<double> uniform(0.0, 1.0);
    std::vector<float> values(10'000'000);
    double exact = 0.0;
    for (float& v : values) {
      v = static_cast<float>(uniform(rng));
      exact += v;
    }
    Tensor x = from_vector<float>(values, {static_cast<int64_t>(values.size())});
    const double got = sum(x).item().to_double();
    CHECK(std::fabs(got - exact) / exact < 1e-6);
    Tensor rows = reshape(x, {1000, 10000});  // the per-row path
    std::vector<double> row_sums = to_vector<double>(sum(rows, {1}));
    double row_total = 0.0;
    for (double r : row_sums) row_total += r;
    CHECK(std::fabs(row_total - exact) / exact < 1e-6);
  }

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

  TEST_CASE("every candidate micro-kernel gives the reference's values and the same bits") {
    // Note [GEMM micro-kernel choice]: the choice changes the speed, never a bit.
    std::mt19937_64 rng(13);
    const int64_t shapes[][3] = {{1, 1, 300},  {13, 7, 5},     {64, 64, 64},   {97, 131, 61},
                                 {5, 257, 33}, {300, 70, 200}, {64, 784, 128}, {33, 600, 529}};
    for (DType dtype : {DType::Float32, DType::Float64}) {
      const std::vector<std::string> names = bprop::kernels::gemm_kernel_names(dtype);
      REQUIRE(!names.empty());
      for (const auto& shape : shapes)
        for (int layout_a = 0; layout_a < 4; ++layout_a)
          for (int layout_b = 0; layout_b < 4; ++layout_b) {
            Tensor a = make_operand(shape[0], shape[2], layout_a, dtype, rng);
            Tensor b = make_operand(shape[2], shape[1], layout_b, dtype, rng);
            std::vector<double> first;
            for (const std::string& name : names) {
              bprop::kernels::set_gemm_kernel(dtype, name);
              std::vector<double> got = to_vector<double>(mm(a, b));
              if (first.empty()) first = got;
              CHECK_MESSAGE(std::memcmp(got.data(), first.data(), got.size() * sizeof(double)) == 0,
                            name << " differs from " << names[0] << " at m=" << shape[0]
                                 << " n=" << shape[1] << " k=" << shape[2] << " layouts "
                                 << layout_a << "," << layout_b);
            }
            bprop::kernels::set_gemm_kernel(dtype, "");
          }
      for (const std::string& name : names) {
        bprop::kernels::set_gemm_kernel(dtype, name);
        for (int layout_a = 0; layout_a < 4; ++layout_a)
          for (int layout_b = 0; layout_b < 4; ++layout_b)
            check_product(37, 45, 301, layout_a, layout_b, dtype, rng);
      }
      bprop::kernels::set_gemm_kernel(dtype, "");
    }
    CHECK_THROWS_AS(bprop::kernels::set_gemm_kernel(DType::Float32, "avx512-99x1"),
                    std::invalid_argument);
    CHECK_THROWS_AS(bprop::kernels::set_gemm_kernel(DType::Int64, ""), std::invalid_argument);
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

  TEST_CASE("gemm_with_options: triangular A or C, accumulate, the full product's bits") {
    // kernels.h's GemmOptions: skipped terms are zeros of A, skipped elements of C unwanted; each
    // wanted element is the plain product's, plus C's old value when accumulating.
    using Triangle = bprop::kernels::GemmOptions::Triangle;
    std::mt19937_64 rng(17);
    const int64_t kc = bprop::kernels::gemm_blocking(DType::Float32).kc;
    const int64_t shapes[][3] = {{64, 64, 32}, {70, 45, 81},   {13, 200, 17},
                                 {5, 7, 3},    {300, 64, 400}, {64, 300, 400}};
    const int before = get_num_threads();
    for (const auto& shape : shapes)
      for (Triangle triangle :
           {Triangle::None, Triangle::ALower, Triangle::AUpper, Triangle::CLower})
        for (int64_t diagonal : {-9, 0, 5, 1000})
          for (bool column_major_a : {false, true})
            for (bool accumulate : {false, true})
              for (int threads : {1, 2}) {
                const int64_t m = shape[0], n = shape[1], k = shape[2];
                set_num_threads(threads);
                std::vector<float> a(m * k), b(k * n), old_c(m * n);
                std::normal_distribution<float> normal;
                for (float& x : b) x = normal(rng);
                for (float& x : old_c) x = normal(rng);
                const int64_t rsa = column_major_a ? 1 : k, csa = column_major_a ? m : 1;
                for (int64_t i = 0; i < m; ++i)
                  for (int64_t p = 0; p < k; ++p) {
                    const bool zero = (triangle == Triangle::ALower && p > i + diagonal) ||
                                      (triangle == Triangle::AUpper && p < i + diagonal);
                    a[i * rsa + p * csa] = zero ? 0.0f : normal(rng);
                  }
                std::vector<float> plain(m * n), got = old_c;
                bprop::kernels::gemm(DType::Float32, m, n, k, a.data(), rsa, csa, b.data(), n, 1,
                                     plain.data(), n);
                bprop::kernels::GemmOptions options;
                options.triangle = triangle;
                options.diagonal = diagonal;
                options.accumulate = accumulate;
                bprop::kernels::gemm_with_options(DType::Float32, m, n, k, a.data(), rsa, csa,
                                                  b.data(), n, 1, got.data(), n, options);
                // The blocked path adds a k block's sum to C; small products add term by term.
                const bool same_bits = !accumulate || (k <= kc && m * n * k > 16 * 16 * 16);
                int64_t wrong = 0;
                for (int64_t i = 0; i < m; ++i)
                  for (int64_t j = 0; j < n; ++j) {
                    if (triangle == Triangle::CLower && j > i + diagonal) continue;
                    const float expected =
                        accumulate ? old_c[i * n + j] + plain[i * n + j] : plain[i * n + j];
                    const float value = got[i * n + j];
                    wrong += same_bits ? std::memcmp(&value, &expected, sizeof(float)) != 0
                                       : std::fabs(value - expected) >
                                             1e-5f * (std::sqrt(float(k)) + std::fabs(expected));
                  }
                CHECK_MESSAGE(wrong == 0,
                              wrong << " wrong elements at m=" << m << " n=" << n << " k=" << k
                                    << " triangle " << static_cast<int>(triangle) << " diagonal "
                                    << diagonal << " column-major A " << column_major_a
                                    << " accumulate " << accumulate << " threads " << threads);
              }
    set_num_threads(before);
  }

  TEST_CASE("gemm_chain: the product, then the chain on it, gemm's and the steps' bits") {
    // Note [GEMM epilogues]: out = (A B + X) * bias, bias a row; shapes that take every path
    // (a small product, rows split between threads, columns split, several k blocks, several row
    // blocks, n past NC, k = 0), 1 and 2 threads.
    using bprop::kernels::BinaryOp;
    using bprop::kernels::ChainOperand;
    using bprop::kernels::ChainStep;
    std::mt19937_64 rng(23);
    const int64_t kc = bprop::kernels::gemm_blocking(DType::Float32).kc;
    const int64_t nc = bprop::kernels::gemm_blocking(DType::Float32).nc;
    const int64_t shapes[][3] = {{5, 7, 3},      {64, 64, 32},  {300, 64, 2 * kc + 5},
                                 {64, 300, 400}, {700, 40, 20}, {3, nc + 10, 20},
                                 {37, 19, 0},    {1, 1, 1}};
    const int64_t steps[] = {ChainStep::Binary, static_cast<int64_t>(BinaryOp::Add), -1, 0,  1,
                             ChainStep::Binary, static_cast<int64_t>(BinaryOp::Mul), 0,  -1, 2};
    const int before = get_num_threads();
    for (const auto& shape : shapes)
      for (bool column_major_a : {false, true})
        for (int threads : {1, 2}) {
          const int64_t m = shape[0], n = shape[1], k = shape[2];
          set_num_threads(threads);
          std::normal_distribution<float> normal;
          std::vector<float> a(m * k), b(k * n), x(m * n), bias(n), product(m * n);
          for (auto* v : {&a, &b, &x, &bias})
            for (float& value : *v) value = normal(rng);
          const int64_t rsa = column_major_a ? 1 : k, csa = column_major_a ? m : 1;
          bprop::kernels::gemm(DType::Float32, m, n, k, a.data(), rsa, csa, b.data(), n, 1,
                               product.data(), n);
          std::vector<float> out(m * n, std::nanf(""));
          const ChainOperand operands[] = {{out.data(), ChainOperand::Full},
                                           {x.data(), ChainOperand::Full},
                                           {bias.data(), ChainOperand::Row}};
          bprop::kernels::gemm_chain(DType::Float32, m, n, k, a.data(), rsa, csa, b.data(), n, 1, 0,
                                     steps, 2, operands, 3);
          int64_t wrong = 0;
          for (int64_t i = 0; i < m; ++i)
            for (int64_t j = 0; j < n; ++j) {
              const float sum = product[i * n + j] + x[i * n + j];
              const float expected = sum * bias[j];
              wrong += std::memcmp(&out[i * n + j], &expected, sizeof(float)) != 0;
            }
          CHECK_MESSAGE(wrong == 0, wrong << " wrong elements at m=" << m << " n=" << n
                                          << " k=" << k << " column-major A " << column_major_a
                                          << " threads " << threads);
        }
    set_num_threads(before);
    const ChainOperand scalar[] = {{nullptr, ChainOperand::Scalar}};
    CHECK_THROWS_WITH_AS(bprop::kernels::gemm_chain(DType::Float32, 2, 2, 2, nullptr, 2, 1, nullptr,
                                                    2, 1, 0, steps, 2, scalar, 1),
                         doctest::Contains("[gemm_chain]"), std::invalid_argument);
  }

  // Note [Multi-tensor optimizer step]: tensors of sizes that put part boundaries inside them.
  TEST_CASE("adam_step and sgd_step: each tensor as its own update, any thread count's bits") {
    const std::vector<int64_t> sizes = {0, 40000, 3, 0, 70001, 1, 32768, 0};
    const std::vector<int64_t> steps = {2, 1, 5, 4, 2, 9, 3, 1};
    std::mt19937_64 rng(5);
    struct Values {
      std::vector<float> w, g, m, v;
    };
    std::vector<Values> start;
    for (int64_t n : sizes) {
      Values t;
      for (auto* x : {&t.w, &t.g, &t.m}) {
        for (double d : random_values(n, rng)) x->push_back(static_cast<float>(d));
      }
      for (float m : t.m) t.v.push_back(m * m + 0.01f);
      start.push_back(t);
    }
    // The values after `update` ran on a copy of them with `threads` threads.
    auto updated = [&](int threads, auto update) {
      std::vector<Values> values = start;
      const int before = get_num_threads();
      set_num_threads(threads);
      update(values);
      set_num_threads(before);
      return values;
    };
    for (const bool decoupled : {false, true}) {
      const kernels::AdamHyper hyper{0.01, 0.9, 0.999, 1e-8, 0.1, decoupled};
      auto adam = [&](std::vector<Values>& values) {
        std::vector<kernels::AdamTensor> tensors;
        for (size_t i = 0; i < sizes.size(); ++i)
          tensors.push_back({values[i].w.data(), values[i].g.data(), values[i].m.data(),
                             values[i].v.data(), sizes[i], steps[i]});
        kernels::adam_step(DType::Float32, hyper, tensors.data(),
                           static_cast<int64_t>(tensors.size()));
      };
      const std::vector<Values> one = updated(1, adam), two = updated(2, adam);
      for (size_t i = 0; i < sizes.size(); ++i) {
        CHECK(one[i].w == two[i].w);
        CHECK(one[i].m == two[i].m);
        CHECK(one[i].v == two[i].v);
        // Against the update in double from the same float32 values.
        const double bias1 = 1 - std::pow(0.9, steps[i]);
        const double bias2 = std::sqrt(1 - std::pow(0.999, steps[i]));
        for (size_t j = 0; j < start[i].w.size(); j += 97) {
          double w = start[i].w[j], g = start[i].g[j], m = start[i].m[j], v = start[i].v[j];
          if (decoupled)
            w *= 1 - 0.01 * 0.1;
          else
            g += 0.1 * w;
          m += 0.1 * (g - m);
          v = 0.999 * v + 0.001 * g * g;
          w -= 0.01 / bias1 * m / (std::sqrt(v) / bias2 + 1e-8);
          CHECK(one[i].m[j] == doctest::Approx(m).epsilon(1e-5));
          CHECK(one[i].v[j] == doctest::Approx(v).epsilon(1e-5));
          CHECK(one[i].w[j] == doctest::Approx(w).epsilon(1e-5));
        }
      }
    }
    for (const bool nesterov : {false, true}) {
      const double dampening = nesterov ? 0.0 : 0.25;
      const kernels::SGDHyper hyper{0.1, 0.9, dampening, 0.01, nesterov};
      auto sgd = [&](std::vector<Values>& values) {
        std::vector<kernels::SGDTensor> tensors;
        for (size_t i = 0; i < sizes.size(); ++i)  // every other tensor's buffer starts now
          tensors.push_back(
              {values[i].w.data(), values[i].g.data(), values[i].m.data(), sizes[i], i % 2 == 0});
        kernels::sgd_step(DType::Float32, hyper, tensors.data(),
                          static_cast<int64_t>(tensors.size()));
      };
      const std::vector<Values> one = updated(1, sgd), two = updated(2, sgd);
      for (size_t i = 0; i < sizes.size(); ++i) {
        CHECK(one[i].w == two[i].w);
        CHECK(one[i].m == two[i].m);
        for (size_t j = 0; j < start[i].w.size(); j += 97) {
          const double w = start[i].w[j], d = start[i].g[j] + 0.01 * w;
          const double b = i % 2 == 0 ? d : 0.9 * start[i].m[j] + (1 - dampening) * d;
          const double step = nesterov ? d + 0.9 * b : b;
          CHECK(one[i].m[j] == doctest::Approx(b).epsilon(1e-5));
          CHECK(one[i].w[j] == doctest::Approx(w - 0.1 * step).epsilon(1e-5));
        }
      }
    }
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

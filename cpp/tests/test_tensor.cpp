// Tensors: creation, dtypes, shapes and strides, views of shared storage, the version counter.
#include <doctest/doctest.h>

#include <cstdint>
#include <vector>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

TEST_SUITE("tensor") {
  TEST_CASE("zeros ones full: shape dtype strides values") {
    Tensor z = zeros({2, 3});
    CHECK(z.dtype() == DType::Float32);  // the default dtype
    CHECK(z.shape() == Shape{2, 3});
    CHECK(z.ndim() == 2);
    CHECK(z.numel() == 6);
    CHECK(z.strides() == Shape{3, 1});
    CHECK(z.offset() == 0);
    CHECK(z.is_contiguous());
    CHECK(z.is_leaf());
    CHECK_FALSE(z.requires_grad());
    CHECK_FALSE(z.grad().defined());
    CHECK(z.size(0) == 2);
    CHECK(z.size(-1) == 3);
    CHECK(z.stride(0) == 3);
    CHECK(z.stride(-1) == 1);
    check_values(z, {2, 3}, {0, 0, 0, 0, 0, 0});

    check_values(ones({3}, DType::Float64), {3}, {1, 1, 1});
    Tensor f = full({2, 2}, Scalar(int64_t{7}), DType::Int64);
    CHECK(f.dtype() == DType::Int64);
    CHECK(to_vector<int64_t>(f) == std::vector<int64_t>{7, 7, 7, 7});
    // Integers beyond 2^53 survive exactly.
    const int64_t big = (int64_t{1} << 60) + 1;
    CHECK(to_vector<int64_t>(full({1}, Scalar(big), DType::Int64))[0] == big);

    Tensor like = ones_like(f64({1, 2, 3, 4, 5, 6}, {3, 2}));
    CHECK(like.dtype() == DType::Float64);
    check_values(like, {3, 2}, {1, 1, 1, 1, 1, 1});
    check_values(zeros_like(like), {3, 2}, {0, 0, 0, 0, 0, 0});
    check_values(full_like(like, Scalar(2.5)), {3, 2}, {2.5, 2.5, 2.5, 2.5, 2.5, 2.5});
  }

  TEST_CASE("0-d tensors and item") {
    Tensor s = full({}, Scalar(3.5), DType::Float64);
    CHECK(s.ndim() == 0);
    CHECK(s.numel() == 1);
    CHECK(s.shape().empty());
    CHECK(s.item().is_floating());
    CHECK(s.item().to_double() == 3.5);
    CHECK(full({}, Scalar(int64_t{-4}), DType::Int64).item().to_int() == -4);
    CHECK(full({1, 1}, Scalar(2.0), DType::Float32).item().to_double() == 2.0);
    CHECK(shape_to_string({}) == "()");
    CHECK(shape_to_string({3}) == "(3,)");
    CHECK(shape_to_string({2, 3}) == "(2, 3)");
    CHECK(shape_numel({2, 3, 4}) == 24);
    CHECK(shape_numel({}) == 1);
    CHECK(shape_numel({2, 0}) == 0);
    CHECK(contiguous_strides({2, 3, 4}) == Shape{12, 4, 1});
  }

  TEST_CASE("Scalar kinds") {
    CHECK(Scalar(true).kind() == Scalar::Kind::Bool);
    CHECK(Scalar(3).kind() == Scalar::Kind::Int);
    CHECK(Scalar(int64_t{3}).kind() == Scalar::Kind::Int);
    CHECK(Scalar(3.0).kind() == Scalar::Kind::Float);
    CHECK(Scalar(2.75).to_int() == 2);
    CHECK(Scalar(5).to_double() == 5.0);
    Tensor w = Tensor::wrapped_scalar(Scalar(1.5));
    CHECK(w.is_wrapped_scalar());
    CHECK(w.dtype() == DType::Float64);
    CHECK(w.item().to_double() == 1.5);
  }

  TEST_CASE("from_vector to_vector and dtype conversion") {
    Tensor a = f32({1.5f, -2.0f, 3.25f, 4.0f}, {2, 2});
    CHECK(a.dtype() == DType::Float32);
    CHECK(to_vector<float>(a) == std::vector<float>{1.5f, -2.0f, 3.25f, 4.0f});
    Tensor d = a.to(DType::Float64);
    CHECK(d.dtype() == DType::Float64);
    check_values(d, {2, 2}, {1.5, -2.0, 3.25, 4.0});
    Tensor i = a.to(DType::Int64);
    CHECK(i.dtype() == DType::Int64);
    CHECK(to_vector<int64_t>(i) == std::vector<int64_t>{1, -2, 3, 4});  // truncation
    CHECK(a.to(DType::Float32).is_same(a));                             // no-op conversion
    Tensor b = i.to(DType::Bool);
    CHECK(b.dtype() == DType::Bool);
    CHECK(to_vector<int64_t>(b) == std::vector<int64_t>{1, 1, 1, 1});
  }

  TEST_CASE("from_strided_data copies any layout") {
    // A 2x3 column-major buffer read through byte strides.
    const double col_major[] = {1, 4, 2, 5, 3, 6};
    Tensor t = from_strided_data(col_major, {2, 3}, {8, 16}, DType::Float64);
    CHECK(t.is_contiguous());
    check_values(t, {2, 3}, {1, 2, 3, 4, 5, 6});
    // Negative strides: the same buffer reversed.
    const double forward[] = {1, 2, 3, 4};
    Tensor r = from_strided_data(forward + 3, {4}, {-8}, DType::Float64);
    check_values(r, {4}, {4, 3, 2, 1});
  }

  TEST_CASE("arange linspace eye rand") {
    Tensor r = arange(Scalar(0), Scalar(5), Scalar(1), DType::Int64);
    CHECK(to_vector<int64_t>(r) == std::vector<int64_t>{0, 1, 2, 3, 4});
    check_values(arange(Scalar(1.0), Scalar(2.0), Scalar(0.25), DType::Float64), {4},
                 {1.0, 1.25, 1.5, 1.75});
    check_values(arange(Scalar(3), Scalar(0), Scalar(-1), DType::Float64), {3}, {3, 2, 1});
    check_values(linspace(0.0, 1.0, 5, DType::Float64), {5}, {0, 0.25, 0.5, 0.75, 1.0});
    check_values(eye(2, 3, DType::Float64), {2, 3}, {1, 0, 0, 0, 1, 0});

    manual_seed(123);
    Tensor u1 = rand({1000}, DType::Float64);
    manual_seed(123);
    Tensor u2 = rand({1000}, DType::Float64);
    CHECK(values(u1) == values(u2));  // reproducible
    for (double v : values(u1)) {
      CHECK(v >= 0.0);
      CHECK(v < 1.0);
    }
    Tensor n = randn({4000}, DType::Float64);
    double m = 0.0;
    for (double v : values(n)) m += v;
    CHECK(std::fabs(m / 4000.0) < 0.1);
    Tensor k = randint(-3, 4, {500});
    CHECK(k.dtype() == DType::Int64);
    for (int64_t v : to_vector<int64_t>(k)) {
      CHECK(v >= -3);
      CHECK(v < 4);
    }
  }

  TEST_CASE("default dtype") {
    CHECK(default_dtype() == DType::Float32);
    set_default_dtype(DType::Float64);
    CHECK(zeros({2}).dtype() == DType::Float64);
    CHECK(ones({2}).dtype() == DType::Float64);
    // Integer tensors divided or exp'd compute in the default dtype.
    Tensor ints = arange(Scalar(1), Scalar(3), Scalar(1), DType::Int64);
    CHECK(div(ints, ints).dtype() == DType::Float64);
    set_default_dtype(DType::Float32);
    CHECK(zeros({2}).dtype() == DType::Float32);
    CHECK(div(ints, ints).dtype() == DType::Float32);
    CHECK(exp(ints).dtype() == DType::Float32);
  }

  TEST_CASE("transpose and permute are views with permuted strides") {
    Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor t = transpose(x, 0, 1);
    CHECK(t.shape() == Shape{3, 2});
    CHECK(t.strides() == Shape{1, 3});
    CHECK(t.storage().get() == x.storage().get());  // no copy
    CHECK_FALSE(t.is_contiguous());
    check_values(t, {3, 2}, {1, 4, 2, 5, 3, 6});
    CHECK(transpose(x, -1, -2).strides() == Shape{1, 3});

    Tensor c = t.contiguous();
    CHECK(c.is_contiguous());
    CHECK(c.storage().get() != x.storage().get());
    CHECK(c.strides() == Shape{2, 1});
    check_values(c, {3, 2}, {1, 4, 2, 5, 3, 6});
    CHECK(x.contiguous().is_same(x));  // already contiguous: the same tensor

    Tensor y = reshape(arange(Scalar(0), Scalar(24), Scalar(1), DType::Float64), {2, 3, 4});
    Tensor p = permute(y, {2, 0, 1});
    CHECK(p.shape() == Shape{4, 2, 3});
    CHECK(p.strides() == Shape{1, 12, 4});
    CHECK(p.storage().get() == y.storage().get());
    std::vector<double> pv = values(p);
    CHECK(pv[0] == 0);
    CHECK(pv[1] == 4);    // p[0, 0, 1] = y[0, 1, 0]
    CHECK(pv[3] == 12);   // p[0, 1, 0] = y[1, 0, 0]
    CHECK(pv[6] == 1);    // p[1, 0, 0] = y[0, 0, 1]
    CHECK(pv[23] == 23);  // p[3, 1, 2] = y[1, 2, 3]

    // 1-d transpose returns the tensor itself (PyTorch).
    Tensor v = f64({1, 2, 3}, {3});
    CHECK(transpose(v, 0, 0).shape() == Shape{3});
  }

  TEST_CASE("reshape views contiguous data and copies strided data") {
    Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor r = reshape(x, {3, 2});
    CHECK(r.storage().get() == x.storage().get());
    CHECK(r.strides() == Shape{2, 1});
    check_values(r, {3, 2}, {1, 2, 3, 4, 5, 6});
    check_values(reshape(x, {-1}), {6}, {1, 2, 3, 4, 5, 6});
    check_values(reshape(x, {1, -1, 2}), {1, 3, 2}, {1, 2, 3, 4, 5, 6});
    check_values(reshape(full({}, Scalar(4.0), DType::Float64), {1, 1}), {1, 1}, {4});
    check_values(reshape(f64({4}, {1, 1}), {}), {}, {4});

    Tensor t = transpose(x, 0, 1);  // not contiguous
    Tensor rt = reshape(t, {6});
    CHECK(rt.storage().get() != x.storage().get());
    check_values(rt, {6}, {1, 4, 2, 5, 3, 6});
  }

  TEST_CASE("expand gives stride 0 views") {
    Tensor col = f64({1, 2, 3}, {3, 1});
    Tensor e = expand(col, {3, 4});
    CHECK(e.shape() == Shape{3, 4});
    CHECK(e.strides() == Shape{1, 0});
    CHECK(e.storage().get() == col.storage().get());
    check_values(e, {3, 4}, {1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3});
    Tensor lead = expand(f64({5, 6}, {2}), {3, 2});
    CHECK(lead.strides() == Shape{0, 1});
    check_values(lead, {3, 2}, {5, 6, 5, 6, 5, 6});
    check_values(expand(col, {2, -1, 2}), {2, 3, 2}, {1, 1, 2, 2, 3, 3, 1, 1, 2, 2, 3, 3});
    // Elementwise ops read broadcast views correctly.
    check_values(add(e, 0.5), {3, 4}, {1.5, 1.5, 1.5, 1.5, 2.5, 2.5, 2.5, 2.5, 3.5, 3.5, 3.5, 3.5});
  }

  TEST_CASE("detach shares storage and cuts the graph while clone copies") {
    Tensor x = f64({1, 2}, {2}, true);
    Tensor y = mul(x, 2.0);
    Tensor d = y.detach();
    CHECK(d.storage().get() == y.storage().get());
    CHECK(d.is_leaf());
    CHECK_FALSE(d.requires_grad());
    CHECK(d.grad_fn().get() == nullptr);

    Tensor c = x.clone();
    CHECK(c.storage().get() != x.storage().get());
    CHECK(c.requires_grad());  // clone is differentiable
    CHECK_FALSE(c.is_leaf());
    check_values(c, {2}, {1, 2});
  }

  TEST_CASE("version counter: in-place writes bump the shared storage version") {
    Tensor x = f64({1, 2, 3, 4}, {2, 2});
    Tensor view = transpose(x, 0, 1);
    const uint64_t v0 = x.storage()->version();
    CHECK(v0 == 0);
    add_scaled_(x, ones({2, 2}, DType::Float64), 2.0);
    CHECK(x.storage()->version() == v0 + 1);
    CHECK(view.storage()->version() == v0 + 1);  // views see the same counter
    check_values(x, {2, 2}, {3, 4, 5, 6});
    check_values(view, {2, 2}, {3, 5, 4, 6});  // and the new values

    fill_(view, Scalar(0.5));
    CHECK(x.storage()->version() == v0 + 2);
    check_values(x, {2, 2}, {0.5, 0.5, 0.5, 0.5});

    // Broadcast source; write through a strided view.
    add_scaled_(view, f64({1, 2}, {2}), -1.0);
    check_values(x, {2, 2}, {-0.5, -0.5, -1.5, -1.5});
    CHECK(x.storage()->version() == v0 + 3);

    // Ops do not bump versions of their inputs.
    Tensor y = add(x, x);
    CHECK(x.storage()->version() == v0 + 3);
    CHECK(y.storage()->version() == 0);
  }

  TEST_CASE("version counter: modifying a saved tensor makes backward throw") {
    Tensor x = f64({1, 2}, {2}, true);
    Tensor w = f64({3, 4}, {2});
    Tensor loss = sum(mul(x, w));  // mul saves w for x's gradient
    add_scaled_(w, ones({2}, DType::Float64), 1.0);
    CHECK_THROWS_AS(loss.backward(), std::runtime_error);
    try {
      sum(mul(x, w)).backward();  // a fresh graph sees the new values and works
      check_grad(x, {4, 5});
    } catch (...) {
      FAIL("backward on a fresh graph threw");
    }

    // The saved output of tanh, modified through a detached alias.
    Tensor a = f64({0.5}, {1}, true);
    Tensor t = tanh(a);
    Tensor l = sum(t);
    fill_(t.detach(), Scalar(0.0));
    CHECK_THROWS_AS(l.backward(), std::runtime_error);
  }

  TEST_CASE("set_grad checks shape and dtype") {
    Tensor x = f64({1, 2}, {2}, true);
    x.set_grad(f64({3, 4}, {2}));
    check_grad(x, {3, 4});
    x.set_grad(Tensor());
    CHECK_FALSE(x.grad().defined());
  }
}

// bprop::Trainer and run_epoch, the training loop, used as a C++ app would.
#include <algorithm>
#include <cmath>
#include <functional>
#include <stdexcept>
#include <vector>

#include "bprop/bprop.h"
#include "doctest/doctest.h"

using namespace bprop;

TEST_SUITE("trainer") {
  // Three separable classes in 4 dimensions; 50 rows, so batches of 16 leave a remainder.
  void blobs(Tensor * x, Tensor * y) {
    std::vector<float> xs;
    std::vector<int64_t> ys;
    for (int i = 0; i < 50; ++i) {
      for (int f = 0; f < 4; ++f)
        xs.push_back(static_cast<float>((i * 7 + f * 3) % 11) / 11.0f + (f == i % 3 ? 2.0f : 0.0f));
      ys.push_back(i % 3);
    }
    *x = from_vector<float>(xs, {50, 4});
    *y = from_vector<int64_t>(ys, {50});
  }

  Tensor cross_entropy_loss(const Tensor& out, const Tensor& t) { return cross_entropy(out, t); }

  Tensor rows_in_order() {
    return arange(Scalar(int64_t{0}), Scalar(int64_t{50}), Scalar(int64_t{1}), DType::Int64);
  }

  // One epoch of the loop written by hand over the rows `order`, in batches of batch_size (the
  // last one partial): zero_grad, forward, loss, backward, before_step(), step. Returns the
  // mean loss weighted by rows, as the Trainer reports it.
  double epoch_by_hand(nn::Sequential & model, optim::SGD & opt, const Tensor& x, const Tensor& y,
                       const Tensor& order, int64_t batch_size,
                       const std::function<void()>& before_step = {}) {
    const int64_t n = order.numel();
    double loss_sum = 0;
    for (int64_t start = 0; start < n; start += batch_size) {
      const int64_t size = std::min(batch_size, n - start);
      const Tensor index = slice(order, 0, start, 1, size);
      opt.zero_grad();
      Tensor loss = cross_entropy_loss(model(index_select(x, 0, index)), index_select(y, 0, index));
      loss.backward();
      if (before_step) before_step();
      opt.step();
      loss_sum += loss.item().to_double() * static_cast<double>(size);
    }
    return loss_sum / static_cast<double>(n);
  }

  // The blobs, and two identically initialised classifiers with SGD (momentum 0.9): `a` for
  // the Trainer, `b` for the same loop written by hand.
  nn::Sequential classifier(uint64_t seed) {
    manual_seed(seed);
    return nn::Sequential(nn::Linear(4, 6), nn::Tanh(), nn::Linear(6, 3));
  }
  struct Twins {
    Twins()
        : a(classifier(5)),
          b(classifier(5)),
          opt_a(a.parameters(), optim::SGDOptions{0.1, 0.9}),
          opt_b(b.parameters(), optim::SGDOptions{0.1, 0.9}) {
      blobs(&x, &y);
    }
    nn::Sequential a, b;
    optim::SGD opt_a, opt_b;
    Tensor x, y;
  };

  void check_same_parameters(nn::Sequential & a, nn::Sequential & b) {
    for (size_t i = 0; i < a.parameters().size(); ++i)
      CHECK(to_vector<float>(a.parameters()[i]) == to_vector<float>(b.parameters()[i]));
  }

  TEST_CASE_FIXTURE(Twins,
                    "fit gives bit for bit the parameters of the same loop written by hand") {
    Trainer trainer(a, cross_entropy_loss, opt_a);
    FitOptions options;
    options.batch_size = 16;
    options.shuffle = false;
    const std::vector<EpochLog> history = trainer.fit(x, y, 3, options);

    std::vector<double> hand_losses;
    for (int epoch = 0; epoch < 3; ++epoch)
      hand_losses.push_back(epoch_by_hand(b, opt_b, x, y, rows_in_order(), 16));
    REQUIRE(history.size() == 3);
    for (int e = 0; e < 3; ++e) {
      CHECK(history[e].epoch == e + 1);
      CHECK(history[e].loss == doctest::Approx(hand_losses[e]).epsilon(1e-12));
    }
    CHECK(history[2].loss < history[0].loss);
    CHECK(history[2].accuracy > 0.9);
    check_same_parameters(a, b);
  }

  TEST_CASE("fit: regression targets give NaN accuracy, on_epoch can stop, bad data throws") {
    Tensor x, labels;
    blobs(&x, &labels);
    const Tensor y = zeros({50, 1});
    manual_seed(1);
    nn::Linear layer(4, 1);
    optim::Adam adam(layer.parameters(), optim::AdamOptions{});
    Trainer trainer(layer, [](const Tensor& o, const Tensor& t) { return mse_loss(o, t); }, adam);
    int calls = 0;
    const auto history =
        trainer.fit(x, y, 10, FitOptions{}, [&](const EpochLog&) { return ++calls < 2; });
    CHECK(history.size() == 2);
    CHECK(std::isnan(history[0].accuracy));

    CHECK_THROWS_WITH_AS(trainer.fit(x, zeros({49, 1}), 1), doctest::Contains("(49, 1)"),
                         std::invalid_argument);
    FitOptions zero_batch;
    zero_batch.batch_size = 0;
    CHECK_THROWS_WITH_AS(trainer.fit(x, y, 1, zero_batch), doctest::Contains("batch_size"),
                         std::invalid_argument);
    CHECK_THROWS_AS(trainer.fit(x, y, -1), std::invalid_argument);
  }

  TEST_CASE_FIXTURE(
      Twins, "run_epoch keeps the last partial batch, records it once, and on_batch can stop") {
    Trainer trainer(a, cross_entropy_loss, opt_a);

    std::vector<int64_t> reversed(50);
    for (int64_t i = 0; i < 50; ++i) reversed[static_cast<size_t>(i)] = 49 - i;
    const Tensor order = from_vector<int64_t>(reversed, {50});
    for (int epoch = 0; epoch < 2; ++epoch) {  // the second replays both recordings
      std::vector<double> running;
      const EpochResult result =
          trainer.run_epoch(x, y, order, 16, true, [&](int64_t done, double r) {
            CHECK(done == static_cast<int64_t>(running.size()) + 1);
            running.push_back(r);
            return true;
          });
      CHECK(result.rows == 50);
      CHECK(!result.stopped);
      CHECK(running.size() == 4);  // 16 + 16 + 16 + 2 rows
      CHECK(result.mean_loss == doctest::Approx(running.back()).epsilon(1e-12));
      CHECK(result.correct >= 0);
      CHECK(result.correct <= 50);
      CHECK(result.mean_loss ==
            doctest::Approx(epoch_by_hand(b, opt_b, x, y, order, 16)).epsilon(1e-12));
      check_same_parameters(a, b);
    }

    const EpochResult stopped =
        trainer.run_epoch(x, y, order, 16, false, [](int64_t done, double) { return done < 2; });
    CHECK(stopped.stopped);
    CHECK(stopped.rows == 32);
    CHECK(stopped.correct == 0);  // not counted
    CHECK_THROWS_AS(trainer.run_epoch(x, y, zeros({50}), 16, false), std::invalid_argument);
  }

  TEST_CASE_FIXTURE(Twins,
                    "set_gradient_sync runs the sync and the optimizer step after each replay") {
    // A stand-in for an all-reduce: each gradient becomes half of itself.
    auto halve = [](const std::vector<Tensor>& params) {
      for (const Tensor& p : params) assign_(p.grad(), mul(p.grad(), Scalar(0.5)));
    };
    int before = 0, syncs = 0;
    Trainer trainer(a, cross_entropy_loss, opt_a);
    trainer.set_gradient_sync([&] { ++before; },
                              [&] {
                                CHECK(before == syncs + 1);
                                ++syncs;
                                halve(a.parameters());
                              });
    FitOptions options;
    options.batch_size = 10;
    options.shuffle = false;
    trainer.fit(x, y, 3, options);
    CHECK(before == 15);
    CHECK(syncs == 15);
    for (int epoch = 0; epoch < 3; ++epoch)
      epoch_by_hand(b, opt_b, x, y, rows_in_order(), 10, [&] { halve(b.parameters()); });
    check_same_parameters(a, b);
  }
}

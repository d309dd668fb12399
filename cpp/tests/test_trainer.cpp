// bprop::Trainer and run_epoch, the training loop, used as a C++ app would.
#include <algorithm>
#include <cmath>
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

  TEST_CASE("fit gives bit for bit the parameters of the same loop written by hand") {
    Tensor x, y;
    blobs(&x, &y);
    auto loss_fn = [](const Tensor& out, const Tensor& t) { return cross_entropy(out, t); };
    manual_seed(5);
    nn::Sequential a(nn::Linear(4, 6), nn::Tanh(), nn::Linear(6, 3));
    manual_seed(5);
    nn::Sequential b(nn::Linear(4, 6), nn::Tanh(), nn::Linear(6, 3));
    optim::SGD opt_a(a.parameters(), optim::SGDOptions{0.1, 0.9});
    optim::SGD opt_b(b.parameters(), optim::SGDOptions{0.1, 0.9});

    Trainer trainer(a, loss_fn, opt_a);
    FitOptions options;
    options.batch_size = 16;
    options.shuffle = false;
    const std::vector<EpochLog> history = trainer.fit(x, y, 3, options);

    std::vector<double> hand_losses;
    for (int epoch = 0; epoch < 3; ++epoch) {
      double loss_sum = 0;
      for (int64_t start = 0; start < 50; start += 16) {
        const int64_t end = std::min<int64_t>(start + 16, 50);
        std::vector<int64_t> rows;
        for (int64_t r = start; r < end; ++r) rows.push_back(r);
        const Tensor index = from_vector<int64_t>(rows, {end - start});
        opt_b.zero_grad();
        Tensor loss = loss_fn(b(index_select(x, 0, index)), index_select(y, 0, index));
        loss.backward();
        opt_b.step();
        loss_sum += loss.item().to_double() * static_cast<double>(end - start);
      }
      hand_losses.push_back(loss_sum / 50.0);
    }
    REQUIRE(history.size() == 3);
    for (int e = 0; e < 3; ++e) {
      CHECK(history[e].epoch == e + 1);
      CHECK(history[e].loss == doctest::Approx(hand_losses[e]).epsilon(1e-12));
    }
    CHECK(history[2].loss < history[0].loss);
    CHECK(history[2].accuracy > 0.9);
    for (size_t i = 0; i < a.parameters().size(); ++i)
      CHECK(to_vector<float>(a.parameters()[i]) == to_vector<float>(b.parameters()[i]));
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

  TEST_CASE("run_epoch keeps the last partial batch, records it once, and on_batch can stop") {
    Tensor x, y;
    blobs(&x, &y);
    auto loss_fn = [](const Tensor& out, const Tensor& t) { return cross_entropy(out, t); };
    manual_seed(5);
    nn::Sequential a(nn::Linear(4, 6), nn::Tanh(), nn::Linear(6, 3));
    manual_seed(5);
    nn::Sequential b(nn::Linear(4, 6), nn::Tanh(), nn::Linear(6, 3));
    optim::SGD opt_a(a.parameters(), optim::SGDOptions{0.1, 0.9});
    optim::SGD opt_b(b.parameters(), optim::SGDOptions{0.1, 0.9});
    Trainer trainer(a, loss_fn, opt_a);

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
      double loss_sum = 0;
      for (int64_t start = 0; start < 50; start += 16) {
        const int64_t end = std::min<int64_t>(start + 16, 50);
        const Tensor index = slice(order, 0, start, 1, end - start);
        opt_b.zero_grad();
        Tensor loss = loss_fn(b(index_select(x, 0, index)), index_select(y, 0, index));
        loss.backward();
        opt_b.step();
        loss_sum += loss.item().to_double() * static_cast<double>(end - start);
      }
      CHECK(result.mean_loss == doctest::Approx(loss_sum / 50.0).epsilon(1e-12));
      for (size_t i = 0; i < a.parameters().size(); ++i)
        CHECK(to_vector<float>(a.parameters()[i]) == to_vector<float>(b.parameters()[i]));
    }

    const EpochResult stopped =
        trainer.run_epoch(x, y, order, 16, false, [](int64_t done, double) { return done < 2; });
    CHECK(stopped.stopped);
    CHECK(stopped.rows == 32);
    CHECK(stopped.correct == 0);  // not counted
    CHECK_THROWS_AS(trainer.run_epoch(x, y, zeros({50}), 16, false), std::invalid_argument);
  }

  TEST_CASE("set_gradient_sync runs the sync and the optimizer step after each replay") {
    Tensor x, y;
    blobs(&x, &y);
    auto loss_fn = [](const Tensor& out, const Tensor& t) { return cross_entropy(out, t); };
    manual_seed(2);
    nn::Sequential a(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 3));
    manual_seed(2);
    nn::Sequential b(nn::Linear(4, 5), nn::ReLU(), nn::Linear(5, 3));
    optim::SGD opt_a(a.parameters(), optim::SGDOptions{0.1, 0.9});
    optim::SGD opt_b(b.parameters(), optim::SGDOptions{0.1, 0.9});
    // A stand-in for an all-reduce: each gradient becomes half of itself.
    auto halve = [](const std::vector<Tensor>& params) {
      for (const Tensor& p : params) assign_(p.grad(), mul(p.grad(), Scalar(0.5)));
    };
    int before = 0, syncs = 0;
    Trainer trainer(a, loss_fn, opt_a);
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
    const Tensor rows =
        arange(Scalar(int64_t{0}), Scalar(int64_t{50}), Scalar(int64_t{1}), DType::Int64);
    for (int epoch = 0; epoch < 3; ++epoch)
      for (int64_t start = 0; start < 50; start += 10) {
        const Tensor index = slice(rows, 0, start, 1, 10);
        opt_b.zero_grad();
        loss_fn(b(index_select(x, 0, index)), index_select(y, 0, index)).backward();
        halve(b.parameters());
        opt_b.step();
      }
    for (size_t i = 0; i < a.parameters().size(); ++i)
      CHECK(to_vector<float>(a.parameters()[i]) == to_vector<float>(b.parameters()[i]));
  }
}

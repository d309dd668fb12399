// An MLP classifier trained with bprop::Trainer on generated data: three classes of points
// around three centres in 8 dimensions, a 8-32-3 ReLU network, cross-entropy plus weight decay
// (the lecture's regularised objective), SGD with momentum. Prints each epoch's loss and
// accuracy; exits non-zero unless the loss falls and the held-out accuracy passes 90%.
#include <bprop/bprop.h>

#include <cstdio>
#include <exception>
#include <random>
#include <vector>

namespace {

// `rows` points per class, Gaussian (sd 1) around centres 2 apart per feature.
void make_blobs(int64_t rows, uint64_t seed, bprop::Tensor* inputs, bprop::Tensor* labels) {
  const int64_t features = 8, classes = 3;
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> noise(0.0f, 1.0f);
  std::vector<float> x;
  std::vector<int64_t> y;
  for (int64_t i = 0; i < rows * classes; ++i) {
    const int64_t label = i % classes;
    for (int64_t f = 0; f < features; ++f)
      x.push_back(noise(rng) + (f % classes == label ? 2.0f : 0.0f));
    y.push_back(label);
  }
  *inputs = bprop::from_vector<float>(x, {rows * classes, features});
  *labels = bprop::from_vector<int64_t>(y, {rows * classes});
}

}  // namespace

int main() {
  using namespace bprop;
  try {
    manual_seed(0);
    Tensor x_train, y_train, x_test, y_test;
    make_blobs(400, 1, &x_train, &y_train);
    make_blobs(100, 2, &x_test, &y_test);

    nn::Sequential net(nn::Linear(8, 32), nn::ReLU(), nn::Linear(32, 3));
    optim::SGD opt(net.parameters(), optim::SGDOptions{0.05, /*momentum=*/0.9, 0.0,
                                                       /*weight_decay=*/1e-4});
    Trainer trainer(
        net, [](const Tensor& logits, const Tensor& y) { return cross_entropy(logits, y); }, opt);

    FitOptions options;
    options.batch_size = 64;
    const std::vector<EpochLog> history =
        trainer.fit(x_train, y_train, /*epochs=*/8, options, [](const EpochLog& log) {
          std::printf("epoch %lld  loss %.4f  accuracy %.3f\n", static_cast<long long>(log.epoch),
                      log.loss, log.accuracy);
          return true;
        });

    Tensor predicted;
    {
      NoGradGuard no_grad;
      predicted = argmax(net(x_test), -1);
    }
    const std::vector<int64_t> got = to_vector<int64_t>(predicted);
    const std::vector<int64_t> want = to_vector<int64_t>(y_test);
    int64_t right = 0;
    for (size_t i = 0; i < got.size(); ++i) right += got[i] == want[i];
    const double accuracy = static_cast<double>(right) / static_cast<double>(got.size());
    std::printf("held-out accuracy %.3f\n", accuracy);
    const bool ok = history.back().loss < history.front().loss && accuracy > 0.9;
    return ok ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "mlp_classifier: %s\n", e.what());
    return 1;
  }
}

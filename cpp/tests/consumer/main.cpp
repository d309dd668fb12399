// The lecture's single neuron, trained by SGD through an installed bprop:
//
//   y_hat = x^T w,   L = (y_hat - y)^2,   w := w - eta dL/dw = w - eta 2 (y_hat - y) x
//
// Exits non-zero unless the loss falls below a threshold and w recovers the true weights.
#include <bprop/bprop.h>

#include <cmath>
#include <cstdio>
#include <exception>
#include <vector>

int main() {
  using namespace bprop;
  try {
    // Data from a known neuron: y = x^T w_true.
    const std::vector<double> w_true = {0.5, -1.0, 2.0};
    const std::vector<std::vector<double>> xs = {
        {1.0, 2.0, 3.0}, {-1.0, 0.5, 1.0}, {0.0, -1.5, 0.5}, {2.0, 1.0, -1.0}, {0.3, 0.3, 0.3}};
    std::vector<double> ys;
    for (const auto& x : xs) ys.push_back(x[0] * w_true[0] + x[1] * w_true[1] + x[2] * w_true[2]);

    Tensor w = zeros({3, 1}, DType::Float64).set_requires_grad(true);
    SGD opt({w}, 0.05);
    double first_epoch_loss = 0.0, last_epoch_loss = 0.0;
    for (int epoch = 0; epoch < 200; ++epoch) {
      double epoch_loss = 0.0;
      for (size_t i = 0; i < xs.size(); ++i) {  // one sample per step: stochastic
        Tensor x = from_vector<double>(xs[i], {1, 3});
        Tensor y_hat = matmul(x, w);                         // x^T w, shape (1, 1)
        Tensor loss = sum(pow(y_hat - ys[i], Scalar(2.0)));  // (y_hat - y)^2
        opt.zero_grad();
        loss.backward();
        opt.step();
        epoch_loss += loss.item().to_double();
      }
      epoch_loss /= static_cast<double>(xs.size());
      if (epoch == 0) first_epoch_loss = epoch_loss;
      last_epoch_loss = epoch_loss;
    }
    std::vector<double> w_final = to_vector<double>(w);
    std::printf("bprop consumer: loss %.3g -> %.3g, w = [%.4f, %.4f, %.4f]\n", first_epoch_loss,
                last_epoch_loss, w_final[0], w_final[1], w_final[2]);

    const double threshold = 1e-6;
    if (!(last_epoch_loss < threshold)) {
      std::fprintf(stderr, "FAIL: final loss %g is not below %g\n", last_epoch_loss, threshold);
      return 1;
    }
    for (size_t j = 0; j < w_true.size(); ++j) {
      if (std::fabs(w_final[j] - w_true[j]) > 1e-3) {
        std::fprintf(stderr, "FAIL: w[%zu] = %g, expected %g\n", j, w_final[j], w_true[j]);
        return 1;
      }
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "FAIL: %s\n", e.what());
    return 1;
  }
}

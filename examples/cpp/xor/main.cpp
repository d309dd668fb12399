// XOR, the function no single linear unit computes, learned by the lecture's two-layer tanh
// network trained with SGD on the mean squared error:
//
//   h = tanh(x W1 + b1),   y_hat = h W2 + b2,   L = mean((y_hat - y)^2)
//
// backward() runs the graph in reverse topological order, each op adding its vector-Jacobian
// product into its inputs' gradients. Prints the falling loss and the learned outputs; exits
// non-zero unless every one of the four points is classified right.
#include <bprop/bprop.h>

#include <cstdio>
#include <exception>
#include <vector>

int main() {
  using namespace bprop;
  try {
    manual_seed(0);
    const Tensor x = from_vector<float>({0, 0, 0, 1, 1, 0, 1, 1}, {4, 2});
    const Tensor y = from_vector<float>({0, 1, 1, 0}, {4, 1});

    const int hidden = 8;
    Tensor w1 = (randn({2, hidden}) * 0.7).set_requires_grad(true);
    Tensor b1 = zeros({hidden}).set_requires_grad(true);
    Tensor w2 = (randn({hidden, 1}) * 0.5).set_requires_grad(true);
    Tensor b2 = zeros({1}).set_requires_grad(true);
    SGD opt({w1, b1, w2, b2}, SGDOptions{0.1, /*momentum=*/0.9});

    Tensor y_hat;
    for (int step = 0; step <= 500; ++step) {
      Tensor h = tanh(matmul(x, w1) + b1);
      y_hat = matmul(h, w2) + b2;
      Tensor loss = mse_loss(y_hat, y);
      opt.zero_grad();
      loss.backward();
      opt.step();
      if (step % 100 == 0) std::printf("step %3d  loss %.6f\n", step, loss.item().to_double());
    }

    const std::vector<float> out = to_vector<float>(y_hat);
    const std::vector<float> want = to_vector<float>(y);
    int correct = 0;
    for (size_t i = 0; i < out.size(); ++i) {
      std::printf("xor(%zu, %zu) = %.3f\n", i / 2, i % 2, out[i]);
      correct += (out[i] > 0.5f) == (want[i] > 0.5f);
    }
    std::printf("%d/4 correct\n", correct);
    return correct == 4 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "xor: %s\n", e.what());
    return 1;
  }
}

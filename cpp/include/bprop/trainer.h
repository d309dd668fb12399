// bprop::Trainer: the training loop of bprop.Trainer, for C++ apps. Each epoch shuffles the
// rows, records the step (zero_grad, forward, loss, backward, optimizer step) once on the first
// full batch and replays the recording for every later full batch (see capture.h); a last
// partial batch runs eagerly. Results are those of the same loop written out by hand.
//
//   nn::Sequential net(nn::Linear(20, 64), nn::ReLU(), nn::Linear(64, 3));
//   optim::SGD opt(net.parameters(), 0.1);
//   Trainer trainer(net, [](const Tensor& out, const Tensor& y) { return cross_entropy(out, y); },
//                   opt);
//   for (const EpochLog& log : trainer.fit(x, y, /*epochs=*/10)) ...
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

class Capture;

struct FitOptions {
  int64_t batch_size = 32;
  bool shuffle = true;
  uint64_t seed = 0;  // of the shuffle, independent of manual_seed
};

// One epoch's figures. accuracy is the share of rows whose output's argmax over the last
// dimension equals the target, measured only for int64 (class index) targets; else NaN.
struct EpochLog {
  int64_t epoch = 0;  // from 1
  double loss = 0.0;  // mean over the epoch's batches, weighted by their rows
  double accuracy = 0.0;
};

class Trainer {
 public:
  using Model = std::function<Tensor(const Tensor& input)>;
  using LossFn = std::function<Tensor(const Tensor& output, const Tensor& target)>;

  // `model` is any callable (an nn::Module is copied in, sharing its parameters); the
  // optimizer (SGD or Adam, anything with zero_grad() and step()) is held by reference and must
  // outlive the trainer.
  template <typename Optimizer>
  Trainer(Model model, LossFn loss_fn, Optimizer& optimizer)
      : Trainer(
            std::move(model), std::move(loss_fn), [&optimizer] { optimizer.zero_grad(); },
            [&optimizer] { optimizer.step(); }) {}
  Trainer(Model model, LossFn loss_fn, std::function<void()> zero_grad,
          std::function<void()> optimizer_step);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;

  // Trains for `epochs` over the rows of (inputs, targets); calls on_epoch after each epoch
  // (returning false stops). Throws std::invalid_argument for mismatched or empty data, a
  // non-positive batch size or a negative epoch count, before any training.
  std::vector<EpochLog> fit(const Tensor& inputs, const Tensor& targets, int64_t epochs,
                            const FitOptions& options = {},
                            const std::function<bool(const EpochLog&)>& on_epoch = {});

 private:
  struct Recording;
  // One step on (inputs, targets), run eagerly or recorded for replay; returns the loss and
  // adds the rows classified right to *correct when it is not null.
  double eager_step(const Tensor& inputs, const Tensor& targets, int64_t* correct);
  double record_step(const Tensor& inputs, const Tensor& targets, int64_t* correct);

  Model model_;
  LossFn loss_fn_;
  std::function<void()> zero_grad_, optimizer_step_;
  std::unique_ptr<Recording> recording_;
};

}  // namespace bprop

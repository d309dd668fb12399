// bprop::Trainer: the training loop, for C++ apps and for bprop.Trainer (which drives this one).
// An epoch visits the rows of (inputs, targets) in a given order, batch by batch. The step
// (zero_grad, forward, loss, backward, optimizer step) is recorded once per batch size, on the
// first batch of that size (which it trains on, as any batch), and replayed for every later
// batch of that size (see capture.h). Results are those of the same loop written out by hand.
//
// The last partial batch is kept, as PyTorch's DataLoader does by default (drop_last=False):
// when the batch size does not divide the rows, the last rows form a smaller batch, trained on
// like any other (recorded once for its size, then replayed), and the epoch's loss is the
// mean over its batches weighted by their rows.
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

// What an epoch (or part of one) measured: the mean loss over its batches weighted by their
// rows, the rows whose output's argmax equals their integer target (counted only when asked
// for), the rows trained on, and whether an on_batch callback stopped it early.
struct EpochResult {
  double mean_loss = 0.0;
  int64_t correct = 0;
  int64_t rows = 0;
  bool stopped = false;
};

// Called after each batch with the batches done so far in this call and the running mean
// loss; returning false stops after that batch.
using BatchCallback = std::function<bool(int64_t done, double running_loss)>;

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

  // One epoch over the rows of (inputs, targets) listed in `order` (a 1-d int64 tensor of row
  // indices), in batches of batch_size, the last partial batch kept (see above). The epoch
  // loop of fit(), for callers that choose the order themselves. Counts the rows classified
  // right when `count_correct` (the targets must then be int64 class indices).
  EpochResult run_epoch(const Tensor& inputs, const Tensor& targets, const Tensor& order,
                        int64_t batch_size, bool count_correct, const BatchCallback& on_batch = {});

  // Data-parallel training: `sync` makes every gradient the average over the processes after
  // each backward. It communicates, so it runs outside the recorded step, and so does the
  // optimizer step that follows it: the recording then holds zero_grad, forward, loss and
  // backward. `before_step` runs before each step (a replay skips the forward, where a
  // data-parallel wrapper would otherwise prepare for the backward's gradients). Drops the
  // recordings made so far.
  void set_gradient_sync(std::function<void()> before_step, std::function<void()> sync);

 private:
  struct Recording;
  // The recording for batches shaped like (inputs, targets), or null.
  Recording* recording_for(const Tensor& inputs, const Tensor& targets) const;
  // Records the step on (inputs, targets), training on them; returns the new recording.
  Recording& record(const Tensor& inputs, const Tensor& targets);
  // Trains on the batches of `rows` (a whole number of batches of one size), all with the
  // recording for that size; the first records it when there is none yet.
  EpochResult train_batches(const Tensor& inputs, const Tensor& targets, const Tensor& rows,
                            int64_t batch_size, bool count_correct, const BatchCallback& on_batch);

  Model model_;
  LossFn loss_fn_;
  std::function<void()> zero_grad_, optimizer_step_, before_step_, sync_;
  std::vector<std::unique_ptr<Recording>> recordings_;  // one per batch shape
};

// One epoch of training on a captured step: for each full batch of `batch_size` rows of
// (inputs, targets) in the order given by `order` (int64 row indices), the rows are copied
// into the step's input buffers and the capture replays. Returns the mean of the recorded
// `loss` (a 1-element tensor) over the batches and, when `output` is defined, how many rows'
// argmax over its last dimension equal their integer target. `on_batch(done, running_loss)`
// is called after each batch; it returns false to stop early (after the current batch).
// Trainer::run_epoch replays its recordings with this.
EpochResult run_epoch(const Capture& capture, const Tensor& input_buffer,
                      const Tensor& target_buffer, const Tensor& inputs, const Tensor& targets,
                      const Tensor& order, int64_t batch_size, const Tensor& loss,
                      const Tensor& output, const BatchCallback& on_batch = {});

}  // namespace bprop

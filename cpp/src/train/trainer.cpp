// bprop::Trainer: epochs of a captured training step, replayed by run_epoch.
#include "bprop/trainer.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
#include "bprop/bprop.h"
#include "bprop/capture.h"
#include "bprop/ops.h"

namespace bprop {

// The recorded step for one batch shape: its input buffers (refilled by run_epoch before each
// replay) and the tensors the recording writes its loss and output into.
struct Trainer::Recording {
  Capture capture;
  Tensor input_buffer, target_buffer, loss, output;
};

namespace {

int64_t count_correct(const Tensor& output, const Tensor& targets) {
  NoGradGuard no_grad;
  return to_vector<int64_t>(sum(eq(argmax(output, -1), targets)))[0];
}

Tensor rows_of(const std::vector<int64_t>& order, int64_t begin, int64_t end) {
  return from_vector<int64_t>(std::vector<int64_t>(order.begin() + begin, order.begin() + end),
                              {end - begin});
}

}  // namespace

Trainer::Trainer(Model model, LossFn loss_fn, std::function<void()> zero_grad,
                 std::function<void()> optimizer_step)
    : model_(std::move(model)),
      loss_fn_(std::move(loss_fn)),
      zero_grad_(std::move(zero_grad)),
      optimizer_step_(std::move(optimizer_step)) {
  if (!model_ || !loss_fn_ || !zero_grad_ || !optimizer_step_)
    throw std::invalid_argument("[Trainer] the model, loss function and optimizer must be set");
}

Trainer::~Trainer() = default;

double Trainer::eager_step(const Tensor& inputs, const Tensor& targets, int64_t* correct) {
  zero_grad_();
  Tensor output = model_(inputs);
  Tensor loss = loss_fn_(output, targets);
  loss.backward();
  optimizer_step_();
  if (correct) *correct += count_correct(output, targets);
  return loss.item().to_double();
}

double Trainer::record_step(const Tensor& inputs, const Tensor& targets, int64_t* correct) {
  auto recording = std::make_unique<Recording>();
  recording->input_buffer = inputs;  // fresh rows from index_select: ours to refill
  recording->target_buffer = targets;
  Recording& r = *recording;
  r.capture.record([&] {
    zero_grad_();
    r.output = model_(r.input_buffer);
    r.loss = loss_fn_(r.output, r.target_buffer);
    r.loss.backward();
    optimizer_step_();
  });
  recording_ = std::move(recording);
  if (correct) *correct += count_correct(r.output, r.target_buffer);
  return r.loss.item().to_double();
}

std::vector<EpochLog> Trainer::fit(const Tensor& inputs, const Tensor& targets, int64_t epochs,
                                   const FitOptions& options,
                                   const std::function<bool(const EpochLog&)>& on_epoch) {
  if (!inputs.defined() || !targets.defined() || inputs.ndim() < 1 || targets.ndim() < 1)
    throw std::invalid_argument("[Trainer.fit] inputs and targets must be tensors of rows");
  const int64_t n = inputs.size(0);
  if (targets.size(0) != n || n == 0)
    throw std::invalid_argument("[Trainer.fit] inputs of shape " + shape_to_string(inputs.shape()) +
                                " and targets of shape " + shape_to_string(targets.shape()) +
                                " need the same, non-zero number of rows");
  if (options.batch_size < 1 || epochs < 0)
    throw std::invalid_argument("[Trainer.fit] need batch_size >= 1 and epochs >= 0, got " +
                                std::to_string(options.batch_size) + " and " +
                                std::to_string(epochs));
  const int64_t batch = std::min(options.batch_size, n);
  const int64_t full = n / batch * batch;
  const bool classify = targets.dtype() == DType::Int64;

  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(options.seed);
  std::vector<EpochLog> history;
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    if (options.shuffle) std::shuffle(order.begin(), order.end(), rng);
    double loss_sum = 0.0;  // loss times rows, batch by batch
    int64_t correct = 0, start = 0;
    int64_t* count = classify ? &correct : nullptr;

    Shape batch_shape = inputs.shape();
    batch_shape[0] = batch;
    const bool recorded = recording_ && recording_->input_buffer.shape() == batch_shape &&
                          recording_->input_buffer.dtype() == inputs.dtype() &&
                          recording_->target_buffer.dtype() == targets.dtype() &&
                          recording_->target_buffer.ndim() == targets.ndim();
    if (!recorded) {  // the first batch records the step, training on it as any batch does
      const Tensor rows = rows_of(order, 0, batch);
      loss_sum +=
          record_step(index_select(inputs, 0, rows), index_select(targets, 0, rows), count) *
          static_cast<double>(batch);
      start = batch;
    }
    if (full > start) {
      const Recording& r = *recording_;
      const EpochResult result =
          run_epoch(r.capture, r.input_buffer, r.target_buffer, inputs, targets,
                    rows_of(order, start, full), batch, r.loss, classify ? r.output : Tensor());
      loss_sum += result.mean_loss * static_cast<double>(result.rows);
      correct += result.correct;
    }
    if (full < n) {  // the remainder, a smaller batch, runs eagerly
      const Tensor rows = rows_of(order, full, n);
      loss_sum += eager_step(index_select(inputs, 0, rows), index_select(targets, 0, rows), count) *
                  static_cast<double>(n - full);
    }
    EpochLog log;
    log.epoch = epoch;
    log.loss = loss_sum / static_cast<double>(n);
    log.accuracy = classify ? static_cast<double>(correct) / static_cast<double>(n)
                            : std::numeric_limits<double>::quiet_NaN();
    history.push_back(log);
    if (on_epoch && !on_epoch(log)) break;
  }
  return history;
}

}  // namespace bprop

// bprop::Trainer and run_epoch: the one training loop (see bprop/trainer.h). An epoch is a run
// of full batches and then, when the batch size does not divide the rows, one smaller batch;
// each run trains with the recording for its batch size, made on its first batch if needed.
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

// The rows whose largest output is their target (bp.Trainer.evaluate counts the same way).
int64_t count_correct(const Tensor& output, const Tensor& targets) {
  NoGradGuard no_grad;
  return to_vector<int64_t>(sum(eq(argmax(output, -1), targets)))[0];
}

void check_rows(const Tensor& inputs, const Tensor& targets, const char* where) {
  if (!inputs.defined() || !targets.defined() || inputs.ndim() < 1 || targets.ndim() < 1)
    throw std::invalid_argument(std::string("[") + where +
                                "] inputs and targets must be tensors of rows");
  if (targets.size(0) != inputs.size(0) || inputs.size(0) == 0)
    throw std::invalid_argument(std::string("[") + where + "] inputs of shape " +
                                shape_to_string(inputs.shape()) + " and targets of shape " +
                                shape_to_string(targets.shape()) +
                                " need the same, non-zero number of rows");
}

}  // namespace

EpochResult run_epoch(const Capture& capture, const Tensor& input_buffer,
                      const Tensor& target_buffer, const Tensor& inputs, const Tensor& targets,
                      const Tensor& order, int64_t batch_size, const Tensor& loss,
                      const Tensor& output, const BatchCallback& on_batch) {
  if (order.dtype() != DType::Int64 || order.ndim() != 1)
    throw std::invalid_argument("[run_epoch] order must be a 1-d int64 tensor");
  if (input_buffer.shape()[0] != batch_size || target_buffer.shape()[0] != batch_size)
    throw std::invalid_argument("[run_epoch] the captured step's inputs don't hold " +
                                std::to_string(batch_size) + " rows");
  if (loss.numel() != 1) throw std::invalid_argument("[run_epoch] loss must have one element");
  EpochResult result;
  const int64_t batches = order.numel() / batch_size;
  double total = 0.0;
  for (int64_t b = 0; b < batches; ++b) {
    Tensor rows = slice(order, 0, b * batch_size, 1, batch_size);
    assign_(input_buffer, index_select(inputs, 0, rows));
    assign_(target_buffer, index_select(targets, 0, rows));
    capture.replay();
    total += loss.item().to_double();
    if (output.defined()) result.correct += count_correct(output, target_buffer);
    result.rows += batch_size;
    if (on_batch && !on_batch(b + 1, total / static_cast<double>(b + 1))) {
      result.stopped = true;
      result.mean_loss = total / static_cast<double>(b + 1);
      return result;
    }
  }
  result.mean_loss = batches > 0 ? total / static_cast<double>(batches) : 0.0;
  return result;
}

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

void Trainer::set_gradient_sync(std::function<void()> before_step, std::function<void()> sync) {
  before_step_ = std::move(before_step);
  sync_ = std::move(sync);
  recordings_.clear();  // they hold (or lack) the optimizer step
}

Trainer::Recording* Trainer::recording_for(const Tensor& inputs, const Tensor& targets) const {
  for (const auto& r : recordings_)
    if (r->input_buffer.shape() == inputs.shape() && r->input_buffer.dtype() == inputs.dtype() &&
        r->target_buffer.shape() == targets.shape() && r->target_buffer.dtype() == targets.dtype())
      return r.get();
  return nullptr;
}

Trainer::Recording& Trainer::record(const Tensor& inputs, const Tensor& targets) {
  auto recording = std::make_unique<Recording>();
  recording->input_buffer = inputs;  // fresh rows from index_select: ours to refill
  recording->target_buffer = targets;
  Recording& r = *recording;
  const bool synced = static_cast<bool>(sync_);
  r.capture.record([&] {
    zero_grad_();
    r.output = model_(r.input_buffer);
    r.loss = loss_fn_(r.output, r.target_buffer);
    r.loss.backward();
    if (!synced) optimizer_step_();
  });
  recordings_.push_back(std::move(recording));
  return r;
}

EpochResult Trainer::train_batches(const Tensor& inputs, const Tensor& targets, const Tensor& rows,
                                   int64_t batch_size, bool count, const BatchCallback& on_batch) {
  const int64_t batches = rows.numel() / batch_size;
  double loss_total = 0.0;  // the sum of the batches' losses
  int64_t done = 0;
  EpochResult result;
  // After each step's backward, when data-parallel: the gradient average, then the optimizer.
  auto finish_step = [&] {
    if (!sync_) return;
    sync_();
    optimizer_step_();
  };

  const Tensor first = slice(rows, 0, 0, 1, batch_size);
  // Detached: the data are the step's constants, even if they require grad.
  Tensor first_inputs = index_select(inputs.detach(), 0, first),
         first_targets = index_select(targets.detach(), 0, first);
  Recording* r = recording_for(first_inputs, first_targets);
  if (!r) {  // the first batch records the step, training on it as any batch does
    if (before_step_) before_step_();
    r = &record(first_inputs, first_targets);
    finish_step();
    loss_total = r->loss.item().to_double();
    if (count) result.correct = count_correct(r->output, r->target_buffer);
    result.rows = batch_size;
    done = 1;
    result.stopped = on_batch && !on_batch(done, loss_total);
  }
  // The replays: the remaining batches in one run_epoch, or one by one around the sync.
  const Tensor output = count ? r->output : Tensor();
  while (done < batches && !result.stopped) {
    const int64_t start = done, span = sync_ ? 1 : batches - done;
    const double before = loss_total;
    if (before_step_) before_step_();
    const EpochResult part = bprop::run_epoch(
        r->capture, r->input_buffer, r->target_buffer, inputs, targets,
        slice(rows, 0, start * batch_size, 1, span * batch_size), batch_size, r->loss, output,
        [&](int64_t replayed, double running) {
          finish_step();
          const int64_t so_far = start + replayed;
          return !on_batch || on_batch(so_far, (before + running * static_cast<double>(replayed)) /
                                                   static_cast<double>(so_far));
        });
    const int64_t replayed = part.rows / batch_size;
    loss_total += part.mean_loss * static_cast<double>(replayed);
    done += replayed;
    result.correct += part.correct;
    result.rows += part.rows;
    result.stopped = part.stopped;
  }
  result.mean_loss = loss_total / static_cast<double>(done);
  return result;
}

EpochResult Trainer::run_epoch(const Tensor& inputs, const Tensor& targets, const Tensor& order,
                               int64_t batch_size, bool count_correct,
                               const BatchCallback& on_batch) {
  check_rows(inputs, targets, "Trainer.run_epoch");
  if (order.dtype() != DType::Int64 || order.ndim() != 1 || order.numel() == 0)
    throw std::invalid_argument("[Trainer.run_epoch] order must be a non-empty 1-d int64 tensor");
  if (batch_size < 1)
    throw std::invalid_argument("[Trainer.run_epoch] need batch_size >= 1, got " +
                                std::to_string(batch_size));
  if (count_correct && targets.dtype() != DType::Int64)
    throw std::invalid_argument("[Trainer.run_epoch] counting correct rows needs int64 targets");
  const int64_t n = order.numel();
  const int64_t batch = std::min(batch_size, n);
  const int64_t full = n / batch * batch;
  double loss_sum = 0.0;  // each batch's loss times its rows
  int64_t batches_before = 0;
  EpochResult result;
  // The full batches, then the last partial batch (kept: drop_last=False).
  struct Run {
    int64_t begin, end, size;  // rows [begin, end) of order, in batches of size
  };
  for (const Run run : {Run{0, full, batch}, Run{full, n, n - full}}) {
    // Named copies: a lambda may not capture structured bindings (C++17).
    const int64_t begin = run.begin, end = run.end, size = run.size;
    if (begin == end || result.stopped) continue;
    const int64_t offset = batches_before;
    const EpochResult part = train_batches(
        inputs, targets, slice(order, 0, begin, 1, end - begin), size, count_correct,
        [&](int64_t done, double running) {
          const double total = loss_sum + running * static_cast<double>(done * size);
          return !on_batch ||
                 on_batch(offset + done, total / static_cast<double>(begin + done * size));
        });
    loss_sum += part.mean_loss * static_cast<double>(part.rows);
    result.correct += part.correct;
    result.rows += part.rows;
    result.stopped = part.stopped;
    batches_before += part.rows / size;
  }
  result.mean_loss = loss_sum / static_cast<double>(result.rows);
  return result;
}

std::vector<EpochLog> Trainer::fit(const Tensor& inputs, const Tensor& targets, int64_t epochs,
                                   const FitOptions& options,
                                   const std::function<bool(const EpochLog&)>& on_epoch) {
  check_rows(inputs, targets, "Trainer.fit");
  if (options.batch_size < 1 || epochs < 0)
    throw std::invalid_argument("[Trainer.fit] need batch_size >= 1 and epochs >= 0, got " +
                                std::to_string(options.batch_size) + " and " +
                                std::to_string(epochs));
  const int64_t n = inputs.size(0);
  const bool classify = targets.dtype() == DType::Int64;
  std::vector<int64_t> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), int64_t{0});
  std::mt19937_64 rng(options.seed);
  std::vector<EpochLog> history;
  for (int64_t epoch = 1; epoch <= epochs; ++epoch) {
    if (options.shuffle) std::shuffle(order.begin(), order.end(), rng);
    const EpochResult result =
        run_epoch(inputs, targets, from_vector<int64_t>(order, {n}), options.batch_size, classify);
    EpochLog log;
    log.epoch = epoch;
    log.loss = result.mean_loss;
    log.accuracy = classify ? static_cast<double>(result.correct) / static_cast<double>(n)
                            : std::numeric_limits<double>::quiet_NaN();
    history.push_back(log);
    if (on_epoch && !on_epoch(log)) break;
  }
  return history;
}

}  // namespace bprop

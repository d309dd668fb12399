#include "bprop/capture.h"

#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
#include "bprop/bprop.h"
#include "launch/tape.h"

namespace bprop {

namespace tape {
LaunchTape*& active_tape() {
  thread_local LaunchTape* tape = nullptr;
  return tape;
}
}  // namespace tape

Capture::Capture() : tape_(std::make_unique<tape::LaunchTape>()) {}
Capture::~Capture() = default;

void Capture::record(const std::function<void()>& step) {
  if (tape::active_tape()) throw std::runtime_error("[capture] captures can't be nested");
  if (is_anomaly_enabled())
    throw std::runtime_error(
        "[capture] anomaly mode reads gradients during backward; turn it "
        "off to capture a step");
  tape::LaunchTape fresh;
  tape::active_tape() = &fresh;
  try {
    step();
  } catch (...) {
    tape::active_tape() = nullptr;
    throw;
  }
  tape::active_tape() = nullptr;
  *tape_ = std::move(fresh);
}

void Capture::replay() const {
  // Its random draws, zero-fills and checks would run once instead of being recorded.
  if (tape::active_tape())
    throw std::runtime_error(
        "[capture] a captured step can't be replayed while another capture "
        "is recording; call the step function itself instead");
  tape_->replay();
}
size_t Capture::launches() const { return tape_->size(); }

EpochResult run_epoch(const Capture& capture, const Tensor& input_buffer,
                      const Tensor& target_buffer, const Tensor& inputs, const Tensor& targets,
                      const Tensor& order, int64_t batch_size, const Tensor& loss,
                      const Tensor& output, const std::function<bool(int64_t, double)>& on_batch) {
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
    Tensor batch_targets = index_select(targets, 0, rows);
    assign_(target_buffer, batch_targets);
    capture.replay();
    total += loss.item().to_double();
    if (output.defined()) {
      std::vector<int64_t> predicted = to_vector<int64_t>(argmax(output, int64_t{-1}));
      std::vector<int64_t> truth = to_vector<int64_t>(batch_targets);
      for (size_t i = 0; i < predicted.size() && i < truth.size(); ++i)
        result.correct += predicted[i] == truth[i];
    }
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

bool is_capturing() { return tape::active_tape() != nullptr; }

void check_not_capturing(const char* what) {
  if (is_capturing())
    throw std::runtime_error(std::string("[capture] ") + what +
                             " can't be captured: a replay would not repeat it. Keep data-"
                             "dependent Python code (and printing) out of the captured step, "
                             "and make tensors from Python or numpy data before it");
}

}  // namespace bprop

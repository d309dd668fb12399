#include "bprop/capture.h"

#include <stdexcept>
#include <string>

#include "bprop/autograd.h"
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

bool is_capturing() { return tape::active_tape() != nullptr; }

void check_not_capturing(const char* what) {
  if (is_capturing())
    throw std::runtime_error(std::string("[capture] ") + what +
                             " can't be captured: a replay would not repeat it. Keep data-"
                             "dependent Python code (and printing) out of the captured step, "
                             "and make tensors from Python or numpy data before it");
}

}  // namespace bprop

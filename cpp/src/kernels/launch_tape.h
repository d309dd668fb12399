// Recording kernel launches for captured replay (see bprop/capture.h).
//
// While a Tape is active on this thread, each public kernel entry point appends a closure
// that launches it again with the same buffers and layout; nested launches (a kernel calling
// another) are not recorded separately. Everything a closure needs (shapes, strides) is copied;
// the buffers themselves must outlive the tape, which capture ensures.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "kernels/kernels.h"

namespace bprop::kernels {

class LaunchTape {
 public:
  LaunchTape() = default;
  LaunchTape(LaunchTape&&) = default;
  LaunchTape& operator=(LaunchTape&&) = default;
  void push(std::function<void()> launch) { launches_.push_back(std::move(launch)); }
  void replay() const {
    for (const auto& launch : launches_) launch();
  }
  size_t size() const { return launches_.size(); }
  void keep(std::shared_ptr<void> owner) { owners_.push_back(std::move(owner)); }

 private:
  std::vector<std::function<void()>> launches_;
  std::vector<std::shared_ptr<void>> owners_;  // the buffers the launches write and read
};

// The tape recording on this thread, or null.
LaunchTape*& active_tape();

// True when the caller is an outermost kernel launch being recorded; while a Recording is
// alive, nested launches on this thread are not recorded.
class Recording {
 public:
  Recording() : tape_(depth()++ == 0 ? active_tape() : nullptr) {}
  ~Recording() { --depth(); }
  Recording(const Recording&) = delete;
  Recording& operator=(const Recording&) = delete;
  explicit operator bool() const { return tape_ != nullptr; }
  void push(std::function<void()> launch) { tape_->push(std::move(launch)); }

 private:
  static int& depth() {
    thread_local int d = 0;
    return d;
  }
  LaunchTape* tape_;
};

// An Operand that owns a copy of its strides, for closures.
struct SavedOperand {
  void* data;
  DType dtype;
  std::vector<int64_t> strides;
  SavedOperand(const Operand& o, int ndim)
      : data(o.data), dtype(o.dtype), strides(o.strides, o.strides + ndim) {}
  Operand view() const { return {data, dtype, strides.data()}; }
};

}  // namespace bprop::kernels

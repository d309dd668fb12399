// Recording kernel launches for captured replay (see bprop/capture.h).
//
// This is the one boundary between the layers that build work (tensor, ops, autograd, optim)
// and the kernels, which know nothing of it. While a Tape is active on this thread, every
// kernel the upper layers start through launch() (launch/launch.h) is appended as a closure
// that starts it again with the same buffers and layout; work that is not a kernel but must be
// repeated (a .grad binding, an optimizer step as a whole, a check of index values) is
// recorded here too. Launches made while a recorded call runs are not recorded separately.
// Everything a closure needs (shapes, strides) is copied; the buffers themselves must outlive
// the tape, which capture ensures.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <utility>
#include <vector>

namespace bprop::tape {

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

// True when the caller is an outermost launch being recorded; while a Recording is alive,
// nested launches on this thread are not recorded.
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

// Puts the tape of this thread aside: what runs meanwhile is neither recorded nor kept.
class Suspended {
 public:
  Suspended() : saved_(std::exchange(active_tape(), nullptr)) {}
  ~Suspended() { active_tape() = saved_; }
  Suspended(const Suspended&) = delete;
  Suspended& operator=(const Suspended&) = delete;

 private:
  LaunchTape* saved_;
};

// Work outside kernels that a replay must repeat: while a capture records on this thread,
// appends on_replay to its tape at this point; then runs now() with the capture suspended.
template <typename Now, typename OnReplay>
void now_and_on_replay(Now&& now, OnReplay&& on_replay) {
  if (Recording rec; rec) rec.push(std::forward<OnReplay>(on_replay));
  Suspended suspended;
  now();
}

}  // namespace bprop::tape

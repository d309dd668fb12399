// Captured replay: run a training step once while recording every kernel launch it makes (and
// the optimizer updates), then replay that recording with new input values, with no Python
// and no graph building per op. Replay runs exactly the same launches on the same buffers, so
// its results are bit for bit those of running the step again eagerly.
//
// What can't be captured: a step whose work depends on tensor values (Python control flow on
// .item(), masks turned into indices, printing tensors) or that makes tensors from Python or
// numpy data; each raises std::runtime_error naming the cause during recording. Indices and
// class targets read by gather, indexing and cross-entropy are re-validated on every replay.
// The buffers the step used before recording (parameters, optimizer state) must stay alive
// and in place while the capture is replayed. The buffers of the tensors the step makes are
// the capture's: a tensor freed during the step lends its buffer to a later one, as in eager
// mode, and those still alive at its end (the loss, gradients, state made by a first step)
// keep theirs alone, so their values carry from one replay to the next.
//
// Which tensor is each leaf's .grad is part of the recording: zero_grad(set_to_none) and the
// gradients backward binds are replayed too, so several captures of one model (say, for two
// batch sizes) each find their own gradient buffers.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bprop/tensor.h"

namespace bprop {

namespace tape {
class LaunchTape;
}

class Capture {
 public:
  Capture();
  ~Capture();
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Runs step with recording on (it does its work for real) and keeps what it recorded.
  void record(const std::function<void()>& step);
  // Runs the recorded launches again. Throws std::runtime_error if a leaf's .grad that the step
  // read before setting it (a gradient accumulated over calls) is not the tensor, or None, that
  // it was when recorded: the recording would not do what the step does now.
  void replay() const;
  // Whether those .grad are as recorded, so that replay() would run.
  bool grads_as_recorded() const;
  size_t launches() const;
  // Bytes of the buffers the recorded step made, as its replays use them: intermediates whose
  // lifetimes do not overlap share one.
  size_t buffer_bytes() const;
  // The recorded program, one line per instruction: each kernel launch's name and arguments
  // (buffers as s<slot>+<byte offset> in the capture's memory, or @<address> outside it), and
  // each host step's name (Note [Captured programs] in src/launch/program.h).
  std::string describe() const;
  // Where a replay's time goes: runs `replays` replays timing each instruction, and returns
  // per kernel or host step name its instructions in the program and their mean time per
  // replay in seconds, the slowest first.
  struct ProfileRow {
    std::string name;
    size_t count;
    double seconds;
  };
  std::vector<ProfileRow> profile(int replays) const;
  // The same timing launch by launch, in program order: each instruction's describe() line and
  // its mean time per replay in seconds (which launch of a kind is the slow one: a product
  // whose output is cold, say).
  struct LaunchRow {
    std::string line;
    double seconds;
  };
  std::vector<LaunchRow> profile_launches(int replays) const;

 private:
  // Each instruction's mean time per replay over `replays` replays (the profiles).
  std::vector<double> time_launches(int replays) const;

  std::unique_ptr<tape::LaunchTape> tape_;
  size_t recorded_ = 0;  // instructions before the passes
  struct {
    size_t dropped = 0, fused = 0, forwarded = 0, pieces = 0, epilogues = 0;  // the passes' work
  } report_;
};

bool is_capturing();
// Throws std::runtime_error when a capture is recording on this thread: `what` reads tensor
// values or does something else a replay could not repeat.
void check_not_capturing(const char* what);

}  // namespace bprop

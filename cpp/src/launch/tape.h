// Recording kernel launches for captured replay (see bprop/capture.h).
//
// This is the one boundary between the layers that build work (tensor, ops, autograd, optim)
// and the kernels, which know nothing of it. While a Tape is active on this thread, every
// kernel the upper layers start through launch() (launch/launch.h) is appended as an Instr of
// plain data (Note [Captured programs] in launch/program.h): the kernel by name, its values,
// shapes and strides copied, its buffers as slots of the tape's pool or addresses; work that
// is not a kernel but must be repeated (a .grad binding, an optimizer step as a whole, a check
// of index values) is appended as a named host step. Launches made while a recorded call runs
// are not recorded separately. The buffers made before the recording must outlive the tape,
// which capture ensures.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "bprop/dtype.h"

namespace bprop::tape {

// Note [Capture memory]
// A replay runs the recorded launches on the buffers they ran on, so every buffer the step made
// must outlive the recording. Keeping each one alive (as the first captures did) made a replay
// touch a distinct buffer for every intermediate of the step: a GPT step's replay held 348 MB
// against eager's 282 and ran 4% slower than eager, its buffers cold in cache. So the tensors
// a recording makes take their buffers from its pool, and a tensor freed while recording gives
// its buffer back for a later tensor of the same size, as eager mode's block cache would.
//
// Reuse as it happened while recording is not always safe to replay. A tensor alive when the
// recording ends (optimizer state made by the first step, a gradient, the loss) keeps its value
// from one replay to the next, and a buffer an earlier, freed tensor of the step also used
// would be written over by that tensor's launches at the next replay. So each buffer made while
// recording is a slot, and launches record a slot and an offset rather than an address (every
// buffer argument of an Instr: Note [Captured programs]). When the recording ends (end_recording(),
// the passes of capture/passes.cpp, then plan()), every slot still alive keeps its buffer alone,
// and each freed slot, in the order they were made, gets the first buffer of its size that no slot
// still alive holds and whose slots' spans its own does not overlap (its own recording buffer tried
// first), or a new one. A slot's span runs from its making to its freeing, counted in launches:
// every launch that refers to it lies within, and a pass that moves a launch stretches the spans of
// the slots it uses to match (extend_use later, extend_use_back earlier). Buffers no slot is given
// go. A tensor a recorded host step holds (a dropout mask redrawn on replay, an arange rewritten,
// the indices a replay checks again) is alive when the recording ends, so its buffer is its own.
// (CUDA graphs' private memory pool, with the live-out buffers made exclusive.) A buffer goes
// when neither the pool (the capture) nor a tensor holds it: a tensor that outlives the capture
// keeps its own buffer only.
struct PoolBlock {
  void* data;
  size_t bytes;
  explicit PoolBlock(size_t n);  // 64-byte aligned; throws std::bad_alloc
  PoolBlock(const PoolBlock&) = delete;
  PoolBlock& operator=(const PoolBlock&) = delete;
  ~PoolBlock();
};

class BufferPool {
 public:
  BufferPool() = default;
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;
  // A buffer of `bytes` (a multiple of 64) for a tensor of `used` bytes made while recording,
  // one given back or a new one, and its slot. Throws std::bad_alloc.
  std::pair<std::shared_ptr<PoolBlock>, int64_t> take(size_t bytes, size_t used);
  // The slot's tensor is gone: while recording, its buffer may be taken again.
  void give_back(int64_t slot);
  // The launch count, for the spans of slots: the tape counts each launch it records.
  void tick() { clock_.fetch_add(1, std::memory_order_relaxed); }
  // The recording is over: no buffer is taken again; which slots are held to the end is fixed.
  void end_recording();
  // A pass moved a launch that uses the slot to launch count `until - 1`, or `from`: its span
  // grows to cover it.
  void extend_use(int64_t slot, size_t until);
  void extend_use_back(int64_t slot, size_t from);
  // The bytes of the tensor the slot was made for.
  size_t used_bytes(int64_t slot) const { return slots_[static_cast<size_t>(slot)].used; }
  // After end_recording(): how many slots there are; and, for the passes, that no launch refers
  // to a slot (not held to the end) any more, so plan() gives it no buffer.
  size_t slot_count() const { return slots_.size(); }
  void unused(int64_t slot) { slots_[static_cast<size_t>(slot)].unused = true; }
  // After end_recording() and the passes: each slot gets the buffer replays use (see the note).
  void plan();
  // Where a pointer a launch takes points: a slot and an offset, or the address itself.
  struct Ref {
    int64_t slot;  // -1: `where` is the address
    uintptr_t where;
  };
  Ref refer(const void* p) const;
  void* resolve(const Ref& ref) const {
    return ref.slot < 0 ? reinterpret_cast<void*>(ref.where)
                        : static_cast<char*>(address_[static_cast<size_t>(ref.slot)]) + ref.where;
  }
  // Whether `data` is the start of a buffer this pool made.
  bool holds(const void* data) const;
  // What the buffers replays use come to, in bytes (after plan()).
  size_t bytes() const;
  // After end_recording(), for the passes (capture/passes.cpp): whether the slot's tensor was
  // alive when the recording ended (its value carries from one replay to the next).
  bool held_to_the_end(int64_t slot) const { return held_[static_cast<size_t>(slot)]; }

 private:
  struct Slot {
    size_t bytes;
    size_t used;  // the tensor's bytes
    void* block;  // the buffer it had while recording
    size_t made, freed;
    bool alive;
    bool unused = false;  // no launch refers to it after the passes
  };
  mutable std::mutex mutex_;
  std::atomic<size_t> clock_{0};
  bool recording_ = true;
  std::vector<Slot> slots_;
  std::unordered_map<const void*, std::shared_ptr<PoolBlock>> blocks_;  // by address
  std::map<uintptr_t, int64_t> leased_;         // start of a buffer -> the slot in it now
  std::vector<std::pair<size_t, void*>> free_;  // buffers given back, the latest last
  std::vector<void*> address_;                  // each slot's buffer in replays
  std::vector<bool> held_;                      // each slot alive when the recording ended
};

// One argument of a recorded kernel launch (Note [Captured programs] in launch/program.h).
struct Arg {
  // Int, Float, Bytes: a value (an integer, bool or enum; a floating point number; a small
  // struct such as Window2d), kept as its object representation in `bytes`.
  enum class Kind : uint8_t { Int, Float, Bytes, Array, Buffer, Operand };
  Kind kind = Kind::Bytes;
  bool written = false;              // Buffer, Operand: the kernel writes it (and may read it)
  DType dtype = DType::Float32;      // Operand
  BufferPool::Ref buffer{-1, 0};     // Buffer, Operand
  std::vector<int64_t> array;        // Array: its values; Operand: its strides
  std::vector<unsigned char> bytes;  // Int, Float, Bytes
};

struct Instr {
  int kernel = -1;             // index in kernel_table(); -1: a host step
  std::vector<Arg> args;       // a kernel's arguments, in its parameter order
  const char* name = "";       // the kernel's name, or the host step's
  std::function<void()> host;  // a host step's work
  size_t at = 0;               // the launch count when it was recorded (BufferPool's clock)
};

class LaunchTape {
 public:
  LaunchTape() : pool_(std::make_shared<BufferPool>()) {}
  LaunchTape(LaunchTape&&) = default;
  // The old program (its host steps' closures) goes before the old pool.
  LaunchTape& operator=(LaunchTape&& other) noexcept {
    program_ = std::move(other.program_);
    owners_ = std::move(other.owners_);
    grad_guards_ = std::move(other.grad_guards_);
    grads_touched_ = std::move(other.grads_touched_);
    pool_ = std::move(other.pool_);
    return *this;
  }
  void push(Instr instr) {
    instr.at = program_.size();
    program_.push_back(std::move(instr));
    pool_->tick();
  }
  // Work outside the kernels that a replay repeats (Note [Captured programs]).
  void push_host(const char* name, std::function<void()> work) {
    Instr instr;
    instr.name = name;
    instr.host = std::move(work);
    push(std::move(instr));
  }
  void replay() const;  // capture.cpp
  std::vector<Instr>& program() { return program_; }
  const std::vector<Instr>& program() const { return program_; }
  size_t size() const { return program_.size(); }
  // A buffer made before the recording (a parameter, an input) or not from the pool: the
  // launches read or write it, so it lives as long as the tape.
  void keep(std::shared_ptr<void> owner) { owners_.push_back(std::move(owner)); }
  const std::shared_ptr<BufferPool>& pool() const { return pool_; }

  // Note [A .grad from before the recording]
  // What a step does with a leaf's .grad depends on what .grad is when the step first touches
  // it: None, backward binds a new gradient; a tensor, backward adds into it (and an in-place
  // zero_grad zeroes it). A recording repeats what it saw, so it holds only while each leaf
  // whose .grad the step first read (not set: zero_grad(set_to_none) sets it) still has the
  // .grad it had then: a step accumulating gradients over calls, with no zero_grad of its own,
  // was recorded with .grad None and then replayed binding fresh gradients where eager mode
  // would have added to them. The first touch of each leaf while recording calls this, with a
  // guard (whether .grad is still as it was) for a read, or none for a set.
  void touch_grad(const void* leaf, std::function<bool()> guard) {
    if (grads_touched_.insert(leaf).second && guard) grad_guards_.push_back(std::move(guard));
  }
  // Whether every leaf's .grad the recording read from before it is as it was then.
  bool grads_as_recorded() const {
    for (const auto& guard : grad_guards_)
      if (!guard()) return false;
    return true;
  }

 private:
  // The pool first: the program refers to it and goes before it.
  std::shared_ptr<BufferPool> pool_;  // the buffers the step made (Note [Capture memory])
  std::vector<Instr> program_;
  std::vector<std::shared_ptr<void>> owners_;
  std::vector<std::function<bool()>> grad_guards_;  // Note [A .grad from before the recording]
  std::unordered_set<const void*> grads_touched_;   // while recording: leaves touched so far
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
  void push(Instr instr) const { tape_->push(std::move(instr)); }
  void push_host(const char* name, std::function<void()> work) const {
    tape_->push_host(name, std::move(work));
  }
  LaunchTape& tape() const { return *tape_; }

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
void now_and_on_replay(const char* name, Now&& now, OnReplay&& on_replay) {
  if (Recording rec; rec) rec.push_host(name, std::forward<OnReplay>(on_replay));
  Suspended suspended;
  now();
}

}  // namespace bprop::tape

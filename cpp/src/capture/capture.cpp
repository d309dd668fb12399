#include "bprop/capture.h"

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <unordered_set>

#include "bprop/autograd.h"
#include "launch/program.h"
#include "launch/tape.h"

namespace bprop {

namespace tape {
LaunchTape*& active_tape() {
  thread_local LaunchTape* tape = nullptr;
  return tape;
}

PoolBlock::PoolBlock(size_t n) : data(std::aligned_alloc(64, n)), bytes(n) {
  if (!data) throw std::bad_alloc();
}
PoolBlock::~PoolBlock() { std::free(data); }

std::pair<std::shared_ptr<PoolBlock>, int64_t> BufferPool::take(size_t bytes, size_t used) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (!recording_) throw std::logic_error("[capture] a buffer taken after the recording ended");
  std::shared_ptr<PoolBlock> block;
  for (size_t i = free_.size(); i-- > 0;) {
    if (free_[i].first != bytes) continue;
    block = blocks_.at(free_[i].second);
    free_.erase(free_.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  if (!block) {
    block = std::make_shared<PoolBlock>(bytes);
    blocks_.emplace(block->data, block);
  }
  const auto slot = static_cast<int64_t>(slots_.size());
  try {
    slots_.push_back({bytes, used, block->data, clock_.load(std::memory_order_relaxed), 0, true});
    leased_[reinterpret_cast<uintptr_t>(block->data)] = slot;
  } catch (...) {
    if (slots_.size() > static_cast<size_t>(slot)) slots_.pop_back();
    free_.emplace_back(bytes, block->data);
    throw;
  }
  return {block, slot};
}

void BufferPool::give_back(int64_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.alive = false;
  if (!recording_) return;  // its buffer is the slot's in every replay: never taken again
  s.freed = clock_.load(std::memory_order_relaxed);
  leased_.erase(reinterpret_cast<uintptr_t>(s.block));
  free_.emplace_back(s.bytes, s.block);
}

void BufferPool::end_recording() {
  std::lock_guard<std::mutex> lock(mutex_);
  recording_ = false;
  leased_.clear();
  free_.clear();
  held_.assign(slots_.size(), false);
  for (size_t i = 0; i < slots_.size(); ++i) held_[i] = slots_[i].alive;
}

void BufferPool::extend_use(int64_t slot, size_t until) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.freed = std::max(s.freed, until);
}

void BufferPool::extend_use_back(int64_t slot, size_t from) {
  std::lock_guard<std::mutex> lock(mutex_);
  Slot& s = slots_[static_cast<size_t>(slot)];
  s.made = std::min(s.made, from);
}

void BufferPool::plan() {
  std::lock_guard<std::mutex> lock(mutex_);
  // Each buffer's users in replays: the spans of the slots given it.
  std::unordered_map<const void*, std::vector<std::pair<size_t, size_t>>> spans;
  std::unordered_set<const void*> held_buffers;
  address_.assign(slots_.size(), nullptr);
  for (size_t i = 0; i < slots_.size(); ++i)
    if (held_[i]) {
      address_[i] = slots_[i].block;
      held_buffers.insert(slots_[i].block);
    }
  for (size_t i = 0; i < slots_.size(); ++i) {
    if (held_[i] || slots_[i].unused) continue;
    const Slot& s = slots_[i];
    auto fits = [&](const void* data, size_t bytes) {
      if (bytes != s.bytes || held_buffers.count(data)) return false;
      for (const auto& [made, freed] : spans[data])
        if (made < s.freed && s.made < freed) return false;
      return true;
    };
    void* target = fits(s.block, s.bytes) ? s.block : nullptr;  // its own first, as recorded
    for (auto it = blocks_.begin(); !target && it != blocks_.end(); ++it)
      if (fits(it->first, it->second->bytes)) target = it->second->data;
    if (!target) {
      auto block = std::make_shared<PoolBlock>(s.bytes);
      blocks_.emplace(block->data, block);
      target = block->data;
    }
    spans[target].emplace_back(s.made, s.freed);
    address_[i] = target;
  }
  // A buffer no slot was given goes (a tensor still holding it keeps it alive on its own).
  std::unordered_set<const void*> used(address_.begin(), address_.end());
  for (auto it = blocks_.begin(); it != blocks_.end();)
    it = used.count(it->first) ? std::next(it) : blocks_.erase(it);
}

BufferPool::Ref BufferPool::refer(const void* p) const {
  const auto address = reinterpret_cast<uintptr_t>(p);
  std::lock_guard<std::mutex> lock(mutex_);
  auto it = leased_.upper_bound(address);
  if (it != leased_.begin()) {
    --it;
    const Slot& s = slots_[static_cast<size_t>(it->second)];
    if (address < it->first + s.bytes) return {it->second, address - it->first};
  }
  return {-1, address};
}

bool BufferPool::holds(const void* data) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return blocks_.count(data) != 0;
}

size_t BufferPool::bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  size_t total = 0;
  for (const auto& [data, block] : blocks_) total += block->bytes;
  return total;
}

void LaunchTape::replay() const {
  for (const Instr& instr : program_) run(instr, *pool_);
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
  fresh.pool()->end_recording();
  // Counted before the passes: a pass may take out more instructions than it reports (a sum of
  // pieces goes with their zero fills).
  recorded_ = fresh.program().size();
  const tape::PassReport report = tape::optimize(fresh.program(), *fresh.pool());
  fresh.pool()->plan();
  *tape_ = std::move(fresh);
  report_.dropped = report.dropped;
  report_.fused = report.fused;
  report_.forwarded = report.forwarded;
  report_.pieces = report.pieces;
  report_.epilogues = report.epilogues;
}

void Capture::replay() const {
  // Its random draws, zero-fills and checks would run once instead of being recorded.
  if (tape::active_tape())
    throw std::runtime_error(
        "[capture] a captured step can't be replayed while another capture "
        "is recording; call the step function itself instead");
  if (!tape_->grads_as_recorded())
    throw std::runtime_error(
        "[capture] a parameter's .grad is not what it was when the step was recorded (None "
        "then and a tensor now, or another tensor): the recording would not do what the step "
        "does now (bind a fresh gradient instead of adding to .grad, or the reverse); record "
        "the step again for this state, or zero the gradients inside the step");
  tape_->replay();
}

bool Capture::grads_as_recorded() const { return tape_->grads_as_recorded(); }
std::string Capture::describe() const {
  return "# " + std::to_string(recorded_) + " instructions recorded, " +
         std::to_string(report_.dropped) + " unused launches dropped, " +
         std::to_string(report_.fused) + " elementwise launches fused into the next, " +
         std::to_string(report_.forwarded) + " copies forwarded, " +
         std::to_string(report_.pieces) + " pieces added in place, " +
         std::to_string(report_.epilogues) + " elementwise launches joined into a product\n" +
         tape::describe(tape_->program());
}

std::vector<double> Capture::time_launches(int replays) const {
  if (replays < 1)
    throw std::invalid_argument("[capture] profile needs at least one replay, got " +
                                std::to_string(replays));
  if (tape::active_tape())
    throw std::runtime_error("[capture] a captured step can't be profiled while a capture records");
  const auto& program = tape_->program();
  std::vector<double> seconds(program.size(), 0.0);
  for (int r = 0; r < replays; ++r)
    for (size_t i = 0; i < program.size(); ++i) {
      const auto start = std::chrono::steady_clock::now();
      tape::run(program[i], *tape_->pool());
      seconds[i] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  for (double& s : seconds) s /= replays;
  return seconds;
}

std::vector<Capture::ProfileRow> Capture::profile(int replays) const {
  const std::vector<double> seconds = time_launches(replays);
  const auto& program = tape_->program();
  std::vector<ProfileRow> rows;
  std::unordered_map<std::string, size_t> row_of;
  for (size_t i = 0; i < program.size(); ++i) {
    auto [it, added] = row_of.emplace(program[i].name, rows.size());
    if (added) rows.push_back({program[i].name, 0, 0.0});
    rows[it->second].count += 1;
    rows[it->second].seconds += seconds[i];
  }
  std::stable_sort(rows.begin(), rows.end(),
                   [](const ProfileRow& a, const ProfileRow& b) { return a.seconds > b.seconds; });
  return rows;
}

std::vector<Capture::LaunchRow> Capture::profile_launches(int replays) const {
  const std::vector<double> seconds = time_launches(replays);
  const auto& program = tape_->program();
  std::vector<LaunchRow> rows;
  rows.reserve(program.size());
  for (size_t i = 0; i < program.size(); ++i)
    rows.push_back({tape::describe(program[i]), seconds[i]});
  return rows;
}

size_t Capture::launches() const { return tape_->size(); }
size_t Capture::buffer_bytes() const { return tape_->pool() ? tape_->pool()->bytes() : 0; }

bool is_capturing() { return tape::active_tape() != nullptr; }

void check_not_capturing(const char* what) {
  if (is_capturing())
    throw std::runtime_error(std::string("[capture] ") + what +
                             " can't be captured: a replay would not repeat it. Keep data-"
                             "dependent Python code (and printing) out of the captured step, "
                             "and make tensors from Python or numpy data before it");
}

}  // namespace bprop

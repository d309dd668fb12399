#include "bprop/capture.h"

#include <cstdlib>
#include <new>
#include <stdexcept>
#include <string>
#include <unordered_set>

#include "bprop/autograd.h"
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

std::pair<std::shared_ptr<PoolBlock>, int64_t> BufferPool::take(size_t bytes) {
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
    slots_.push_back({bytes, block->data, clock_.load(std::memory_order_relaxed), 0, true});
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

void BufferPool::plan() {
  std::lock_guard<std::mutex> lock(mutex_);
  recording_ = false;
  leased_.clear();
  free_.clear();
  // Each buffer's users in replays: the spans of the slots that keep it.
  std::unordered_map<const void*, std::vector<std::pair<size_t, size_t>>> spans;
  std::unordered_set<const void*> held_to_the_end;
  for (const Slot& s : slots_)
    if (s.alive) held_to_the_end.insert(s.block);
  address_.assign(slots_.size(), nullptr);
  std::vector<size_t> moved;
  for (size_t i = 0; i < slots_.size(); ++i) {
    const Slot& s = slots_[i];
    if (s.alive) {
      address_[i] = s.block;
    } else if (held_to_the_end.count(s.block)) {
      moved.push_back(i);
    } else {
      address_[i] = s.block;
      spans[s.block].emplace_back(s.made, s.freed);
    }
  }
  for (const size_t i : moved) {
    const Slot& s = slots_[i];
    auto overlaps = [&](const void* block) {
      for (const auto& [made, freed] : spans[block])
        if (made < s.freed && s.made < freed) return true;
      return false;
    };
    void* target = nullptr;
    for (const auto& [data, block] : blocks_)
      if (block->bytes == s.bytes && !held_to_the_end.count(data) && !overlaps(data)) {
        target = block->data;
        break;
      }
    if (!target) {
      auto block = std::make_shared<PoolBlock>(s.bytes);
      blocks_.emplace(block->data, block);
      target = block->data;
    }
    spans[target].emplace_back(s.made, s.freed);
    address_[i] = target;
  }
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

BufferRef::BufferRef(const void* p) : ref_{-1, reinterpret_cast<uintptr_t>(p)} {
  if (LaunchTape* tape = active_tape()) {
    pool_ = tape->pool().get();
    ref_ = pool_->refer(p);
  }
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
  fresh.pool()->plan();
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

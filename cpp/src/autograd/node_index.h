// NodeIndex: the engine's map from a graph node to its position of discovery.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "bprop/autograd.h"

namespace bprop::autograd_detail {

// Node -> position of discovery: open addressing on the pointer, much cheaper per lookup than
// std::unordered_map on the engine's hot path (two lookups per edge).
class NodeIndex {
 public:
  static constexpr size_t kMissing = ~size_t{0};

  size_t find(const Node* node) const {
    if (slots_.empty()) return kMissing;
    for (size_t i = hash(node);; i = (i + 1) & mask_) {
      if (slots_[i].node == node) return slots_[i].index;
      if (!slots_[i].node) return kMissing;
    }
  }
  // The index of node, inserting `next` if it is new; `inserted` says which.
  size_t insert(const Node* node, size_t next, bool* inserted) {
    if (2 * (count_ + 1) > slots_.size()) grow();
    for (size_t i = hash(node);; i = (i + 1) & mask_) {
      if (slots_[i].node == node) {
        *inserted = false;
        return slots_[i].index;
      }
      if (!slots_[i].node) {
        slots_[i] = {node, next};
        ++count_;
        *inserted = true;
        return next;
      }
    }
  }

 private:
  struct Slot {
    const Node* node = nullptr;
    size_t index = 0;
  };
  size_t hash(const Node* node) const {
    return (reinterpret_cast<uintptr_t>(node) >> 4) * 0x9E3779B97F4A7C15ULL >> 20 & mask_;
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    mask_ = slots_.size() - 1;
    count_ = 0;
    bool inserted;
    for (const Slot& slot : old)
      if (slot.node) insert(slot.node, slot.index, &inserted);
  }
  std::vector<Slot> slots_;
  size_t mask_ = 0, count_ = 0;
};

}  // namespace bprop::autograd_detail

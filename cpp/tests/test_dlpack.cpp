// DLPack: to_dlpack/from_dlpack round trips, strides and byte offsets, deleter calls, errors.
#include <doctest/doctest.h>

#include <cstdint>
#include <type_traits>
#include <vector>

#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

// A hand-made producer: a DLManagedTensor[Versioned] over `buffer` that counts deleter calls.
struct Producer {
  std::vector<double> buffer;
  std::vector<int64_t> shape, strides;
  int deleted = 0;
};

template <typename Managed>
Managed* produce(Producer& p, uint64_t byte_offset) {
  auto* m = new Managed{};
  if constexpr (std::is_same_v<Managed, dlpack::DLManagedTensorVersioned>) m->version = {1, 0};
  m->dl_tensor.data = p.buffer.data();
  m->dl_tensor.device = {dlpack::kDLCPU, 0};
  m->dl_tensor.ndim = static_cast<int32_t>(p.shape.size());
  m->dl_tensor.dtype = {dlpack::kDLFloat, 64, 1};
  m->dl_tensor.shape = p.shape.data();
  m->dl_tensor.strides = p.strides.data();
  m->dl_tensor.byte_offset = byte_offset;
  m->manager_ctx = &p;
  m->deleter = [](Managed* self) {
    ++static_cast<Producer*>(self->manager_ctx)->deleted;
    delete self;
  };
  return m;
}

}  // namespace

TEST_SUITE("dlpack") {
  TEST_CASE("dlpack round trip, strides, byte offsets and deleter calls") {
    // Export a transposed view and import it again: same memory, same strides.
    Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
    Tensor xt = transpose(x, 0, 1);
    dlpack::DLManagedTensorVersioned* exported = to_dlpack_versioned(xt);
    CHECK(exported->version.major == 1);
    CHECK(exported->flags == 0);
    CHECK(exported->dl_tensor.device.device_type == dlpack::kDLCPU);
    CHECK(exported->dl_tensor.dtype.code == dlpack::kDLFloat);
    CHECK(exported->dl_tensor.dtype.bits == 64);
    CHECK(exported->dl_tensor.strides[0] == 1);
    CHECK(exported->dl_tensor.strides[1] == 3);
    Tensor y = from_dlpack(exported);
    CHECK(y.data() == xt.data());
    CHECK(y.strides() == xt.strides());
    check_values(y, {3, 2}, {1, 4, 2, 5, 3, 6});
    x = Tensor();
    xt = Tensor();
    check_values(y, {3, 2}, {1, 4, 2, 5, 3, 6});  // the export keeps the storage alive

    // The legacy struct, and an unconsumed export freed by its owner.
    dlpack::DLManagedTensor* legacy = to_dlpack(from_vector<int64_t>({7, 8}, {2}));
    CHECK(legacy->dl_tensor.dtype.code == dlpack::kDLInt);
    Tensor z = from_dlpack(legacy);
    CHECK(to_vector<int64_t>(z) == std::vector<int64_t>{7, 8});
    dlpack::DLManagedTensor* unused = to_dlpack(z);
    unused->deleter(unused);

    // A foreign producer: byte offset, a zero stride and a negative one; the deleter runs
    // once, when the last view of the imported storage goes.
    Producer p{{0, 1, 2, 3, 4, 5, 6, 7}, {2, 3}, {0, -1}, 0};
    {
      Tensor t = from_dlpack(produce<dlpack::DLManagedTensorVersioned>(p, 3 * sizeof(double)));
      check_values(t, {2, 3}, {3, 2, 1, 3, 2, 1});
      Tensor row = select(t, 0, 1);
      t = Tensor();
      CHECK(p.deleted == 0);
      check_values(row, {3}, {3, 2, 1});
      p.buffer[1] = 10;  // shared, not copied
      check_values(row, {3}, {3, 2, 10});
    }
    CHECK(p.deleted == 1);

    // Read-only exports are copied (the deleter runs at once) or refused.
    Producer q{{1, 2}, {2}, {1}, 0};
    auto* read_only = produce<dlpack::DLManagedTensorVersioned>(q, 0);
    read_only->flags = dlpack::kFlagReadOnly;
    CHECK_THROWS_AS(from_dlpack(read_only, DLPackCopy::Never), std::invalid_argument);
    CHECK(q.deleted == 0);  // a failed import leaves ownership with the caller
    Tensor copied = from_dlpack(read_only);
    CHECK(q.deleted == 1);
    CHECK(copied.data() != static_cast<void*>(q.buffer.data()));
    check_values(copied, {2}, {1, 2});

    // Unsupported dtypes and devices throw and take nothing.
    Producer r{{1}, {1}, {1}, 0};
    auto* bad = produce<dlpack::DLManagedTensor>(r, 0);
    bad->dl_tensor.dtype = {dlpack::kDLFloat, 16, 1};
    CHECK_THROWS_AS(from_dlpack(bad), TypeError);
    bad->dl_tensor.dtype = {dlpack::kDLFloat, 64, 1};
    bad->dl_tensor.device = {dlpack::kDLCUDA, 0};
    CHECK_THROWS_AS(from_dlpack(bad), std::invalid_argument);
    CHECK(r.deleted == 0);
    bad->deleter(bad);
    CHECK(r.deleted == 1);
    auto* newer = produce<dlpack::DLManagedTensorVersioned>(r, 0);
    newer->version = {2, 0};  // a future major version: read nothing past the version
    CHECK_THROWS_AS(from_dlpack(newer), std::invalid_argument);
    newer->deleter(newer);
    CHECK(r.deleted == 2);

    // A tensor that requires grad is not exported.
    CHECK_THROWS_AS(to_dlpack(f64({1}, {1}, true)), std::runtime_error);
  }
}

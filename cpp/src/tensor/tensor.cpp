#include "bprop/tensor.h"

#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <new>
#include <sstream>
#include <utility>
#include <vector>

#include "bprop/autograd.h"
#include "bprop/capture.h"
#include "bprop/ops.h"
#include "kernels/kernels.h"
#include "kernels/parallel.h"
#include "launch/launch.h"
#include "tensor/meta_lock.h"

namespace bprop {

namespace {
std::atomic<DType> g_default_dtype{DType::Float32};
}  // namespace

// ---- Storage's block cache ----

namespace {
// Note [Block cache]
// A training step frees and allocates the same large buffers every step (activations,
// gradients). From malloc those come back as fresh pages more often than not (glibc returns
// big blocks to the system and takes them again), and every page costs a fault and a zeroing
// in the kernel: 750 faults, about 1 ms, of a 9 ms MLP 784-512-512-10 step on the Xeon of
// docs/performance.md. So blocks of 64 KiB and more are kept when freed, up to
// BPROP_BLOCK_CACHE_MB in all (default 64; 0 turns the cache off), oldest given back first,
// and an allocation of the same rounded size takes one. Sanitizer builds keep it off, so that
// a use after free is still caught. The lock is held for the bookkeeping only (at most the
// vectors' own growth), never across a free of a block, and the fork handler takes it.
constexpr size_t kCachedBlockMin = size_t{64} << 10;

struct BlockCache {
  std::mutex mutex;
  std::vector<std::pair<size_t, void*>> blocks;  // (bytes, block), the latest freed last
  size_t bytes = 0;
  size_t limit = 0;
};

BlockCache& block_cache() {
  // Never destroyed: tensors may be freed after static destructors have run.
  static BlockCache* cache = [] {
    auto* c = new BlockCache;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    c->limit = 0;
#else
    const char* env = std::getenv("BPROP_BLOCK_CACHE_MB");
    c->limit = (env ? static_cast<size_t>(std::strtoull(env, nullptr, 10)) : size_t{64}) << 20;
#endif
    return c;
  }();
  return *cache;
}

// The size a block of `nbytes` is allocated with: 64-byte multiples, whole pages for blocks
// the cache keeps (so nearby sizes share blocks).
size_t block_bytes(size_t nbytes) {
  const size_t unit = nbytes >= kCachedBlockMin ? 4096 : 64;
  return (std::max<size_t>(nbytes, 1) + unit - 1) / unit * unit;
}

void* take_cached_block(size_t bytes) {
  if (bytes < kCachedBlockMin) return nullptr;
  BlockCache& cache = block_cache();
  if (cache.limit == 0) return nullptr;
  std::lock_guard<std::mutex> lock(cache.mutex);
  for (size_t i = cache.blocks.size(); i-- > 0;) {
    if (cache.blocks[i].first != bytes) continue;
    void* block = cache.blocks[i].second;
    cache.blocks.erase(cache.blocks.begin() + static_cast<std::ptrdiff_t>(i));
    cache.bytes -= bytes;
    return block;
  }
  return nullptr;
}

void release_block(void* block, size_t bytes) {
  BlockCache& cache = block_cache();
  if (bytes < kCachedBlockMin || bytes > cache.limit / 2) return std::free(block);
  std::vector<void*> evicted;
  {
    std::lock_guard<std::mutex> lock(cache.mutex);
    size_t drop = 0;
    while (drop < cache.blocks.size() && cache.bytes + bytes > cache.limit) {
      cache.bytes -= cache.blocks[drop].first;
      evicted.push_back(cache.blocks[drop++].second);
    }
    cache.blocks.erase(cache.blocks.begin(),
                       cache.blocks.begin() + static_cast<std::ptrdiff_t>(drop));
    cache.blocks.emplace_back(bytes, block);
    cache.bytes += bytes;
  }
  for (void* old : evicted) std::free(old);
}
// A buffer for a tensor made while a capture records, from the recording's pool, given back
// to it when the last view of the tensor goes (Note [Capture memory] in launch/tape.h).
// The tensor holds its buffer, not the pool: one that outlives its capture keeps only its own.
struct PoolLease {
  std::weak_ptr<tape::BufferPool> pool;
  std::shared_ptr<tape::PoolBlock> block;
  int64_t slot;
  PoolLease(const std::shared_ptr<tape::BufferPool>& p, std::shared_ptr<tape::PoolBlock> b,
            int64_t s)
      : pool(p), block(std::move(b)), slot(s) {}
  PoolLease(const PoolLease&) = delete;
  PoolLease& operator=(const PoolLease&) = delete;
  ~PoolLease() {
    if (auto owner = pool.lock()) owner->give_back(slot);
  }
};

std::shared_ptr<Storage> pooled_storage(const std::shared_ptr<tape::BufferPool>& pool,
                                        size_t nbytes, bool zeroed) {
  auto [block, slot] = pool->take(block_bytes(nbytes), nbytes);
  void* data = block->data;
  std::shared_ptr<PoolLease> lease;
  try {
    lease = std::make_shared<PoolLease>(pool, std::move(block), slot);
  } catch (...) {
    pool->give_back(slot);
    throw;
  }
  if (zeroed) std::memset(data, 0, block_bytes(nbytes));
  return std::make_shared<Storage>(data, nbytes, std::move(lease));
}
}  // namespace

// ---- Note [Autograd metadata and threads] (tensor/meta_lock.h) ----

namespace detail {
namespace {
// 16 a pool: enough that threads updating different tensors rarely share one, and few enough
// that the fork handler's holding all of them at once (Note [Fork safety]) stays within what
// ThreadSanitizer's deadlock detector tracks (64 locks held by one thread).
constexpr size_t kMetaLocks = 16;
struct alignas(64) PaddedMutex {
  std::mutex mutex;
};
size_t lock_slot(const void* owner) {
  return (reinterpret_cast<uintptr_t>(owner) >> 6) % kMetaLocks;
}
PaddedMutex g_grad_locks[kMetaLocks];
PaddedMutex g_accumulator_locks[kMetaLocks];
PaddedMutex g_hook_locks[kMetaLocks];
std::atomic<uint64_t> g_fork_generation{1};

// ---- Note [Fork safety] (tensor/meta_lock.h) ----
void lock_all_for_fork() {
  for (PaddedMutex* pool : {g_grad_locks, g_accumulator_locks, g_hook_locks})
    for (size_t i = 0; i < kMetaLocks; ++i) pool[i].mutex.lock();
  generator_mutex().lock();
  block_cache().mutex.lock();
}
void unlock_all_after_fork() {
  block_cache().mutex.unlock();
  generator_mutex().unlock();
  for (PaddedMutex* pool : {g_grad_locks, g_accumulator_locks, g_hook_locks})
    for (size_t i = 0; i < kMetaLocks; ++i) pool[i].mutex.unlock();
}
void after_fork_in_child() {
  unlock_all_after_fork();
  g_fork_generation.fetch_add(1);
}
// At load time, before any thread can hold one of these locks. The kernels' handlers are
// registered first, so that their prepare handler runs after this one.
const bool g_fork_handlers_registered = [] {
  kernels::register_fork_handlers();
  pthread_atfork(lock_all_for_fork, unlock_all_after_fork, after_fork_in_child);
  return true;
}();
}  // namespace

std::mutex& grad_mutex(const TensorImpl* impl) { return g_grad_locks[lock_slot(impl)].mutex; }
std::mutex& accumulator_mutex(const TensorImpl* impl) {
  return g_accumulator_locks[lock_slot(impl)].mutex;
}
std::mutex& hook_mutex(const void* owner) { return g_hook_locks[lock_slot(owner)].mutex; }
uint64_t fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

void store_grad(TensorImpl& impl, Tensor grad) {
  std::lock_guard<std::mutex> lock(grad_mutex(&impl));
  std::swap(impl.grad, grad);  // the old one, now in `grad`, goes after the unlock
}
void touch_grad(const std::shared_ptr<TensorImpl>& leaf, bool reads) {
  tape::LaunchTape* tape = tape::active_tape();
  if (!tape) return;
  std::function<bool()> guard;
  if (reads) {  // .grad must stay the tensor it is now (or None)
    std::shared_ptr<TensorImpl> now;
    {
      std::lock_guard<std::mutex> lock(grad_mutex(leaf.get()));
      now = leaf->grad.impl_ptr();
    }
    guard = [weak_leaf = std::weak_ptr<TensorImpl>(leaf),
             weak_grad = std::weak_ptr<TensorImpl>(now), had_grad = now != nullptr] {
      const std::shared_ptr<TensorImpl> l = weak_leaf.lock();
      if (!l) return false;
      std::lock_guard<std::mutex> lock(grad_mutex(l.get()));
      const std::shared_ptr<TensorImpl>& grad = l->grad.impl_ptr();
      return had_grad ? grad && grad == weak_grad.lock() : !grad;
    };
  }
  tape->touch_grad(leaf.get(), std::move(guard));
}

}  // namespace detail

DType default_dtype() { return g_default_dtype.load(std::memory_order_relaxed); }

void set_default_dtype(DType dtype) {
  if (!is_floating(dtype))
    throw TypeError(std::string("[set_default_dtype] only floating point dtypes can be the "
                                "default, not ") +
                    dtype_name(dtype));
  g_default_dtype.store(dtype, std::memory_order_relaxed);
}

// ---- Storage ---- (large buffers come from and go back to the block cache above)

Storage::Storage(size_t nbytes, bool zeroed) : nbytes_(nbytes) {
  if (nbytes <= kInlineBytes) {
    data_ = inline_;
    if (zeroed) std::memset(inline_, 0, kInlineBytes);
    return;
  }
  const size_t bytes = block_bytes(nbytes);
  data_ = take_cached_block(bytes);
  if (!data_) data_ = std::aligned_alloc(64, bytes);
  if (!data_) throw std::bad_alloc();
  if (zeroed) std::memset(data_, 0, bytes);
}

Storage::Storage(void* data, size_t nbytes, std::shared_ptr<void> owner)
    : data_(data), nbytes_(nbytes), owner_(std::move(owner)) {}

Storage::~Storage() {
  if (!owner_ && data_ != inline_) release_block(data_, block_bytes(nbytes_));
}

// ---- TensorImpl ----

TensorImpl::TensorImpl(std::shared_ptr<Storage> storage_, Shape shape_, Shape strides_,
                       int64_t offset_, DType dtype_)
    : storage(std::move(storage_)),
      shape(std::move(shape_)),
      strides(std::move(strides_)),
      offset(offset_),
      dtype(dtype_) {}

TensorImpl::~TensorImpl() {
  if (grad_fn) release_node(std::move(grad_fn));
}

// ---- shape helpers ----

std::string shape_to_string(const Shape& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) out << ", ";
    out << shape[i];
  }
  if (shape.size() == 1) out << ",";
  out << ")";
  return out.str();
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape)
    if (__builtin_mul_overflow(n, s, &n))
      throw std::invalid_argument("[shape] " + shape_to_string(shape) +
                                  " has more elements than a 64-bit count can hold");
  return n;
}

void check_countable(const char* op, const Shape& shape) {
  int64_t product = 1;
  for (int64_t size : shape)
    if (__builtin_mul_overflow(product, std::max<int64_t>(size, 1), &product) ||
        product > (int64_t{1} << 60))
      throw std::invalid_argument(std::string("[") + op + "] shape " + shape_to_string(shape) +
                                  " is too large: its sizes (zeros read as 1) multiply to more "
                                  "than 2^60");
}

Shape contiguous_strides(const Shape& shape) {
  // Only an empty shape can fail this here: any other that large would not fit in memory.
  check_countable("shape", shape);
  Shape strides(shape.size(), 1);
  int64_t stride = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    strides[i] = stride;
    stride *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

// ---- Tensor ----

Tensor Tensor::empty(const Shape& shape, DType dtype) { return allocate(shape, dtype, false); }
Tensor Tensor::zeros(const Shape& shape, DType dtype) { return allocate(shape, dtype, true); }

Tensor Tensor::allocate(const Shape& shape, DType dtype, bool zeroed) {
  for (int64_t s : shape)
    if (s < 0)
      throw std::invalid_argument("[empty] negative dimension in shape " + shape_to_string(shape));
  const int64_t numel = shape_numel(shape);
  int64_t nbytes = 0;
  if (__builtin_mul_overflow(numel, static_cast<int64_t>(itemsize(dtype)), &nbytes))
    throw std::invalid_argument("[empty] shape " + shape_to_string(shape) + " of " +
                                dtype_name(dtype) + " needs more bytes than memory can address");
  std::shared_ptr<Storage> storage;
  tape::LaunchTape* tape = tape::active_tape();
  try {
    storage = tape ? pooled_storage(tape->pool(), static_cast<size_t>(nbytes), zeroed)
                   : std::make_shared<Storage>(static_cast<size_t>(nbytes), zeroed);
  } catch (const std::bad_alloc&) {
    throw OutOfMemory("[empty] out of memory: can't allocate " + std::to_string(nbytes) +
                      " bytes for a " + dtype_name(dtype) + " tensor of shape " +
                      shape_to_string(shape));
  }
  // A replay zeroes again what began as zeros (unless the allocation is part of a recorded
  // launch, like an optimizer creating its state, which replays as a whole).
  if (tape && zeroed && nbytes > 0) record_launch(kernels::zero_bytes, nbytes, storage->data());
  return Tensor(
      std::make_shared<TensorImpl>(std::move(storage), shape, contiguous_strides(shape), 0, dtype));
}

Tensor Tensor::view_of(std::shared_ptr<Storage> storage, const Shape& shape, const Shape& strides,
                       int64_t offset, DType dtype) {
  return Tensor(std::make_shared<TensorImpl>(std::move(storage), shape, strides, offset, dtype));
}

Tensor Tensor::wrapped_scalar(Scalar value) {
  Tensor t;
  switch (value.kind()) {
    case Scalar::Kind::Bool:
      t = empty({}, DType::Bool);
      *t.data_as<bool>() = value.to_int() != 0;
      break;
    case Scalar::Kind::Int:
      t = empty({}, DType::Int64);
      *t.data_as<int64_t>() = value.to_int();
      break;
    case Scalar::Kind::Float:
      t = empty({}, DType::Float64);
      *t.data_as<double>() = value.to_double();
      break;
  }
  t.impl_->wrapped_scalar = true;
  // A replay writes the value again (its buffer may be written over in between).
  uint64_t bits = 0;
  std::memcpy(&bits, t.data(), itemsize(t.dtype()));
  record_launch(kernels::store_scalar, static_cast<int64_t>(itemsize(t.dtype())), bits, t.data());
  return t;
}

const Shape& Tensor::shape() const { return impl_->shape; }
const Shape& Tensor::strides() const { return impl_->strides; }
int64_t Tensor::offset() const { return impl_->offset; }
DType Tensor::dtype() const { return impl_->dtype; }
int64_t Tensor::numel() const { return shape_numel(impl_->shape); }
bool Tensor::is_wrapped_scalar() const { return impl_->wrapped_scalar; }
const std::shared_ptr<Storage>& Tensor::storage() const { return impl_->storage; }

namespace {
size_t checked_dim(const char* op, int64_t dim, int64_t ndim) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    throw std::out_of_range(std::string("[") + op + "] dimension " + std::to_string(dim) +
                            " is out of range for a tensor of " + std::to_string(ndim) +
                            " dimensions");
  return static_cast<size_t>(d);
}
}  // namespace

int64_t Tensor::size(int64_t dim) const { return impl_->shape[checked_dim("size", dim, ndim())]; }
int64_t Tensor::stride(int64_t dim) const {
  return impl_->strides[checked_dim("stride", dim, ndim())];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (size_t i = impl_->shape.size(); i-- > 0;) {
    if (impl_->shape[i] == 1) continue;
    if (impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::data() const {
  // A capture keeps every buffer its step touches that its pool does not own (made before it,
  // or wrapping numpy's): replays read them (Note [Capture memory]).
  if (tape::LaunchTape* tape = tape::active_tape())
    if (!tape->pool()->holds(impl_->storage->data())) tape->keep(impl_->storage);
  return static_cast<char*>(impl_->storage->data()) +
         impl_->offset * static_cast<int64_t>(itemsize(impl_->dtype));
}

bool Tensor::requires_grad() const { return impl_->requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  if (!is_leaf())
    throw std::runtime_error(
        "[requires_grad_] you can only change requires_grad flags of leaf tensors; use "
        ".detach() to get a leaf from a tensor computed by an op");
  if (requires_grad && !is_floating(dtype()))
    throw std::runtime_error(std::string("[requires_grad_] only tensors of floating point dtype "
                                         "can require gradients, not ") +
                             dtype_name(dtype()));
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }
const std::shared_ptr<Node>& Tensor::grad_fn() const { return impl_->grad_fn; }
Tensor Tensor::grad() const {
  detail::touch_grad(impl_, true);
  std::lock_guard<std::mutex> lock(detail::grad_mutex(impl_.get()));
  return impl_->grad;
}

void Tensor::set_grad(const Tensor& grad) {
  if (grad.defined()) {
    if (grad.shape() != shape())
      throw std::invalid_argument("[grad] assigned grad has shape " + grad.shape_str() +
                                  " but the tensor has shape " + shape_str());
    if (grad.dtype() != dtype())
      throw TypeError(std::string("[grad] assigned grad has dtype ") + dtype_name(grad.dtype()) +
                      " but the tensor has dtype " + dtype_name(dtype()));
  }
  detail::touch_grad(impl_, false);
  detail::store_grad(*impl_, grad);
  if (tape::Recording rec; rec)  // a capture replays .grad assignments (see capture.h)
    rec.push_host("bind_grad", [impl = impl_, grad] { detail::store_grad(*impl, grad); });
}

Tensor Tensor::detach() const {
  return view_of(impl_->storage, impl_->shape, impl_->strides, impl_->offset, impl_->dtype);
}

void Tensor::set_data(const Tensor& other) {
  if (!defined()) throw std::invalid_argument("[data] the tensor is undefined");
  if (!other.defined()) throw TypeError("[data] data has to be a tensor, got None");
  if (impl_->requires_grad && !is_floating(other.dtype()))
    throw std::runtime_error(std::string("[data] data set to a tensor that requires gradients "
                                         "must be floating point, got ") +
                             dtype_name(other.dtype()));
  if (impl_->grad_fn && (other.shape() != shape() || other.dtype() != dtype()))
    throw std::runtime_error("[data] can't change the shape or dtype of a tensor made by an op (" +
                             impl_->grad_fn->name() + "): its graph expects " +
                             std::string(dtype_name(dtype())) + " " + shape_str() + ", got " +
                             dtype_name(other.dtype()) + " " + other.shape_str());
  TensorImpl& source = *other.impl_;
  // Copies first: other may be this tensor, or a view of it.
  std::shared_ptr<Storage> storage = source.storage;
  Shape new_shape = source.shape, new_strides = source.strides;
  std::shared_ptr<TensorImpl> base = source.view_base;
  impl_->storage = std::move(storage);
  impl_->shape = std::move(new_shape);
  impl_->strides = std::move(new_strides);
  impl_->offset = source.offset;
  impl_->dtype = source.dtype;
  impl_->wrapped_scalar = false;
  // The views of one storage know their base: in-place ops on them rewrite its history.
  impl_->view_base = base.get() == impl_.get() ? nullptr : std::move(base);
}

void Tensor::backward(const Tensor& gradient, std::optional<bool> retain_graph,
                      bool create_graph) const {
  run_backward({*this}, {gradient}, retain_graph.value_or(create_graph), create_graph);
}

Scalar Tensor::item() const {
  check_not_capturing(".item() (or float(), int(), bool() of a tensor)");
  if (numel() != 1)
    throw std::invalid_argument("[item] a tensor with " + std::to_string(numel()) +
                                " elements cannot be converted to a Python number");
  switch (dtype()) {
    case DType::Bool:
      return Scalar(*data_as<bool>());
    case DType::Int64:
      return Scalar(*data_as<int64_t>());
    case DType::Float32:
      return Scalar(static_cast<double>(*data_as<float>()));
    case DType::Float64:
      return Scalar(*data_as<double>());
  }
  return Scalar(0.0);
}

Tensor Tensor::contiguous() const { return is_contiguous() ? *this : clone(); }
Tensor Tensor::clone() const { return to_dtype(*this, dtype()); }
Tensor Tensor::to(DType dtype) const {
  return dtype == this->dtype() ? *this : to_dtype(*this, dtype);
}
std::string Tensor::shape_str() const { return shape_to_string(shape()); }

template <typename T>
std::vector<T> to_vector(const Tensor& tensor) {
  DType target = std::is_same_v<T, float>    ? DType::Float32
                 : std::is_same_v<T, double> ? DType::Float64
                 : std::is_same_v<T, bool>   ? DType::Bool
                                             : DType::Int64;
  std::vector<T> values(static_cast<size_t>(tensor.numel()));
  Shape strides = contiguous_strides(tensor.shape());
  launch(kernels::copy, static_cast<int>(tensor.ndim()), tensor.shape().data(),
         {values.data(), target, strides.data()},
         {tensor.data(), tensor.dtype(), tensor.strides().data()});
  return values;
}
template std::vector<float> to_vector<float>(const Tensor&);
template std::vector<double> to_vector<double>(const Tensor&);
template std::vector<int64_t> to_vector<int64_t>(const Tensor&);

}  // namespace bprop

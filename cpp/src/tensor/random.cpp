// Random tensors from one global generator (xoshiro256++), reseeded by manual_seed; its
// state can be saved and restored (get_rng_state, set_rng_state).
#include <cmath>
#include <cstdint>
#include <mutex>
#include <random>
#include <stdexcept>
#include <string>

#include "bprop/capture.h"
#include "bprop/ops.h"
#include "launch/tape.h"
#include "tensor/meta_lock.h"

namespace bprop {
namespace {

constexpr uint64_t kDefaultSeed = 0x853c49e6748fea9bULL;

class Generator {
 public:
  static constexpr size_t kStateWords = 4;

  Generator() { seed(kDefaultSeed); }

  void seed(uint64_t value) {
    initial_seed_ = value;
    // splitmix64 expands the seed into the 256-bit state.
    for (uint64_t& word : state_) {
      value += 0x9e3779b97f4a7c15ULL;
      uint64_t z = value;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      word = z ^ (z >> 31);
    }
  }

  uint64_t next() {
    const uint64_t result = rotl(state_[0] + state_[3], 23) + state_[0];
    const uint64_t t = state_[1] << 17;
    state_[2] ^= state_[0];
    state_[3] ^= state_[1];
    state_[1] ^= state_[2];
    state_[0] ^= state_[3];
    state_[2] ^= t;
    state_[3] = rotl(state_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  uint64_t initial_seed() const { return initial_seed_; }
  const uint64_t* state() const { return state_; }
  void set_state(const uint64_t* words, uint64_t initial_seed) {
    for (size_t i = 0; i < kStateWords; ++i) state_[i] = words[i];
    initial_seed_ = initial_seed;
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t state_[kStateWords];
  uint64_t initial_seed_ = kDefaultSeed;
};

Generator& generator() {
  static Generator instance;
  return instance;
}
using detail::generator_mutex;

void require_floating(const char* op, DType dtype) {
  if (!is_floating(dtype))
    throw TypeError(std::string("[") + op + "] needs a floating point dtype, got " +
                    dtype_name(dtype));
}

template <typename F>
void draw_into(const Tensor& out, DType dtype, F draw);

// A capture redraws on every replay, from the same generator: as running the step again would.
template <typename F>
Tensor fill_random(const Shape& shape, DType dtype, F draw) {
  Tensor out = Tensor::empty(shape, dtype);
  if (tape::Recording rec; rec)
    rec.push_host("random_draw", [out, dtype, draw] { draw_into(out, dtype, draw); });
  draw_into(out, dtype, draw);
  return out;
}

template <typename F>
void draw_into(const Tensor& out, DType dtype, F draw) {
  const int64_t n = out.numel();
  std::lock_guard<std::mutex> lock(generator_mutex());
  Generator& gen = generator();
  switch (dtype) {
    case DType::Float32: {
      float* p = out.data_as<float>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(draw(gen));
      break;
    }
    case DType::Float64: {
      double* p = out.data_as<double>();
      for (int64_t i = 0; i < n; ++i) p[i] = draw(gen);
      break;
    }
    case DType::Int64: {
      int64_t* p = out.data_as<int64_t>();
      for (int64_t i = 0; i < n; ++i) p[i] = static_cast<int64_t>(draw(gen));
      break;
    }
    case DType::Bool: {
      bool* p = out.data_as<bool>();
      for (int64_t i = 0; i < n; ++i) p[i] = draw(gen) != 0;
      break;
    }
  }
}

}  // namespace

std::mutex& detail::generator_mutex() {
  static std::mutex mutex;  // Note [Fork safety] in tensor/meta_lock.h
  return mutex;
}

void manual_seed(uint64_t seed) {
  std::lock_guard<std::mutex> lock(generator_mutex());
  generator().seed(seed);
}

uint64_t initial_seed() {
  std::lock_guard<std::mutex> lock(generator_mutex());
  return generator().initial_seed();
}

uint64_t seed() {
  std::random_device entropy;
  const uint64_t value = (static_cast<uint64_t>(entropy()) << 32) ^ entropy();
  manual_seed(value);
  return value;
}

// Words 0-3: xoshiro256++'s state; word 4: the initial seed. As int64 (bits unchanged).
Tensor get_rng_state() {
  check_not_capturing("get_rng_state() (the generator's state when a replay runs differs)");
  Tensor out = Tensor::empty({kRngStateWords}, DType::Int64);
  int64_t* words = out.data_as<int64_t>();
  std::lock_guard<std::mutex> lock(generator_mutex());
  const Generator& gen = generator();
  for (size_t i = 0; i < Generator::kStateWords; ++i)
    words[i] = static_cast<int64_t>(gen.state()[i]);
  words[Generator::kStateWords] = static_cast<int64_t>(gen.initial_seed());
  return out;
}

void set_rng_state(const Tensor& state) {
  check_not_capturing("set_rng_state() (a replay would not set it again)");
  if (!state.defined()) throw TypeError("[set_rng_state] the state must be a tensor, got None");
  if (state.dtype() != DType::Int64)
    throw TypeError(std::string("[set_rng_state] the state must be the int64 tensor "
                                "get_rng_state() returns, got dtype ") +
                    dtype_name(state.dtype()));
  if (state.shape() != Shape{kRngStateWords})
    throw std::runtime_error("[set_rng_state] the state must have shape (" +
                             std::to_string(kRngStateWords) + ",), got " + state.shape_str());
  uint64_t words[kRngStateWords];
  for (int64_t i = 0; i < kRngStateWords; ++i)
    words[i] = static_cast<uint64_t>(state.data_as<int64_t>()[i * state.stride(0)]);
  if ((words[0] | words[1] | words[2] | words[3]) == 0)
    throw std::runtime_error(
        "[set_rng_state] an all-zero generator state is invalid (xoshiro256++ would only ever "
        "draw zeros); pass a state get_rng_state() returned");
  std::lock_guard<std::mutex> lock(generator_mutex());
  generator().set_state(words, words[Generator::kStateWords]);
}

Tensor rand(const Shape& shape, DType dtype) {
  require_floating("rand", dtype);
  return fill_random(shape, dtype, [dtype](Generator& gen) {
    double u = gen.uniform();
    // NOTE: rounding to float32 can turn values just below 1 into 1; keep [0, 1).
    if (dtype == DType::Float32 && static_cast<float>(u) >= 1.0f) u = 0x1.fffffep-1;
    return u;
  });
}

Tensor randn(const Shape& shape, DType dtype) {
  require_floating("randn", dtype);
  return fill_random(shape, dtype, [](Generator& gen) {
    // Box-Muller; 1 - u keeps the logarithm's argument in (0, 1].
    const double u1 = 1.0 - gen.uniform(), u2 = gen.uniform();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  });
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype) {
  if (high <= low)
    throw std::invalid_argument("[randint] expects low < high, got low=" + std::to_string(low) +
                                ", high=" + std::to_string(high));
  const uint64_t range = static_cast<uint64_t>(high - low);
  return fill_random(shape, dtype, [low, range](Generator& gen) {
    // Rejection sampling keeps every value equally likely.
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r;
    do r = gen.next();
    while (r >= limit);
    return static_cast<double>(low + static_cast<int64_t>(r % range));
  });
}

}  // namespace bprop

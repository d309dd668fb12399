// Threads: separate graphs built and backpropagated on several std::threads at once (with the
// kernels' pool forking work underneath), leaves shared between them, one graph shared by
// several backward calls, and the pool resized while in use. Note [Threads] in autograd.h
// gives the rules these tests hold the library to; scripts/tsan.sh runs them under
// ThreadSanitizer.
#include <doctest/doctest.h>
#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "kernels/parallel.h"
#include "test_helpers.h"

using namespace bprop;
using namespace bprop_test;

namespace {

constexpr int kThreads = 4;

// Restores the pool size a test changed.
struct PoolSize {
  int before = get_num_threads();
  explicit PoolSize(int threads) { set_num_threads(threads); }
  ~PoolSize() { set_num_threads(before); }
};

// Deterministic values in [-1, 1) that depend on (seed, i): no shared random generator, so
// every thread can make its own inputs in any order.
Tensor pattern(const Shape& shape, int seed, bool requires_grad = false) {
  std::vector<float> values(static_cast<size_t>(shape_numel(shape)));
  uint64_t state = 0x9e3779b97f4a7c15ULL * static_cast<uint64_t>(seed + 1);
  for (float& v : values) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    v = static_cast<float>(static_cast<double>(state >> 40) / 16777216.0 * 2.0 - 1.0);
  }
  return f32(values, shape, requires_grad);
}

bool same_bits(const Tensor& a, const Tensor& b) {
  if (!a.defined() || !b.defined() || a.shape() != b.shape() || a.dtype() != b.dtype())
    return false;
  Tensor ca = a.contiguous(), cb = b.contiguous();
  return std::memcmp(ca.data(), cb.data(), static_cast<size_t>(a.numel()) * itemsize(a.dtype())) ==
         0;
}

// One training-like step of a small MLP, big enough that its products (128 x 128 x 128) are
// split over the pool's threads.
struct StepResult {
  Tensor loss, grad_w1, grad_w2;
};
StepResult mlp_step(int seed) {
  Tensor x = pattern({128, 128}, seed);
  Tensor w1 = pattern({128, 128}, seed + 100, true);
  Tensor w2 = pattern({128, 64}, seed + 200, true);
  Tensor loss = sum(tanh(matmul(tanh(matmul(x, w1)), w2)));
  loss.backward();
  return {loss.detach(), w1.grad(), w2.grad()};
}

// Runs body(thread index) on `threads` threads released together; fails on the first
// exception any of them threw.
template <typename Body>
void on_threads(Body body, int threads = kThreads) {
  std::atomic<int> ready{0};
  std::vector<std::string> errors(static_cast<size_t>(threads));
  std::vector<std::thread> running;
  for (int t = 0; t < threads; ++t)
    running.emplace_back([&, t] {
      ready.fetch_add(1);
      while (ready.load() < threads) std::this_thread::yield();
      try {
        body(t);
      } catch (const std::exception& e) {
        errors[static_cast<size_t>(t)] = e.what();
      }
    });
  for (std::thread& thread : running) thread.join();
  for (const std::string& error : errors) REQUIRE_MESSAGE(error.empty(), error);
}

}  // namespace

TEST_SUITE("threads") {
  TEST_CASE("separate graphs on several threads give the one-thread results bit for bit") {
    PoolSize pool(4);  // the kernels fork work too (whichever thread has the pool)
    constexpr int kSteps = 3;
    std::vector<StepResult> reference;
    for (int t = 0; t < kThreads; ++t) reference.push_back(mlp_step(t));

    std::vector<std::vector<StepResult>> results(kThreads);
    on_threads([&](int t) {
      for (int step = 0; step < kSteps; ++step) results[t].push_back(mlp_step(t));
    });
    for (int t = 0; t < kThreads; ++t) {
      REQUIRE(results[t].size() == kSteps);
      for (const StepResult& r : results[t]) {
        CHECK(same_bits(r.loss, reference[t].loss));
        CHECK(same_bits(r.grad_w1, reference[t].grad_w1));
        CHECK(same_bits(r.grad_w2, reference[t].grad_w2));
      }
    }
  }

  TEST_CASE("grad mode is per thread while threads run concurrently") {
    on_threads([&](int t) {
      Tensor x = pattern({8}, t, true);
      std::unique_ptr<NoGradGuard> guard;
      if (t % 2 == 0) guard = std::make_unique<NoGradGuard>();
      for (int i = 0; i < 200; ++i)
        if (mul(x, x).requires_grad() != (t % 2 == 1))
          throw std::runtime_error("grad mode leaked between threads");
    });
    CHECK(is_grad_enabled());
  }

  TEST_CASE("graphs sharing a leaf: every thread's gradient lands in its .grad") {
    // Integer-valued gradients: the sum is exact in any order.
    Tensor w = f64({1, 2, 3, 4}, {4}, true);
    constexpr int kSteps = 25;
    on_threads([&](int t) {
      Tensor c = f64({t + 1.0, 2.0, -1.0, 0.5 * (t + 1)}, {4});
      for (int step = 0; step < kSteps; ++step) sum(mul(w, c)).backward();
    });
    std::vector<double> expected(4, 0.0);
    for (int t = 0; t < kThreads; ++t) {
      expected[0] += kSteps * (t + 1.0);
      expected[1] += kSteps * 2.0;
      expected[2] += kSteps * -1.0;
      expected[3] += kSteps * 0.5 * (t + 1);
    }
    check_grad(w, expected, 0.0);
  }

  TEST_CASE("a shared leaf's .grad is read and reset while other threads accumulate into it") {
    // The values are unknowable here (resets race with the sums); what this test checks is
    // that nothing crashes, and under ThreadSanitizer (scripts/tsan.sh) that .grad's handle is
    // fetched and replaced without a data race.
    Tensor w = f64({1, 2, 3, 4}, {4}, true);
    std::atomic<bool> done{false}, torn{false};
    std::thread reader([&] {
      while (!done.load()) {
        Tensor g = w.grad();
        if (g.defined() && g.shape() != w.shape()) torn.store(true);
        w.set_grad(Tensor());
      }
    });
    on_threads([&](int) {
      for (int step = 0; step < 50; ++step) sum(mul(w, w)).backward();
    });
    done.store(true);
    reader.join();
    CHECK_FALSE(torn.load());
  }

  TEST_CASE("backward through one graph from several threads, with retain_graph") {
    PoolSize pool(4);
    Tensor x = pattern({128, 128}, 1);
    Tensor w = pattern({128, 128}, 2, true);
    Tensor y = tanh(matmul(x, w));  // the part every thread's graph shares
    constexpr int kSteps = 3;
    // Thread t's head is sum(y * (t + 1)): (t + 1) times the gradient of sum(y).
    Tensor unit = grad({sum(y)}, {w}, {}, true)[0];
    on_threads([&](int t) {
      for (int step = 0; step < kSteps; ++step)
        sum(mul(y, static_cast<double>(t + 1))).backward(Tensor(), true);
    });
    double scale = 0;
    for (int t = 0; t < kThreads; ++t) scale += kSteps * (t + 1.0);
    NoGradGuard no_grad;
    check_grad(w, values(mul(unit, scale)), 1e-4);
  }

  TEST_CASE("backward through one graph from several threads, without retain_graph") {
    // Exactly one backward runs the shared tanh node first and frees what it saved; every
    // other one raises the usual error there. None crashes, and .grad is that one's.
    Tensor w = f64({0.5, -1.0, 2.0}, {3}, true);
    Tensor y = tanh(mul(w, w));
    std::atomic<int> succeeded{0}, refused{0};
    std::vector<std::string> messages(kThreads);
    on_threads([&](int t) {
      try {
        sum(y).backward();
        succeeded.fetch_add(1);
      } catch (const std::runtime_error& e) {
        messages[t] = e.what();
        refused.fetch_add(1);
      }
    });
    CHECK(succeeded.load() == 1);
    CHECK(refused.load() == kThreads - 1);
    for (const std::string& m : messages)
      if (!m.empty()) CHECK(contains(m, "backward through the graph a second time"));
    std::vector<double> expected;
    for (double v : {0.5, -1.0, 2.0}) {
      const double t = std::tanh(v * v);
      expected.push_back((1 - t * t) * 2 * v);
    }
    check_grad(w, expected, 1e-12);
  }

  TEST_CASE("new ops built on a graph while other threads backpropagate through it") {
    Tensor w = f64({0.25, 0.5, 0.75}, {3}, true);
    Tensor y = tanh(mul(w, w));
    std::vector<Tensor> grads(kThreads);
    on_threads([&](int t) {
      for (int step = 0; step < 20; ++step) {
        Tensor head = sum(mul(y, static_cast<double>(t + 1)));  // builds on y
        grads[t] = grad({head}, {w}, {}, true)[0];              // and backpropagates through it
      }
    });
    Tensor unit = grad({sum(y)}, {w}, {}, true)[0];
    NoGradGuard no_grad;
    for (int t = 0; t < kThreads; ++t)
      check_values(grads[t], {3}, values(mul(unit, static_cast<double>(t + 1))), 1e-14);
  }

  TEST_CASE("the pool resized while other threads run threaded kernels") {
    PoolSize pool(4);
    Tensor a = pattern({160, 160}, 7), b = pattern({160, 160}, 8);
    Tensor expected = matmul(a, b);
    std::atomic<bool> done{false};
    std::thread resizer([&] {
      for (int i = 0; !done.load(); ++i) set_num_threads(1 + i % 4);
    });
    on_threads([&](int) {
      for (int step = 0; step < 10; ++step)
        if (!same_bits(matmul(a, b), expected))
          throw std::runtime_error("a product changed with the pool size");
    });
    done.store(true);
    resizer.join();
  }

  TEST_CASE("jobs that need fewer parts than the pool has threads, back to back") {
    // A sum of 2^20 floats is split into 4 blocks: with 6 threads, two workers sit each job
    // out, and may wake only once the next job is set up.
    PoolSize pool(6);
    Tensor x = pattern({1 << 20}, 3);
    Tensor expected = sum(x);
    for (int step = 0; step < 200; ++step) REQUIRE(same_bits(sum(x), expected));
  }

  TEST_CASE("after a worker held the caller up, jobs run on the calling thread for a while") {
    // Note [A late worker] in parallel.cpp: a part that keeps a worker 60 ms while the caller's
    // own part takes 1 ms, as a worker descheduled mid-part would. Timing on a loaded machine
    // (CI runs this under the sanitizers too) can delay the caller past the 20 ms window or
    // keep the worker from the job, so each step is tried a few times.
    PoolSize pool(2);
    const std::thread::id caller = std::this_thread::get_id();
    auto held_up_job = [&] {
      std::atomic<bool> worker_ran{false};
      kernels::parallel_for(2, 1, [&](int64_t, int64_t) {
        const bool on_worker = std::this_thread::get_id() != caller;
        if (on_worker) worker_ran = true;
        std::this_thread::sleep_for(std::chrono::milliseconds(on_worker ? 60 : 1));
      });
      return worker_ran.load();
    };
    int inline_after_held_up = 0, jobs_on_workers_while_inline = 0;
    for (int attempt = 0; attempt < 100 && inline_after_held_up < 2; ++attempt) {
      if (!held_up_job() || !kernels::jobs_run_inline_for_testing()) continue;
      std::atomic<int> on_workers{0};
      kernels::parallel_for(1000, 1, [&](int64_t first, int64_t last) {
        if (std::this_thread::get_id() != caller) on_workers += static_cast<int>(last - first);
      });
      if (!kernels::jobs_run_inline_for_testing()) continue;  // the window ended meanwhile
      ++inline_after_held_up;
      jobs_on_workers_while_inline += on_workers;
    }
    CHECK(inline_after_held_up >= 1);
    CHECK(jobs_on_workers_while_inline == 0);
    // The window ends: the pool is used again.
    std::this_thread::sleep_for(std::chrono::milliseconds(60));
    CHECK_FALSE(kernels::jobs_run_inline_for_testing());
  }

#ifdef __linux__
  TEST_CASE("a worker keeps off the CPU the caller posts its jobs from") {
    // Note [Off the caller's CPU] in parallel.cpp. The pool starts first (its worker inherits
    // every CPU of this thread), then this thread is held on one CPU, so the CPU the pool sees
    // the caller post from is the one read here. The caller's part sleeps, so the worker claims
    // the other part and reports its own affinity from there.
    cpu_set_t before;
    REQUIRE(sched_getaffinity(0, sizeof(before), &before) == 0);
    if (CPU_COUNT(&before) < 2) {
      MESSAGE("skipped: this process may run on one CPU only");
      return;
    }
    PoolSize pool(2);
    kernels::parallel_for(2, 1, [](int64_t, int64_t) {});  // the pool and its worker exist
    const int caller_cpu = sched_getcpu();
    cpu_set_t here;
    CPU_ZERO(&here);
    CPU_SET(caller_cpu, &here);
    if (sched_setaffinity(0, sizeof(here), &here) != 0) {
      MESSAGE("skipped: this thread's CPU affinity can't be set here");
      return;
    }
    const std::thread::id caller = std::this_thread::get_id();
    int checked = 0;
    for (int attempt = 0; attempt < 200 && checked < 3; ++attempt) {
      cpu_set_t worker_cpus;
      CPU_ZERO(&worker_cpus);
      std::atomic<bool> worker_ran{false};
      kernels::parallel_for(2, 1, [&](int64_t, int64_t) {
        if (std::this_thread::get_id() == caller) {
          std::this_thread::sleep_for(std::chrono::milliseconds(2));
        } else {
          sched_getaffinity(0, sizeof(worker_cpus), &worker_cpus);
          worker_ran = true;
        }
      });
      if (!worker_ran.load()) continue;
      CHECK_FALSE(CPU_ISSET(caller_cpu, &worker_cpus));
      ++checked;
    }
    sched_setaffinity(0, sizeof(before), &before);
    CHECK(checked >= 1);
  }
#endif

  TEST_CASE("random tensors drawn on several threads at once come from the one generator") {
    // The generator is global, behind a mutex (as PyTorch's default generator is): which
    // thread gets which draws depends on timing, but no draw is lost or repeated.
    manual_seed(123);
    std::vector<double> want = values(rand({kThreads * 1000}, DType::Float64));
    manual_seed(123);
    std::vector<Tensor> parts(kThreads);
    on_threads([&](int t) { parts[t] = rand({1000}, DType::Float64); });
    std::vector<double> all;
    for (const Tensor& p : parts)
      for (double v : values(p)) all.push_back(v);
    std::sort(all.begin(), all.end());
    std::sort(want.begin(), want.end());
    CHECK(all == want);
  }

  TEST_CASE("hooks on a shared leaf run once per backward while others register and remove") {
    Tensor w = pattern({32, 32}, 7, true);
    std::atomic<int> calls{0};
    register_post_accumulate_grad_hook(w, [&](const Tensor& leaf) {
      CHECK(leaf.grad().defined());
      calls.fetch_add(1);
    });
    constexpr int kBackwards = 20;
    std::atomic<int> finished{0};
    on_threads([&](int t) {
      if (t == 0) {  // churns the hook list the others read, until they are done
        while (finished.load() < kThreads - 1)
          remove_post_accumulate_grad_hook(
              w, register_post_accumulate_grad_hook(w, [](const Tensor&) {}));
        return;
      }
      Tensor x = pattern({8, 32}, t);
      for (int i = 0; i < kBackwards; ++i) sum(tanh(matmul(x, w))).backward();
      finished.fetch_add(1);
    });
    CHECK(calls.load() == (kThreads - 1) * kBackwards);
  }
}

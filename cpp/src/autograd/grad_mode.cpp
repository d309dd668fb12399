#include <pthread.h>

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <utility>

#include "bprop/autograd.h"

namespace bprop {
namespace {
thread_local bool t_grad_enabled = true;
}  // namespace

bool is_grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }

// Anomaly mode is one switch for the process, as in PyTorch (a debugging aid one turns on
// for the whole program, worker threads included).
namespace {
std::atomic<bool> g_anomaly_enabled{false};
std::mutex g_trace_provider_mutex;
std::function<std::string()> g_trace_provider;  // guarded by g_trace_provider_mutex
// Its holder only copies or swaps the function: held across a fork, it is taken by the prepare
// handler and released on both sides (Note [Fork safety] in tensor/meta_lock.h).
const bool g_fork_handlers_registered = [] {
  auto unlock = [] { g_trace_provider_mutex.unlock(); };
  pthread_atfork([] { g_trace_provider_mutex.lock(); }, unlock, unlock);
  return true;
}();
}  // namespace

bool is_anomaly_enabled() { return g_anomaly_enabled.load(std::memory_order_relaxed); }
void set_anomaly_enabled(bool enabled) { g_anomaly_enabled.store(enabled); }
void set_forward_trace_provider(std::function<std::string()> provider) {
  std::lock_guard<std::mutex> lock(g_trace_provider_mutex);
  std::swap(g_trace_provider, provider);
}
std::string current_forward_trace() {
  std::function<std::string()> provider;
  {
    std::lock_guard<std::mutex> lock(g_trace_provider_mutex);
    provider = g_trace_provider;
  }
  return provider ? provider() : "";  // called unlocked: it may wait for the Python GIL
}

}  // namespace bprop

#include <atomic>

#include "bprop/autograd.h"

namespace bprop {
namespace {
thread_local bool t_grad_enabled = true;
}  // namespace

bool is_grad_enabled() { return t_grad_enabled; }
void set_grad_enabled(bool enabled) { t_grad_enabled = enabled; }

namespace {
std::atomic<bool> g_anomaly_enabled{false};
std::function<std::string()>& trace_provider() {
  static std::function<std::string()> provider;
  return provider;
}
}  // namespace

bool is_anomaly_enabled() { return g_anomaly_enabled.load(std::memory_order_relaxed); }
void set_anomaly_enabled(bool enabled) { g_anomaly_enabled.store(enabled); }
void set_forward_trace_provider(std::function<std::string()> provider) {
  trace_provider() = std::move(provider);
}
std::string current_forward_trace() { return trace_provider() ? trace_provider()() : ""; }

}  // namespace bprop

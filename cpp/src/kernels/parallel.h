// The kernels' threads: one persistent pool, fork-safe, sized by set_num_threads() or the
// BPROP_NUM_THREADS environment variable (default: the machine's hardware threads).
//
// parallel_for splits [0, n) into contiguous ranges, one per thread; the calling thread and
// the workers claim them (Note [Parts claimed, not assigned] in parallel.cpp), so a worker that
// is slow to wake never holds the caller up for more than one range, and after a worker was
// late, jobs run on the calling thread alone for a while (Note [A late worker]). Work smaller
// than `grain`
// items per thread stays on the calling thread. A nested call, or a call while another thread is
// using the pool, runs inline, so the pool can't deadlock.
//
// Results must not depend on the thread count (training is reproducible bit for bit): kernels
// only split work whose results are independent of the split, such as rows of an output, and
// reductions use fixed-size blocks whose partial results are combined in a fixed order.
#pragma once

#include <cstdint>
#include <functional>

namespace bprop::kernels {

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body);
int num_threads();

// Installs the pool's pthread_atfork handlers (Note [Fork safety] in parallel.cpp), once. The
// pool does so itself on first use; a layer whose own fork handlers must run before the pool's
// calls this before registering them.
void register_fork_handlers();

// Testing: while held, the pool's workers wake but claim no part, as a descheduled worker would;
// parallel_for must still finish, on its calling thread.
void hold_workers_for_testing(bool hold);
// Testing: whether jobs run on the calling thread alone for now (Note [A late worker]).
bool jobs_run_inline_for_testing();

}  // namespace bprop::kernels

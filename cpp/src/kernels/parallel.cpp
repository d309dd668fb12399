#include "kernels/parallel.h"

#include <pthread.h>
#ifdef __linux__
#include <sched.h>
#endif

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bprop/threads.h"

namespace bprop {
namespace kernels {
namespace {

thread_local bool t_inside_parallel_region = false;

// Spins wait at most this long (then sleep): a wake-up costs a few microseconds, while a spin
// bounded by iterations can last milliseconds where `pause` is slow (about 140 cycles on recent
// Intel cores), and burns a core the hypervisor may want for a descheduled worker.
constexpr auto kSpinBudget = std::chrono::microseconds(50);

// Note [Spins yield]
// Between rounds of `pause` a spin yields the CPU to any thread the scheduler has waiting on it.
// Where another process holds a core, our threads outnumber the free ones, and a worker woken
// onto the caller's core (the scheduler's usual choice for a thread woken by a thread there)
// spun there while the caller waited for that core. On the 2-core Intel Xeon of
// docs/performance.md, a busy loop pinned to one core (bench_kernels.py --contention, three
// runs each, alternating): 2 threads over 1 thread 1.07-1.11 for the MLP 784-512-512-10 step and
// 1.03-1.09 for sgemm n = 512; yielding, 0.99-1.01 and 1.03-1.05. Alone on the machine the yield
// returns at once: the MLP steps of 784-512 and 784-128, 2 threads, eager and captured, within
// 1% of spinning without it (medians of 7 rounds, interleaved in one process).

// Spins until done() or the spin budget is spent; whether done() became true.
template <typename Done>
bool spin_until(Done done) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinBudget;
  while (true) {
    for (int i = 0; i < 64; ++i) {
      if (done()) return true;
      __builtin_ia32_pause();
    }
    if (std::chrono::steady_clock::now() >= deadline) return done();
    std::this_thread::yield();  // Note [Spins yield]
  }
}

// The CPU the calling thread runs on, -1 where that can't be asked.
int current_cpu() {
#ifdef __linux__
  return sched_getcpu();
#else
  return -1;
#endif
}

std::atomic<bool> g_hold_workers{false};  // testing: hold_workers_for_testing()

// Note [A late worker]
// A worker that claimed a part and was then descheduled (another process busy on its core)
// holds the caller up until the scheduler runs it again, milliseconds later; a training step
// has hundreds of jobs, and on the 2-core AMD EPYC of docs/performance.md a busy loop pinned
// to one core made the MLP 784-512-512-10 step 1.25-1.41x slower with 2 threads than with 1.
// So when the caller ran at least one part and the last part finished more than kLateWorker
// after the caller's own, and more than twice as long after as the caller's parts took (the
// parts of a job are alike, so a running worker finishes about when the caller does; a
// remainder makes one part at most 1.5x another), jobs run on the calling thread alone for
// kInlineAfterLateWorker, then the pool is tried again. (Measured to when the last part
// finished, not to when the caller, asleep by then, woke to see it; and not when workers ran
// every part, as spinning workers of a big pool may, where the caller's time says nothing.)
// One part or many, the results are the same bits (parallel.h).
constexpr auto kLateWorker = std::chrono::microseconds(1000);
constexpr auto kInlineAfterLateWorker = std::chrono::milliseconds(20);

// Note [Off the caller's CPU]
// After a pause (the workers asleep) the scheduler woke a worker onto the caller's CPU, the
// other CPU idle, and left it there: it spun beside the caller, which ran every part itself,
// until the load balancer moved one of them, 20 ms and more later. So a worker keeps out of the
// CPU the caller last posted a job from: when that CPU changes, the worker's affinity becomes the
// CPUs it was given minus that one (a syscall only then). On the 2-core Intel(R) Xeon(R)
// Processor of docs/performance.md, 2 threads, builds with and without it alternating process by
// process (4 each): a 256x784x512 product called 16 times after each 0.3 s pause 1137-1477 ->
// 897-1108 us a call (medians of 8 pauses); back to back 671-795 -> 664-725; with a busy loop
// pinned to one core, 2 threads over 1 thread 0.97-1.00 -> 0.96-0.99; the GPT step of
// bench_gpt.py (6 processes each) captured 16.8 -> 16.4 ms and eager 20.1 -> 19.8 (medians). A
// worker that finds its CPUs changed by someone else (taskset -a, a cgroup) keeps within the new
// set; with one CPU in it, its affinity stays as it is. The cost: with another process busy on
// the worker's CPU, the worker can no longer move to the caller's while the caller waits; it
// claims at most one part late, and Note [A late worker] then runs jobs on the caller alone.

// Note [Parts claimed, not assigned]
// A job is split into a fixed number of parts, each a fixed range of [0, n): which thread runs
// a part never changes its range, so results are the same bit for bit for any thread count and
// any timing. Each part is claimed once, by whichever thread first marks it with the job's
// number: the caller wakes the workers and then claims parts itself like any worker, so a
// worker that is descheduled, or wakes late, costs at most the one part it claimed; a worker
// that never wakes costs nothing. A worker that read an older job finds its parts marked with
// that job's number or a later one, and claims nothing.
// Note [Parts near their data]
// Thread i (the caller 0, the workers 1..) tries part i first, then the others in turn. So
// while the workers keep up, a range of rows is run on the same core job after job, and one
// kernel reads its rows from the core that wrote them: its L2, not the other core's.
class ThreadPool {
 public:
  explicit ThreadPool(int threads)
      : threads_(threads), claimed_(new std::atomic<uint64_t>[static_cast<size_t>(threads)]) {
    for (int part = 0; part < threads; ++part) claimed_[part].store(0);
    for (int id = 1; id < threads; ++id) workers_.emplace_back([this, id] { work(id); });
  }

  ~ThreadPool() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_ = true;
      generation_.fetch_add(1);
    }
    wake_.notify_all();
    for (std::thread& worker : workers_) worker.join();
  }

  int threads() const { return threads_; }
  std::mutex& run_mutex() { return run_mutex_; }

  // Runs body over `parts` ranges of [0, n); the caller holds run_mutex().
  void run(int64_t n, int parts, const std::function<void(int64_t, int64_t)>& body) {
    Job job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      job = job_ = {&body, n, parts, ++job_number_};
      caller_cpu_.store(current_cpu(), std::memory_order_relaxed);  // Note [Off the caller's CPU]
      unfinished_.store(parts, std::memory_order_relaxed);
      error_ = nullptr;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    const auto start = std::chrono::steady_clock::now();
    const int own_parts = run_parts(job, 0);
    const auto own_parts_done = std::chrono::steady_clock::now();
    if (!spin_until([this] { return unfinished_.load(std::memory_order_acquire) == 0; })) {
      std::unique_lock<std::mutex> lock(mutex_);
      done_.wait(lock, [this] { return unfinished_.load(std::memory_order_acquire) == 0; });
    }
    // Note [A late worker]: how long after the caller's own parts the last part finished (not
    // when the caller woke to see it).
    const auto finished = std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(last_part_done_.load(std::memory_order_acquire)));
    const auto waited = finished - own_parts_done;
    if (own_parts > 0 && waited > kLateWorker && waited > 2 * (own_parts_done - start))
      inline_until_.store((finished + kInlineAfterLateWorker).time_since_epoch().count(),
                          std::memory_order_relaxed);
    std::lock_guard<std::mutex> lock(mutex_);
    if (error_) std::rethrow_exception(error_);
  }

  // Whether jobs run on the calling thread alone for now (Note [A late worker]).
  bool inline_for_now() const {
    const int64_t until = inline_until_.load(std::memory_order_relaxed);
    // No clock read on every job while no worker has been late.
    return until != 0 && std::chrono::steady_clock::now().time_since_epoch().count() < until;
  }

 private:
  struct Job {
    const std::function<void(int64_t, int64_t)>* body = nullptr;
    int64_t n = 0;
    int parts = 1;
    uint64_t number = 0;
  };

  // Claims and runs parts of `job` until none is left, part `id` first (Note [Parts claimed,
  // not assigned], Note [Parts near their data]); how many it ran.
  int run_parts(const Job& job, int id) {
    int ran = 0;
    for (int turn = 0; turn < job.parts; ++turn) {
      const int part = (id + turn) % job.parts;
      uint64_t mark = claimed_[part].load(std::memory_order_acquire);
      // taken for this job (or, for a worker still holding an older job, a later one)
      if (mark >= job.number) continue;
      if (!claimed_[part].compare_exchange_strong(mark, job.number, std::memory_order_acq_rel))
        continue;
      run_part(job, part);
      ++ran;
      // Before the count that tells the caller the job is done, so the caller reads it after.
      last_part_done_.store(std::chrono::steady_clock::now().time_since_epoch().count(),
                            std::memory_order_release);
      if (unfinished_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
    return ran;
  }

  void run_part(const Job& job, int part) {
    const int64_t begin = job.n * part / job.parts, end = job.n * (part + 1) / job.parts;
    t_inside_parallel_region = true;
    try {
      if (begin < end) (*job.body)(begin, end);
    } catch (...) {
      std::lock_guard<std::mutex> lock(mutex_);
      if (!error_) error_ = std::current_exception();
    }
    t_inside_parallel_region = false;
  }

  void work(int id) {
    Placement placement;  // Note [Off the caller's CPU]
    uint64_t seen = 0;
    while (true) {
      // Spin briefly (back-to-back kernels of a step), then sleep until the next job.
      spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; });
      Job job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load() != seen; });
        seen = generation_.load();
        if (stop_) return;
        job = job_;
      }
      stay_off_caller_cpu(placement);
      while (g_hold_workers.load(std::memory_order_acquire))
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      run_parts(job, id);
    }
  }

  // Note [Off the caller's CPU]: a worker about to run a job leaves the CPU the caller posted it
  // from out of its affinity, when that CPU has changed; syscalls only then.
  struct Placement {
    int avoided_cpu = -1;  // the caller's CPU this worker last acted on
#ifdef __linux__
    cpu_set_t given;    // the CPUs this thread may use: as created, or as someone else set them
    cpu_set_t applied;  // the set this worker last gave itself
    bool applied_any = false;
#endif
  };
  void stay_off_caller_cpu(Placement& placement) {
    const int caller = caller_cpu_.load(std::memory_order_relaxed);
    if (caller < 0 || caller == placement.avoided_cpu) return;
    placement.avoided_cpu = caller;  // acted on once, whatever follows: no syscall every job
#ifdef __linux__
    cpu_set_t current;
    if (sched_getaffinity(0, sizeof(current), &current) != 0) return;
    // Not the set this worker gave itself: the thread's first job, or someone (taskset -a, a
    // cgroup) changed it since. That is now the set to keep within.
    if (!placement.applied_any || !CPU_EQUAL(&current, &placement.applied))
      placement.given = current;
    cpu_set_t wanted = placement.given;  // the given CPUs but the caller's, if that leaves any
    if (caller < CPU_SETSIZE && CPU_ISSET(caller, &wanted) && CPU_COUNT(&wanted) > 1)
      CPU_CLR(caller, &wanted);
    if (CPU_EQUAL(&wanted, &current)) return;
    if (sched_setaffinity(0, sizeof(wanted), &wanted) == 0) {
      placement.applied = wanted;
      placement.applied_any = true;
    }
#endif
  }

  const int threads_;
  std::atomic<int> caller_cpu_{-1};  // where the caller posted the latest job from
  std::vector<std::thread> workers_;
  std::mutex mutex_, run_mutex_;
  std::condition_variable wake_, done_;
  std::atomic<uint64_t> generation_{0};
  // part p's mark: the number of the last job whose part p was claimed
  std::unique_ptr<std::atomic<uint64_t>[]> claimed_;
  std::atomic<int> unfinished_{0};          // parts not yet run to the end
  std::atomic<int64_t> inline_until_{0};    // steady_clock ticks (Note [A late worker])
  std::atomic<int64_t> last_part_done_{0};  // steady_clock ticks: when a part last finished
  uint64_t job_number_ = 0;                 // guarded by mutex_
  Job job_;                                 // guarded by mutex_
  bool stop_ = false;
  std::exception_ptr error_;  // guarded by mutex_
};

int default_threads() {
  if (const char* env = std::getenv("BPROP_NUM_THREADS")) {
    // A value that isn't a whole number from 1 to kMaxThreads is ignored: there is no caller to
    // raise to, and the first kernel to run is no place for a configuration error.
    char* end = nullptr;
    const long n = std::strtol(env, &end, 10);
    if (end != env && *end == '\0' && n >= 1 && n <= kMaxThreads) return static_cast<int>(n);
  }
  const unsigned hardware = std::thread::hardware_concurrency();
  return hardware > 0 ? static_cast<int>(hardware) : 1;
}

std::mutex g_pool_mutex;  // guards g_pool, and changes of g_threads
std::shared_ptr<ThreadPool> g_pool;
// 0: not decided yet. Read without the mutex: a kernel running inside the pool asks for it
// (gemm's split), and the fork handler holds g_pool_mutex while it waits for that kernel's job.
std::atomic<int> g_threads{0};

// Note [Fork safety]: a child process has only the forking thread; the pool's workers are gone
// and its mutexes may be held. The child abandons that pool (destroying it would join threads
// that don't exist) and makes a fresh one on first use. Before forking we wait for a running
// job, so none is cut in half.
void before_fork() {
  g_pool_mutex.lock();
  if (g_pool) g_pool->run_mutex().lock();
}
void after_fork_in_parent() {
  if (g_pool) g_pool->run_mutex().unlock();
  g_pool_mutex.unlock();
}
void after_fork_in_child() {
  new (&g_pool) std::shared_ptr<ThreadPool>();  // leaks the parent's pool on purpose
  new (&g_pool_mutex) std::mutex();
}

}  // namespace

void hold_workers_for_testing(bool hold) { g_hold_workers.store(hold); }

void register_fork_handlers() {
  static const bool registered = [] {
    pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
    return true;
  }();
  (void)registered;
}

namespace {

std::shared_ptr<ThreadPool> pool() {
  register_fork_handlers();
  std::lock_guard<std::mutex> lock(g_pool_mutex);
  if (g_threads == 0) g_threads = default_threads();
  if (!g_pool && g_threads > 1) g_pool = std::make_shared<ThreadPool>(g_threads.load());
  return g_pool;
}

}  // namespace

int num_threads() {
  const int threads = g_threads.load(std::memory_order_acquire);
  if (threads != 0) return threads;
  pool();  // decides it
  return g_threads.load(std::memory_order_acquire);
}

bool jobs_run_inline_for_testing() {
  std::shared_ptr<ThreadPool> p = pool();
  return p && p->inline_for_now();
}

void parallel_for(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t)>& body) {
  if (n <= 0) return;
  const int64_t max_parts = grain > 0 ? n / grain : n;
  std::shared_ptr<ThreadPool> p;
  if (max_parts >= 2 && !t_inside_parallel_region) p = pool();
  if (!p) return body(0, n);
  if (p->inline_for_now()) return body(0, n);  // Note [A late worker]
  std::unique_lock<std::mutex> lock(p->run_mutex(), std::try_to_lock);
  if (!lock.owns_lock()) return body(0, n);  // another thread is using the pool
  const int parts = static_cast<int>(std::min<int64_t>(p->threads(), max_parts));
  p->run(n, parts, body);
}

}  // namespace kernels

void set_num_threads(int threads) {
  if (threads < 1 || threads > kMaxThreads)
    throw std::invalid_argument(
        "[set_num_threads] the number of threads must be at least 1 and "
        "at most " +
        std::to_string(kMaxThreads) + ", got " + std::to_string(threads));
  kernels::pool();
  std::lock_guard<std::mutex> lock(kernels::g_pool_mutex);
  kernels::g_threads = threads;
  kernels::g_pool.reset();  // the old pool goes when its last running job ends
}

int get_num_threads() { return kernels::num_threads(); }

}  // namespace bprop

// The kernels' thread pool. Results do not depend on the number of threads.
//
// One pool serves the process: one parallel kernel at a time runs on it, and kernels that
// other threads launch meanwhile run on their calling thread. Using the library from several
// threads of your own is fine within the rules of Note [Threads] in autograd.h.
#pragma once

namespace bprop {

// At most this many: a typo like set_num_threads(1000000) must not spawn a million threads.
constexpr int kMaxThreads = 1024;

// Threads the kernels may use, the calling one included (default: BPROP_NUM_THREADS when it is
// a number from 1 to kMaxThreads, else the machine's hardware threads). Throws
// std::invalid_argument for n < 1 or n > kMaxThreads.
void set_num_threads(int n);
int get_num_threads();

}  // namespace bprop

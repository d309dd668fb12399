// The kernels' thread pool. Results do not depend on the number of threads.
#pragma once

namespace bprop {

// Threads the kernels may use, the calling one included (default: BPROP_NUM_THREADS, else the
// machine's hardware threads). Throws std::invalid_argument for n < 1.
void set_num_threads(int n);
int get_num_threads();

}  // namespace bprop

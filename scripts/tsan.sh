#!/usr/bin/env bash
# ThreadSanitizer run: builds the library and its C++ tests with -DBPROP_SANITIZE=thread and
# runs every doctest case under it: the thread stress tests (cpp/tests/test_threads.cpp), the
# kernels with their thread pool, autograd and the rest. Exits non-zero on any report.
#
#   scripts/tsan.sh [build-dir]     (default build/tsan; BPROP_TSAN_JOBS=n sets the parallelism)
#
# Left out, on purpose: the consumer and example projects (separate CMake builds of
# single-threaded programs, nothing the doctest cases don't cover), the per-ISA reruns of the
# kernel suite (the same pool code on narrower SIMD paths), the no-Python-symbols check and
# the fuzz replays (single-threaded parsers).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build/tsan}
jobs=${BPROP_TSAN_JOBS:-$(nproc)}

# -O1 with line tables only (-g1): half the compile time of -O2 -g; reports keep file and line.
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O1 -g1 -DNDEBUG" -DBPROP_BUILD_TESTS=ON -DBPROP_SANITIZE=thread
cmake --build "$build" -j "$jobs" --target bprop_tests

# halt_on_error: the first report fails its test. die_after_fork=0: the fork test starts pool
# threads in the child, which TSan refuses by default; the pool's fork handlers make that safe
# (Note [Fork safety] in cpp/src/kernels/parallel.cpp).
export TSAN_OPTIONS="halt_on_error=1 die_after_fork=0 second_deadlock_stack=1 ${TSAN_OPTIONS:-}"
ctest --test-dir "$build" -R '^bprop_tests' -j "$jobs" --output-on-failure --no-tests=error

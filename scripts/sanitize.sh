#!/usr/bin/env bash
# The C++ tests and the Python test suite under AddressSanitizer + UBSan (BPROP_SANITIZE=address).
#
#   scripts/sanitize.sh [cpp|python|all] [extra pytest arguments...]
#
# cpp:    builds build/asan with -DBPROP_SANITIZE=address and runs CTest with leak detection on
#         (every test and the consumer projects built against the installed package; not the
#         add_subdirectory projects, which build their own unsanitized copy of the core and run
#         in the regular C++ tests).
# python: installs an ASan build of the extension into its own venv (build/asan-venv, which sees
#         this interpreter's site-packages for numpy, torch, pytest, hypothesis) and runs pytest
#         with the ASan runtime preloaded into the uninstrumented interpreter. Leak detection is
#         off there: CPython and numpy keep allocations alive until exit by design. The extension
#         is built in build/asan too, so after `cpp` only the bindings compile.
# Both build at -O1 with line tables only (-g1): half the compile time of -O2 -g, the ASan
# documentation's advice for speed, and reports still name file and line.
# Exits non-zero on any failure or sanitizer report. A full run takes about 9 minutes on 2 cores.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
what="${1:-all}"
shift || true
jobs="${BPROP_JOBS:-2}"
build="build/asan"
opt_flags="-O1 -g1 -DNDEBUG"

step() { printf '\n==== %s ====\n' "$*"; }

run_cpp() {
  step "C++ tests under ASan + UBSan (leak detection on)"
  # SKBUILD and BPROP_BUILD_PYTHON OFF: a `python` run before configured this tree as
  # scikit-build-core's (which leaves out the consumer tests) and with the extension.
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt_flags" -DBPROP_BUILD_TESTS=ON \
    -DBPROP_SANITIZE=address -DSKBUILD=OFF -DBPROP_BUILD_PYTHON=OFF
  cmake --build "$build" -j "$jobs"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
    ctest --test-dir "$build" -j "$jobs" -LE unsanitized_core --output-on-failure --no-tests=error
}

run_python() {
  step "Python tests under ASan + UBSan"
  local venv="build/asan-venv"
  [ -x "$venv/bin/python" ] || python -m venv --system-site-packages "$venv"
  # Without build isolation, the build tools (pyproject.toml's build-system.requires) installed
  # into the venv first: an isolated build's temporary pybind11 path would make the build
  # directory stale, and the core would compile again instead of only the bindings (CI's clean
  # machine has no scikit-build-core of its own; this interpreter's may not be there either).
  "$venv/bin/python" -c 'import tomllib; print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["build-system"]["requires"]))' \
    | xargs "$venv/bin/python" -m pip install -q
  # The C++ tests' tree, with the same flags, so that the core's objects are reused (the
  # tests are configured out meanwhile; their objects stay for the next `cpp` run).
  "$venv/bin/python" -m pip install -q --no-build-isolation . -C build-dir="$build" \
    -C cmake.build-type=RelWithDebInfo -C "cmake.define.CMAKE_CXX_FLAGS_RELWITHDEBINFO=$opt_flags" \
    -C cmake.define.BPROP_SANITIZE=address
  # The uninstrumented interpreter needs the ASan runtime first, and libstdc++ loaded before
  # any module, or ASan can't find __cxa_throw to intercept (a CHECK failure at the first throw).
  local preload
  preload="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libstdc++.so)"
  local module
  module="$(ls "$venv"/lib/python*/site-packages/bprop/_core*.so)"
  # grep reads all of ldd's output (no -q): under pipefail, grep -q quitting at the first match
  # can kill ldd with SIGPIPE and fail the check on an ASan build (seen in CI, ~6% pinned to one core).
  if ! ldd "$module" | grep libasan >/dev/null; then
    echo "$module is not an ASan build" >&2
    exit 1
  fi
  # Reports go to files as well: pytest captures stderr, and an abort loses what it captured.
  local logs="build/asan-logs"
  rm -rf "$logs" && mkdir -p "$logs"
  # Spread over the cores with pytest-xdist where it is installed (the test extra has it): most
  # of the suite is single-threaded Python calling the instrumented core (the whole run 338 ->
  # 230 s with 2 workers, 2 cores, AMD EPYC).
  local workers=()
  "$venv/bin/python" -c "import xdist" 2>/dev/null && workers=(-n "$jobs")
  local status=0
  LD_PRELOAD="$preload" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:allocator_may_return_null=1:log_path=$logs/asan" \
    UBSAN_OPTIONS="print_stacktrace=1:log_path=$logs/ubsan" \
    "$venv/bin/python" -m pytest -q -p no:cacheprovider "${workers[@]}" "$@" || status=$?
  if compgen -G "$logs/*" >/dev/null; then
    cat "$logs"/* >&2
    # Warnings alone (the tests' deliberately huge allocations returning null) are not reports.
    if grep -q -E "ERROR: |runtime error: " "$logs"/*; then
      echo "sanitizer reports above" >&2
      status=1
    fi
  fi
  return "$status"
}

case "$what" in
  cpp) run_cpp ;;
  python) run_python "$@" ;;
  all)
    # Two statements, not `run_cpp && run_python`: set -e does not apply to the left of &&.
    run_cpp
    run_python "$@"
    ;;
  *) echo "usage: $0 [cpp|python|all] [pytest args...]" >&2; exit 2 ;;
esac
step "sanitizers: no reports"

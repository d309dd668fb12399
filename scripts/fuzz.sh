#!/usr/bin/env bash
# Fuzz the checkpoint reader and the shape logic with libFuzzer (clang, ASan + UBSan).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [--update-corpus]
#
# Builds build/fuzz (installing clang and its libFuzzer runtime with apt when missing), runs the
# targets in fuzz/ side by side, each for SECONDS_PER_TARGET (default 120) on a scratch copy of
# its committed seed corpus, prints executions, time and corpus size, and exits non-zero on any finding (a crash,
# a sanitizer report, a leak, a hang, an unexpected exception). Reproducers land in
# build/fuzz/artifacts/. With --update-corpus the inputs that found new coverage are merged
# (minimised) into fuzz/corpus/<target>/; review the growth before committing it.
# Environment: FUZZ_TARGETS="safetensors shapes" picks targets; FUZZ_JOBS=N runs N processes
# per target (default 1).
set -euo pipefail

usage() {
  sed -n '3,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
}

seconds=120
update_corpus=0
for arg in "$@"; do
  case "$arg" in
    --update-corpus) update_corpus=1 ;;
    -h | --help) usage ;;
    *[!0-9]* | '') echo "fuzz.sh: unknown argument '$arg'" >&2; usage ;;
    *) seconds=$arg ;;
  esac
done

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="$root/build/fuzz"
targets=${FUZZ_TARGETS:-"safetensors shapes"}
jobs=${FUZZ_JOBS:-1}

# clang with the libFuzzer runtime: a one-line target must link with -fsanitize=fuzzer.
can_fuzz() {
  command -v clang++ >/dev/null 2>&1 || return 1
  local probe
  probe="$(mktemp -d)"
  printf '%s\n' '#include <cstddef>' '#include <cstdint>' \
    'extern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }' \
    >"$probe/probe.cpp"
  clang++ -fsanitize=fuzzer,address,undefined "$probe/probe.cpp" -o "$probe/probe" \
    >/dev/null 2>&1
  local ok=$?
  rm -rf "$probe"
  return $ok
}
if ! can_fuzz; then
  echo "==== installing clang and libFuzzer (apt) ===="
  export DEBIAN_FRONTEND=noninteractive
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo apt-get update
  # Debian bookworm's clang is 14; libclang_rt.fuzzer comes with libclang-rt-14-dev.
  $sudo apt-get install -y --no-install-recommends clang libclang-rt-14-dev
  can_fuzz || { echo "fuzz.sh: clang++ still can't link -fsanitize=fuzzer" >&2; exit 1; }
fi

echo "==== building $build ===="
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S "$root/fuzz" -B "$build" "${generator[@]}" -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo
fi
cmake --build "$build" -j "$(nproc)"

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
export BPROP_NUM_THREADS="${BPROP_NUM_THREADS:-1}"  # tiny tensors; keeps runs reproducible

mkdir -p "$build/artifacts"

# The targets run side by side (each a process, or FUZZ_JOBS of them), each in its own
# directory: libFuzzer's workers write their fuzz-<n>.log into the current directory. Any still
# running when this script ends (a failed step, a cancelled CI run) are stopped.
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
declare -A before
for name in $targets; do
  seeds="$root/fuzz/corpus/$name"
  work="$build/work/$name"
  run_dir="$build/run/$name"
  rm -rf "$work" "$run_dir"
  mkdir -p "$work" "$run_dir"
  cp "$seeds"/* "$work"/
  options=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
    -artifact_prefix="$build/artifacts/$name-")
  [ -f "$root/fuzz/$name.dict" ] && options+=(-dict="$root/fuzz/$name.dict")
  if [ "$jobs" -gt 1 ]; then options+=(-jobs="$jobs" -workers="$jobs"); fi
  echo "==== fuzz_$name for ${seconds}s on $(ls "$work" | wc -l) seeds (log: $build/fuzz_$name.log) ===="
  before[$name]=$(find "$build/artifacts" -name "$name-*" | wc -l)
  (
    set +e
    start=$(date +%s)
    cd "$run_dir" || exit 1
    "$build/fuzz_$name" "${options[@]}" "$work" >"$build/fuzz_$name.log" 2>&1 &
    fuzzer=$!
    trap 'kill "$fuzzer" 2>/dev/null' TERM  # (the EXIT trap below stops this subshell)
    wait "$fuzzer"
    status=$?
    echo "$status $(($(date +%s) - start))" >"$run_dir/exit_status"
  ) &
done
wait

failed=()
summary=()
for name in $targets; do
  seeds="$root/fuzz/corpus/$name"
  work="$build/work/$name"
  run_dir="$build/run/$name"
  log="$build/fuzz_$name.log"
  read -r rc elapsed <"$run_dir/exit_status"
  if [ "$jobs" -gt 1 ]; then  # one log per worker: sum their final counts
    execs=$(for f in "$run_dir"/fuzz-*.log; do
      grep -h 'stat::number_of_executed_units' "$f" | tail -n 1 || true
    done | awk '{s += $2} END {print s + 0}')
    cat "$run_dir"/fuzz-*.log >>"$log" 2>/dev/null || true
  else
    execs=$(grep -h 'stat::number_of_executed_units' "$log" | tail -n 1 | awk '{print $2 + 0}' || true)
  fi
  corpus=$(ls "$work" | wc -l)
  line="fuzz_$name: ${elapsed}s, $execs executions, corpus $(ls "$seeds" | wc -l) seeds -> $corpus inputs, exit $rc"
  summary+=("$line")
  after=$(find "$build/artifacts" -name "$name-*" | wc -l)
  if [ "$rc" -ne 0 ] || [ "$after" -ne "${before[$name]}" ]; then
    failed+=("$name")
    echo "FINDING in fuzz_$name (exit $rc); the log's end:"
    tail -n 40 "$log"
    find "$build/artifacts" -name "$name-*" | sed 's/^/  artifact: /'
  fi
  echo "$line"
  if [ "$update_corpus" -eq 1 ]; then
    echo "merging new coverage into $seeds"
    (cd "$run_dir" && "$build/fuzz_$name" -merge=1 "$seeds" "$work") >>"$log" 2>&1
  fi
done

echo
echo "==== summary ===="
printf '%s\n' "${summary[@]}"
if [ "${#failed[@]}" -gt 0 ]; then
  echo "findings in: ${failed[*]} (reproduce: $build/fuzz_<target> $build/artifacts/<file>)"
  exit 1
fi
echo "no findings"

#!/usr/bin/env bash
# Builds the libFuzzer targets (the `fuzz` CMake preset: clang 14, ASan +
# UBSan) when needed and runs each for SECONDS seconds, starting from its seed
# corpus (corpus/<target>/) with its dictionary (dict/<target>.dict).
#
#   tests/fuzz/run.sh SECONDS [TARGET...]     e.g. tests/fuzz/run.sh 20
#                                                  tests/fuzz/run.sh 600 pgwire jwt
#
# Prints, per target, the executions, executions per second, the inputs the
# run added to its corpus and the peak RSS, then one summary line. Exits
# non-zero when any target crashes, leaks, times out or exceeds its memory
# limit; the reproducer is kept in build/fuzz/artifacts/<target>/ (run the
# target binary on that file to reproduce).
#
# Environment: AIRLOCK_FUZZ_JOBS (build parallelism, default 2),
# AIRLOCK_FUZZ_CORPUS_DIR (keep the grown corpora there instead of discarding
# them), AIRLOCK_FUZZ_ARGS (extra libFuzzer flags).
set -euo pipefail
cd "$(dirname "$0")/../.."

seconds="${1:-}"
if [[ ! "$seconds" =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: tests/fuzz/run.sh SECONDS [TARGET...]" >&2
  exit 2
fi
shift

build_log=$(mktemp /tmp/airlock-fuzz-build.XXXXXX)
if ! { cmake --preset fuzz && cmake --build --preset fuzz -j "${AIRLOCK_FUZZ_JOBS:-2}"; } \
    >"$build_log" 2>&1; then
  tail -50 "$build_log" >&2
  echo "fuzz summary: the fuzz targets do not build (cmake --preset fuzz)" >&2
  rm -f "$build_log"
  exit 1
fi
rm -f "$build_log"

bin=build/fuzz/fuzz
targets=("$@")
if ((${#targets[@]} == 0)); then
  for source in tests/fuzz/fuzz_*.cc; do
    name=$(basename "$source" .cc)
    targets+=("${name#fuzz_}")
  done
fi

work=$(mktemp -d /tmp/airlock-fuzz-run.XXXXXX)
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
if [[ -z "${ASAN_SYMBOLIZER_PATH:-}" && -x /usr/lib/llvm-14/bin/llvm-symbolizer ]]; then
  export ASAN_SYMBOLIZER_PATH=/usr/lib/llvm-14/bin/llvm-symbolizer
fi

failed=()
total_runs=0
for target in "${targets[@]}"; do
  binary="$bin/fuzz_$target"
  if [[ ! -x "$binary" ]]; then
    echo "fuzz: no target $target ($binary)" >&2
    failed+=("$target")
    continue
  fi
  corpus="${AIRLOCK_FUZZ_CORPUS_DIR:-$work}/$target"
  artifacts="build/fuzz/artifacts/$target/"
  mkdir -p "$corpus" "$artifacts"
  args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=30 -rss_limit_mb=2048
        -artifact_prefix="$artifacts")
  [[ -f "tests/fuzz/dict/$target.dict" ]] && args+=(-dict="tests/fuzz/dict/$target.dict")
  # shellcheck disable=SC2206
  args+=(${AIRLOCK_FUZZ_ARGS:-})
  log="$work/$target.log"
  status=0
  "$binary" "${args[@]}" "$corpus" "tests/fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
  runs=$(stat number_of_executed_units)
  rate=$(stat average_exec_per_sec)
  added=$(stat new_units_added)
  rss=$(stat peak_rss_mb)
  total_runs=$((total_runs + ${runs:-0}))
  if ((status == 0)); then
    verdict=ok
  else
    verdict="FAILED (exit $status)"
    failed+=("$target")
  fi
  printf 'fuzz %-16s %12s execs %8s exec/s %6s new %6s MB  %s\n' \
    "$target" "${runs:-?}" "${rate:-?}" "${added:-?}" "${rss:-?}" "$verdict"
  if ((status != 0)); then
    grep -E 'ERROR|SUMMARY|runtime error|^    #[0-9]+ ' "$log" | head -40 >&2 || true
    echo "fuzz: $target: reproducer in $artifacts; full log follows the summary" >&2
    cp "$log" "build/fuzz/artifacts/$target.log"
  fi
done

if ((${#failed[@]} == 0)); then
  echo "fuzz summary: ${#targets[@]} targets, ${seconds} s each, $total_runs executions, 0 failures"
else
  echo "fuzz summary: ${#targets[@]} targets, ${seconds} s each, $total_runs executions," \
       "${#failed[@]} FAILED: ${failed[*]}"
  exit 1
fi

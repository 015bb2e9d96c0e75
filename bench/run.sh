#!/usr/bin/env bash
# The end-to-end benchmarks, one command:
#
#   bench/run.sh [--small] [--suites lifecycle,load,join,growth,decisions,control]
#
# Installs what is missing (scripts/install-deps.sh, then the bench-only
# bench/install-bench-deps.sh), configures and builds the release tree
# (build/rel, RelWithDebInfo) if needed, starts PostgreSQL, the MongoDB wire
# server and the kernels on loopback, runs the suites and writes
# bench/results/<date>[-small].json and .md, and the growth curves as
# bench/results/<date>[-small]-*.png. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(dirname "$here")
build=${AIRLOCK_BENCH_BUILD_DIR:-$root/build/rel}
small=()
suites=()
while (($#)); do
  case "$1" in
    --small) small=(--small) ;;
    --suites) suites=(--suites "$2"); shift ;;
    *) echo "usage: bench/run.sh [--small] [--suites lifecycle,load,join,growth,decisions,control]" >&2
       exit 2 ;;
  esac
  shift
done

"$root/scripts/install-deps.sh"
"$here/install-bench-deps.sh"

if [[ ! -f "$build/build.ninja" ]]; then
  launcher=()
  if command -v ccache >/dev/null; then
    launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
  fi
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DAIRLOCK_BUILD_BENCH=ON ${launcher[@]+"${launcher[@]}"}
fi
cmake --build "$build" -j"$(nproc)" --target e2e_bench policy_requests_bench airlockd airlock-enclave \
  airlock_identity_static_tokens airlock_policy_rules airlock_isolator_process \
  airlock_isolator_inprocess airlock_tunnel_https airlock_tunnel_pgwire \
  airlock_connector_files airlock_connector_postgres airlock_connector_mongodb

mkdir -p "$here/results"
stamp=$(date -u +%Y-%m-%d)
out="$here/results/$stamp${small[0]:+-small}.json"
status=0
"$build/bench/e2e_bench" ${small[@]+"${small[@]}"} ${suites[@]+"${suites[@]}"} --out "$out" || status=$?
rm -f "${out%.json}"-*.png
mapfile -t images < <(python3 "$here/e2e/plot.py" "$out")
python3 "$here/e2e/report.py" "$out" ${images[@]+"${images[@]}"} > "${out%.json}.md"
echo "results: $out, ${out%.json}.md and ${#images[@]} plots"
exit "$status"

#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test: the release build's
# full suite, then the ASan+UBSan build's suite (set AIRLOCK_SKIP_ASAN=1 to skip).
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
./scripts/build.sh release
ctest --preset release -j "$(nproc)" --timeout 300
if [[ "${AIRLOCK_SKIP_ASAN:-0}" != "1" ]]; then
  ./scripts/build.sh asan
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --preset asan -j "$(nproc)" --timeout 600 -LE slow
fi

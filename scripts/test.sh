#!/usr/bin/env bash
# Installs what is missing, builds, and runs every test. By default the tests
# run on the ASan+UBSan build (every test, under the sanitizers); set
# AIRLOCK_TEST_PRESET=release to run them on the release build instead.
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${AIRLOCK_TEST_PRESET:-asan}"
./scripts/install-deps.sh
./scripts/build.sh "$preset"
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
ctest --preset "$preset" -j "$(nproc)" --timeout 600

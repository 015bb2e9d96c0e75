#!/usr/bin/env bash
# Installs the Debian 12 packages Airlock needs. Idempotent: installs only
# what is missing, and does nothing (not even apt-get update) when everything
# is present.
#
#   scripts/install-deps.sh               build, run and test (every package)
#   scripts/install-deps.sh --quickstart  build and run only: no clang, no
#                                         PostgreSQL server, no browser
set -euo pipefail

# Building and running the kernel and its plugins. GoogleTest and Google
# Benchmark are small header packages the release configuration looks for.
packages=(
  cmake ninja-build g++ pkg-config git
  libboost1.81-dev libboost-filesystem1.81-dev libboost-system1.81-dev libboost-url1.81-dev
  libssl-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libsqlite3-dev
  libpqxx-dev libpq-dev libmongoc-dev libbson-dev libseccomp-dev libcurl4-openssl-dev
  libtcmalloc-minimal4 libpg-query-dev libyaml-cpp-dev
  libgtest-dev libgmock-dev googletest libbenchmark-dev
  openssl ca-certificates curl jq
)
# The tests: their compiler and linker (the sanitizer build and the fuzz
# targets), the real PostgreSQL servers the tests start, the SMTP server the
# e-mail notifier's tests start, the browser the console tests drive, and
# the PostgreSQL clients the pgwire tunnel's tests drive (psycopg2, JDBC),
# the Prometheus text parser, and what the package test builds and installs
# with (dpkg-shlibdeps, ip).
test_packages=(
  clang-14 libclang-rt-14-dev llvm-14 lld-14
  postgresql postgresql-client sqlite3
  python3-aiosmtpd python3-psycopg2 python3-prometheus-client tinyproxy
  libpostgresql-jdbc-java openjdk-17-jdk-headless
  dpkg-dev iproute2
  chromium
)

case "${1:-}" in
  "") packages+=("${test_packages[@]}") ;;
  --quickstart) ;;
  *)
    echo "usage: scripts/install-deps.sh [--quickstart]" >&2
    exit 2
    ;;
esac

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"

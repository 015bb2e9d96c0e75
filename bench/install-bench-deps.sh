#!/usr/bin/env bash
# Installs the Debian 12 packages only the benchmarks need (not CI's list in
# scripts/install-deps.sh): wrk drives the control plane, nginx is its
# ceiling, sqlite3 is the join's ceiling, python3 renders the tables and
# gnuplot draws the growth curves.
# Idempotent: does nothing (not even apt-get update) when all are present.
set -euo pipefail

packages=(wrk nginx-light sqlite3 python3 procps gnuplot-nox)

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$pkg")
done
# Any nginx flavour will do.
if [[ " ${missing[*]} " == *" nginx-light "* ]] && [[ -x /usr/sbin/nginx ]]; then
  missing=("${missing[@]/nginx-light/}")
fi
missing=(${missing[@]+"${missing[@]}"})

if ((${#missing[@]} == 0)); then
  echo "install-bench-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "install-bench-deps: installing ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
# The package starts a system nginx on port 80; the benchmark runs its own.
if command -v systemctl >/dev/null && systemctl is-active --quiet nginx 2>/dev/null; then
  $sudo systemctl stop nginx || true
fi

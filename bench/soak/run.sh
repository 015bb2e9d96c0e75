#!/usr/bin/env bash
# The soak: a real airlockd under steady load for a fixed time, on loopback.
#
#   bench/soak/run.sh [--duration SECONDS] [--clients N] [--lifecycles N]
#                     [--tunnel-users N] [--think-ms MS] [--post-percent P]
#                     [--no-build] [--keep] [--out FILE]
#
# Builds (release tree build/rel, as bench/run.sh) the kernel, its plugins and
# bench/soak/soak_driver, writes a quickstart-like configuration (static
# tokens, rules policy, process isolator, HTTPS tunnel, two CSV datasets) into
# a fresh directory, starts airlockd, runs the driver for the duration
# (default 600 s), stops the kernel and verifies its audit log. Writes
# bench/results/soak-<date>.json and prints a summary; exits non-zero on any
# error. --out FILE writes the report there instead; AIRLOCK_SOAK_DRIVER names
# another driver binary. Not for CI: it runs for minutes. See bench/soak/README.md.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=${AIRLOCK_BENCH_BUILD_DIR:-$root/build/rel}
duration=600
clients=1000
lifecycles=2
tunnel_users=8
think_ms=1000
post_percent=4
do_build=1
keep=0
out=
usage="usage: bench/soak/run.sh [--duration S] [--clients N] [--lifecycles N] [--tunnel-users N] [--think-ms MS] [--post-percent P] [--no-build] [--keep] [--out FILE]"
while (($#)); do
  case "$1" in
    --duration) duration=$2; shift ;;
    --clients) clients=$2; shift ;;
    --lifecycles) lifecycles=$2; shift ;;
    --tunnel-users) tunnel_users=$2; shift ;;
    --think-ms) think_ms=$2; shift ;;
    --post-percent) post_percent=$2; shift ;;
    --no-build) do_build=0 ;;
    --keep) keep=1 ;;
    --out) out=$2; shift ;;
    *) echo "$usage" >&2; exit 2 ;;
  esac
  shift
done
for n in "$duration" "$clients" "$lifecycles" "$tunnel_users" "$think_ms" "$post_percent"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "not a number: $n" >&2; echo "$usage" >&2; exit 2; }
done

if ((do_build)); then
  if [[ ! -f "$build/build.ninja" ]]; then
    launcher=()
    if command -v ccache >/dev/null; then
      launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
    fi
    cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DAIRLOCK_BUILD_BENCH=ON ${launcher[@]+"${launcher[@]}"}
  fi
  cmake --build "$build" -j"$(nproc)" --target soak_driver airlockd airlock-enclave \
    airlock_identity_static_tokens airlock_policy_rules airlock_isolator_process \
    airlock_tunnel_https airlock_connector_files
fi
airlockd=$build/bin/airlockd
plugins=$build/plugins
driver=${AIRLOCK_SOAK_DRIVER:-$build/bench/soak_driver}
for f in "$airlockd" "$driver"; do
  [[ -x "$f" ]] || { echo "missing $f (build it, or drop --no-build)" >&2; exit 1; }
done

# Each client holds one socket in the driver and one in the kernel; both
# processes inherit this limit.
need=$((clients + 512))
hard=$(ulimit -Hn)
if [[ "$hard" != unlimited ]] && ((hard < need)); then
  echo "the open-file limit is $hard; $clients clients need at least $need (ulimit -Hn)" >&2
  exit 1
fi
if [[ "$(ulimit -n)" != unlimited ]] && (($(ulimit -n) < need)); then ulimit -n "$hard"; fi

work=$(mktemp -d /tmp/airlock-soak-XXXXXX)
kernel_pid=
cleanup() {
  if [[ -n "$kernel_pid" ]] && kill -0 "$kernel_pid" 2>/dev/null; then
    kill -KILL "$kernel_pid" 2>/dev/null || true
    wait "$kernel_pid" 2>/dev/null || true
  fi
  if ((keep)); then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

# Data, a self-signed certificate for the tunnel, tokens and the configuration.
mkdir -p "$work/data" "$work/tls"
printf 'id,name,country\n1,Ada,GB\n2,Grace,US\n3,Edsger,NL\n' > "$work/data/customers.csv"
printf 'order_id,customer_id,amount\n10,1,100.5\n11,1,20\n12,2,7.25\n13,3,1000\n' \
  > "$work/data/orders.csv"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
  -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 \
  -keyout "$work/tls/server.key" -out "$work/tls/server.crt" 2>/dev/null
chmod 600 "$work/tls/server.key"
token() { echo "alk_soak_$(openssl rand -hex 16)"; }
hash() { printf '%s' "$1" | sha256sum | cut -d' ' -f1; }
SOAK_ALICE_TOKEN=$(token) SOAK_BOB_TOKEN=$(token) SOAK_CAROL_TOKEN=$(token)
export SOAK_ALICE_TOKEN SOAK_BOB_TOKEN SOAK_CAROL_TOKEN
cat > "$work/airlock.json" <<EOF
{
  "server": { "listen_address": "127.0.0.1", "port": 0, "read_timeout_ms": $((think_ms * 3 / 2 + 30000)) },
  "state_dir": "$work/state",
  "identity": [{ "name": "tokens", "plugin": "$plugins/airlock_identity_static_tokens.so", "config": { "tokens": [
    { "sha256": "$(hash "$SOAK_ALICE_TOKEN")", "subject": "alice", "kind": "human", "groups": ["analysts"] },
    { "sha256": "$(hash "$SOAK_BOB_TOKEN")", "subject": "bob", "kind": "human", "groups": ["owners"] },
    { "sha256": "$(hash "$SOAK_CAROL_TOKEN")", "subject": "carol", "kind": "human", "groups": ["admins"] } ] } }],
  "policy": { "name": "rules", "plugin": "$plugins/airlock_policy_rules.so", "config": { "version": 1, "rules": [
    { "name": "analysts", "effect": "allow", "subjects": { "groups": ["analysts"] }, "datasets": ["*"],
      "max_window_seconds": 86400, "approval": { "groups": ["owners"], "count": 1 } } ] } },
  "isolator": { "name": "process", "plugin": "$plugins/airlock_isolator_process.so", "config": {
    "state_dir": "$work/enclaves",
    "min_isolation": ["pid_namespace", "network_namespace", "no_new_privs", "seccomp", "rlimits"] } },
  "tunnel": { "name": "https", "plugin": "$plugins/airlock_tunnel_https.so", "config": {
    "listen_address": "127.0.0.1", "port": 0, "public_host": "127.0.0.1", "rate_limit_per_minute": 0, "max_concurrent_queries": 64,
    "tls": { "certificate_file": "$work/tls/server.crt", "private_key_file": "$work/tls/server.key" } } },
  "connectors": { "files": { "plugin": "$plugins/airlock_connector_files.so", "config": { "root": "$work/data" } } },
  "datasets": [
    { "name": "customers", "connector": "files", "object": "customers.csv" },
    { "name": "orders", "connector": "files", "object": "orders.csv" } ],
  "access": { "admin_groups": ["admins"], "reviewer_groups": ["owners"] }
}
EOF

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
"$airlockd" serve --config "$work/airlock.json" --port 0 --port-file "$work/port" \
  > "$work/airlockd.log" 2>&1 &
kernel_pid=$!
for _ in $(seq 300); do
  [[ -s "$work/port" ]] && break
  kill -0 "$kernel_pid" 2>/dev/null || { cat "$work/airlockd.log" >&2; exit 1; }
  sleep 0.1
done
[[ -s "$work/port" ]] || { echo "airlockd did not start" >&2; cat "$work/airlockd.log" >&2; exit 1; }
port=$(cat "$work/port")
echo "soak: airlockd pid $kernel_pid on 127.0.0.1:$port; $clients clients, $lifecycles lifecycle loops," \
  "$tunnel_users tunnel users, ${duration}s; load average $load_start" >&2

driver_status=0
"$driver" --api-port "$port" --kernel-pid "$kernel_pid" --duration "$duration" \
  --clients "$clients" --lifecycles "$lifecycles" --tunnel-users "$tunnel_users" \
  --think-ms "$think_ms" --post-percent "$post_percent" --out "$work/driver.json" \
  > /dev/null || driver_status=$?
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

# A graceful stop, bounded: SIGTERM, then at most 60 s.
kill -TERM "$kernel_pid"
kernel_status=
for _ in $(seq 600); do
  if ! kill -0 "$kernel_pid" 2>/dev/null; then
    kernel_status=0
    wait "$kernel_pid" || kernel_status=$?
    break
  fi
  sleep 0.1
done
[[ -n "$kernel_status" ]] || kernel_status="did not stop within 60 s"
kernel_pid=

verify_status=0
verify_output=$("$airlockd" audit verify "$work/state/audit.log" 2>&1) || verify_status=$?

if [[ -z "$out" ]]; then
  mkdir -p "$root/bench/results"
  out="$root/bench/results/soak-$(date -u +%Y-%m-%d).json"
fi
python3 - "$work/driver.json" "$out" "$kernel_status" "$verify_status" "$verify_output" \
  "$load_start" "$load_end" "$driver_status" <<'EOF'
import json, os, platform, sys
driver_file, out, kernel_status, verify_status, verify_output, load_start, load_end, driver_status = sys.argv[1:]
try:
    report = json.load(open(driver_file))
except (OSError, ValueError) as e:
    report = {"errors": 1, "error_samples": [f"no driver report: {e}"], "kernel": [], "requests": {}}
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
report["machine"] = {"cpu": cpu, "cores": os.cpu_count(), "load_average_start": load_start,
                     "load_average_end": load_end, "kernel": platform.release()}
report["kernel_exit"] = kernel_status
report["audit_verify"] = {"exit": int(verify_status), "output": verify_output.strip()}
report["driver_exit"] = int(driver_status)
json.dump(report, open(out, "w"), indent=2)

samples = report.get("kernel", [])
req = report.get("requests") or {}
print(f"soak: {report.get('seconds', 0):.0f} s, {report['options']['clients'] if 'options' in report else '?'} clients")
print(f"  API calls {report.get('api_calls', 0)} (p50 {report.get('api_latency', {}).get('p50_ms', 0):.1f} ms,"
      f" p99 {report.get('api_latency', {}).get('p99_ms', 0):.1f} ms), reconnects {report.get('reconnects', 0)}")
print(f"  tunnel queries {report.get('tunnel_queries', 0)}, lifecycles completed {report.get('lifecycles_completed', 0)}")
print(f"  errors {report.get('errors', '?')}" + "".join(f"\n    {e}" for e in report.get("error_samples", [])))
for s in samples:
    memory = ""
    if "heap_kb" in s:
        memory = (f" (heap held {s['heap_kb'] / 1024:.1f} MiB, SQLite {s['sqlite_kb'] / 1024:.1f} MiB"
                  f" of which page caches {s['sqlite_page_cache_kb'] / 1024:.1f} MiB;"
                  f" audit index {s.get('audit_index_requests', '?')} requests,"
                  f" view cache {s.get('view_cache_entries', '?')})")
    print(f"  kernel at {s['t_s']:7.1f} s ({s['phase']}): RSS {s['rss_kb'] / 1024:.1f} MiB{memory}, {s['fds']} fds, {s['threads']} threads")
print(f"  requests: {req.get('created', '?')} created, {req.get('accounted', '?')} accounted for,"
      f" {req.get('missing', '?')} missing, {req.get('wrong_state', '?')} in the wrong state,"
      f" {req.get('unknown', '?')} unknown; by state {req.get('by_state', {})}")
print(f"  kernel stop: {kernel_status}; audit verify: exit {verify_status} ({verify_output.strip()[:200]})")
print(f"  load average {load_start} -> {load_end}")
print(f"  report: {out}")
ok = report.get("errors") == 0 and kernel_status == "0" and verify_status == "0" and driver_status == "0"
sys.exit(0 if ok else 1)
EOF

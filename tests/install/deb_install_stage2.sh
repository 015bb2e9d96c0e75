#!/usr/bin/env bash
# Stage 2 of deb_install_inside.sh, with the overlay as the root of the mount
# namespace (not a chroot: the process isolator needs user namespaces, which
# Linux refuses to a chrooted process).
#   deb_install_stage2.sh AIRLOCK_DEB SDK_DEB   (file names in /tmp/packages)
set -euo pipefail
deb=$1
sdk=$2
umount -l /.oldroot

step() { echo "--- $*"; }
step "apt install"
apt-get install -y -o Dpkg::Use-Pty=0 \
  "/tmp/packages/$deb" "/tmp/packages/$sdk"
getent passwd airlock > /dev/null
for path in /etc/airlock/airlock.json /etc/airlock/admin.token /etc/airlock/tls/server.crt \
    /usr/include/airlock/c/airlock_plugin.h /usr/lib/cmake/AirlockSDK/AirlockSDKConfig.cmake; do
  [[ -e "$path" ]] || { echo "missing after install: $path"; exit 1; }
done
[[ $(stat -c %a /etc/airlock/admin.token) == 600 ]] || { echo "admin.token is readable by others"; exit 1; }
owner=$(stat -c %U:%a /var/lib/airlock)
[[ $owner == airlock:700 ]] || { echo "state directory is not private: $owner"; exit 1; }

step "an analyst's token (as an operator adds identities)"
sh -c 'umask 077; head -c 32 /dev/urandom | od -An -tx1 | tr -d " \n" > /root/analyst.token'
python3 -c '
import hashlib, json
path = "/etc/airlock/airlock.json"
config = json.load(open(path))
token = open("/root/analyst.token").read().strip()
config["identity"][0]["config"]["tokens"].append({"sha256": hashlib.sha256(token.encode()).hexdigest(),
    "subject": "ana", "kind": "human", "groups": ["analysts"]})
json.dump(config, open(path, "w"), indent=2)
'
sh -c 'printf "Authorization: Bearer %s\n" "$(cat /etc/airlock/admin.token)" > /root/admin.header;
               printf "Authorization: Bearer %s\n" "$(cat /root/analyst.token)" > /root/analyst.header'
/usr/bin/airlockd check-config --config /etc/airlock/airlock.json

step "start the installed kernel as the airlock user"
runuser -u airlock -- /usr/bin/env ASAN_OPTIONS="${ASAN_OPTIONS:-}" \
  UBSAN_OPTIONS="${UBSAN_OPTIONS:-}" /usr/bin/airlockd serve --config /etc/airlock/airlock.json \
  > /tmp/airlockd.log 2>&1 &
kernel=$!
trap 'kill $kernel 2> /dev/null || true' EXIT
api() { curl -sS --max-time 20 -H "@/root/$1.header" -H "Content-Type: application/json" "${@:2}"; }
for _ in $(seq 1 100); do
  curl -sf --max-time 2 http://127.0.0.1:8080/healthz > /dev/null 2>&1 && break
  sleep 0.2
done
curl -sf http://127.0.0.1:8080/healthz > /dev/null || { cat /tmp/airlockd.log; exit 1; }

step "a request through its whole life"
created=$(api analyst -X POST http://127.0.0.1:8080/v1/requests \
  -d '{"datasets":["customers"],"purpose":"package test","window_seconds":600}')
id=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["id"])' "$created")
api admin -X POST "http://127.0.0.1:8080/v1/requests/$id/approve" -d '{}' > /dev/null
state=
for _ in $(seq 1 150); do
  state=$(api analyst "http://127.0.0.1:8080/v1/requests/$id" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("state",""))')
  [[ $state == ready || $state == failed ]] && break
  sleep 0.2
done
[[ $state == ready ]] || { echo "request ended $state"; cat /tmp/airlockd.log; exit 1; }
grant=$(api analyst -X POST "http://127.0.0.1:8080/v1/requests/$id/credentials")
python3 -c '
import json, sys
g = json.loads(sys.argv[1])
open(sys.argv[2] + "/tunnel.url", "w").write(g["url"])
open(sys.argv[2] + "/tunnel.header", "w").write("Authorization: Bearer " + g["credential"] + "\n")
' "$grant" /root
rows=$(sh -c 'curl -sS --max-time 20 --cacert /etc/airlock/tls/server.crt \
  -H @/root/tunnel.header -H "Content-Type: application/json" \
  -d "{\"sql\": \"SELECT name FROM customers ORDER BY id\"}" "$(cat /root/tunnel.url)/query"')
grep -q '"Ada Lovelace"' <<< "$rows" || { echo "query answered: $rows"; cat /tmp/airlockd.log; exit 1; }
api analyst -X POST "http://127.0.0.1:8080/v1/requests/$id/revoke" -d '{}' > /dev/null

step "stop; the audit verifies with the installed key"
kill -TERM $kernel
wait $kernel || true
trap - EXIT
/usr/bin/airlockd audit verify /var/lib/airlock/audit.log --public-key /etc/airlock/audit.pub

step "remove, then purge"
apt-get remove -y -o Dpkg::Use-Pty=0 airlock airlock-sdk > /dev/null
[[ ! -e /usr/lib/airlock/bin/airlockd && -e /etc/airlock/airlock.json ]] ||
  { echo "remove did not keep the configuration or left the binaries"; exit 1; }
apt-get purge -y -o Dpkg::Use-Pty=0 airlock > /dev/null
[[ ! -e /etc/airlock && -e /var/lib/airlock/audit.log ]] ||
  { echo "purge did not remove the configuration, or removed the audit log"; exit 1; }
echo "deb_package: installed, ran a request through it, removed and purged"

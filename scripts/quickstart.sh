#!/usr/bin/env bash
# The quickstart: installs what is missing, builds, starts the kernel with
# configs/quickstart.json and walks one request through its whole life:
#   alice asks for two datasets -> bob approves -> the enclave ingests and
#   seals -> the tunnel opens -> a join across both datasets returns rows ->
#   revoke -> the tunnel refuses -> `airlockd audit verify --public-key` checks
#   the audit chain and its signed checkpoints.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

./scripts/install-deps.sh --quickstart
# Only what the walkthrough runs: the kernel, the enclave and five plugins.
./scripts/build.sh release quickstart

bin="$root/build/release/bin"
var="$root/var/quickstart"
tls="$var/tls"
# The audit signing key lives outside the state directory (the kernel refuses
# it inside): whoever can write the state must not be able to re-sign it.
keys="$root/var/quickstart-keys"
port="${AIRLOCK_QUICKSTART_PORT:-8080}"
alice="alk_demo_alice_0f3a9c2e7b5d41e8"
bob="alk_demo_bob_8e21d7c4a9f03b6d"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# A fresh run: previous state, audit log, keys and certificates are discarded.
rm -rf "$var" "$keys"
mkdir -p "$tls" "$keys"
chmod 700 "$var" "$keys"

step "Generating a throwaway audit checkpoint signing key (var/quickstart-keys)"
"$bin/airlockd" audit keygen --private-key "$keys/audit.key" --public-key "$keys/audit.pub"

step "Generating a throwaway CA and tunnel certificate for 127.0.0.1"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj "/CN=Airlock quickstart CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
  -subj "/CN=127.0.0.1" -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial \
  -days 2 -extfile <(printf 'subjectAltName=IP:127.0.0.1,DNS:localhost') \
  -out "$tls/server.crt" 2>/dev/null
chmod 600 "$tls"/*.key

step "Starting airlockd with configs/quickstart.json"
"$bin/airlockd" serve --config configs/quickstart.json --port "$port" \
  --port-file "$var/port" >"$var/airlockd.log" 2>&1 &
kernel=$!
cleanup() { kill "$kernel" 2>/dev/null || true; wait "$kernel" 2>/dev/null || true; }
trap cleanup EXIT
for _ in $(seq 1 100); do
  [[ -s "$var/port" ]] && break
  kill -0 "$kernel" 2>/dev/null || { cat "$var/airlockd.log"; exit 1; }
  sleep 0.1
done
api="http://127.0.0.1:$(cat "$var/port")"
echo "kernel pid $kernel at $api"
curl -sf "$api/healthz" | jq -c .

call() {  # call TOKEN METHOD PATH [BODY]
  local token=$1 method=$2 path=$3 body=${4:-}
  if [[ -n "$body" ]]; then
    curl -sS -X "$method" -H "Authorization: Bearer $token" -H 'Content-Type: application/json' \
      --data "$body" "$api$path"
  else
    curl -sS -X "$method" -H "Authorization: Bearer $token" "$api$path"
  fi
}

step "alice reads the catalog"
call "$alice" GET /v1/catalog | jq -c '.datasets[] | {name, tags}'

step "alice asks for customers and orders for 10 minutes"
created=$(call "$alice" POST /v1/requests \
  '{"datasets":["customers","orders"],"window_seconds":600,"purpose":"quarterly revenue review"}')
echo "$created" | jq -c '{id, state, decision: .decision | {effect, rule, reason}}'
id=$(echo "$created" | jq -r .id)

step "alice tries to approve her own request (refused)"
call "$alice" POST "/v1/requests/$id/approve" | jq -c .

step "bob (data-owners) approves"
call "$bob" POST "/v1/requests/$id/approve" '{"comment":"ok for Q3 review"}' | jq -c '{id, state, reason}'

step "the enclave ingests the approved data and seals"
state=""
for _ in $(seq 1 100); do
  state=$(call "$alice" GET "/v1/requests/$id" | jq -r .state)
  [[ "$state" == ready || "$state" == failed ]] && break
  sleep 0.1
done
call "$alice" GET "/v1/requests/$id" | jq -c '{state, progress: .enclave.progress, tunnel}'
[[ "$state" == ready ]] || { echo "request did not become ready"; exit 1; }

step "alice collects her tunnel credential (shown once)"
grant=$(call "$alice" POST "/v1/requests/$id/credentials")
echo "$grant" | jq -c '{url, transport, credential: (.credential[0:8] + "...")}'
url=$(echo "$grant" | jq -r .url)
credential=$(echo "$grant" | jq -r .credential)

tunnel_query() {
  curl -sS --cacert "$tls/ca.crt" -H "Authorization: Bearer $credential" \
    -H 'Content-Type: application/json' --data "{\"sql\": \"$1\"}" "$url/query"
}

step "a join across both datasets through the tunnel (email is masked by policy)"
tunnel_query "SELECT c.name, c.email, COUNT(o.order_id) AS orders, SUM(o.amount) AS revenue FROM customers c JOIN orders o ON o.customer_id = c.id GROUP BY c.id ORDER BY revenue DESC" |
  jq -c '.columns as $c | .rows[] | [$c, .] | transpose | map({(.[0].name): .[1]}) | add'

step "writes are refused: the enclave is sealed read-only"
tunnel_query "DELETE FROM orders" | jq -c .

step "alice revokes the request"
call "$alice" POST "/v1/requests/$id/revoke" '{"comment":"done"}' | jq -c '{id, state, reason}'

step "the tunnel now refuses the credential"
tunnel_query "SELECT 1" | jq -c .

step "audit trail of the request"
call "$alice" GET "/v1/audit?request=$id" | jq -r '.records[] | "\(.seq)  \(.event)  \(.reason // .outcome // "")"'

cleanup
trap - EXIT
step "airlockd audit verify --public-key (the chain and every signed checkpoint)"
"$bin/airlockd" audit verify "$var/audit.log" --public-key "$keys/audit.pub"

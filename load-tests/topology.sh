#!/usr/bin/env bash
# Runs the same open-loop load against the embedded mode (one process, SQLite) and against the
# production topology as separate processes (PostgreSQL, Redis, two gateways, issuer, wallet,
# clearing, two order books, nginx routing by path as in deploy/proxy/nginx.conf), on this
# machine, in one run. Prints scrip-load's lines for each; load-tests/README.md has the table.
#
#   bash load-tests/topology.sh [RATE] [DURATION_S]
#
# Needs PostgreSQL (postgres://postgres@127.0.0.1:5432), Redis (127.0.0.1:6379) and nginx
# (apt-get install nginx-light). Builds the release binaries first.
set -euo pipefail
cd "$(dirname "$0")/.."
RATE="${1:-500}"
DURATION_S="${2:-20}"
WORK="$(mktemp -d /tmp/scrip-topology-XXXX)"
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$WORK/nginx.pid" ] && kill "$(cat "$WORK/nginx.pid")" 2>/dev/null || true
  wait 2>/dev/null || true
}
trap cleanup EXIT

command -v nginx >/dev/null || { echo "nginx is missing: apt-get install nginx-light" >&2; exit 1; }
cargo build --release --locked -p scrip -p scrip-load
BIN="${CARGO_TARGET_DIR:-target}/release"
LIMITS=(SCRIP_SIGNUP_PER_MINUTE=1000000 SCRIP_LOGIN_PER_MINUTE=1000000 SCRIP_LOGIN_PER_ADDRESS_PER_MINUTE=1000000 SCRIP_PAYMENTS_PER_MINUTE=10000000 RUST_LOG=warn)

wait_ready() {
  for _ in $(seq 1 100); do
    "$BIN/scrip" probe "http://127.0.0.1:$1/readyz" && return 0
    sleep 0.1
  done
  echo "port $1 did not become ready" >&2; exit 1
}

load() {
  local base="$1" label="$2"
  for scenario in payments orders mixed; do
    echo "== $label: $scenario"
    "$BIN/scrip-load" --base-url "$base" --scenario "$scenario" --rate "$RATE" \
      --duration-s "$DURATION_S" --customers 200 --watchers 20 2>/dev/null
  done
}

# Embedded: one process, SQLite, in-process bus and limits.
env "${LIMITS[@]}" "$BIN/scrip" serve --listen 127.0.0.1:18080 --data-dir "$WORK/embedded" \
  --database-url "sqlite://$WORK/embedded.db" >"$WORK/embedded.log" 2>&1 &
PIDS+=($!)
wait_ready 18080
load http://127.0.0.1:18080 "embedded (one process, SQLite)"
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

# Topology: separate processes on PostgreSQL and Redis.
DB="scrip_load_$$"
psql -h 127.0.0.1 -U postgres -d postgres -qc "CREATE DATABASE $DB"
trap 'cleanup; psql -h 127.0.0.1 -U postgres -d postgres -qc "DROP DATABASE IF EXISTS $DB WITH (FORCE)" || true' EXIT
export DATABASE_URL="postgres://postgres@127.0.0.1:5432/$DB?sslmode=disable"
export REDIS_URL="redis://127.0.0.1:6379" SCRIP_REDIS_PREFIX="scrip-load-$$:"
export SCRIP_JWT_PUBLIC_KEY_FILE="$WORK/keys/jwt-ed25519-public.pem" SCRIP_DATA_DIR="$WORK/data"
"$BIN/scrip" admin keys "$WORK/keys" >/dev/null
"$BIN/scrip" migrate >/dev/null
start() { # name service port [extra env...]
  local name="$1" service="$2" port="$3"; shift 3
  env "${LIMITS[@]}" "$@" SCRIP_LISTEN="127.0.0.1:$port" "$BIN/scrip" serve "$service" \
    >"$WORK/$name.log" 2>&1 &
  PIDS+=($!)
}
start gateway-1 gateway 18101 SCRIP_JWT_PRIVATE_KEY_FILE="$WORK/keys/jwt-ed25519-private.pem"
start gateway-2 gateway 18102 SCRIP_JWT_PRIVATE_KEY_FILE="$WORK/keys/jwt-ed25519-private.pem"
start issuer issuer 18103
start wallet-1 wallet 18104
start wallet-2 wallet 18105
start clearing clearing 18106
start orderbook-a orderbook 18107
start orderbook-b orderbook 18108
for port in 18101 18102 18103 18104 18105 18106 18107 18108; do wait_ready "$port"; done
sed -e 's/server gateway:8080;/server 127.0.0.1:18101; server 127.0.0.1:18102;/' \
    -e 's/server issuer:8080;/server 127.0.0.1:18103;/' \
    -e 's/server wallet:8080;/server 127.0.0.1:18104; server 127.0.0.1:18105;/' \
    -e 's/server clearing:8080;/server 127.0.0.1:18106;/' \
    -e 's/server orderbook-a:8080; server orderbook-b:8080;/server 127.0.0.1:18107; server 127.0.0.1:18108;/' \
    -e 's/listen 80;/listen 127.0.0.1:18090;/' deploy/proxy/nginx.conf >"$WORK/routes.conf"
cat >"$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  keepalive_timeout 65;
  include $WORK/routes.conf;
}
CONF
# Keep connections to the services open, as a production proxy does.
sed -i 's/^upstream \([a-z]*\) *{ \(.*\) }$/upstream \1 { \2 keepalive 64; }/' "$WORK/routes.conf"
sed -i 's/^  proxy_set_header Host \$http_host;/  proxy_http_version 1.1;\n  proxy_set_header Connection "";\n  proxy_set_header Host $http_host;/' "$WORK/routes.conf"
nginx -c "$WORK/nginx.conf"
wait_ready 18090
load http://127.0.0.1:18090 "topology (8 processes + nginx, PostgreSQL, Redis)"

#!/usr/bin/env bash
# The cost of the cluster (issue #15): NODES Starling nodes sharing PostgreSQL and a Redis of this
# run's own, 100 pairs whose two ends are on different nodes ("cross") against the same run with
# both ends of each pair on one node ("same": pairs spread over the nodes), same tool, same machine.
#
#   test/bench/run-cluster.sh     (as root for the niceness; NICE=0 otherwise)
#
# Every node and the Redis server are pinned to CPU SERVER_CPU, the load tool to CLIENT_CPU: the
# cluster's whole cost (both nodes and Redis) is on one core, so "cross" and "same" compare
# directly. For each of cross and same, a fresh start of every node (and of Redis), then
#   plain  SESSIONS sessions, PAIRS pairs pumping closed-loop (WINDOW in flight per sender);
#   rate   2*PAIRS sessions, PAIRS pairs open-loop at RATE messages/s in total.
# Reported per run: delivered msgs/s, latency p50/p99, server CPU (nodes + Redis) per 1,000
# messages, Redis commands per message.
#
# Environment (defaults): NODES=2 SESSIONS=2000 PAIRS=100 DURATION=15 RATE=2000 WINDOW=10
#   BASE_PORT=27222 (node i, from 1, listens on BASE_PORT+i-1) REDIS_PORT=26379 SERVER_CPU=0 CLIENT_CPU=1
#   NICE=-15 OUT=(a new /tmp/starling-cluster-bench.XXXXXX) SKIP_BUILD=0 QUIET_WAIT=30
#   STARLING_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test STARLING_MODULES="" (default modules)
set -euo pipefail

NODES=${NODES:-2}
SESSIONS=${SESSIONS:-2000}
PAIRS=${PAIRS:-100}
DURATION=${DURATION:-15}
RATE=${RATE:-2000}
WINDOW=${WINDOW:-10}
BASE_PORT=${BASE_PORT:-27222}
REDIS_PORT=${REDIS_PORT:-26379}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
NICE=${NICE:--15}
SKIP_BUILD=${SKIP_BUILD:-0}
QUIET_WAIT=${QUIET_WAIT:-30}
STARLING_MODULES=${STARLING_MODULES:-}
PG_URL=${STARLING_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
PASSWORD=bench-password
PREFIX=bench

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/starling-cluster-bench.XXXXXX)}
mkdir -p "$OUT/results"
cd "$ROOT"
# shellcheck source=bench-lib.sh
source "$ROOT/test/bench/bench-lib.sh"

PG_SCHEMA="starling_cluster_bench_$(date +%s)_$$"
NODE_PIDS=()
REDIS_PID=""
stop_all() {
  for pid in "${NODE_PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${NODE_PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  NODE_PIDS=()
  if [ -n "$REDIS_PID" ]; then kill -TERM "$REDIS_PID" 2>/dev/null || true; wait "$REDIS_PID" 2>/dev/null || true; fi
  REDIS_PID=""
}
cleanup() {
  stop_all
  psql -q "$PG_URL" -c "drop schema if exists $PG_SCHEMA cascade" >/dev/null 2>&1 || true
  restore_autogroup
}
trap cleanup EXIT
trap 'exit 130' INT TERM


if [ "$SKIP_BUILD" != 1 ]; then say "building Starling"; npm run build >&2; fi

modules_line=""
if [ -n "$STARLING_MODULES" ]; then modules_line="modules_enabled = [$(printf '"%s",' $STARLING_MODULES | sed 's/,$//')]"; fi
for i in $(seq 1 "$NODES"); do
  mkdir -p "$OUT/n$i"
  cat >"$OUT/n$i/starling.toml" <<CONF
# Starling cluster bench, node n$i (test/bench/run-cluster.sh)
data_dir = "$OUT/n$i/data"
log = { level = "info", format = "json" }
$modules_line
[storage]
driver = "postgres"
postgres_url = "$PG_URL"
postgres_schema = "$PG_SCHEMA"
[live_state]
backend = "redis"
redis_url = "redis://127.0.0.1:$REDIS_PORT"
[cluster]
node_id = "n$i"
[c2s]
listeners = [ { interfaces = ["127.0.0.1"], port = $((BASE_PORT + i - 1)), direct_tls = false } ]
require_encryption = false
allow_plain_without_tls = true
max_unauthenticated_per_ip = 100000
auth_failures_per_ip_per_minute = 100000
[s2s]
listeners = []
[accounts]
scram_iterations = 4096
[http]
interfaces = []
https_interfaces = []
[modules.proxy65]
interfaces = ["127.0.0.1"]
port = 0
# fresh accounts pumping thousands of messages/s to strangers: the anti_spam limits are off
[modules.anti_spam]
new_account_hours = 0
messages_per_second = 0
presence_per_second = 0
iq_per_second = 0
[hosts.localhost]
CONF
done
say "creating $SESSIONS users (PostgreSQL schema $PG_SCHEMA)"
"${TSX[@]}" test/bench/create-users.ts --config "$OUT/n1/starling.toml" --count "$SESSIONS" --prefix "$PREFIX" --password "$PASSWORD" >&2

start_all() {
  "${SERVER_PIN[@]}" redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
  REDIS_PID=$!
  wait_port "$REDIS_PORT" 10
  for i in $(seq 1 "$NODES"); do
    "${SERVER_PIN[@]}" "${STARLING_NODE[@]}" dist/src/cli.js start --config "$OUT/n$i/starling.toml" >>"$OUT/n$i/starling.log" 2>&1 &
    NODE_PIDS+=($!)
  done
  for i in $(seq 1 "$NODES"); do wait_port $((BASE_PORT + i - 1)) 30; done
}

ports=$(seq -s, "$BASE_PORT" $((BASE_PORT + NODES - 1)))
for spread in cross same; do
  for run in plain rate; do
    start_all
    say "$spread $run: nodes ${NODE_PIDS[*]}, Redis $REDIS_PID"
    case $spread in cross) by=sessions ;; same) by=pairs ;; esac
    case $run in
    plain) args=(--sessions "$SESSIONS" --rate 0 --window "$WINDOW") ;;
    rate) args=(--sessions $((2 * PAIRS)) --rate "$RATE" --idle-settle 1) ;;
    esac
    timeout --signal=KILL 900 "${CLIENT[@]}" "${TSX[@]}" test/bench/load.ts --port "$ports" --spread "$by" --domain localhost \
      --server-pid "$(IFS=,; echo "${NODE_PIDS[*]},$REDIS_PID")" --redis-stats "redis://127.0.0.1:$REDIS_PORT" \
      --user-prefix "$PREFIX" --password "$PASSWORD" --pairs "$PAIRS" --duration "$DURATION" --wait-quiet "$QUIET_WAIT" \
      --label "cluster $spread $run" --json "$OUT/results/$spread-$run.json" "${args[@]}" >"$OUT/results/$spread-$run.out" ||
      echo "load tool failed: $spread $run (exit $?)" >&2
    stop_all
  done
done

say "results in $OUT"
node --input-type=module - "$OUT/results" "$NODES" <<'JS' | tee "$OUT/table.md"
import { readFileSync, existsSync } from 'node:fs';
const [dir, nodes] = process.argv.slice(2);
const read = (name) => (existsSync(`${dir}/${name}.json`) ? JSON.parse(readFileSync(`${dir}/${name}.json`, 'utf8')) : undefined);
const row = (label, f) => `| ${label} | ${['cross', 'same'].map((s) => f(read(`${s}-plain`), read(`${s}-rate`))).join(' | ')} |`;
const cpuPer1k = (r) => (r?.load ? ((r.load.serverCpuPct * 10 * 1000) / Math.max(1, r.load.deliveredPerSecond)).toFixed(1) : "-");
console.log(`${nodes} nodes + Redis on one core; both ends of a pair on different nodes (cross) or on one node (same)\n`);
console.log('| | cross | same |\n|---|---|---|');
console.log(row('closed loop msgs/s', (p) => p?.load?.deliveredPerSecond ?? '-'));
console.log(row('closed loop p50 / p99 ms', (p) => (p?.load ? `${p.load.p50Ms} / ${p.load.p99Ms}` : '-')));
console.log(row('CPU ms per 1,000 msgs (nodes + Redis)', (p) => cpuPer1k(p)));
console.log(row('Redis commands per message', (p) => p?.load?.redisCommandsPerMessage ?? '-'));
console.log(row(`${read('cross-rate')?.load?.mode ?? 'open loop'}: p50 / p99 ms, undelivered`, (_, r) => (r?.load ? `${r.load.p50Ms} / ${r.load.p99Ms}, ${r.load.lost}` : '-')));
console.log(row('open loop CPU ms per 1,000 msgs', (_, r) => cpuPer1k(r)));
JS

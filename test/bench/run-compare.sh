#!/usr/bin/env bash
# Starling against Prosody (from Debian), same load tool, same run, same machine.
#
#   test/bench/run-compare.sh            (as root: installs Prosody if missing, runs it as "prosody")
#
# For each server: a fresh start, then
#   plain  SESSIONS sessions over plain TCP: logins/s, RSS per idle session, then PAIRS pairs
#          pumping closed-loop (WINDOW messages in flight per sender) for DURATION s;
#   rate   2*PAIRS sessions, PAIRS pairs pumping open-loop at RATE messages/s in total;
#   then a fresh start and
#   tls    SESSIONS sessions over STARTTLS: logins/s, RSS per idle session, closed-loop pumping;
#   and for Starling, a fresh start and
#   ws     the plain run over XMPP over WebSocket (ws:// on loopback, RFC 7395).
# The server is pinned to CPU SERVER_CPU and the client to CPU CLIENT_CPU (taskset), loopback only.
# Every step is bounded in time; servers are stopped on exit. Results (JSON, logs) stay in OUT.
#
# Environment (defaults): SESSIONS=5000 PAIRS=100 DURATION=20 RATE=20000 WINDOW=10 WORKERS=1
#   STARLING_PORT=25222 STARLING_HTTP_PORT=25280 PROSODY_PORT=15222 SERVER_CPU=0 CLIENT_CPU=1 SERVERS="starling prosody"
#   RUNS="plain rate tls ws" OUT=(a new /tmp/starling-bench.XXXXXX) SKIP_BUILD=0 LOG_LEVEL=info
#   QUIET_WAIT=30 (before each run, wait up to that many seconds for the CPUs to be < 25% busy:
#   the machine may be shared; the report shows how busy each CPU was while measuring)
#   STARLING_MODULES="" (a space-separated modules_enabled for Starling; empty: its defaults)
#   NICE=-15 (server and client run at this niceness, so that other work on a shared machine
#   disturbs the figures less; needs root, use NICE=0 otherwise)
set -euo pipefail

SESSIONS=${SESSIONS:-5000}
PAIRS=${PAIRS:-100}
DURATION=${DURATION:-20}
RATE=${RATE:-20000}
WINDOW=${WINDOW:-10}
WORKERS=${WORKERS:-1}
STARLING_PORT=${STARLING_PORT:-25222}
STARLING_HTTP_PORT=${STARLING_HTTP_PORT:-25280}
PROSODY_PORT=${PROSODY_PORT:-15222}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-starling prosody}
RUNS=${RUNS:-plain rate tls ws}
SKIP_BUILD=${SKIP_BUILD:-0}
LOG_LEVEL=${LOG_LEVEL:-info}
QUIET_WAIT=${QUIET_WAIT:-30}
NICE=${NICE:--15}
STARLING_MODULES=${STARLING_MODULES:-}
PASSWORD=bench-password
PREFIX=bench

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/starling-bench.XXXXXX)}
mkdir -p "$OUT/results"
chmod 755 "$OUT"
cd "$ROOT"

say() { printf '\n== %s\n' "$*" >&2; }
TSX=(node --import tsx)
# With autogroup scheduling (sched_autogroup_enabled=1) a nice value only counts inside its own
# session's group: give the group of this script (server and client included) the niceness too.
# (restored on exit)
AUTOGROUP_NICE=""
if [ -w /proc/self/autogroup ]; then
  AUTOGROUP_NICE=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || AUTOGROUP_NICE=""
fi
CLIENT=(nice -n "$NICE" taskset -c "$CLIENT_CPU")
SERVER_PIN=(nice -n "$NICE" taskset -c "$SERVER_CPU")
if [ "$(nproc)" -lt 2 ]; then CLIENT=(nice -n "$NICE"); SERVER_PIN=(nice -n "$NICE"); fi

SERVER_PID=""      # the process whose RSS is measured
SERVER_WAIT_PID="" # the process we started (runuser for Prosody)
stop_server() {
  [ -n "$SERVER_PID" ] || return 0
  kill -TERM "$SERVER_PID" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
  kill -KILL "$SERVER_PID" 2>/dev/null || true
  [ -n "$SERVER_WAIT_PID" ] && wait "$SERVER_WAIT_PID" 2>/dev/null || true
  SERVER_PID=""
  SERVER_WAIT_PID=""
}
cleanup() {
  stop_server
  if [ -n "$AUTOGROUP_NICE" ]; then echo "$AUTOGROUP_NICE" >/proc/self/autogroup 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM

wait_port() { # port seconds
  for _ in $(seq 1 $(($2 * 5))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$1 after $2 s" >&2
  return 1
}

# A self-signed P-256 certificate shared by both servers (the TLS runs cost the same handshake).
mkdir -p "$OUT/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout "$OUT/certs/localhost.key" -out "$OUT/certs/localhost.crt" 2>/dev/null
chmod 644 "$OUT/certs/localhost.key"

# --- Starling -----------------------------------------------------------------------------------

setup_starling() {
  local MODULES_LINE=""
  if [ -n "$STARLING_MODULES" ]; then MODULES_LINE="modules_enabled = [$(printf '"%s",' $STARLING_MODULES | sed 's/,$//')]"; fi
  if [ "$SKIP_BUILD" != 1 ]; then say "building Starling"; npm run build >&2; fi
  mkdir -p "$OUT/starling"
  cat >"$OUT/starling/starling.toml" <<EOF
# Starling bench configuration (test/bench/run-compare.sh)
data_dir = "$OUT/starling/data"
log = { level = "$LOG_LEVEL", format = "json" }
$MODULES_LINE
certificate = "$OUT/certs/localhost.crt"
key = "$OUT/certs/localhost.key"

[c2s]
listeners = [ { interfaces = ["127.0.0.1"], port = $STARLING_PORT, direct_tls = false } ]
require_encryption = false
allow_plain_without_tls = true
max_unauthenticated_per_ip = 100000
auth_failures_per_ip_per_minute = 100000

[accounts]
scram_iterations = 4096

[http]
interfaces = ["127.0.0.1"]
port = $STARLING_HTTP_PORT
https_interfaces = []

[hosts.localhost]
EOF
  say "creating $SESSIONS Starling users"
  "${TSX[@]}" test/bench/create-users.ts --config "$OUT/starling/starling.toml" --count "$SESSIONS" --prefix "$PREFIX" --password "$PASSWORD" >&2
}

start_starling() {
  "${SERVER_PIN[@]}" node dist/src/cli.js start --config "$OUT/starling/starling.toml" >>"$OUT/starling/starling.log" 2>&1 &
  SERVER_PID=$!
  SERVER_WAIT_PID=$SERVER_PID
  wait_port "$STARLING_PORT" 30
  PORT=$STARLING_PORT
}

# --- Prosody ------------------------------------------------------------------------------------

setup_prosody() {
  if ! command -v prosody >/dev/null; then
    say "installing Prosody"
    DEBIAN_FRONTEND=noninteractive apt-get install -y prosody >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y prosody >&2; }
  fi
  local dir="$OUT/prosody"
  mkdir -p "$dir/certs"
  cp "$OUT/certs/localhost.crt" "$OUT/certs/localhost.key" "$dir/certs/"
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$PROSODY_PORT|g" -e "s|min = \"info\"|min = \"$LOG_LEVEL\"|" test/bench/prosody/bench.cfg.lua >"$dir/prosody.cfg.lua"
  say "creating $SESSIONS Prosody users"
  "${TSX[@]}" test/bench/prosody/create-users.ts --data "$dir/data" --host localhost --count "$SESSIONS" --prefix "$PREFIX" --password "$PASSWORD" >&2
  chown -R prosody:prosody "$dir"
}

start_prosody() {
  local dir="$OUT/prosody"
  rm -f "$dir/prosody.pid"
  # Prosody keeps the soft open-files limit it is given (1024 here): raise it to the hard limit.
  "${SERVER_PIN[@]}" runuser -u prosody -- sh -c "ulimit -n \$(ulimit -Hn) && exec prosody --config '$dir/prosody.cfg.lua' -F" \
    >>"$dir/stdout.log" 2>&1 &
  SERVER_WAIT_PID=$!
  wait_port "$PROSODY_PORT" 30
  for _ in $(seq 1 50); do [ -s "$dir/prosody.pid" ] && break; sleep 0.2; done
  SERVER_PID=$(cat "$dir/prosody.pid")
  PORT=$PROSODY_PORT
}

# --- runs ---------------------------------------------------------------------------------------

load() { # server run extra-args...
  local server=$1 run=$2
  shift 2
  say "$server: $run ($*)"
  timeout --signal=KILL 900 "${CLIENT[@]}" "${TSX[@]}" test/bench/load.ts --port "$PORT" --domain localhost --server-pid "$SERVER_PID" \
    --user-prefix "$PREFIX" --password "$PASSWORD" --workers "$WORKERS" --wait-quiet "$QUIET_WAIT" --label "$server $run" \
    --json "$OUT/results/$server-$run.json" "$@" >"$OUT/results/$server-$run.out" || echo "load tool failed: $server $run (exit $?)" >&2
}

has_run() { [[ " $RUNS " == *" $1 "* ]]; }

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "node: $(node --version); prosody: $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo none)"
  echo "server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU ($WORKERS worker process(es)), both at nice $NICE; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

for server in $SERVERS; do
  "setup_$server"
  if has_run plain || has_run rate; then
    "start_$server"
    say "$server running, pid $SERVER_PID"
    if has_run plain; then load "$server" plain --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"; fi
    if has_run rate; then load "$server" rate --sessions $((2 * PAIRS)) --pairs "$PAIRS" --duration "$DURATION" --rate "$RATE" --idle-settle 1; fi
    stop_server
  fi
  if has_run tls; then
    "start_$server"
    load "$server" tls --tls --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"
    stop_server
  fi
  if has_run ws && [ "$server" = starling ]; then
    "start_$server"
    load "$server" ws --websocket "ws://127.0.0.1:$STARLING_HTTP_PORT/xmpp-websocket" --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"
    stop_server
  fi
done

say "results in $OUT"
"${TSX[@]}" test/bench/report.ts "$OUT/results" | tee "$OUT/table.md"
{
  echo
  echo "server log lines at warning level or above:"
  [ -f "$OUT/starling/starling.log" ] && echo "  starling: $(grep -c '"level":[456]0' "$OUT/starling/starling.log" || true) (of $(wc -l <"$OUT/starling/starling.log"))"
  [ -f "$OUT/prosody/prosody.log" ] && echo "  prosody: $(grep -cP '\t(warn|error)\t' "$OUT/prosody/prosody.log" || true) (of $(wc -l <"$OUT/prosody/prosody.log"))"
} | tee -a "$OUT/table.md"

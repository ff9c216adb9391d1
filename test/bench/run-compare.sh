#!/usr/bin/env bash
# Starling against Prosody and ejabberd (from Debian), same load tool, same run, same machine.
#
#   test/bench/run-compare.sh            (as root: installs Prosody/ejabberd if missing, runs them as their users)
#
# Servers (SERVERS, the table's columns in that order): starling (default modules, MAM on,
# SQLite), starlingnomam (default modules less mam and muc_mam), starlingpg (default modules,
# PostgreSQL in a fresh schema, live state in Redis), prosody, prosodymam (mod_mam archiving
# everything, internal storage), ejabberd, ejabberdmam (mod_mam default always, Mnesia).
# For each server: a fresh start, then
#   plain  SESSIONS sessions over plain TCP: logins/s, RSS per idle session, then PAIRS pairs
#          pumping closed-loop (WINDOW messages in flight per sender) for DURATION s;
#   rate   2*PAIRS sessions, PAIRS pairs pumping open-loop at RATE messages/s in total;
#   then a fresh start and
#   tls    SESSIONS sessions over STARTTLS: logins/s, RSS per idle session, closed-loop pumping;
#   and for Starling, a fresh start and
#   ws     the plain run over XMPP over WebSocket (ws:// on loopback, RFC 7395);
#   muc    a fresh start, muc.bench.ts: MUC_OCCUPANTS occupants in one room, 4 senders.
# The server is pinned to CPU SERVER_CPU and the client to CPU CLIENT_CPU (taskset), loopback only.
# Every step is bounded in time; servers are stopped on exit. Results (JSON, logs) stay in OUT.
#
# Environment (defaults): SESSIONS=5000 PAIRS=100 DURATION=20 RATE=2000 WINDOW=10 WORKERS=1
#   STARLING_PORT=25222 STARLING_HTTP_PORT=25280 PROSODY_PORT=15222 EJABBERD_PORT=35222
#   EJABBERD_NODE=starlingbench@localhost SERVER_CPU=0 CLIENT_CPU=1 SERVERS="starling prosody"
#   RUNS="plain rate tls ws muc" OUT=(a new /tmp/starling-bench.XXXXXX) SKIP_BUILD=0 LOG_LEVEL=info
#   MUC_OCCUPANTS=100 MUC_DURATION=DURATION
#   STARLING_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test REDIS_URL=redis://127.0.0.1:6379/14
#   IDLE_SETTLE=20 (seconds idle before each RSS reading, before and after the logins: Starling's
#   idle collector gives memory back within ~12 s of idle, src/idle-collector.ts)
#   QUIET_WAIT=30 (before each run, wait up to that many seconds for the CPUs to be < 25% busy:
#   the machine may be shared; the report shows how busy each CPU was while measuring)
#   STARLING_MODULES="" (a space-separated modules_enabled for starling; empty: its defaults)
#   NICE=-15 (server and client run at this niceness, so that other work on a shared machine
#   disturbs the figures less; needs root, use NICE=0 otherwise)
set -euo pipefail

SESSIONS=${SESSIONS:-5000}
PAIRS=${PAIRS:-100}
DURATION=${DURATION:-20}
RATE=${RATE:-2000}
WINDOW=${WINDOW:-10}
WORKERS=${WORKERS:-1}
STARLING_PORT=${STARLING_PORT:-25222}
STARLING_HTTP_PORT=${STARLING_HTTP_PORT:-25280}
PROSODY_PORT=${PROSODY_PORT:-15222}
EJABBERD_PORT=${EJABBERD_PORT:-35222}
EJABBERD_NODE=${EJABBERD_NODE:-starlingbench@localhost}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
SERVERS=${SERVERS:-starling prosody}
RUNS=${RUNS:-plain rate tls ws muc}
SKIP_BUILD=${SKIP_BUILD:-0}
LOG_LEVEL=${LOG_LEVEL:-info}
QUIET_WAIT=${QUIET_WAIT:-30}
IDLE_SETTLE=${IDLE_SETTLE:-20}
NICE=${NICE:--15}
STARLING_MODULES=${STARLING_MODULES:-}
PG_URL=${STARLING_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/14}
MUC_OCCUPANTS=${MUC_OCCUPANTS:-100}
MUC_DURATION=${MUC_DURATION:-$DURATION}
PASSWORD=bench-password
PREFIX=bench

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$(mktemp -d /tmp/starling-bench.XXXXXX)}
mkdir -p "$OUT/results"
chmod 755 "$OUT"
cd "$ROOT"

# shellcheck source=bench-lib.sh
source "$ROOT/test/bench/bench-lib.sh"

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
  if [ -n "$PG_SCHEMA" ]; then psql -q "$PG_URL" -c "drop schema if exists $PG_SCHEMA cascade" >/dev/null 2>&1 || true; fi
  restore_autogroup
}
trap cleanup EXIT
trap 'exit 130' INT TERM # (and so through cleanup: the run stops)


# A self-signed P-256 certificate shared by both servers (the TLS runs cost the same handshake).
mkdir -p "$OUT/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 30 -subj "/CN=localhost" \
  -addext "subjectAltName=DNS:localhost" -keyout "$OUT/certs/localhost.key" -out "$OUT/certs/localhost.crt" 2>/dev/null
chmod 644 "$OUT/certs/localhost.key"

# --- Starling -----------------------------------------------------------------------------------

# The variants: starling (its default modules, MAM on, SQLite), starlingnomam (the default
# modules less mam and muc_mam), starlingpg (default modules, PostgreSQL in a fresh schema of its
# own, live state in Redis). The default module list is read from src/config/schema.ts.
default_modules() {
  "${TSX[@]}" --input-type=module -e "const { HostOptions } = await import('./src/config/schema.ts'); console.log(HostOptions.parse({}).modules_enabled.join(' '))"
}
starling_modules() { # variant: the module list (space-separated), empty for the defaults
  case $1 in
  starlingnomam) default_modules | tr ' ' '\n' | grep -vxE 'mam|muc_mam' | xargs ;;
  *) echo "$STARLING_MODULES" ;;
  esac
}
BUILT=0
PG_SCHEMA=""
setup_starling() { # [variant]
  local name=${1:-starling} MODULES_LINE="" STORAGE=""
  local modules
  modules=$(starling_modules "$name")
  if [ -n "$modules" ]; then MODULES_LINE="modules_enabled = [$(printf '"%s",' $modules | sed 's/,$//')]"; fi
  if [ "$SKIP_BUILD" != 1 ] && [ "$BUILT" = 0 ]; then say "building Starling"; npm run build >&2; BUILT=1; fi
  if [ "$name" = starlingpg ]; then
    PG_SCHEMA="starling_bench_$(date +%s)_$$"
    STORAGE="[storage]
driver = \"postgres\"
postgres_url = \"$PG_URL\"
postgres_schema = \"$PG_SCHEMA\"

[live_state]
backend = \"redis\"
redis_url = \"$REDIS_URL\"
"
  fi
  # The bench users are fresh accounts pumping thousands of messages/s to strangers: where
  # Starling has the anti_spam module, its limits are off (Prosody and ejabberd run with none).
  local ANTI_SPAM=""
  if [ -d modules/anti_spam ]; then
    ANTI_SPAM="[modules.anti_spam]
new_account_hours = 0
messages_per_second = 0
presence_per_second = 0
iq_per_second = 0
"
  fi
  rm -rf "$OUT/$name"
  mkdir -p "$OUT/$name"
  cat >"$OUT/$name/starling.toml" <<EOF
# Starling bench configuration (test/bench/run-compare.sh, variant $name)
data_dir = "$OUT/$name/data"
log = { level = "$LOG_LEVEL", format = "json" }
$MODULES_LINE
certificate = "$OUT/certs/localhost.crt"
key = "$OUT/certs/localhost.key"

$STORAGE
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
[modules.proxy65]
interfaces = ["127.0.0.1"]
port = 0
# the MUC run: its senders are plain occupants sending as fast as the room reflects (no flood control)
[modules.muc]
message_rate = 0
$ANTI_SPAM
[hosts.localhost]
EOF
  say "creating $SESSIONS $name users"
  "${TSX[@]}" test/bench/create-users.ts --config "$OUT/$name/starling.toml" --count "$SESSIONS" --prefix "$PREFIX" --password "$PASSWORD" >&2
  # the MUC run's occupants (muc.bench.ts: m0.., the same password)
  "${TSX[@]}" test/bench/create-users.ts --config "$OUT/$name/starling.toml" --count "$MUC_OCCUPANTS" --prefix m --password "$PASSWORD" >&2
}
setup_starlingnomam() { setup_starling starlingnomam; }
setup_starlingpg() { setup_starling starlingpg; }

start_starling() { # [variant]
  local name=${1:-starling}
  # Live state left in Redis by the previous process is not this run's.
  if [ "$name" = starlingpg ]; then redis-cli -u "$REDIS_URL" flushdb >/dev/null; fi
  "${SERVER_PIN[@]}" "${STARLING_NODE[@]}" dist/src/cli.js start --config "$OUT/$name/starling.toml" >>"$OUT/$name/starling.log" 2>&1 &
  SERVER_PID=$!
  SERVER_WAIT_PID=$SERVER_PID
  wait_port "$STARLING_PORT" 30
  PORT=$STARLING_PORT
}
start_starlingnomam() { start_starling starlingnomam; }
start_starlingpg() { start_starling starlingpg; }

# --- Prosody ------------------------------------------------------------------------------------

# The variants: prosody (no MAM), prosodymam (mod_mam, default_archive_policy = true: every
# message archived, in the internal storage, as everything else).
setup_prosody() { # [variant]
  local name=${1:-prosody}
  if ! command -v prosody >/dev/null; then
    say "installing Prosody"
    DEBIAN_FRONTEND=noninteractive apt-get install -y prosody >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y prosody >&2; }
  fi
  local dir="$OUT/$name" mam_module="" mam_options=""
  if [ "$name" = prosodymam ]; then
    mam_module='"mam";'
    mam_options='default_archive_policy = true; archive_expires_after = "never"'
  fi
  rm -rf "$dir"
  mkdir -p "$dir/certs"
  cp "$OUT/certs/localhost.crt" "$OUT/certs/localhost.key" "$dir/certs/"
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$PROSODY_PORT|g" -e "s|min = \"info\"|min = \"$LOG_LEVEL\"|" \
    -e "s|^\t-- @MAM_MODULE@.*|\t$mam_module|" -e "s|^-- @MAM_OPTIONS@.*|$mam_options|" test/bench/prosody/bench.cfg.lua >"$dir/prosody.cfg.lua"
  say "creating $SESSIONS $name users"
  "${TSX[@]}" test/bench/prosody/create-users.ts --data "$dir/data" --host localhost --count "$SESSIONS" --prefix "$PREFIX" --password "$PASSWORD" >&2
  # the MUC run's occupants (muc.bench.ts: m0.., the same password)
  "${TSX[@]}" test/bench/prosody/create-users.ts --data "$dir/data" --host localhost --count "$MUC_OCCUPANTS" --prefix m --password "$PASSWORD" >&2
  chown -R prosody:prosody "$dir"
}

setup_prosodymam() { setup_prosody prosodymam; }

start_prosody() { # [variant]
  local dir="$OUT/${1:-prosody}"
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

start_prosodymam() { start_prosody prosodymam; }

# --- ejabberd -----------------------------------------------------------------------------------

# The variants: ejabberd (no MAM), ejabberdmam (mod_mam, archiving every message: default always,
# in Mnesia). Each runs as user ejabberd with its own node name (EJABBERD_NODE), spool, logs and
# ports, beside whatever packaged ejabberd there is; users imported from a XEP-0227 file.
setup_ejabberd() { # [variant]
  local name=${1:-ejabberd}
  if ! command -v ejabberdctl >/dev/null; then
    say "installing ejabberd"
    DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd >&2 || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y ejabberd >&2; }
  fi
  local dir="$OUT/$name" mam=""
  if [ "$name" = ejabberdmam ]; then mam=$'  mod_mam:\n    db_type: mnesia\n    default: always'; fi
  rm -rf "$dir"
  mkdir -p "$dir/certs" "$dir/spool" "$dir/logs"
  cat "$OUT/certs/localhost.crt" "$OUT/certs/localhost.key" >"$dir/certs/localhost.pem"
  sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$EJABBERD_PORT|g" -e "s|loglevel: info|loglevel: $LOG_LEVEL|" test/bench/ejabberd/bench.yml |
    awk -v mam="$mam" '$0 == "@MAM@" { if (mam != "") print mam; next } { print }' >"$dir/ejabberd.yml"
  cat >"$dir/ejabberdctl.cfg" <<EOF
ERLANG_NODE=$EJABBERD_NODE
INET_DIST_INTERFACE=127.0.0.1
ERL_MAX_PORTS=65536
ERL_OPTIONS="-env ERL_CRASH_DUMP_BYTES 0"
EJABBERD_PID_PATH=$dir/ejabberd.pid
EOF
  {
    echo "<?xml version='1.0' encoding='UTF-8'?>"
    echo "<server-data xmlns='urn:xmpp:pie:0'><host jid='localhost'>"
    for i in $(seq 0 $((SESSIONS - 1))); do echo "<user name='$PREFIX$i' password='$PASSWORD'/>"; done
    for i in $(seq 0 $((MUC_OCCUPANTS - 1))); do echo "<user name='m$i' password='$PASSWORD'/>"; done # muc.bench.ts's
    echo "</host></server-data>"
  } >"$dir/users.xml"
  chown -R ejabberd:ejabberd "$dir"
  say "creating $SESSIONS $name users"
  "start_$name"
  local t0=$SECONDS
  ejabberd_ctl "$name" import_piefxis "$dir/users.xml" >&2
  echo "imported in $((SECONDS - t0)) s" >&2
  stop_server
}
setup_ejabberdmam() { setup_ejabberd ejabberdmam; }

ejabberd_ctl() { # variant command args...
  local dir="$OUT/$1"
  shift
  ejabberdctl --config "$dir/ejabberd.yml" --ctl-config "$dir/ejabberdctl.cfg" --spool "$dir/spool" --logs "$dir/logs" "$@"
}

start_ejabberd() { # [variant]
  local name=${1:-ejabberd} dir="$OUT/${1:-ejabberd}"
  rm -f "$dir/ejabberd.pid"
  # As user ejabberd (ejabberdctl's own su would bring back the soft open-files limit of 1024).
  "${SERVER_PIN[@]}" runuser -u ejabberd -- sh -c "ulimit -n \$(ulimit -Hn) && exec ejabberdctl --config '$dir/ejabberd.yml' --ctl-config '$dir/ejabberdctl.cfg' --spool '$dir/spool' --logs '$dir/logs' foreground" \
    >>"$dir/stdout.log" 2>&1 &
  SERVER_WAIT_PID=$!
  wait_port "$EJABBERD_PORT" 60
  for _ in $(seq 1 50); do [ -s "$dir/ejabberd.pid" ] && break; sleep 0.2; done
  SERVER_PID=$(cat "$dir/ejabberd.pid")
  PORT=$EJABBERD_PORT
}
start_ejabberdmam() { start_ejabberd ejabberdmam; }

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

# MUC fan-out (muc.bench.ts: MUC_OCCUPANTS occupants in one room at conference.localhost, 4
# senders) against a fresh start of the server under test; the users m0.. made by its setup.
muc() { # server
  "start_$1"
  say "$1: muc ($MUC_OCCUPANTS occupants)"
  timeout --signal=KILL 600 "${CLIENT[@]}" "${TSX[@]}" test/bench/muc.bench.ts --occupants "$MUC_OCCUPANTS" --duration "$MUC_DURATION" \
    --workers "$WORKERS" --port "$PORT" --server-pid "$SERVER_PID" --json "$OUT/results/$1-muc.json" \
    >"$OUT/results/$1-muc.out" 2>&1 || echo "muc bench failed: $1 (exit $?)" >&2
  stop_server
}

{
  echo "date: $(date -u '+%Y-%m-%d %H:%M UTC')"
  echo "cpus: $(nproc), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "node: $(node --version); prosody: $(dpkg-query -W -f '${Version}' prosody 2>/dev/null || echo none); ejabberd: $(dpkg-query -W -f '${Version}' ejabberd 2>/dev/null || echo none)"
  echo "server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU ($WORKERS worker process(es)), both at nice $NICE; load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
} | tee "$OUT/machine.txt" >&2

for server in $SERVERS; do
  "setup_$server"
  if has_run plain || has_run rate; then
    "start_$server"
    say "$server running, pid $SERVER_PID"
    if has_run plain; then load "$server" plain --idle-settle "$IDLE_SETTLE" --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"; fi
    if has_run rate; then load "$server" rate --sessions $((2 * PAIRS)) --pairs "$PAIRS" --duration "$DURATION" --rate "$RATE" --idle-settle 1; fi
    stop_server
  fi
  if has_run tls; then
    "start_$server"
    load "$server" tls --tls --idle-settle "$IDLE_SETTLE" --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"
    stop_server
  fi
  if has_run ws && [ "$server" = starling ]; then
    "start_$server"
    load "$server" ws --websocket "ws://127.0.0.1:$STARLING_HTTP_PORT/xmpp-websocket" --idle-settle "$IDLE_SETTLE" --sessions "$SESSIONS" --pairs "$PAIRS" --duration "$DURATION" --rate 0 --window "$WINDOW"
    stop_server
  fi
  if has_run muc; then muc "$server"; fi
done

say "results in $OUT"
"${TSX[@]}" test/bench/report.ts "$OUT/results" $SERVERS | tee "$OUT/table.md"
{
  echo
  echo "server log lines at warning level or above:"
  for server in $SERVERS; do
    case $server in
    starling*) log="$OUT/$server/starling.log" pattern='"level":[456]0' ;;
    prosody*) log="$OUT/$server/prosody.log" pattern=$'\t(warn|error)\t' ;;
    ejabberd*) log="$OUT/$server/logs/ejabberd.log" pattern='\[(warning|error|critical)\]' ;;
    *) continue ;;
    esac
    if [ -f "$log" ]; then echo "  $server: $(grep -cE "$pattern" "$log" || true) (of $(wc -l <"$log"))"; fi
  done
} | tee -a "$OUT/table.md"

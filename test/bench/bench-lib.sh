# Shared by the bench scripts (sourced): messages, pinning and niceness, waiting for a port.
# Needs NICE, SERVER_CPU and CLIENT_CPU set; sets TSX, CLIENT, SERVER_PIN and AUTOGROUP_NICE
# (the niceness to restore on exit, empty when none was changed).

say() { printf '\n== %s\n' "$*" >&2; }
TSX=(node --import tsx)
# Starling as its launchers start it (npm start, contrib/: LAUNCH_FLAGS in src/idle-collector.ts).
STARLING_NODE=(node --max-semi-space-size=64 --expose-gc)
# With autogroup scheduling (sched_autogroup_enabled=1) a nice value only counts inside its own
# session's group: give the group of the calling script (server and client included) the
# niceness too.
AUTOGROUP_NICE=""
if [ -w /proc/self/autogroup ]; then
  AUTOGROUP_NICE=$(sed -n 's/.* nice //p' /proc/self/autogroup)
  echo "$NICE" >/proc/self/autogroup 2>/dev/null || AUTOGROUP_NICE=""
fi
CLIENT=(nice -n "$NICE" taskset -c "$CLIENT_CPU")
SERVER_PIN=(nice -n "$NICE" taskset -c "$SERVER_CPU")
if [ "$(nproc)" -lt 2 ]; then CLIENT=(nice -n "$NICE"); SERVER_PIN=(nice -n "$NICE"); fi

restore_autogroup() {
  if [ -n "$AUTOGROUP_NICE" ]; then echo "$AUTOGROUP_NICE" >/proc/self/autogroup 2>/dev/null || true; fi
}

wait_port() { # port seconds
  for _ in $(seq 1 $(($2 * 5))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "nothing listens on 127.0.0.1:$1 after $2 s" >&2
  return 1
}

#!/usr/bin/env bash
# Manage a local moto_server (DynamoDB + SQS emulator) bound to 127.0.0.1 only.
#   start   start moto on a free port (or $MOTO_PORT), record PID + port in the state dir, wait until
#           http://127.0.0.1:PORT/moto-api/ answers (<= 15 s); reuses the recorded server if it still answers
#   stop    stop the recorded PID only (TERM, then KILL after 10 s), wait for it to exit, remove the files
#   status  print whether the recorded server runs and answers (exit 0 if so, 1 otherwise)
#   env     print the `export AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=test ...` line for the running server
# Messages go to stderr; only `env` and `status` write to stdout.
# Env: KEFU_VENV (default <repo>/.venv, see setup.sh), KEFU_STATE_DIR (default <repo>/.local), MOTO_PORT.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
VENV=${KEFU_VENV:-$REPO/.venv}
STATE=${KEFU_STATE_DIR:-$REPO/.local}
PID_FILE="$STATE/moto.pid"
PORT_FILE="$STATE/moto.port"
LOG="$STATE/moto.log"
START_TIMEOUT=15

say() { echo "moto: $*" >&2; }
die() { say "$*"; exit 1; }

# running PID: the process exists and is not a zombie.
running() {
  local pid=$1 stat
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [ "${stat%% *}" != Z ]
}

# alive PID: running and a moto_server (guards against PID reuse for recorded PIDs).
alive() {
  local pid=$1 cmdline
  running "$pid" || return 1
  cmdline=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmdline == *moto_server* ]]
}

answers() {
  local port=$1
  if command -v curl >/dev/null 2>&1; then
    curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:$port/moto-api/" 2>/dev/null
  else
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
      "http://127.0.0.1:$port/moto-api/" 2>/dev/null
  fi
}

recorded_pid() { cat "$PID_FILE" 2>/dev/null || true; }
recorded_port() { cat "$PORT_FILE" 2>/dev/null || true; }

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

port_free() {
  python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}

wait_exit() {
  local pid=$1 tenths=$2
  for _ in $(seq 1 "$tenths"); do
    alive "$pid" || return 0
    sleep 0.1
  done
  ! alive "$pid"
}

cmd_start() {
  mkdir -p "$STATE"
  local pid port
  pid=$(recorded_pid)
  port=$(recorded_port)
  if alive "$pid"; then
    local deadline=$((SECONDS + START_TIMEOUT))
    while [ "$SECONDS" -le "$deadline" ]; do
      if answers "$port"; then
        if [ -n "${MOTO_PORT:-}" ] && [ "$MOTO_PORT" != "$port" ]; then
          say "warning: MOTO_PORT=$MOTO_PORT ignored, reusing the recorded server on port $port"
        fi
        say "already running: pid $pid on 127.0.0.1:$port (state $STATE)"
        return 0
      fi
      alive "$pid" || break
      sleep 0.1
    done
    if alive "$pid"; then
      die "recorded pid $pid is alive but 127.0.0.1:$port/moto-api/ does not answer; run: $0 stop"
    fi
  fi
  rm -f "$PID_FILE" "$PORT_FILE"

  [ -x "$VENV/bin/moto_server" ] || die "$VENV/bin/moto_server not found; run infra/local/setup.sh first"
  if [ -n "${MOTO_PORT:-}" ]; then
    port=$MOTO_PORT
    [[ $port =~ ^[0-9]+$ ]] || die "MOTO_PORT=$port is not a port number"
    port_free "$port" || die "MOTO_PORT=$port is already in use on 127.0.0.1"
  else
    port=$(free_port)
  fi

  # moto_server itself reads MOTO_PORT (int) as its default port: keep it out of its env, -p decides.
  nohup env -u MOTO_PORT "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  echo "$port" >"$PORT_FILE"
  local t0=$SECONDS deadline=$((SECONDS + START_TIMEOUT))
  while [ "$SECONDS" -le "$deadline" ]; do
    # Our own child: until it has exec'd, its command line is still the forking shell's.
    if ! running "$pid"; then
      rm -f "$PID_FILE" "$PORT_FILE"
      say "moto_server (pid $pid) exited during start-up; last lines of $LOG:"
      tail -n 20 "$LOG" >&2 || true
      exit 1
    fi
    if answers "$port"; then
      say "started pid $pid on 127.0.0.1:$port in $((SECONDS - t0)) s (log $LOG)"
      return 0
    fi
    sleep 0.1
  done
  say "moto_server (pid $pid) did not answer on 127.0.0.1:$port within ${START_TIMEOUT} s; stopping it. Last lines of $LOG:"
  tail -n 20 "$LOG" >&2 || true
  kill "$pid" 2>/dev/null || true
  wait_exit "$pid" 50 || kill -KILL "$pid" 2>/dev/null || true
  rm -f "$PID_FILE" "$PORT_FILE"
  exit 1
}

cmd_stop() {
  local pid
  pid=$(recorded_pid)
  if [ -z "$pid" ]; then
    say "not running (no $PID_FILE)"
    rm -f "$PORT_FILE"
    return 0
  fi
  if alive "$pid"; then
    kill "$pid" 2>/dev/null || true
    if ! wait_exit "$pid" 100; then
      say "pid $pid ignored SIGTERM for 10 s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      wait_exit "$pid" 50 || die "pid $pid is still alive after SIGKILL"
    fi
    say "stopped pid $pid"
  else
    say "recorded pid $pid is not a running moto_server; removing stale state"
  fi
  rm -f "$PID_FILE" "$PORT_FILE"
}

cmd_status() {
  local pid port
  pid=$(recorded_pid)
  port=$(recorded_port)
  if alive "$pid" && answers "$port"; then
    echo "moto running: pid $pid on http://127.0.0.1:$port (state $STATE)"
  elif alive "$pid"; then
    echo "moto pid $pid alive but not answering on 127.0.0.1:$port (state $STATE)"
    return 1
  else
    echo "moto not running (state $STATE)"
    return 1
  fi
}

cmd_env() {
  local pid port
  pid=$(recorded_pid)
  port=$(recorded_port)
  if ! alive "$pid" || [ -z "$port" ]; then
    die "not running (state $STATE); run: $0 start"
  fi
  echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1"
}

case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  env) cmd_env ;;
  *)
    echo "usage: $0 start|stop|status|env" >&2
    exit 2
    ;;
esac

#!/usr/bin/env bash
# The desk page's real-browser tests: sets up the venv and Chromium (infra/local/setup.sh, quiet), starts the
# local loop (infra/local/dev.sh) in the background on a free 127.0.0.1 port, waits until it is up, sources the
# env file it writes, runs tests/browser/main.py (unittest + selenium, headless Chromium) with the venv's
# python, and always stops dev.sh by its PID (SIGTERM; it stops its own children), also on failure or
# Ctrl-C; if it is still busy after 30 s (a build in the foreground), SIGTERM to its process group (dev.sh
# runs in its own, and stops everything on that too), SIGKILL only 60 s later. Exit status: the tests'.
# dev.sh's output goes to .local/browser/dev.XXXXXX.log, removed when the tests pass.
# Usage: tests/browser/run.sh [-k PATTERN ...]
# Env: KEFU_VENV, CARGO, KEFU_BROWSER_ENV (an env file of a loop already running: use it, start nothing),
#      KEFU_BROWSER_DEV (the launcher, default infra/local/dev.sh), KEFU_BIN (default <target>/debug/kefu),
#      KEFU_CHROMIUM, KEFU_CHROMEDRIVER, KEFU_SCREENSHOTS_FOR_DOCS=1 (also writes docs/img/desk-*.png),
#      KEFU_BROWSER_UP_SECS (how long the loop may take to come up, default 900: the first build is slow).
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
VENV=${KEFU_VENV:-$REPO/.venv}
CARGO=${CARGO:-cargo}
say() { echo "browser: $*" >&2; }

"$REPO/infra/local/setup.sh" >/dev/null
export KEFU_CHROMIUM=${KEFU_CHROMIUM:-/usr/bin/chromium} KEFU_CHROMEDRIVER=${KEFU_CHROMEDRIVER:-/usr/bin/chromedriver}
for b in "$KEFU_CHROMIUM" "$KEFU_CHROMEDRIVER"; do
  [ -x "$b" ] || { say "$b is missing (infra/local/browser.sh installs chromium and chromium-driver)"; exit 1; }
done

DEV_PID=
LOG=
# gone_within TENTHS: whether dev.sh exits within TENTHS tenths of a second.
# shellcheck disable=SC2317  # invoked via stop_dev
gone_within() {
  local _
  for _ in $(seq 1 "$1"); do
    kill -0 "$DEV_PID" 2>/dev/null || return 0
    sleep 0.1
  done
  return 1
}
# shellcheck disable=SC2317  # invoked via trap
stop_dev() {
  local rc=$?
  trap - EXIT INT TERM
  if [ -n "$DEV_PID" ] && kill -0 "$DEV_PID" 2>/dev/null; then
    kill -TERM "$DEV_PID" 2>/dev/null || true
    gone_within 300 || {
      say "dev.sh (pid $DEV_PID) still busy after 30 s; SIGTERM to its process group"
      kill -TERM -- "-$DEV_PID" 2>/dev/null || true
      gone_within 600 || {
        say "dev.sh (pid $DEV_PID) ignored SIGTERM; sending SIGKILL"
        kill -KILL "$DEV_PID" 2>/dev/null || true
      }
    }
    wait "$DEV_PID" 2>/dev/null || true
  fi
  [ "$rc" -ne 0 ] || [ -z "${LOG:-}" ] || rm -f "$LOG"
  exit "$rc"
}
trap stop_dev EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if [ -n "${KEFU_BROWSER_ENV:-}" ]; then
  ENV_FILE=$KEFU_BROWSER_ENV
else
  mkdir -p "$REPO/.local/browser"
  LOG=$(mktemp "$REPO/.local/browser/dev.XXXXXX.log")
  PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  # its own process group (setsid), so that a stop can reach a build it runs in the foreground
  KEFU_PORT=$PORT setsid "${KEFU_BROWSER_DEV:-$REPO/infra/local/dev.sh}" >"$LOG" 2>&1 </dev/null &
  DEV_PID=$!
  say "starting the local loop on 127.0.0.1:$PORT (pid $DEV_PID, log $LOG)"
  deadline=$((SECONDS + ${KEFU_BROWSER_UP_SECS:-900}))
  STATE=
  while [ -z "$STATE" ]; do
    STATE=$(sed -n 's/^kefu local loop is up (state \(.*\))$/\1/p' "$LOG" | head -n 1)
    [ -n "$STATE" ] && break
    if ! kill -0 "$DEV_PID" 2>/dev/null; then
      say "dev.sh exited before the loop was up; last lines of $LOG:"
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    if [ "$SECONDS" -gt "$deadline" ]; then
      say "the loop was not up after ${KEFU_BROWSER_UP_SECS:-900} s; last lines of $LOG:"
      tail -n 30 "$LOG" >&2
      exit 1
    fi
    sleep 0.2
  done
  ENV_FILE=$STATE/env
fi
[ -r "$ENV_FILE" ] || { say "no env file $ENV_FILE"; exit 1; }
# shellcheck disable=SC1090
. "$ENV_FILE"
if [ -z "${KEFU_BIN:-}" ]; then
  TARGET_DIR=${CARGO_TARGET_DIR:-$("$CARGO" metadata --format-version 1 --no-deps |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')}
  export KEFU_BIN=$TARGET_DIR/debug/kefu
fi
for _ in $(seq 1 100); do
  curl -fsS -o /dev/null "http://127.0.0.1:$KEFU_PORT/desk/" 2>/dev/null && break
  sleep 0.1
done

set +e
"$VENV/bin/python" "$REPO/tests/browser/main.py" "$@"
rc=$?
set -e
[ "$rc" -eq 0 ] || [ -z "$LOG" ] || say "the loop's log: $LOG"
exit "$rc"

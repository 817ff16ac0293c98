#!/usr/bin/env bash
# Instructions per message of the inbound pure path under callgrind: a figure that does not move
# with the machine's load (timings do). Runs the built bench binary with a fixed number of messages
# and with none, and divides the difference. Installs valgrind from the distribution when missing
# (as root), else says how.
#
# Usage: infra/bench/instructions.sh [BENCH_BINARY] [MESSAGES] (default: builds and finds the binary)
# Note: under valgrind the SHA-1 and AES code take their portable paths (valgrind does not emulate
# every CPU extension the native run uses), so the figure is a fixed yardstick for change, not a
# prediction of native time.
set -euo pipefail
bin=${1:-}
n=${2:-5000}
if [ -z "$bin" ]; then
  bin=$(${CARGO:-cargo} bench -p shared --bench inbound --no-run --locked --message-format=json 2>/dev/null |
    python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "inbound" and m.get("executable"):
        print(m["executable"])')
fi
if ! command -v valgrind >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "instructions: installing valgrind (apt)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valgrind >/dev/null
  else
    echo "instructions: valgrind is not installed (Debian/Ubuntu: apt-get install valgrind); skipped" >&2
    exit 0
  fi
fi
cd "$(dirname "$0")/../../shared"
count() {
  INBOUND_CASE=$1 INBOUND_FIXED_ITERATIONS=$2 valgrind --tool=callgrind --callgrind-out-file=/dev/null \
    "$bin" --bench 2>&1 | awk '/Collected/ {print $4}'
}
for case in json xml; do
  base=$(count "$case" 0)
  total=$(count "$case" "$n")
  echo "inbound ${case}_safe_text $(( (total - base) / n )) instructions/msg (callgrind, $n messages)"
done

#!/usr/bin/env bash
# Run CMD against a private, throw-away moto_server: runs setup.sh (quietly), starts moto with its own
# state dir (mktemp) on a free 127.0.0.1 port -- never touching a developer's running emulator or
# $MOTO_PORT --, exports AWS_ENDPOINT_URL & dummy credentials (moto.sh env), runs CMD, and always stops
# that moto on exit (EXIT/INT/TERM). Exits with CMD's exit code (130/143 when interrupted).
# Does not create tables/queues: tests create their own (from resources.json) or run seed.py.
# Usage: infra/local/with-moto.sh CMD [ARGS...]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)

if [ "$#" -eq 0 ]; then
  echo "usage: $0 CMD [ARGS...]" >&2
  exit 2
fi

"$HERE/setup.sh" >/dev/null

STATE=$(mktemp -d "${TMPDIR:-/tmp}/kefu-moto.XXXXXX")
# shellcheck disable=SC2317  # invoked via trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  KEFU_STATE_DIR=$STATE "$HERE/moto.sh" stop 2>/dev/null || echo "with-moto: failed to stop moto (state $STATE)" >&2
  rm -rf "$STATE"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

KEFU_STATE_DIR=$STATE env -u MOTO_PORT "$HERE/moto.sh" start
moto_env=$(KEFU_STATE_DIR=$STATE "$HERE/moto.sh" env)
eval "$moto_env"

set +e
"$@"
rc=$?
set -e
exit "$rc"

#!/usr/bin/env bash
# The one-command local loop (`make dev`): sets up the venv (setup.sh), starts a private moto on a free
# 127.0.0.1 port (own state dir), creates the tables and queues (prefix kefu-dev-), builds kefu, starts
# `kefu fake-platform` (the WeChat/Baidu send APIs) and `kefu serve` on $KEFU_PORT (default 3000, or a free
# port when taken), prints the URLs, the test app's keys and commands to try, then runs in the foreground
# showing the server's log. Ctrl-C / SIGTERM (to it or its process group) stops everything it started,
# by PID, and removes its state dir.
# The registry file is checked and pushed into the emulator's Secrets Manager (kefu-dev/registry/verify and
# kefu-dev/registry/send, as `kefu registry push` does for a stack), and `kefu serve` reads it from there,
# re-reading every REGISTRY_TTL_SECS (default 10 here): re-run the printed `kefu registry push` to rotate.
# The desk's sign-in: a user pool in the emulator and a demo agent (desk_demo.py), printed with its password;
# the media bucket inbound images are kept in (kefu-dev-media).
# Env: KEFU_APPS_FILE (default infra/local/apps.json), KEFU_PORT, KEFU_LOCAL_TOKEN (generated if unset),
#      REGISTRY_TTL_SECS, KEFU_VENV, CARGO.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
LOCAL=$REPO/infra/local
VENV=${KEFU_VENV:-$REPO/.venv}
CARGO=${CARGO:-cargo}
APPS=${KEFU_APPS_FILE:-$LOCAL/apps.json}
case $APPS in /*) ;; *) APPS=$REPO/$APPS ;; esac

say() { echo "dev: $*" >&2; }
die() { say "$*"; exit 1; }

[ -r "$APPS" ] || die "KEFU_APPS_FILE=$APPS is not readable"

mkdir -p "$REPO/.local"
STATE=$(mktemp -d "$REPO/.local/dev.XXXXXX")
PIDS=()

# shellcheck disable=SC2317  # invoked via cleanup (trap)
stop_pid() {
  local pid=$1 name=$2
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    say "$name (pid $pid) ignored SIGTERM for 10 s; sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # invoked via trap
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "stopping"
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    stop_pid "${PIDS[i]%%:*}" "${PIDS[i]#*:}"
  done
  KEFU_STATE_DIR=$STATE/moto "$LOCAL/moto.sh" stop || say "failed to stop moto (state $STATE/moto)"
  rm -rf "$STATE"
  say "stopped"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() {
  python3 -c 'import socket, sys; s = socket.socket(); s.bind(("127.0.0.1", int(sys.argv[1]))); s.close()' "$1" 2>/dev/null
}
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}
# wait_for PID FILE PATTERN SECONDS: until FILE has a line matching PATTERN (fails if PID exits).
wait_for() {
  local pid=$1 file=$2 pattern=$3 deadline=$((SECONDS + $4))
  while [ "$SECONDS" -le "$deadline" ]; do
    grep -q -- "$pattern" "$file" 2>/dev/null && return 0
    kill -0 "$pid" 2>/dev/null || { say "pid $pid exited; last lines of $file:"; tail -n 20 "$file" >&2; return 1; }
    sleep 0.1
  done
  say "timed out waiting for '$pattern' in $file"
  tail -n 20 "$file" >&2
  return 1
}

# 1. tools and emulator
"$LOCAL/setup.sh" >&2
KEFU_STATE_DIR=$STATE/moto env -u MOTO_PORT "$LOCAL/moto.sh" start
eval "$(KEFU_STATE_DIR=$STATE/moto "$LOCAL/moto.sh" env)"
# (An `eval "$(…)"` does not stop on the command's failure: each output is taken first.)
seeded=$("$VENV/bin/python" "$LOCAL/seed.py" --prefix kefu-dev-) || die "seed.py failed (see above)"
eval "$seeded"
demo=$("$VENV/bin/python" "$LOCAL/desk_demo.py" --apps "$APPS") || die "desk_demo.py failed (see above)"
eval "$demo"

# 2. build kefu
say "building kefu"
"$CARGO" build -q -p kefu >&2
TARGET_DIR=$("$CARGO" metadata --format-version 1 --no-deps | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
KEFU=$TARGET_DIR/debug/kefu
[ -x "$KEFU" ] || die "$KEFU not found after the build"

# 3. the registry, in the emulator's Secrets Manager (created empty like the stack's, then pushed)
export VERIFY_REGISTRY_SECRET_ID=kefu-dev/registry/verify SEND_REGISTRY_SECRET_ID=kefu-dev/registry/send
export REGISTRY_TTL_SECS=${REGISTRY_TTL_SECS:-10} KEFU_SERVICE=kefu-dev MEDIA_BUCKET=kefu-dev-media
"$VENV/bin/python" - <<'PY'
import os, boto3
sm = boto3.client("secretsmanager", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"],
                  aws_access_key_id="test", aws_secret_access_key="test")
for name in (os.environ["VERIFY_REGISTRY_SECRET_ID"], os.environ["SEND_REGISTRY_SECRET_ID"]):
    sm.create_secret(Name=name, SecretString='{"apps":[],"components":[]}')
# The media bucket inbound images are kept in (the stack's MediaBucket).
boto3.client("s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=os.environ["AWS_REGION"],
             aws_access_key_id="test", aws_secret_access_key="test").create_bucket(Bucket=os.environ["MEDIA_BUCKET"])
PY
"$KEFU" registry push "$APPS" --verify-secret "$VERIFY_REGISTRY_SECRET_ID" --send-secret "$SEND_REGISTRY_SECRET_ID" >&2 \
  || die "the app registry $APPS was refused (see above)"

# 4. fake platform (its own free port)
"$KEFU" fake-platform >"$STATE/fake.log" 2>&1 </dev/null &
PIDS+=("$!:fake-platform")
FAKE_PID=$!
wait_for "$FAKE_PID" "$STATE/fake.log" "fake platform: serving" 15
FAKE_URL=$(sed -n 's/.* on \(http:[^ ]*\).*/\1/p' "$STATE/fake.log" | head -n 1)
export WECHAT_API_BASE=$FAKE_URL BAIDU_API_BASE=$FAKE_URL

# 5. kefu serve
PORT=${KEFU_PORT:-3000}
if ! port_free "$PORT"; then
  NEW=$(free_port)
  say "port $PORT is taken; using $NEW instead"
  PORT=$NEW
fi
export KEFU_PORT=$PORT KEFU_APPS_FILE=$APPS
export KEFU_LOCAL_TOKEN=${KEFU_LOCAL_TOKEN:-$(python3 -c 'import secrets; print(secrets.token_hex(16))')}
"$KEFU" serve --port "$PORT" --apps "$APPS" --registry-secrets >"$STATE/serve.log" 2>&1 </dev/null &
PIDS+=("$!:kefu-serve")
SERVE_PID=$!
wait_for "$SERVE_PID" "$STATE/serve.log" "kefu serve: listening" 30

# 6. what to try
{
  for v in AWS_ENDPOINT_URL AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_DEFAULT_REGION \
    CONVERSATIONS_TABLE MESSAGES_TABLE TOKENS_TABLE DESK_TABLE INBOUND_QUEUE_URL INBOUND_DLQ_URL OUTBOUND_QUEUE_URL OUTBOUND_DLQ_URL \
    DESK_USER_POOL_ID DESK_CLIENT_ID DESK_ISSUER DESK_JWKS_URL DESK_DEMO_USER DESK_DEMO_PASSWORD MEDIA_BUCKET \
    VERIFY_REGISTRY_SECRET_ID SEND_REGISTRY_SECRET_ID REGISTRY_TTL_SECS KEFU_SERVICE \
    KEFU_PORT KEFU_APPS_FILE KEFU_LOCAL_TOKEN WECHAT_API_BASE BAIDU_API_BASE; do
    printf 'export %s=%q\n' "$v" "${!v}"
  done
} >"$STATE/env"
read -r WX_APP WX_TOKEN WX_KEY < <("$VENV/bin/python" - "$APPS" <<'PY'
import json, sys
apps = json.load(open(sys.argv[1]))["apps"]
a = next((a for a in apps if a["platform"] == "wechat"), apps[0])
print(a["app_id"], a["token"], a["encoding_aes_key"])
PY
)
PLATFORM=wechat
FROM=oKefuLocalUser0001
cat <<MSG

kefu local loop is up (state $STATE)
  kefu serve     http://127.0.0.1:$PORT   (pid $SERVE_PID)
                 ingress  http://127.0.0.1:$PORT/wechat/{app}  http://127.0.0.1:$PORT/baidu/{app}
                 sender   POST http://127.0.0.1:$PORT/messages  /typing   (Authorization: Bearer $KEFU_LOCAL_TOKEN)
                 desk     http://127.0.0.1:$PORT/desk   (the page; sign in as $DESK_DEMO_USER / $DESK_DEMO_PASSWORD)
                          http://127.0.0.1:$PORT/desk/api/   (its API)
  fake platform  $FAKE_URL   (pid $FAKE_PID; WECHAT_API_BASE / BAIDU_API_BASE)
  emulator       $AWS_ENDPOINT_URL   (moto; tables and queues kefu-dev-*)
  app registry   $APPS
  test app       $PLATFORM $WX_APP   Token $WX_TOKEN   EncodingAESKey $WX_KEY   (TEST-ONLY keys)

Try it (in another terminal; the env file sets the endpoint, tables, queues, port and token):
  . $STATE/env && cargo run -q -p kefu -- simulate $PLATFORM --app $WX_APP --text "hello"
  . $STATE/env && cargo run -q -p kefu -- conversation show --platform $PLATFORM --app $WX_APP --open-id $FROM
Reply as an agent, then look again:
  . $STATE/env && curl -s -H "Authorization: Bearer \$KEFU_LOCAL_TOKEN" -d '{"app_id":"$WX_APP","open_id":"$FROM","msg_type":"text","content":"hi, how can I help?"}' http://127.0.0.1:$PORT/messages
As the demo agent (the desk API; signed in with the user pool's token):
  . $STATE/env && TOKEN=\$(curl -s -d '{"username":"$DESK_DEMO_USER","password":"$DESK_DEMO_PASSWORD"}' http://127.0.0.1:$PORT/desk/api/session | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -s -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$PORT/desk/api/apps/$PLATFORM/$WX_APP/waiting
  curl -s -X POST -H "Authorization: Bearer \$TOKEN" http://127.0.0.1:$PORT/desk/api/conversations/$PLATFORM/$WX_APP/$FROM/accept
Rotate a Token or key: edit $APPS, then (taken within $REGISTRY_TTL_SECS s, no restart)
  . $STATE/env && cargo run -q -p kefu -- registry push $APPS --verify-secret \$VERIFY_REGISTRY_SECRET_ID --send-secret \$SEND_REGISTRY_SECRET_ID
Also: kefu queues, kefu dlq redrive, kefu simulate verify $PLATFORM --app $WX_APP (prefix with the same '. $STATE/env && cargo run -q -p kefu --').

Ctrl-C stops everything. Server log follows:
MSG

tail -n +1 -f "$STATE/serve.log" &
PIDS+=("$!:log-tail")
set +e
wait -n "$SERVE_PID" "$FAKE_PID"
rc=$?
set -e
say "a component exited (status $rc); shutting down"
exit 1

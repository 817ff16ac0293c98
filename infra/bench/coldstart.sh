#!/usr/bin/env bash
# Cold start of each release binary (x86_64 build of this machine) against a fake Runtime API,
# with the emulator behind it: exec -> first Runtime API poll, first invocation, max RSS.
# A benchmark, not a test. Usage: infra/bench/coldstart.sh [RUNS]   (make coldstart)
set -euo pipefail
cd "$(dirname "$0")/../.."
RUNS=${1:-20}
cargo build --release --locked -p ingress -p processor -p sender
TARGET=${CARGO_TARGET_DIR:-target}/release
VENV=${KEFU_VENV:-$PWD/.venv}
eval "$("$VENV/bin/python" infra/local/seed.py --prefix kefu-cold-)"
export KEFU_APPS_FILE=infra/local/apps.json REPLAY_WINDOW_SECS=0
for fn in ingress processor sender; do
  case $fn in
    ingress) event=events/ingress/wechat_text_safe_json.json ;;
    processor) event=events/processor/sqs_two_messages.json ;;
    sender) event=infra/bench/sender_event.json ;;
  esac
  echo "== $fn ($(du -h "$TARGET/$fn" | cut -f1) binary)"
  "$VENV/bin/python" infra/bench/fake_runtime.py "$TARGET/$fn" "$event" "$RUNS"
done

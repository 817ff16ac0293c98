#!/usr/bin/env bash
# Idempotent local tool setup for kefu: creates the Python venv (${KEFU_VENV:-<repo>/.venv}) if it is
# missing and installs infra/local/requirements.txt into it, but only when the sha256 of that file differs
# from the stamp recorded in the venv by the last successful install; then the pinned cargo subcommands
# (cargo-hakari) through infra/local/cargo-tools.sh, built once into <venv>/cargo-tools. Safe to run from any
# cwd and concurrently (serialised with flock when available). Prints one summary line on stdout.
# Usage: infra/local/setup.sh        Env: KEFU_VENV (venv path), PYTHON (interpreter, default python3),
#                                         KEFU_CARGO_TOOLS (cargo tools root, default <venv>/cargo-tools)
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
REQ="$REPO/infra/local/requirements.txt"
VENV=${KEFU_VENV:-$REPO/.venv}
PY=${PYTHON:-python3}
STAMP="$VENV/.kefu-requirements.sha256"

mkdir -p "$VENV"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$VENV/.kefu-setup.lock"
  flock 9
fi

if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating venv $VENV" >&2
  "$PY" -m venv "$VENV"
fi

want=$(sha256sum "$REQ" | cut -d' ' -f1)
have=$(cat "$STAMP" 2>/dev/null || true)
if [ "$want" != "$have" ]; then
  echo "setup: installing $(tr '\n' ' ' <"$REQ")into $VENV" >&2
  start=$SECONDS
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$VENV/bin/python" -m pip install -q -r "$REQ"
  printf '%s\n' "$want" >"$STAMP"
  echo "setup: pip install took $((SECONDS - start)) s" >&2
fi

"$REPO/infra/local/browser.sh" || echo "setup: chromium for tests/browser not installed (see above)" >&2

versions=$("$VENV/bin/python" - "$REQ" <<'PY'
import importlib.metadata as md, re, sys
out = []
for line in open(sys.argv[1]):
    name = re.split(r"[\s\[<>=!~;#]", line.strip(), maxsplit=1)[0]
    if name:
        try:
            out.append(f"{name} {md.version(name)}")
        except md.PackageNotFoundError:
            out.append(f"{name} MISSING")
print(", ".join(out))
PY
)
tools_bin=$(KEFU_VENV="$VENV" "$REPO/infra/local/cargo-tools.sh")
tools=$(for t in "$tools_bin"/cargo-*; do [ -x "$t" ] && "$t" --version; done | paste -sd, - | sed 's/,/, /g')
echo "setup: venv $VENV ready ($versions; $tools in $tools_bin)"

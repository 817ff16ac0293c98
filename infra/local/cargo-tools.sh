#!/usr/bin/env bash
# Idempotent install of the pinned cargo subcommands kefu's checks run (today: cargo-hakari, which `make lint`
# uses to check that workspace-hack/Cargo.toml is what `cargo hakari generate` makes of the manifests).
# Each tool is built from crates.io with `cargo install --locked` into ${KEFU_CARGO_TOOLS:-<venv>/cargo-tools}
# (beside the Python venv, so CI's cache keeps it), and only when that exact version is missing there.
# Called by infra/local/setup.sh and infra/check_hakari.sh; safe to run concurrently (flock when available).
# Prints the tools' bin directory on stdout.
# Usage: infra/local/cargo-tools.sh     Env: KEFU_CARGO_TOOLS (install root), KEFU_VENV, CARGO
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV=${KEFU_VENV:-$PWD/.venv}
ROOT=${KEFU_CARGO_TOOLS:-$VENV/cargo-tools}
CARGO=${CARGO:-cargo}

mkdir -p "$ROOT"
if command -v flock >/dev/null 2>&1; then
  exec 8>"$ROOT/.kefu-cargo-tools.lock"
  flock 8
fi

# name version (bump here; the next setup run builds the new version)
TOOLS=(
  "cargo-hakari 0.9.39"
)

for entry in "${TOOLS[@]}"; do
  read -r name version <<<"$entry"
  if [ -x "$ROOT/bin/$name" ] && [ "$("$ROOT/bin/$name" --version 2>/dev/null | awk '{print $NF}')" = "$version" ]; then
    continue
  fi
  echo "setup: cargo install --locked $name $version into $ROOT (builds from source, a few minutes once)" >&2
  start=$SECONDS
  # its own temporary target dir, not the workspace's CARGO_TARGET_DIR
  env -u CARGO_TARGET_DIR "$CARGO" install --locked --quiet --root "$ROOT" "$name" --version "=$version" --force >&2
  echo "setup: $name $version built in $((SECONDS - start)) s" >&2
done
echo "$ROOT/bin"

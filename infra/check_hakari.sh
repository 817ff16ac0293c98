#!/usr/bin/env bash
# workspace-hack/Cargo.toml is what `cargo hakari generate` makes of the manifests (.config/hakari.toml), and
# exactly the crates hakari manages (ingress, processor, sender) depend on it. Part of `make lint`.
# cargo-hakari comes pinned from infra/local/cargo-tools.sh (built once into the cache when missing).
# Exit status 0 when up to date, 1 with the command that fixes it. Usage: infra/check_hakari.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
PATH="$(infra/local/cargo-tools.sh):$PATH"
export PATH

fail() {
  echo "check_hakari: $1" >&2
  echo "check_hakari: fix: $2, then commit workspace-hack/Cargo.toml, the manifests and Cargo.lock" >&2
  exit 1
}

# hakari reads `cargo metadata`, which would rewrite a stale lock file silently: check it first.
"$CARGO" metadata --locked --format-version 1 >/dev/null ||
  fail "Cargo.lock does not match the manifests" "cargo update --workspace"
"$CARGO" hakari generate --diff ||
  fail "workspace-hack/Cargo.toml is stale (the diff above is what \`cargo hakari generate\` would write)" \
    "cargo hakari generate"
"$CARGO" hakari manage-deps --dry-run ||
  fail "a crate's workspace-hack dependency is missing or extra (the operations above)" "cargo hakari manage-deps"
"$CARGO" hakari verify >/dev/null ||
  fail "workspace-hack does not unify the functions' features (cargo hakari verify)" "cargo hakari generate"
echo "check_hakari: workspace-hack/Cargo.toml is what cargo hakari generates; ingress, processor, sender depend on it"

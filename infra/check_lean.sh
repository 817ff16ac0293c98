#!/usr/bin/env bash
# The deployed functions compile no test machinery: the normal (non-dev) dependency graph of ingress, desk,
# processor and sender holds no `testkit` crate and no server half of hyper (the fake platform's).
# Exit status 0 when lean, 1 naming the offending crate. Usage: infra/check_lean.sh
set -euo pipefail
cd "$(dirname "$0")/.."
CARGO=${CARGO:-cargo}
status=0
for fn in ingress processor sender desk; do
  tree=$("$CARGO" tree --locked -p "$fn" -e normal,build --prefix none --format '{p} {f}' 2>/dev/null)
  if grep -q '^testkit ' <<<"$tree"; then
    echo "check_lean: $fn links testkit" >&2
    status=1
  fi
  if grep -E '^hyper v[0-9.]+ .*\bserver\b' <<<"$tree" >/dev/null; then
    echo "check_lean: $fn links hyper's server" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "check_lean: ingress, processor, sender, desk link no test machinery"
exit "$status"

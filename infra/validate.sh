#!/usr/bin/env bash
# Offline checks of template.yaml (no AWS credentials, no network needed once the venv exists):
#   1. cfn-lint template.yaml
#   2. sam validate --lint            (SAM transform + cfn-lint; needs no region with --lint)
#   3. infra/check_template.py        (tables and queues equal infra/local/resources.json)
# Tools come from the project venv (${KEFU_VENV:-<repo>/.venv}), which infra/local/setup.sh creates or
# refreshes first (it installs aws-sam-cli and cfn-lint pinned in infra/local/requirements.txt).
# Exit status: 0 when all three pass, else the first failure's. Usage: infra/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=${KEFU_VENV:-$REPO/.venv}
TEMPLATE=template.yaml

infra/local/setup.sh >&2
export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0

step() {
  local name=$1
  shift
  local start=$SECONDS
  echo "validate: $name"
  if ! "$@"; then
    echo "validate: FAILED: $name" >&2
    exit 1
  fi
  echo "validate: ok: $name ($((SECONDS - start)) s)"
}

step "cfn-lint $TEMPLATE" cfn-lint "$TEMPLATE"
step "sam validate --lint" sam validate --lint --template "$TEMPLATE"
step "check_template.py (template.yaml = infra/local/resources.json)" \
  "$VENV/bin/python" infra/check_template.py --template "$TEMPLATE"
echo "validate: all checks passed"

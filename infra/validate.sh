#!/usr/bin/env bash
# Offline checks of template.yaml (no AWS credentials, no network needed once the venv exists):
#   1. cfn-lint template.yaml
#   2. sam validate --lint                  (SAM transform + cfn-lint; needs no region with --lint)
#   3. infra/check_template.py              (IAM, partitions, parameters, alarms, the SAM transform adds no
#                                            role/policy, queues/tables rules, and infra/local/resources.json
#                                            is what infra/gen_resources.py generates from the template)
#   4. infra/check_metrics.py               (alarms + dashboard watch exactly the metrics of infra/metrics.json)
#   5. infra/sam-local/gen_env.py --check   (infra/sam-local/env.json: the template's functions and variables)
#   6. infra/check_env.py                   (each function's variables = what its Config::from_env reads,
#                                            infra/functions.json; no secret value in any environment)
# After changing template.yaml, regenerate with: python infra/gen_resources.py && python infra/sam-local/gen_env.py
# Tools come from the project venv (${KEFU_VENV:-<repo>/.venv}), which infra/local/setup.sh creates or
# refreshes first (it installs aws-sam-cli and cfn-lint pinned in infra/local/requirements.txt).
# Exit status: 0 when all pass, else 1 after the first failure. Usage: infra/validate.sh
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
VENV=${KEFU_VENV:-$REPO/.venv}
TEMPLATE=template.yaml

infra/local/setup.sh >&2
export PATH="$VENV/bin:$PATH"
export SAM_CLI_TELEMETRY=0
# samtranslator (check_template's transform step) wants a region; nothing is called.
export AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1}

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
step "check_template.py (stack rules; infra/local/resources.json generated from the template)" \
  "$VENV/bin/python" infra/check_template.py --template "$TEMPLATE"
step "check_metrics.py (alarms and dashboard = infra/metrics.json)" \
  "$VENV/bin/python" infra/check_metrics.py --template "$TEMPLATE"
step "sam-local/gen_env.py --check (infra/sam-local/env.json generated from the template)" \
  "$VENV/bin/python" infra/sam-local/gen_env.py --check --template "$TEMPLATE"
step "check_env.py (each function's environment = infra/functions.json, what its code reads)" \
  "$VENV/bin/python" infra/check_env.py --template "$TEMPLATE"
echo "validate: all checks passed"

#!/usr/bin/env python3
"""Offline rules for template.yaml that cfn-lint and `sam validate` do not know.

* generated files: infra/local/resources.json equals what infra/gen_resources.py produces from the
  template (the local emulator creates exactly the stack's tables and queues);
* tables: on-demand, point-in-time recovery, DeletionPolicy RetainExceptOnCreate, UpdateReplacePolicy
  Retain, DeletionProtectionEnabled set;
* queues: SSE on; a DLQ keeps messages longer than its source queue; every queue that triggers a
  function has VisibilityTimeout >= 6 x that function's Timeout;
* functions: an explicit Role from this template (so SAM adds no role, managed policy or SQS poller
  policy on "*") and no Policies; Globals give RUST_LOG and KEFU_SERVICE = !Ref AWS::StackName; no
  local-only variable (KEFU_APPS_JSON, AWS_ENDPOINT_URL, ...) and no secret value (dynamic references
  to Secrets Manager / SSM SecureString) in any environment;
* roles: trusted by lambda.amazonaws.com only; no wildcard actions; Resource "*" only for the X-Ray
  write actions, and those only under the TracingOn condition;
* partitions: no literal `arn:aws:` and no literal AWS host names outside service principals and the
  per-partition console URLs (ARNs from ${AWS::Partition}, hosts from ${AWS::URLSuffix});
* parameters: every one bounded (AllowedValues, AllowedPattern, or MinValue and MaxValue);
* alarms: AlarmName `!Sub '${AWS::StackName}-<suffix>'`, a description ending
  `Runbook: docs/runbook.md#<suffix>`, AlarmActions and OKActions on the alarm topic; the set of suffixes
  is ALARM_SUFFIXES; when docs/runbook.md exists, it has a heading or anchor for every suffix;
* the SAM transform (samtranslator, as `sam deploy` runs it) yields no IAM role, managed policy or
  policy besides the template's own.

Prints one `ok` line per group; on any problem `MISMATCH ...` lines and exit 1 (exit 2 when a file
cannot be read). Uses cfn-lint's YAML decoder (understands !Ref/!GetAtt/!Sub).

Usage: python infra/check_template.py [--template PATH] [--resources PATH] [--runbook PATH]
"""

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_resources  # noqa: E402  (same directory)

ROOT = Path(__file__).resolve().parent.parent
SAM_DEFAULT_TIMEOUT = 3
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"  # the same in every partition, aws-cn included
XRAY_ACTIONS = {"xray:PutTraceSegments", "xray:PutTelemetryRecords"}
TRACING_CONDITION = "TracingOn"
ALARM_TOPIC = {"Fn::If": ["CreateAlarmTopic", {"Ref": "AlarmTopic"}, {"Ref": "AlarmTopicArn"}]}
RUNBOOK = "docs/runbook.md"

# Variables only local runs use; a deployed function must never get them.
LOCAL_ONLY_VARIABLES = {
    "KEFU_APPS_FILE", "KEFU_APPS_JSON", "WECHAT_API_BASE", "BAIDU_API_BASE", "AWS_ENDPOINT_URL",
    "KEFU_PORT", "KEFU_LOCAL_TOKEN",
}

# The alarms the runbook documents (AlarmName = <stack>-<suffix>).
ALARM_SUFFIXES = {
    "callback-4xx", "callback-5xx", "send-api-5xx", "ingress-not-queued", "ingress-p99-duration",
    "ingress-throttles", "processor-throttles", "sender-throttles",
    "ingress-errors", "processor-errors", "sender-errors",
    "dynamodb-throttles", "dynamodb-system-errors", "dlq-growing", "dlq-age", "inbound-backlog",
    "sender-rejection-rate", "token-refresh-failures", "registry-invalid", "heartbeat",
    "callback-rejected", "registry-refresh-failed", "replay-refused", "outbound-dlq", "desk-errors",
}

# Literal host names allowed in the template text: the Lambda principal, and the console hosts of the
# DashboardUrl output (chosen per partition by a condition).
ALLOWED_HOSTS = {LAMBDA_PRINCIPAL, "console.aws.amazon.com", "console.amazonaws.cn", "console.amazonaws-us-gov.com"}


def load_template(path: Path) -> dict:
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        sys.exit("check_template: cfn-lint is not installed; run infra/local/setup.sh and use the venv's python")
    try:
        return cfn_yaml.load(str(path))
    except Exception as e:  # the decoder raises several types; all mean "cannot use this file"
        print(f"check_template: cannot load {path}: {e}", file=sys.stderr)
        sys.exit(2)


def plain(value):
    """The decoder's str/dict subclasses as plain Python values (for == and json)."""
    return json.loads(json.dumps(value))


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def truthy(value) -> bool:
    return value in (True, "true", "True")


def getatt_target(value, attribute: str):
    return gen_resources.getatt_target(value, attribute)


def walk(value, path=""):
    """Every (path, leaf string) of a decoded template value."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from walk(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from walk(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def group(self, name: str, fn, *args) -> None:
        before = len(self.problems)
        summary = fn(*args)
        if len(self.problems) == before:
            print(f"ok   {name}{': ' + summary if summary else ''}")

    def fail(self, message: str) -> None:
        self.problems.append(message)


# ---------------------------------------------------------------- checks

def check_generated(c: Checker, template: dict, resources_path: Path) -> str:
    try:
        diff = gen_resources.stale_diff(template, resources_path)
    except gen_resources.ShapeError as e:
        c.fail(f"resources.json: {e}")
        return ""
    if diff:
        c.fail(f"{resources_path} is not what infra/gen_resources.py generates from the template "
               f"(run: python infra/gen_resources.py):\n" + "\n".join(diff))
    return f"{resources_path.relative_to(ROOT) if resources_path.is_relative_to(ROOT) else resources_path} is current"


def check_tables(c: Checker, resources: dict) -> str:
    names = []
    for rid, res in resources.items():
        if res.get("Type") != "AWS::DynamoDB::Table":
            continue
        names.append(rid)
        props = res.get("Properties") or {}
        if res.get("DeletionPolicy") != "RetainExceptOnCreate":
            c.fail(f"table {rid}: DeletionPolicy {res.get('DeletionPolicy')!r}, want RetainExceptOnCreate "
                   "(kept on delete, removed when its creating deploy rolls back)")
        if res.get("UpdateReplacePolicy") != "Retain":
            c.fail(f"table {rid}: UpdateReplacePolicy {res.get('UpdateReplacePolicy')!r}, want Retain")
        if props.get("BillingMode") != "PAY_PER_REQUEST":
            c.fail(f"table {rid}: BillingMode {props.get('BillingMode')!r}, want PAY_PER_REQUEST")
        pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        if not truthy(pitr):
            c.fail(f"table {rid}: point-in-time recovery is not enabled")
        if "DeletionProtectionEnabled" not in props:
            c.fail(f"table {rid}: DeletionProtectionEnabled is not set")
    return f"{len(names)} tables: on-demand, PITR, RetainExceptOnCreate/Retain, deletion protection set"


def function_timeout(props: dict, globals_fn: dict):
    return as_int(props.get("Timeout", globals_fn.get("Timeout", SAM_DEFAULT_TIMEOUT)))


def check_queues(c: Checker, resources: dict, globals_fn: dict) -> str:
    notes = []
    for rid, res in resources.items():
        if res.get("Type") != "AWS::SQS::Queue":
            continue
        props = res.get("Properties") or {}
        if not (truthy(props.get("SqsManagedSseEnabled")) or "KmsMasterKeyId" in props):
            c.fail(f"queue {rid}: server-side encryption is off")
        redrive = props.get("RedrivePolicy")
        if isinstance(redrive, dict):
            dlq = getatt_target(redrive.get("deadLetterTargetArn"), "Arn")
            dlq_props = (resources.get(dlq) or {}).get("Properties") or {}
            mine = as_int(props.get("MessageRetentionPeriod", gen_resources.SQS_DEFAULT_RETENTION))
            theirs = as_int(dlq_props.get("MessageRetentionPeriod", gen_resources.SQS_DEFAULT_RETENTION))
            if isinstance(mine, int) and isinstance(theirs, int) and theirs <= mine:
                c.fail(f"queue {rid}: its DLQ {dlq} keeps messages {theirs} s, not longer than the queue's own "
                       f"{mine} s (a moved message keeps its original enqueue time)")
        visibility = as_int(props.get("VisibilityTimeout", 30))
        for fid, fres in resources.items():
            if fres.get("Type") != "AWS::Serverless::Function":
                continue
            fprops = fres.get("Properties") or {}
            for event in (fprops.get("Events") or {}).values():
                if event.get("Type") != "SQS" or getatt_target((event.get("Properties") or {}).get("Queue"), "Arn") != rid:
                    continue
                timeout = function_timeout(fprops, globals_fn)
                if not (isinstance(visibility, int) and isinstance(timeout, int)) or visibility < 6 * timeout:
                    c.fail(f"queue {rid}: VisibilityTimeout {visibility} < 6 x {fid} Timeout {timeout}")
                else:
                    notes.append(f"{rid} visibility {visibility} >= 6 x {fid} Timeout {timeout}")
    return "; ".join(notes) or "no SQS-triggered function"


def env_of(props: dict) -> dict:
    return ((props.get("Environment") or {}).get("Variables")) or {}


def check_functions(c: Checker, resources: dict, globals_fn: dict) -> str:
    genv = env_of(globals_fn)
    if genv.get("KEFU_SERVICE") != {"Ref": "AWS::StackName"}:
        c.fail("Globals: KEFU_SERVICE must be !Ref AWS::StackName (the metrics' service dimension)")
    if "RUST_LOG" not in genv:
        c.fail("Globals: RUST_LOG is not set")
    if "Role" in globals_fn or "Policies" in globals_fn:
        c.fail("Globals: Role/Policies belong to each function")
    count = 0
    for rid, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        count += 1
        props = res.get("Properties") or {}
        role = getatt_target(props.get("Role"), "Arn")
        if role is None or (resources.get(role) or {}).get("Type") != "AWS::IAM::Role":
            c.fail(f"function {rid}: Role must be !GetAtt <AWS::IAM::Role of this template>.Arn "
                   "(otherwise SAM generates a role with managed policies)")
        if "Policies" in props:
            c.fail(f"function {rid}: Policies are ignored with an explicit Role; put them in the role")
        variables = {**genv, **env_of(props)}
        for name in sorted(set(variables) & LOCAL_ONLY_VARIABLES):
            c.fail(f"function {rid}: {name} is local-only and must not be in the template")
        for path, leaf in walk(plain(variables)):
            if re.search(r"\{\{resolve:(secretsmanager|ssm-secure):", leaf):
                c.fail(f"function {rid}: environment {path} resolves a secret at deploy time (plaintext in "
                       "GetFunctionConfiguration); read it at run time instead")
        if rid == "SenderFunction":
            check_sender_timeout(c, props, variables, globals_fn)
    return f"{count} functions: explicit roles, no local-only or secret variables, sender timeout fits its calls"


# The sender starts a platform call only while PLATFORM_TIMEOUT_MS plus this reserve (for recording
# the outcome; functions/sender/src/config.rs `record_reserve`) is left before its deadline, and the
# HTTP API gives up on an integration after 30 s.
SENDER_RECORD_RESERVE_S = 3
SENDER_OVERHEAD_S = 2  # registry, idempotency claim and reservation before the first call
HTTP_API_MAX_TIMEOUT_S = 30


def check_sender_timeout(c: Checker, props: dict, variables: dict, globals_fn: dict) -> None:
    timeout = function_timeout(props, globals_fn)
    call_ms = as_int(variables.get("PLATFORM_TIMEOUT_MS", 5000))
    if not isinstance(timeout, int) or not isinstance(call_ms, int):
        return
    need = -(-call_ms // 1000) + SENDER_RECORD_RESERVE_S + SENDER_OVERHEAD_S
    if timeout < need:
        c.fail(f"function SenderFunction: Timeout {timeout} s is below one platform call "
               f"({call_ms} ms) + {SENDER_RECORD_RESERVE_S} s recording reserve + {SENDER_OVERHEAD_S} s: "
               f"no send could ever start")
    if timeout >= HTTP_API_MAX_TIMEOUT_S:
        c.fail(f"function SenderFunction: Timeout {timeout} s is not below the HTTP API's "
               f"{HTTP_API_MAX_TIMEOUT_S} s: the caller would get a 503 while the send still runs")


def statements(doc) -> list:
    st = (doc or {}).get("Statement") or []
    return st if isinstance(st, list) else [st]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def check_roles(c: Checker, resources: dict) -> str:
    count = 0
    for rid, res in resources.items():
        if res.get("Type") != "AWS::IAM::Role":
            continue
        count += 1
        props = res.get("Properties") or {}
        if props.get("ManagedPolicyArns"):
            c.fail(f"role {rid}: ManagedPolicyArns - write the statements the code needs instead")
        for st in statements(props.get("AssumeRolePolicyDocument")):
            services = as_list((st.get("Principal") or {}).get("Service"))
            if services != [LAMBDA_PRINCIPAL] or set(st.get("Principal") or {}) != {"Service"}:
                c.fail(f"role {rid}: trust policy must name only the service {LAMBDA_PRINCIPAL}, has "
                       f"{plain(st.get('Principal'))}")
        for policy in props.get("Policies") or []:
            condition = None
            if isinstance(policy, dict) and "Fn::If" in policy:
                condition, then, _ = policy["Fn::If"]
                policy = then
            for st in statements((policy or {}).get("PolicyDocument")):
                actions = [str(a) for a in as_list(st.get("Action"))]
                where = f"role {rid} policy {policy.get('PolicyName')} {st.get('Sid') or ''}".rstrip()
                for a in actions:
                    if "*" in a:
                        c.fail(f"{where}: wildcard action {a}")
                if st.get("Effect") != "Allow":
                    continue
                if "*" in [plain(r) for r in as_list(st.get("Resource"))]:
                    if not set(actions) <= XRAY_ACTIONS:
                        c.fail(f"{where}: Resource '*' for {actions}; only {sorted(XRAY_ACTIONS)} may use it")
                    elif condition != TRACING_CONDITION:
                        c.fail(f"{where}: X-Ray permissions must be under !If [{TRACING_CONDITION}, ...]")
                elif set(actions) & XRAY_ACTIONS and condition != TRACING_CONDITION:
                    c.fail(f"{where}: X-Ray permissions must be under !If [{TRACING_CONDITION}, ...]")
    return f"{count} roles: lambda principal, no wildcard actions, '*' only for X-Ray under {TRACING_CONDITION}"


def check_partitions(c: Checker, template: dict) -> str:
    """Every string of the decoded template (comments are not strings)."""
    hosts = re.compile(r"[a-z0-9.-]+\.(?:amazonaws\.com(?:\.cn)?|amazonaws\.cn|aws\.amazon\.com|amazonaws-us-gov\.com)")
    for path, leaf in walk(plain(template)):
        if re.search(r"\barn:aws:", leaf):
            c.fail(f"{path}: literal arn:aws: - build ARNs with ${{AWS::Partition}} (aws-cn)")
        for host in hosts.findall(leaf):
            if not any(host == h or host.endswith("." + h) for h in ALLOWED_HOSTS):
                c.fail(f"{path}: literal host {host} - use ${{AWS::URLSuffix}} (aws-cn)")
    return "no literal arn:aws: or AWS host names"


def check_parameters(c: Checker, parameters: dict) -> str:
    for name, p in parameters.items():
        bounded = "AllowedValues" in p or "AllowedPattern" in p or ("MinValue" in p and "MaxValue" in p)
        if not bounded:
            c.fail(f"parameter {name}: unbounded - give AllowedValues, AllowedPattern or MinValue and MaxValue")
    return f"{len(parameters)} parameters, each bounded"


def runbook_anchors(path: Path) -> set:
    """GitHub-style anchors of the runbook's headings plus explicit <a name|id="...">."""
    anchors, fenced = set(), False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = re.match(r"\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            anchors.add(slug)
        anchors.update(re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line))
    return anchors


def check_alarms(c: Checker, resources: dict, runbook: Path) -> str:
    seen = set()
    for rid, res in resources.items():
        if res.get("Type") != "AWS::CloudWatch::Alarm":
            continue
        props = res.get("Properties") or {}
        name = props.get("AlarmName")
        suffix = None
        if isinstance(name, dict) and isinstance(name.get("Fn::Sub"), str) and name["Fn::Sub"].startswith("${AWS::StackName}-"):
            suffix = name["Fn::Sub"][len("${AWS::StackName}-"):]
        if not suffix or "${" in suffix:
            c.fail(f"alarm {rid}: AlarmName must be !Sub '${{AWS::StackName}}-<suffix>'")
            continue
        seen.add(suffix)
        desc = props.get("AlarmDescription")
        desc = desc.get("Fn::Sub") if isinstance(desc, dict) else desc
        if not isinstance(desc, str) or not desc.rstrip().endswith(f"Runbook: {RUNBOOK}#{suffix}"):
            c.fail(f"alarm {rid}: AlarmDescription must end with 'Runbook: {RUNBOOK}#{suffix}'")
        for key in ("AlarmActions", "OKActions"):
            if plain(props.get(key)) != [ALARM_TOPIC]:
                c.fail(f"alarm {rid}: {key} must be [!If [CreateAlarmTopic, !Ref AlarmTopic, !Ref AlarmTopicArn]]")
        metrics = props.get("Metrics")
        if metrics is not None and sum(1 for m in metrics if m.get("ReturnData") in (True, "true")) != 1:
            c.fail(f"alarm {rid}: exactly one Metrics entry must have ReturnData true")
    for missing in sorted(ALARM_SUFFIXES - seen):
        c.fail(f"alarm {missing}: missing (AlarmName <stack>-{missing})")
    for extra in sorted(seen - ALARM_SUFFIXES):
        c.fail(f"alarm {extra}: not in ALARM_SUFFIXES of infra/check_template.py (add it, and a runbook section)")
    note = f"{len(seen)} alarms named, described and notifying the alarm topic"
    if runbook.exists():
        anchors = runbook_anchors(runbook)
        for suffix in sorted(seen - anchors):
            c.fail(f"alarm {suffix}: {runbook} has no heading or anchor #{suffix}")
        note += f"; every one has a section in {RUNBOOK}"
    else:
        note += f"; {RUNBOOK} not found, anchors not checked"
    return note


def check_transform(c: Checker, template: dict) -> str:
    """SAM's output: only our roles, no managed policies, no generated policies."""
    try:
        from samtranslator.public.exceptions import InvalidDocumentException
        from samtranslator.translator.transform import transform
    except ImportError:
        c.fail("samtranslator is not installed; run infra/local/setup.sh and use the venv's python")
        return ""
    tpl = copy.deepcopy(plain(template))
    for res in tpl.get("Resources", {}).values():
        if res.get("Type") == "AWS::Serverless::Function":
            res.setdefault("Properties", {})["CodeUri"] = "s3://bucket/key"  # no local build needed

    class NoManagedPolicies:  # SAM asks only when a function has Policies; ours have none
        def load(self):
            return {}

    ours = {rid for rid, r in template.get("Resources", {}).items() if r.get("Type") == "AWS::IAM::Role"}
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    try:
        out = transform(tpl, {}, NoManagedPolicies())
    except InvalidDocumentException as e:
        c.fail("SAM transform failed: " + "; ".join(str(x) for x in e.causes))
        return ""
    for rid, res in out["Resources"].items():
        t = res.get("Type", "")
        if t == "AWS::IAM::Role" and rid not in ours:
            c.fail(f"SAM transform generated role {rid}")
        if t in ("AWS::IAM::Policy", "AWS::IAM::ManagedPolicy"):
            c.fail(f"SAM transform generated {t} {rid}")
        if t == "AWS::IAM::Role" and res.get("Properties", {}).get("ManagedPolicyArns"):
            c.fail(f"SAM transform attached managed policies to {rid}: {res['Properties']['ManagedPolicyArns']}")
    return "SAM adds no role, managed policy or policy"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(ROOT / "template.yaml"), help="default: <repo>/template.yaml")
    ap.add_argument("--resources", default=str(ROOT / "infra/local/resources.json"),
                    help="default: <repo>/infra/local/resources.json")
    ap.add_argument("--runbook", default=str(ROOT / RUNBOOK), help=f"default: <repo>/{RUNBOOK}")
    args = ap.parse_args()

    template = load_template(Path(args.template))
    resources = template.get("Resources") or {}
    globals_fn = (template.get("Globals") or {}).get("Function") or {}

    c = Checker()
    c.group("resources.json", check_generated, c, template, Path(args.resources))
    c.group("tables", check_tables, c, resources)
    c.group("queues", check_queues, c, resources, globals_fn)
    c.group("functions", check_functions, c, resources, globals_fn)
    c.group("roles", check_roles, c, resources)
    c.group("partitions", check_partitions, c, template)
    c.group("parameters", check_parameters, c, template.get("Parameters") or {})
    c.group("alarms", check_alarms, c, resources, Path(args.runbook))
    c.group("SAM transform", check_transform, c, template)
    if c.problems:
        for p in c.problems:
            print(f"MISMATCH {p}")
        print(f"check_template: FAILED: {args.template} ({len(c.problems)} problem(s))", file=sys.stderr)
        return 1
    print(f"check_template: {args.template} passes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

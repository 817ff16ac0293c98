#!/usr/bin/env python3
"""Check that template.yaml's tables and queues equal infra/local/resources.json.

infra/local/resources.json is the single source of truth for the DynamoDB tables and SQS queues the
local emulator creates (infra/local/seed.py). This check makes the deployed stack agree with it:

* template resources are matched to resources.json entries by name: the template names every table
  and queue `!Sub '${AWS::StackName}-<name>'`, as seed.py names them `<prefix><name>`;
* every table: key schema (hash / range key names and order), attribute types of the key attributes,
  TTL attribute (or none), plus PAY_PER_REQUEST and point-in-time recovery;
* every queue: VisibilityTimeout (SQS default 30 when resources.json has none), MessageRetentionPeriod,
  the redrive target and maxReceiveCount (or no redrive), plus SSE on;
* the inbound queue's VisibilityTimeout is at least 6x the Timeout of the function it triggers;
* no table or queue exists on one side only.

Prints one line per checked resource; on any mismatch prints `MISMATCH ...` lines and exits 1
(exit 2 when a file cannot be read). Uses cfn-lint's YAML decoder (understands !Ref/!GetAtt/!Sub).

Usage: python infra/check_template.py [--template PATH] [--resources PATH]
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SQS_DEFAULT_VISIBILITY = 30
NAME_PREFIX = "${AWS::StackName}-"


def load_template(path: Path) -> dict:
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        sys.exit("check_template: cfn-lint is not installed; run infra/local/setup.sh and use the venv's python")
    try:
        return cfn_yaml.load(str(path))
    except Exception as e:  # decoder raises several types; all mean "cannot use this file"
        print(f"check_template: cannot load {path}: {e}", file=sys.stderr)
        sys.exit(2)


def logical_name(props: dict, key: str):
    """The resources.json name of a template resource, from `!Sub '${AWS::StackName}-<name>'`."""
    value = props.get(key)
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        sub = value["Fn::Sub"]
        if sub.startswith(NAME_PREFIX) and "${" not in sub[len(NAME_PREFIX):]:
            return sub[len(NAME_PREFIX):]
    return None


def as_int(value):
    try:
        return int(value)
    except (TypeError, ValueError):
        return value


def getatt_target(value, attribute: str):
    """`!GetAtt X.Arn` (either spelling) -> X, else None."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        v = value["Fn::GetAtt"]
        parts = v.split(".", 1) if isinstance(v, str) else list(v)
        if len(parts) == 2 and parts[1] == attribute:
            return str(parts[0])
    return None


class Checker:
    def __init__(self) -> None:
        self.problems: list[str] = []

    def expect(self, what: str, have, want) -> None:
        if have != want:
            self.problems.append(f"{what}: template has {have!r}, resources.json wants {want!r}")


def check_tables(c: Checker, resources: dict, want_tables: list) -> None:
    have = {}
    for rid, res in resources.items():
        if res.get("Type") != "AWS::DynamoDB::Table":
            continue
        props = res.get("Properties", {})
        name = logical_name(props, "TableName")
        if name is None:
            c.problems.append(f"table {rid}: TableName must be !Sub '{NAME_PREFIX}<name>' with a name from resources.json")
            continue
        have[name] = (rid, props)

    for want in want_tables:
        name = want["name"]
        if name not in have:
            c.problems.append(f"table {name}: in resources.json but not in the template")
            continue
        rid, props = have.pop(name)
        before = len(c.problems)
        prefix = f"table {name} ({rid})"

        keys = [(want["hash_key"], "HASH")]
        if want.get("range_key"):
            keys.append((want["range_key"], "RANGE"))
        want_schema = [(k["name"], kt) for k, kt in keys]
        have_schema = [(k.get("AttributeName"), k.get("KeyType")) for k in props.get("KeySchema", [])]
        c.expect(f"{prefix} KeySchema", have_schema, want_schema)

        want_types = {k["name"]: k["type"] for k, _ in keys}
        have_types = {a.get("AttributeName"): a.get("AttributeType") for a in props.get("AttributeDefinitions", [])}
        c.expect(f"{prefix} AttributeDefinitions", have_types, want_types)

        ttl = props.get("TimeToLiveSpecification")
        have_ttl = ttl.get("AttributeName") if ttl and ttl.get("Enabled") in (True, "true", "True") else None
        c.expect(f"{prefix} TTL attribute", have_ttl, want.get("ttl_attribute"))

        c.expect(f"{prefix} BillingMode", props.get("BillingMode"), "PAY_PER_REQUEST")
        pitr = (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled")
        c.expect(f"{prefix} PointInTimeRecoveryEnabled", pitr in (True, "true", "True"), True)

        if len(c.problems) == before:
            keys_txt = " + ".join(f"{n} {want_types[n]} {kt}" for n, kt in want_schema)
            ttl_txt = want.get("ttl_attribute") or "none"
            print(f"ok   table {name:<14} ({rid}): {keys_txt}; ttl {ttl_txt}; on-demand; PITR")

    for name, (rid, _) in have.items():
        c.problems.append(f"table {name} ({rid}): in the template but not in resources.json")


def check_queues(c: Checker, resources: dict, want_queues: list, default_timeout) -> None:
    have = {}
    rid_to_name = {}
    for rid, res in resources.items():
        if res.get("Type") != "AWS::SQS::Queue":
            continue
        props = res.get("Properties", {})
        name = logical_name(props, "QueueName")
        if name is None:
            c.problems.append(f"queue {rid}: QueueName must be !Sub '{NAME_PREFIX}<name>' with a name from resources.json")
            continue
        have[name] = (rid, props)
        rid_to_name[rid] = name

    for want in want_queues:
        name = want["name"]
        if name not in have:
            c.problems.append(f"queue {name}: in resources.json but not in the template")
            continue
        rid, props = have.pop(name)
        before = len(c.problems)
        prefix = f"queue {name} ({rid})"

        want_vis = want.get("visibility_timeout")
        want_vis = SQS_DEFAULT_VISIBILITY if want_vis is None else want_vis
        have_vis = as_int(props.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY))
        c.expect(f"{prefix} VisibilityTimeout", have_vis, want_vis)
        c.expect(f"{prefix} MessageRetentionPeriod", as_int(props.get("MessageRetentionPeriod")), want["message_retention"])

        redrive = props.get("RedrivePolicy")
        if want.get("dlq"):
            if not isinstance(redrive, dict):
                c.problems.append(f"{prefix} RedrivePolicy: missing, resources.json wants dlq {want['dlq']}")
            else:
                target = getatt_target(redrive.get("deadLetterTargetArn"), "Arn")
                c.expect(f"{prefix} RedrivePolicy target", rid_to_name.get(target, target), want["dlq"])
                c.expect(f"{prefix} RedrivePolicy maxReceiveCount", as_int(redrive.get("maxReceiveCount")), want["max_receive_count"])
        elif redrive is not None:
            c.problems.append(f"{prefix} RedrivePolicy: present, resources.json has no dlq")

        sse = props.get("SqsManagedSseEnabled") in (True, "true", "True") or "KmsMasterKeyId" in props
        c.expect(f"{prefix} SSE enabled", sse, True)

        consumers = event_source_timeouts(resources, rid, default_timeout)
        for fn, timeout in consumers:
            if isinstance(have_vis, int) and isinstance(timeout, int) and have_vis < 6 * timeout:
                c.problems.append(f"{prefix} VisibilityTimeout {have_vis} < 6 x {fn} Timeout {timeout}")

        if len(c.problems) == before:
            redrive_txt = f"redrive -> {want['dlq']} after {want['max_receive_count']}" if want.get("dlq") else "no redrive"
            consumer_txt = "".join(f"; >= 6 x {fn} Timeout {t}" for fn, t in consumers)
            print(f"ok   queue {name:<14} ({rid}): visibility {have_vis}; retention {want['message_retention']}; "
                  f"{redrive_txt}; SSE{consumer_txt}")

    for name, (rid, _) in have.items():
        c.problems.append(f"queue {name} ({rid}): in the template but not in resources.json")


def event_source_timeouts(resources: dict, queue_rid: str, default_timeout) -> list:
    """(function, Timeout) of every SAM function with an SQS event on this queue."""
    out = []
    for rid, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {})
        for event in (props.get("Events") or {}).values():
            if event.get("Type") == "SQS" and getatt_target(event.get("Properties", {}).get("Queue"), "Arn") == queue_rid:
                out.append((rid, as_int(props.get("Timeout", default_timeout))))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(ROOT / "template.yaml"), help="default: <repo>/template.yaml")
    ap.add_argument("--resources", default=str(ROOT / "infra/local/resources.json"),
                    help="default: <repo>/infra/local/resources.json")
    args = ap.parse_args()

    try:
        with open(args.resources) as f:
            want = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_template: cannot read {args.resources}: {e}", file=sys.stderr)
        return 2
    template = load_template(Path(args.template))
    resources = template.get("Resources") or {}

    c = Checker()
    check_tables(c, resources, want.get("tables", []))
    globals_fn = (template.get("Globals") or {}).get("Function") or {}
    check_queues(c, resources, want.get("queues", []), as_int(globals_fn.get("Timeout", 3)))  # 3 = SAM default
    if c.problems:
        for p in c.problems:
            print(f"MISMATCH {p}")
        print(f"check_template: FAILED: {args.template} disagrees with {args.resources} ({len(c.problems)} problem(s))",
              file=sys.stderr)
        return 1
    print(f"check_template: {args.template} agrees with {args.resources}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

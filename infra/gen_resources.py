#!/usr/bin/env python3
"""Generate infra/local/resources.json (tables and queues for the local emulator) from template.yaml.

template.yaml is the one source of truth; resources.json is derived from it so the local tools never
drift from the stack. Readers: infra/local/seed.py (`make dev`), shared::adapters::dynamodb::provision and
shared::adapters::sqs (tests, `kefu serve`). For every AWS::DynamoDB::Table and AWS::SQS::Queue, in
template order, named `!Sub '${AWS::StackName}-<name>'`:

* table: name, hash_key / range_key ({name, type} from KeySchema + AttributeDefinitions, range_key null
  when absent), ttl_attribute (TimeToLiveSpecification when Enabled, else null), indexes (each global
  secondary index: name, hash_key, range_key; only when the table has any; every one projects ALL);
* queue: name, visibility_timeout (only when the template sets VisibilityTimeout), message_retention
  (MessageRetentionPeriod, SQS's default 345600 when unset), dlq + max_receive_count (RedrivePolicy).

The output is deterministic (same template, same bytes). Usage:

    python infra/gen_resources.py            # rewrite infra/local/resources.json
    python infra/gen_resources.py --check    # exit 1 (with a diff) when the file is not what this generates
    python infra/gen_resources.py --stdout   # print instead of writing

Exit 2 when the template cannot be read or a table/queue is not of the shape above.
"""

import argparse
import difflib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUT = ROOT / "infra/local/resources.json"
NAME_PREFIX = "${AWS::StackName}-"
SQS_DEFAULT_RETENTION = 345600
NOTE = "generated from template.yaml by infra/gen_resources.py; do not edit (infra/validate.sh checks it)"


class ShapeError(Exception):
    """A table or queue the generator cannot describe."""


def load_template(path: Path) -> dict:
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        sys.exit("gen_resources: cfn-lint is not installed; run infra/local/setup.sh and use the venv's python")
    try:
        return cfn_yaml.load(str(path))
    except Exception as e:  # the decoder raises several types; all mean "cannot use this file"
        print(f"gen_resources: cannot load {path}: {e}", file=sys.stderr)
        sys.exit(2)


def logical_name(rid: str, props: dict, key: str) -> str:
    """The local name of a resource, from `!Sub '${AWS::StackName}-<name>'`."""
    value = props.get(key)
    if isinstance(value, dict) and set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
        sub = value["Fn::Sub"]
        if sub.startswith(NAME_PREFIX) and "${" not in sub[len(NAME_PREFIX):]:
            return sub[len(NAME_PREFIX):]
    raise ShapeError(f"{rid}: {key} must be !Sub '{NAME_PREFIX}<name>'")


def getatt_target(value, attribute: str):
    """`!GetAtt X.<attribute>` (either spelling) -> X, else None."""
    if isinstance(value, dict) and set(value) == {"Fn::GetAtt"}:
        v = value["Fn::GetAtt"]
        parts = v.split(".", 1) if isinstance(v, str) else list(v)
        if len(parts) == 2 and parts[1] == attribute:
            return str(parts[0])
    return None


def as_int(rid: str, what: str, value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ShapeError(f"{rid}: {what} must be a literal integer, got {value!r}") from None


def enabled(value) -> bool:
    return value in (True, "true", "True")


def table_entry(rid: str, props: dict) -> dict:
    types = {a.get("AttributeName"): a.get("AttributeType") for a in props.get("AttributeDefinitions") or []}
    keys = {k.get("KeyType"): k.get("AttributeName") for k in props.get("KeySchema") or []}
    if "HASH" not in keys:
        raise ShapeError(f"{rid}: KeySchema has no HASH key")

    def key(kind: str):
        name = keys.get(kind)
        if name is None:
            return None
        if name not in types:
            raise ShapeError(f"{rid}: key attribute {name} has no AttributeDefinitions entry")
        return {"name": name, "type": types[name]}

    ttl = props.get("TimeToLiveSpecification")
    entry = {
        "name": logical_name(rid, props, "TableName"),
        "hash_key": key("HASH"),
        "range_key": key("RANGE"),
        "ttl_attribute": ttl.get("AttributeName") if isinstance(ttl, dict) and enabled(ttl.get("Enabled")) else None,
    }
    indexes = []
    for gsi in props.get("GlobalSecondaryIndexes") or []:
        name = gsi.get("IndexName")
        if (gsi.get("Projection") or {}).get("ProjectionType") != "ALL":
            raise ShapeError(f"{rid}: index {name} must project ALL (the store reads whole items from it)")
        gkeys = {k.get("KeyType"): k.get("AttributeName") for k in gsi.get("KeySchema") or []}
        if "HASH" not in gkeys:
            raise ShapeError(f"{rid}: index {name} has no HASH key")
        for attr in gkeys.values():
            if attr not in types:
                raise ShapeError(f"{rid}: index key attribute {attr} has no AttributeDefinitions entry")
        indexes.append({
            "name": name,
            "hash_key": {"name": gkeys["HASH"], "type": types[gkeys["HASH"]]},
            "range_key": {"name": gkeys["RANGE"], "type": types[gkeys["RANGE"]]} if "RANGE" in gkeys else None,
        })
    if indexes:
        entry["indexes"] = indexes
    return entry


def queue_entry(rid: str, props: dict, names: dict) -> dict:
    entry = {"name": names[rid]}
    if "VisibilityTimeout" in props:
        entry["visibility_timeout"] = as_int(rid, "VisibilityTimeout", props["VisibilityTimeout"])
    entry["message_retention"] = as_int(rid, "MessageRetentionPeriod",
                                        props.get("MessageRetentionPeriod", SQS_DEFAULT_RETENTION))
    redrive = props.get("RedrivePolicy")
    if redrive is not None:
        target = getatt_target((redrive or {}).get("deadLetterTargetArn"), "Arn")
        if target not in names:
            raise ShapeError(f"{rid}: RedrivePolicy.deadLetterTargetArn must be !GetAtt <queue in this template>.Arn")
        entry["dlq"] = names[target]
        entry["max_receive_count"] = as_int(rid, "maxReceiveCount", redrive.get("maxReceiveCount"))
    return entry


def resources_document(template: dict) -> dict:
    resources = template.get("Resources") or {}
    tables, queue_ids, names = [], [], {}
    for rid, res in resources.items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::DynamoDB::Table":
            tables.append(table_entry(rid, props))
        elif res.get("Type") == "AWS::SQS::Queue":
            names[rid] = logical_name(rid, props, "QueueName")
            queue_ids.append(rid)
    queues = [queue_entry(rid, resources[rid].get("Properties") or {}, names) for rid in queue_ids]
    return {"_note": NOTE, "tables": tables, "queues": queues}


def render(value, depth: int = 0) -> str:
    """JSON with 2-space indentation; key specs (objects with "name" and "type") stay on one line."""
    pad, inner = "  " * depth, "  " * (depth + 1)
    if isinstance(value, dict):
        if depth >= 3 and set(value) == {"name", "type"}:
            return "{ " + ", ".join(f"{json.dumps(k)}: {json.dumps(v)}" for k, v in value.items()) + " }"
        items = [f"{inner}{json.dumps(k)}: {render(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list):
        items = [f"{inner}{render(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]" if items else "[]"
    return json.dumps(value)


def generate(template: dict) -> str:
    """The resources.json text for `template` (raises ShapeError)."""
    return render(resources_document(template)) + "\n"


def stale_diff(template: dict, path: Path) -> list:
    """Unified-diff lines between `path` and what the generator produces; [] when equal."""
    want = generate(template)
    try:
        have = path.read_text()
    except OSError as e:
        return [f"cannot read {path}: {e}"]
    if have == want:
        return []
    return list(difflib.unified_diff(have.splitlines(), want.splitlines(), f"{path} (committed)",
                                     f"{path} (generated)", lineterm=""))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="default: <repo>/template.yaml")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="default: <repo>/infra/local/resources.json")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    args = ap.parse_args()

    template = load_template(Path(args.template))
    out = Path(args.out)
    try:
        text = generate(template)
        diff = stale_diff(template, out) if args.check else []
    except ShapeError as e:
        print(f"gen_resources: {e}", file=sys.stderr)
        return 2
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        if diff:
            print("\n".join(diff))
            print(f"gen_resources: {out} is stale: run python infra/gen_resources.py", file=sys.stderr)
            return 1
        print(f"gen_resources: {out} is up to date with {args.template}")
        return 0
    out.write_text(text)
    print(f"gen_resources: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

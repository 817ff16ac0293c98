#!/usr/bin/env python3
"""Create kefu's local DynamoDB tables and SQS queues in an emulator (moto), idempotently.

The definitions come from infra/local/resources.json (the single source of truth). Every name gets a
prefix (--prefix, default "kefu-local-"), e.g. table "kefu-local-conversations", queue "kefu-local-inbound".
Re-running converges: existing tables are checked (key schema must match), TTL is enabled where
ttl_attribute is set, queue attributes (incl. RedrivePolicy) are re-applied.

Prints shell `export` lines on stdout (CONVERSATIONS_TABLE, MESSAGES_TABLE, TOKENS_TABLE,
INBOUND_QUEUE_URL, INBOUND_DLQ_URL); progress goes to stderr. Usage:

    eval "$(infra/local/moto.sh env)"
    eval "$(.venv/bin/python infra/local/seed.py --prefix kefu-local-)"

The endpoint comes from --endpoint or AWS_ENDPOINT_URL (required: this script never talks to real AWS).
Credentials are always the dummy test/test; the region is AWS_REGION / AWS_DEFAULT_REGION / us-east-1.
"""

import argparse
import json
import os
import shlex
import sys
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

HERE = Path(__file__).resolve().parent


def log(msg: str) -> None:
    print(f"seed: {msg}", file=sys.stderr)


def env_name(name: str) -> str:
    return name.upper().replace("-", "_").replace(".", "_")


def table_var(table: dict) -> str:
    return f"{env_name(table['name'])}_TABLE"


def queue_var(queue: dict) -> str:
    base = env_name(queue["name"])
    # "inbound" -> INBOUND_QUEUE_URL, "inbound-dlq" -> INBOUND_DLQ_URL
    return f"{base}_URL" if base.endswith("_DLQ") else f"{base}_QUEUE_URL"


def key_schema(table: dict):
    keys = [(table["hash_key"], "HASH")]
    if table.get("range_key"):
        keys.append((table["range_key"], "RANGE"))
    schema = [{"AttributeName": k["name"], "KeyType": kt} for k, kt in keys]
    attrs = [{"AttributeName": k["name"], "AttributeType": k["type"]} for k, _ in keys]
    return schema, attrs


def indexes(table: dict, attrs: list):
    """The table's global secondary indexes (projection ALL), adding their key attributes to `attrs`."""
    out = []
    for index in table.get("indexes") or []:
        schema, index_attrs = key_schema(index)
        for a in index_attrs:
            if a not in attrs:
                attrs.append(a)
        out.append({"IndexName": index["name"], "KeySchema": schema, "Projection": {"ProjectionType": "ALL"}})
    return out


def ensure_table(ddb, table: dict, name: str) -> None:
    schema, attrs = key_schema(table)
    gsis = indexes(table, attrs)
    try:
        desc = ddb.describe_table(TableName=name)["Table"]
    except ClientError as e:
        if e.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        extra = {"GlobalSecondaryIndexes": gsis} if gsis else {}
        ddb.create_table(
            TableName=name,
            BillingMode="PAY_PER_REQUEST",
            KeySchema=schema,
            AttributeDefinitions=attrs,
            **extra,
        )
        ddb.get_waiter("table_exists").wait(
            TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 30}
        )
        log(f"created table {name}")
    else:
        have_types = {a["AttributeName"]: a["AttributeType"] for a in desc["AttributeDefinitions"]}
        same = desc["KeySchema"] == schema and all(
            have_types.get(a["AttributeName"]) == a["AttributeType"] for a in attrs
        )
        if not same:
            raise SystemExit(
                f"seed: table {name} exists with key schema {desc['KeySchema']}, expected {schema}; "
                "key schemas cannot be changed in place: restart the emulator (moto.sh stop && moto.sh start)"
            )
        log(f"table {name} exists")

    ttl_attr = table.get("ttl_attribute")
    if ttl_attr:
        cur = ddb.describe_time_to_live(TableName=name).get("TimeToLiveDescription", {})
        if cur.get("TimeToLiveStatus") in ("ENABLED", "ENABLING") and cur.get("AttributeName") == ttl_attr:
            return
        ddb.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl_attr, "Enabled": True},
        )
        log(f"enabled TTL on {name}.{ttl_attr}")


def queue_attributes(queue: dict, arns: dict, prefix: str) -> dict:
    attrs = {"MessageRetentionPeriod": str(queue["message_retention"])}
    if queue.get("visibility_timeout") is not None:
        attrs["VisibilityTimeout"] = str(queue["visibility_timeout"])
    if queue.get("dlq"):
        if queue.get("max_receive_count") is None:
            raise SystemExit(f"seed: queue {queue['name']} has a dlq but no max_receive_count")
        attrs["RedrivePolicy"] = json.dumps(
            {
                "deadLetterTargetArn": arns[prefix + queue["dlq"]],
                "maxReceiveCount": int(queue["max_receive_count"]),
            }
        )
    return attrs


def ensure_queues(sqs, queues: list, prefix: str) -> dict:
    """Create queues, dead-letter targets first. Returns {queue name (unprefixed): url}."""
    by_name = {q["name"]: q for q in queues}
    for q in queues:
        if q.get("dlq") and q["dlq"] not in by_name:
            raise SystemExit(f"seed: queue {q['name']} refers to unknown dlq {q['dlq']}")
    urls, arns = {}, {}
    pending = list(queues)
    while pending:
        ready = [q for q in pending if not q.get("dlq") or q["dlq"] in urls]
        if not ready:
            raise SystemExit(f"seed: dlq cycle among {[q['name'] for q in pending]}")
        for q in ready:
            name = prefix + q["name"]
            attrs = queue_attributes(q, arns, prefix)
            try:
                url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
            except ClientError as e:
                if e.response["Error"]["Code"] not in (
                    "AWS.SimpleQueueService.NonExistentQueue",
                    "QueueDoesNotExist",
                ):
                    raise
                url = sqs.create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
                log(f"created queue {name}")
            else:
                sqs.set_queue_attributes(QueueUrl=url, Attributes=attrs)
                log(f"queue {name} exists (attributes re-applied)")
            urls[q["name"]] = url
            arns[name] = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"
            ]["QueueArn"]
            pending.remove(q)
    return urls


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prefix", default="kefu-local-", help="name prefix (default: kefu-local-)")
    ap.add_argument("--endpoint", default=os.environ.get("AWS_ENDPOINT_URL"),
                    help="emulator endpoint (default: $AWS_ENDPOINT_URL)")
    ap.add_argument("--resources", default=str(HERE / "resources.json"),
                    help="resource definitions (default: infra/local/resources.json)")
    args = ap.parse_args()
    if not args.endpoint:
        ap.error("no endpoint: set AWS_ENDPOINT_URL (eval \"$(infra/local/moto.sh env)\") or pass --endpoint")

    with open(args.resources) as f:
        res = json.load(f)

    kw = dict(
        endpoint_url=args.endpoint,
        region_name=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(connect_timeout=3, read_timeout=30, retries={"max_attempts": 2}),
    )
    ddb = boto3.client("dynamodb", **kw)
    sqs = boto3.client("sqs", **kw)

    exports = {}
    for t in res["tables"]:
        name = args.prefix + t["name"]
        ensure_table(ddb, t, name)
        exports[table_var(t)] = name
    urls = ensure_queues(sqs, res["queues"], args.prefix)
    for q in res["queues"]:
        exports[queue_var(q)] = urls[q["name"]]

    for k, v in exports.items():
        print(f"export {k}={shlex.quote(v)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

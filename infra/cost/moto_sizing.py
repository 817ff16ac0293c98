#!/usr/bin/env python3
"""moto_server with one addition for the cost run: every DynamoDB write logs the size of each item it
touches, before and after the write, computed by DynamoDB's item-size rules (dynamo_size.py).

One JSON line per write request is appended to the file named by KEFU_COST_SIZES:
  {"sig": <SigV4 signature of the request>, "op": "TransactWriteItems", "error": null | "<exception>",
   "items": [{"kind": "Put" | "Update" | "Delete" | "ConditionCheck", "table": ..., "before": bytes | null,
              "after": bytes | null}, ...]}
The signature is the join key with the recording proxy of cost.py, which sees the same request. The
sizes are read from moto's in-memory tables inside the request (no extra request, no extra latency
worth measuring). DynamoDB requests are served one at a time (see _SERIAL). Everything else is moto_server unchanged
(same arguments).
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dynamo_size import item_size  # noqa: E402
from moto.dynamodb.responses import DynamoHandler  # noqa: E402
from moto.server import main  # noqa: E402

_OUT = open(os.environ["KEFU_COST_SIZES"], "a", buffering=1, encoding="utf-8")
_LOCK = threading.Lock()
_SIG = re.compile(r"Signature=([0-9a-fA-F]+)")


def _key_of(backend, table_name: str, item: dict) -> dict:
    table = backend.get_table(table_name)
    key = {table.hash_key_attr: item[table.hash_key_attr]}
    if table.range_key_attr is not None:
        key[table.range_key_attr] = item[table.range_key_attr]
    return key


def _targets(op: str, body: dict, backend) -> list[tuple[str, str, dict]]:
    out = []
    if op == "PutItem":
        out.append(("Put", body["TableName"], _key_of(backend, body["TableName"], body["Item"])))
    elif op in ("UpdateItem", "DeleteItem"):
        out.append((op[:-4], body["TableName"], body["Key"]))
    elif op == "TransactWriteItems":
        for ti in body.get("TransactItems", []):
            kind, sub = next(iter(ti.items()))
            key = sub.get("Key") or _key_of(backend, sub["TableName"], sub["Item"])
            out.append((kind, sub["TableName"], key))
    elif op == "BatchWriteItem":
        for table, reqs in (body.get("RequestItems") or {}).items():
            for r in reqs:
                if "PutRequest" in r:
                    out.append(("Put", table, _key_of(backend, table, r["PutRequest"]["Item"])))
                elif "DeleteRequest" in r:
                    out.append(("Delete", table, r["DeleteRequest"]["Key"]))
    return out


def _size(backend, table: str, key: dict) -> int | None:
    try:
        item = backend.get_item(table, key)
    except Exception:  # table or key invalid: moto answers the request with the error
        return None
    return None if item is None else item_size(item.to_json()["Attributes"])


def _wrap(method: str, op: str) -> None:
    original = getattr(DynamoHandler, method)

    def wrapper(self):
        backend = self.dynamodb_backend
        try:
            targets = _targets(op, self.body, backend)
        except Exception:
            targets = []
        before = [_size(backend, t, k) for _, t, k in targets]
        error = None
        try:
            return original(self)
        except BaseException as e:
            error = type(e).__name__
            raise
        finally:
            after = [_size(backend, t, k) for _, t, k in targets]
            m = _SIG.search(self.headers.get("Authorization", "") or "")
            line = {"sig": m.group(1) if m else "", "op": op, "error": error,
                    "items": [{"kind": kind, "table": t, "before": b, "after": a}
                              for (kind, t, _), b, a in zip(targets, before, after)]}
            with _LOCK:
                _OUT.write(json.dumps(line) + "\n")

    wrapper.__name__ = original.__name__
    setattr(DynamoHandler, method, wrapper)


# moto's DynamoDB backend is not thread-safe (a transaction deep-copies and restores whole tables), and
# moto_server serves each request on its own thread: concurrent writes (the processor stores a batch's
# conversations concurrently) then fail with 500s that DynamoDB never gives. DynamoDB requests are
# therefore served one at a time, as the atomic operations they are on DynamoDB.
_SERIAL = threading.Lock()
_call_action = DynamoHandler.call_action


def _serial_call_action(self):
    with _SERIAL:
        return _call_action(self)


DynamoHandler.call_action = _serial_call_action

for _method, _op in (("put_item", "PutItem"), ("update_item", "UpdateItem"), ("delete_item", "DeleteItem"),
                     ("transact_write_items", "TransactWriteItems"), ("batch_write_item", "BatchWriteItem")):
    _wrap(_method, _op)

if __name__ == "__main__":
    sys.argv[0] = "moto_server"
    sys.exit(main())

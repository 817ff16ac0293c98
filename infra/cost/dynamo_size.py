"""DynamoDB item sizes and capacity units, by the rules of the DynamoDB developer guide ("Item sizes
and formats", "Read/write capacity units"):

- item size = sum over attributes of (UTF-8 bytes of the name) + (size of the value);
- String: UTF-8 bytes; Number: 1 byte per two significant digits + 1; Binary: raw bytes;
  Boolean / Null: 1 byte; List / Map: 3 bytes + sum of the elements + 1 byte per element (map keys
  count as names); sets: the sum of their elements;
- write: 1 WRU per 1 KB (1,024 bytes) of the larger of the item before and after the write, at least 1;
  a transactional write 2 WRU per 1 KB; a write whose condition fails still consumes the WRU of the
  existing item (at least 1);
- read: 1 RRU per 4 KB strongly consistent, 0.5 RRU eventually consistent, 2 RRU per 4 KB
  transactional; a Query is sized on the sum of the items it returns, a GetItem that finds nothing
  still costs the minimum.
"""

from __future__ import annotations

import base64
import math
from decimal import Decimal, InvalidOperation


def number_size(text: str) -> int:
    try:
        d = Decimal(text)
    except InvalidOperation:
        return len(text)
    digits = d.as_tuple().digits
    s = "".join(map(str, digits)).strip("0") or "0"
    return math.ceil(len(s) / 2) + 1


def _binary_size(v) -> int:
    if isinstance(v, (bytes, bytearray)):
        return len(v)
    try:
        return len(base64.b64decode(v))
    except Exception:
        return len(str(v))


def value_size(v: dict) -> int:
    (t, x), = v.items()
    if t == "S":
        return len(x.encode("utf-8"))
    if t == "N":
        return number_size(str(x))
    if t == "B":
        return _binary_size(x)
    if t in ("BOOL", "NULL"):
        return 1
    if t == "SS":
        return sum(len(e.encode("utf-8")) for e in x)
    if t == "NS":
        return sum(number_size(str(e)) for e in x)
    if t == "BS":
        return sum(_binary_size(e) for e in x)
    if t == "L":
        return 3 + sum(value_size(e) + 1 for e in x)
    if t == "M":
        return 3 + sum(len(k.encode("utf-8")) + value_size(e) + 1 for k, e in x.items())
    raise ValueError(f"unknown DynamoDB type {t}")


def item_size(item: dict) -> int:
    return sum(len(k.encode("utf-8")) + value_size(v) for k, v in item.items())


def write_units(before: int | None, after: int | None, transactional: bool, failed: bool) -> int:
    size = (before or 0) if failed else max(before or 0, after or 0)
    units = max(1, math.ceil(size / 1024))
    return units * (2 if transactional else 1)


def read_units(total_bytes: int, consistent: bool, transactional: bool = False) -> float:
    units = max(1, math.ceil(total_bytes / 4096))
    if transactional:
        return 2.0 * units
    return float(units) if consistent else units / 2

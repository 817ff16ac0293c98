#!/usr/bin/env python3
"""Cost per message, measured: the load path run as deployed, what it spent counted, priced.

What it runs (the stack rehearsal's machinery, infra/rehearsal/, imported as is):
- template.yaml transformed and resolved as CloudFormation would (parameters at their defaults); its
  tables, queues, secrets and roles created in a private moto_server (IAM enforced) on a free port;
- each function's built binary as a process behind a fake Lambda Runtime API, with exactly the
  environment the template gives it and its role's credentials;
- N signed pushes (WeChat and Baidu alternately, U users) through ingress -> inbound queue; the
  queue drained as the SQS event source mapping does (ReceiveMessage of up to BatchSize records ->
  one processor invocation -> DeleteMessageBatch); then M sends (POST /messages) through the sender
  to `kefu fake-platform`.

What it counts:
- every SDK call, by caller and operation, at a recording proxy in front of the rehearsal's
  proxy (functions -> this proxy -> rehearsal proxy -> moto);
- DynamoDB capacity from the items themselves: a moto_server wrapper (moto_sizing.py) logs each
  written item's size before and after the write, reads are sized from the items returned
  (dynamo_size.py has the rules); moto's ConsumedCapacity is a constant, so it is not used;
- SQS requests in 64 KB payload chunks, the event source mapping's receives and deletes included;
- log bytes: what each process writes to stdout/stderr (Lambda ingests it into CloudWatch Logs), plus
  Lambda's own platform lines per invocation (see PLATFORM_LINES), plus the HTTP API access log line
  rendered from the template's format;
- Lambda: invocations, and each invocation's duration at the fake Runtime API (event handed to the
  runtime -> response posted), billed per 1 ms, x the template's MemorySize and architecture; init
  (cold start) durations too (billed for provided.al2023);
- API Gateway HTTP API requests (512 KB units), X-Ray traces when the template's tracing is Active.

Durations measured against moto on this machine are an upper bound (moto behind two local proxies is
slower than DynamoDB and SQS); a second figure replaces the measured time inside each call by the
AWS-side latency of AWS_LATENCY_MS (stated assumption), keeping the function's own compute time.

Exit status: 0 when the run completed (whatever the $ figure), 1 when the run itself failed (setup,
an invocation error, a push not answered `success`, a record not stored, a send not answered 200),
3 when it ran out of time (--timeout).

Usage: cost.py [--pushes N] [--sends M] [--users U] [--profile release|debug | --bin-dir DIR] [--json]
               [--timeout S] [--keep]
Needs the venv of infra/local/setup.sh (moto[server], samtranslator, cfn-lint) and the built binaries
(`cargo build --release --locked -p ingress -p processor -p sender -p desk -p kefu --bins`).
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import re
import shutil
import socket
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "infra", "rehearsal"))
sys.path.insert(0, HERE)

import rehearse  # noqa: E402
from dynamo_size import item_size, read_units, write_units  # noqa: E402
from emulator import BOOTSTRAP_CALLS, HOP, Moto, QuietServer, free_port, spawn  # noqa: E402
from pushes import FakePlatform, http_api_event, iam_authorizer, safe_push, sqs_event, text_message  # noqa: E402
from runtime import FunctionProcess, InvokeError  # noqa: E402
from stack import REGION  # noqa: E402

GB = 1e9  # CloudWatch Logs GB: decimal, the larger figure of the two readings
MB_PER_GB = 1024  # Lambda GB-s: MemorySize MB / 1024

# AWS-side latency of one call from a Lambda function in the same region (p50-ish, milliseconds).
# An assumption for the second duration figure, not a measurement.
AWS_LATENCY_MS = {
    "sqs:SendMessage": 8, "sqs:SendMessageBatch": 10,
    "dynamodb:GetItem": 4, "dynamodb:Query": 6, "dynamodb:PutItem": 6, "dynamodb:UpdateItem": 6,
    "dynamodb:DeleteItem": 6, "dynamodb:TransactWriteItems": 15, "dynamodb:TransactGetItems": 8,
    "dynamodb:BatchWriteItem": 10, "dynamodb:BatchGetItem": 8,
    "secretsmanager:GetSecretValue": 20,
}
AWS_LATENCY_DEFAULT_MS = 10
# A platform API call (api.weixin.qq.com, openapi.baidu.com) from us-east-1: a trans-Pacific round trip.
PLATFORM_LATENCY_MS = 250

# Lambda's platform lines in CloudWatch Logs per invocation with LogFormat JSON and SystemLogLevel
# INFO (the default): platform.start, platform.runtimeDone, platform.report (the JSON forms of
# START / END / REPORT); per cold start also platform.initStart and platform.initReport. Rendered
# with the run's request ids and durations and measured in bytes. SystemLogLevel WARN drops them.
PLATFORM_LINES = "JSON: platform.start + platform.runtimeDone + platform.report per invocation, " \
                 "platform.initStart + platform.initReport per cold start"

# HTTP API detailed route metrics: Count, 4xx, 5xx, Latency, IntegrationLatency, DataProcessed.
HTTP_API_ROUTE_METRICS = 6
# Lambda's SQS pollers when the queue is empty: long polls of 20 s; about 5 pollers per mapping.
ESM_IDLE_POLLERS = 5


def say(msg: str = "") -> None:
    print(msg, flush=True)


class RunFailed(Exception):
    pass


# ---------------------------------------------------------------------------- sockets
def nodelay(server) -> None:
    """TCP_NODELAY on every connection a (running) http.server accepts from now on. Python's
    http.server writes a response's headers and body separately; on a kept-alive connection Nagle's
    algorithm then holds the body until the client's delayed ACK (~40 ms on Linux), which would be
    measured as function or call time. Lambda's Runtime API and AWS endpoints do not add such stalls."""
    original = server.get_request

    def get_request():
        sock, addr = original()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock, addr

    server.get_request = get_request


# ---------------------------------------------------------------------------- recording proxy
@dataclass
class Rec:
    phase: str
    t0: float
    t1: float
    method: str
    path: str
    headers: dict  # lower-case names
    body: bytes
    status: int
    resp_headers: dict
    resp: bytes


class Recorder:
    """A forwarding HTTP proxy that records every request and answer, with its wall time."""

    def __init__(self, upstream: str):
        u = urllib.parse.urlparse(upstream)
        self.upstream = (u.hostname, u.port)
        self.records: list[Rec] = []
        self.phase = "setup"
        self.lock = threading.Lock()
        rec = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                rec._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_any

        self.server = QuietServer(("127.0.0.1", free_port()), Handler)
        nodelay(self.server)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        t0 = time.perf_counter()
        if h.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(h.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while h.rfile.readline().strip():
                        pass
                    break
                chunks.append(h.rfile.read(size))
                h.rfile.readline()
            body = b"".join(chunks)
        else:
            body = h.rfile.read(int(h.headers.get("Content-Length") or 0))
        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(body))
        conn = http.client.HTTPConnection(*self.upstream, timeout=60)
        conn.request(h.command, h.path, body=body, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        status, rheaders = resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
        conn.close()
        h.send_response(status)
        for k, v in rheaders:
            if k.lower() not in ("server", "date", "content-length"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)
        t1 = time.perf_counter()
        with self.lock:
            self.records.append(Rec(self.phase, t0, t1, h.command, h.path,
                                    {k.lower(): v for k, v in h.headers.items()}, body, status,
                                    {k.lower(): v for k, v in rheaders}, data))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ---------------------------------------------------------------------------- moto with item sizes
class SizingMoto(Moto):
    """The rehearsal's Moto, started through moto_sizing.py (moto_server + DynamoDB write sizes)."""

    def __init__(self, venv: str, workdir: str, sizes_path: str):  # noqa: super().__init__ would spawn moto_server
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
        env["KEFU_COST_SIZES"] = sizes_path
        self.log = os.path.join(workdir, "moto.log")
        self.proc = spawn([os.path.join(venv, "bin", "python"), os.path.join(HERE, "moto_sizing.py"),
                           "-H", "127.0.0.1", "-p", str(self.port)], env, self.log)


class Args(argparse.Namespace):
    """Rehearsal arguments: anything not given reads as None."""

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return None


class CostStack(rehearse.Rehearsal):
    def __init__(self, args):
        super().__init__(args)  # creates the work directory
        self.sizes_path = os.path.join(self.workdir, "dynamodb-write-sizes.jsonl")
        open(self.sizes_path, "w").close()

    def start_services(self) -> None:
        self.moto = SizingMoto(self.args.venv, self.workdir, self.sizes_path)
        self.fake = FakePlatform(self.args.kefu, self.workdir)
        self.moto.start()
        self.fake.start()


# ---------------------------------------------------------------------------- timed runtime
class TimedEvents(queue.Queue):
    """The fake Runtime API's event queue; records when the runtime takes each event."""

    def __init__(self):
        super().__init__()
        self.taken: dict[str, float] = {}

    def get(self, block=True, timeout=None):
        item = super().get(block, timeout)
        self.taken[item[0]] = time.perf_counter()
        return item


class TimedResults(dict):
    """The fake Runtime API's answers; records when each arrives."""

    def __init__(self):
        super().__init__()
        self.at: dict[str, float] = {}

    def __setitem__(self, key, value):
        self.at[key] = time.perf_counter()
        super().__setitem__(key, value)


@dataclass
class Invocation:
    fn: str
    request_id: str
    t0: float
    t1: float
    log_offset: int
    event_bytes: int
    response: dict
    log_bytes: int = 0
    log_lines: int = 0

    @property
    def ms(self) -> float:
        return (self.t1 - self.t0) * 1000


@dataclass
class Fn:
    kind: str
    logical: str
    name: str
    memory: int
    arch: str
    tracing: bool
    log_format: str
    system_log_level: str
    proc: FunctionProcess
    log_path: str
    init_ms: float = 0.0
    init_log_bytes: int = 0
    invocations: list[Invocation] = field(default_factory=list)

    def invoke(self, event: dict) -> Invocation:
        offset = os.path.getsize(self.log_path)
        before = set(self.proc.events.taken)
        resp = self.proc.invoke(event)
        new = [r for r in self.proc.events.taken if r not in before]
        rid = new[-1]
        inv = Invocation(self.kind, rid, self.proc.events.taken[rid], self.proc.results.at[rid], offset,
                         len(json.dumps(event)), resp or {})
        self.invocations.append(inv)
        return inv

    def settle_logs(self) -> None:
        """Log bytes of each invocation: what the process wrote until the next invocation began."""
        size = os.path.getsize(self.log_path)
        with open(self.log_path, "rb") as f:
            data = f.read()
        if self.invocations:
            self.init_log_bytes = self.invocations[0].log_offset
        else:
            self.init_log_bytes = size
        for i, inv in enumerate(self.invocations):
            end = self.invocations[i + 1].log_offset if i + 1 < len(self.invocations) else size
            chunk = data[inv.log_offset:end]
            inv.log_bytes = len(chunk)
            inv.log_lines = chunk.count(b"\n")


def start_function(kind: str, fn, stack, res, env: dict, bin_dir: str, workdir: str) -> Fn:
    props = stack.properties(fn.logical)
    log_cfg = props.get("LoggingConfig") or {}
    log_path = os.path.join(workdir, f"cost-{kind}.log")
    proc = FunctionProcess(fn.logical, os.path.join(bin_dir, fn.binary), env, fn.timeout,
                           res.lookup(fn.logical, "Arn"), log_path)
    proc.events = TimedEvents()
    proc.results = TimedResults()
    nodelay(proc.server)
    f = Fn(kind=kind, logical=fn.logical, name=fn.name, memory=int(props.get("MemorySize", 128)),
           arch=(props.get("Architectures") or ["x86_64"])[0],
           tracing=(props.get("TracingConfig") or {}).get("Mode") == "Active",
           log_format=log_cfg.get("LogFormat", "Text"), system_log_level=log_cfg.get("SystemLogLevel", "INFO"),
           proc=proc, log_path=log_path)
    proc.start()
    return f


def wait_init(f: Fn, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while f.proc.first_poll_at is None:
        if f.proc.proc.poll() is not None or time.time() > deadline:
            raise RunFailed(f"{f.logical}: no Runtime API poll after start (init failed?)\n{f.proc.log_tail()}")
        time.sleep(0.01)
    f.init_ms = (f.proc.first_poll_at - f.proc.started_at) * 1000


# ---------------------------------------------------------------------------- platform lines
def platform_line_bytes(f: Fn, inv: Invocation | None, init_ms: float | None = None) -> int:
    """Bytes of Lambda's own lines for one invocation (inv) or one cold start (init_ms)."""
    if f.system_log_level.upper() in ("WARN", "ERROR", "FATAL"):
        return 0
    t = "2026-12-01T12:00:00.000Z"
    if inv is None:
        if f.log_format == "JSON":
            lines = [
                {"time": t, "type": "platform.initStart", "record": {
                    "initializationType": "on-demand", "phase": "init", "runtimeVersion": "provided:al2023.v100",
                    "runtimeVersionArn": f"arn:aws:lambda:{REGION}::runtime:" + "0" * 64,
                    "functionName": f.name, "functionVersion": "$LATEST"}},
                {"time": t, "type": "platform.initReport", "record": {
                    "initializationType": "on-demand", "phase": "init", "status": "success",
                    "metrics": {"durationMs": round(init_ms, 3)}}},
            ]
            return sum(len(json.dumps(x, separators=(",", ":"))) + 1 for x in lines)
        return len(f"INIT_START Runtime Version: provided:al2023.v100\tRuntime Version ARN: arn:aws:lambda:"
                   f"{REGION}::runtime:{'0' * 64}\n")
    rid, d = inv.request_id, round(inv.ms, 3)
    billed = max(1, math.ceil(inv.ms))
    if f.log_format == "JSON":
        lines = [
            {"time": t, "type": "platform.start", "record": {"requestId": rid, "version": "$LATEST"}},
            {"time": t, "type": "platform.runtimeDone", "record": {
                "requestId": rid, "status": "success", "metrics": {"durationMs": d, "producedBytes": inv.log_bytes}}},
            {"time": t, "type": "platform.report", "record": {"requestId": rid, "metrics": {
                "durationMs": d, "billedDurationMs": billed, "memorySizeMB": f.memory, "maxMemoryUsedMB": 30},
                "status": "success"}},
        ]
        return sum(len(json.dumps(x, separators=(",", ":"))) + 1 for x in lines)
    return len(f"START RequestId: {rid} Version: $LATEST\nEND RequestId: {rid}\nREPORT RequestId: {rid}\t"
               f"Duration: {d:.2f} ms\tBilled Duration: {billed} ms\tMemory Size: {f.memory} MB\t"
               f"Max Memory Used: 30 MB\t\n")


# ---------------------------------------------------------------------------- access log line
def access_log_bytes(fmt: str | None, ctx: dict) -> int:
    """The HTTP API access log line of one request, the template's format filled with the request's
    values ("-" for what the request has none of)."""
    if not fmt:
        return 0

    def repl(m: re.Match) -> str:
        return str(ctx.get(m.group(1), "-"))

    return len(re.sub(r"\$context\.([A-Za-z0-9_.]+)", repl, fmt).encode()) + 1


# ---------------------------------------------------------------------------- classification
SIG_RE = re.compile(r"Signature=([0-9a-fA-F]+)")
CRED_RE = re.compile(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/")


@dataclass
class Call:
    phase: str
    who: str
    service: str
    op: str
    status: int
    t0: float
    t1: float
    sqs_requests: int = 0  # billed requests (64 KB chunks) for SQS
    payload: int = 0  # SQS payload bytes (message bodies and attributes)
    wru: float = 0.0
    rru: float = 0.0
    sig: str = ""
    params: dict = field(default_factory=dict)
    answer: dict = field(default_factory=dict)

    @property
    def action(self) -> str:
        return f"{self.service}:{self.op}"

    @property
    def ms(self) -> float:
        return (self.t1 - self.t0) * 1000


def _sqs_payload(entry: dict) -> int:
    body = entry.get("MessageBody") if "MessageBody" in entry else entry.get("Body", "")
    n = len((body or "").encode())
    for name, a in (entry.get("MessageAttributes") or {}).items():
        n += len(name.encode()) + len(a.get("DataType", "").encode())
        n += len((a.get("StringValue") or "").encode()) + len(a.get("BinaryValue") or b"")
    return n


def classify(r: Rec, identities: dict[str, str]) -> Call:
    auth = r.headers.get("authorization", "")
    m = CRED_RE.search(auth)
    akid, service = (m.group(1), m.group(3)) if m else ("", "?")
    sig = SIG_RE.search(auth)
    target = r.headers.get("x-amz-target", "")
    if target:
        op = target.split(".")[-1]
        try:
            params = json.loads(r.body or b"{}")
        except ValueError:
            params = {}
    else:
        q = urllib.parse.parse_qs(r.body.decode("utf-8", "replace")) if r.body else {}
        q.update(urllib.parse.parse_qs(urllib.parse.urlparse(r.path).query))
        op = (q.get("Action") or [""])[0]
        params = {k: v[0] for k, v in q.items()}
    try:
        answer = json.loads(r.resp or b"{}") if r.resp[:1] in (b"{", b"[") else {}
    except ValueError:
        answer = {}
    c = Call(r.phase, identities.get(akid, f"key {akid}"), service, op, r.status, r.t0, r.t1,
             sig=sig.group(1) if sig else "", params=params, answer=answer)
    if service == "sqs":
        if op == "SendMessage":
            payload = _sqs_payload(params)
        elif op == "SendMessageBatch":
            payload = sum(_sqs_payload(e) for e in params.get("Entries", []))
        elif op == "ReceiveMessage":
            msgs = answer.get("Messages") or []
            if not msgs and r.resp[:1] == b"<":  # query protocol answer
                msgs = [{"Body": b} for b in re.findall(r"<Body>(.*?)</Body>", r.resp.decode("utf-8", "replace"),
                                                         re.S)]
            payload = sum(_sqs_payload(x) for x in msgs)
        else:
            payload = 0
        c.payload = payload
        c.sqs_requests = max(1, math.ceil(payload / 65536))
    elif service == "dynamodb" and r.status == 200:
        consistent = bool(params.get("ConsistentRead"))
        if op == "GetItem":
            c.rru = read_units(item_size(answer.get("Item") or {}), consistent)
        elif op in ("Query", "Scan"):
            c.rru = read_units(sum(item_size(i) for i in answer.get("Items") or []), consistent)
        elif op == "BatchGetItem":
            for table, items in (answer.get("Responses") or {}).items():
                cons = bool(((params.get("RequestItems") or {}).get(table) or {}).get("ConsistentRead"))
                c.rru += sum(read_units(item_size(i), cons) for i in items)
        elif op == "TransactGetItems":
            c.rru = sum(read_units(item_size((x or {}).get("Item") or {}), True, True)
                        for x in answer.get("Responses") or [])
    elif service == "dynamodb" and op == "GetItem":
        c.rru = read_units(0, bool(params.get("ConsistentRead")))
    return c


def apply_write_sizes(calls: list[Call], sizes_path: str) -> list[str]:
    """WRU of every DynamoDB write, from moto_sizing.py's item sizes (joined on the signature)."""
    by_sig: dict[str, dict] = {}
    with open(sizes_path, encoding="utf-8") as f:
        for line in f:
            d = json.loads(line)
            by_sig[d["sig"]] = d
    missing = []
    for c in calls:
        if c.service != "dynamodb" or c.op not in ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems",
                                                    "BatchWriteItem"):
            continue
        d = by_sig.get(c.sig)
        if d is None:
            missing.append(f"{c.who} {c.action} (status {c.status})")
            c.wru = 1.0
            continue
        failed = c.status != 200
        c.wru = float(sum(write_units(i["before"], i["after"], c.op == "TransactWriteItems", failed)
                          for i in d["items"] if i["kind"] != "ConditionCheck"))
        # A ConditionCheck item of a transaction is billed like a write of its item.
        c.wru += float(sum(write_units(i["before"], i["before"], True, True)
                           for i in d["items"] if i["kind"] == "ConditionCheck"))
    return missing


# ---------------------------------------------------------------------------- latency model
def union_ms(intervals: list[tuple[float, float]]) -> float:
    total, end = 0.0, None
    start = None
    for a, b in sorted(intervals):
        if end is None or a > end:
            if end is not None:
                total += end - start
            start, end = a, b
        else:
            end = max(end, b)
    if end is not None:
        total += end - start
    return total * 1000


def modeled_ms(inv: Invocation, calls: list[tuple[float, float, float]]) -> float:
    """The invocation's duration with each call's measured time replaced by its modeled AWS-side
    latency; calls: (t0, t1, modeled ms) of the calls made during the invocation. Overlapping calls
    (the processor stores conversations concurrently) keep their overlap."""
    inside = [(max(a, inv.t0), min(b, inv.t1), m) for a, b, m in calls if b > inv.t0 and a < inv.t1]
    if not inside:
        return inv.ms
    u = union_ms([(a, b) for a, b, _ in inside])
    measured = sum((b - a) * 1000 for a, b, _ in inside)
    modeled = sum(m for _, _, m in inside)
    return max(0.0, inv.ms - u) + u * (modeled / measured if measured > 0 else 0)


# ---------------------------------------------------------------------------- the run
class CostRun:
    def __init__(self, args):
        self.args = args
        self.prices = json.load(open(args.prices))
        self.setup_log: list[str] = []
        self.notes: list[str] = []
        self.fns: dict[str, Fn] = {}
        self.push_access: list[int] = []
        self.send_access: list[int] = []
        self.push_request_units = 0
        self.send_request_units = 0
        self.timings: dict[str, float] = {}

    def price(self, key: str) -> float:
        p = self.prices["items"][key]
        return p["price"] / p["per"]

    # -------------------------------------------------------------- setup
    def setup(self) -> None:
        a = self.args
        rehearse.say = lambda msg="": self.setup_log.append(str(msg))
        rargs = Args(template=a.template, apps=a.apps, bin_dir=a.bin_dir, kefu=os.path.join(a.bin_dir, "kefu"),
                     venv=a.venv, param=a.param, no_mutations=True, only="", verbose=False)
        st = self.st = CostStack(rargs)
        self.sizes_path = st.sizes_path
        t = time.perf_counter()
        st.start_services()
        st.load_stack()
        st.discover_functions()
        st.create_resources()
        st.push_registry()
        st.prepare_functions()
        st.assume_roles()
        st.chain_context()
        self.timings["setup"] = time.perf_counter() - t
        if st.problems:
            self.notes.append(f"the rehearsal's setup checks reported {len(st.problems)} problem(s) "
                              f"(not a cost matter; run `make rehearse`): " + "; ".join(st.problems)[:400])
        self.ctx = st.ctx
        nodelay(st.moto.proxy.server)
        nodelay(st.fake.server)
        self.aws = Recorder(st.moto.proxy.url)
        self.platform = Recorder(st.fake.url)
        # The event source mapping deletes with DeleteMessageBatch, which IAM authorises as
        # sqs:DeleteMessage; moto would want "sqs:DeleteMessageBatch", so the mapping's deletes go
        # out with a second key of the rehearsal admin, recorded under the mapping's name.
        proc = st.functions["processor"]
        self.esm_who = f"{proc.logical} event source mapping"
        key = st.moto.client("iam").create_access_key(UserName="rehearsal-admin")["AccessKey"]
        st.moto.proxy.identities[key["AccessKeyId"]] = self.esm_who
        import boto3
        from botocore.config import Config

        cfg = Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30)
        self.esm_receive = boto3.client("sqs", endpoint_url=self.aws.url, region_name=REGION, config=cfg,
                                        **proc.esm_creds)
        self.esm_delete = boto3.client("sqs", endpoint_url=self.aws.url, region_name=REGION, config=cfg,
                                       aws_access_key_id=key["AccessKeyId"],
                                       aws_secret_access_key=key["SecretAccessKey"])
        self.stage_format = None
        self.detailed_routes = 0
        for logical in st.stack.of_type("AWS::ApiGatewayV2::Stage"):
            p = st.stack.properties(logical)
            self.stage_format = (p.get("AccessLogSettings") or {}).get("Format")
            if (p.get("DefaultRouteSettings") or {}).get("DetailedMetricsEnabled"):
                self.detailed_routes = len(st.stack.of_type("AWS::ApiGatewayV2::Route")) or 6

    def start_functions(self) -> None:
        st = self.st
        self.aws.phase = self.platform.phase = "init"
        for kind, fn in st.functions.items():
            env = dict(fn.env)
            env["AWS_ENDPOINT_URL"] = self.aws.url
            if kind == "sender":
                env["WECHAT_API_BASE"] = self.platform.url
                env["BAIDU_API_BASE"] = self.platform.url
            self.fns[kind] = start_function(kind, fn, st.stack, st.res, env, self.args.bin_dir, st.workdir)
        for f in self.fns.values():
            wait_init(f)

    # -------------------------------------------------------------- phases
    def users(self) -> list[dict]:
        out = []
        platforms = [p for p in ("wechat", "baidu") if p in self.ctx.apps]
        for u in range(self.args.users):
            platform = platforms[u % len(platforms)]
            out.append({"platform": platform, "app": self.ctx.apps[platform],
                        "open_id": f"oKefuCost{u:019d}"})
        return out

    def pushes(self, users: list[dict], now: int) -> None:
        self.aws.phase = self.platform.phase = "pushes"
        ingress = self.fns["ingress"]
        for i in range(self.args.pushes):
            u = users[i % len(users)]
            app = u["app"]
            content = f"你好，请问订单 {i:08d} 什么时候发货？谢谢"
            msg = text_message(app.get("original_id") or app["app_id"], u["open_id"], content, now,
                               24_000_000_000_000_000 + i)
            query, body = safe_push(app, msg, now)
            route = self.ctx.routes[u["platform"]]
            path = route.replace("{app}", app["app_id"])
            event = http_api_event("POST", path, f"POST {route}", query, body, now, {"app": app["app_id"]})
            inv = ingress.invoke(event)
            answer = inv.response.get("body") or ""
            if inv.response.get("statusCode") != 200 or answer != "success":
                raise RunFailed(f"push {i} answered {inv.response.get('statusCode')} {answer[:200]!r} "
                                f"(want 200 'success')\n{ingress.proc.log_tail()}")
            self.push_request_units += max(1, math.ceil(len(body.encode()) / (512 * 1024)))
            self.push_access.append(access_log_bytes(self.stage_format, {
                "requestId": "J4Ui2hEroAMEbGw=", "requestTimeEpoch": "1796126400000",
                "requestTime": "01/Dec/2026:12:00:00 +0000", "routeKey": f"POST {route}", "path": path,
                "status": 200, "protocol": "HTTP/1.1", "identity.sourceIp": "101.226.103.61",
                "responseLength": len(answer), "responseLatency": math.ceil(inv.ms) + 2,
                "integrationLatency": math.ceil(inv.ms), "integrationStatus": 200}))

    def batches(self) -> None:
        self.aws.phase = self.platform.phase = "batches"
        es = self.ctx.event_source
        processor = self.fns["processor"]
        batch = self.args.batch or es.batch_size
        done, empty = 0, 0
        self.batch_sizes: list[int] = []
        while done < self.args.pushes:
            got = self.esm_receive.receive_message(
                QueueUrl=es.queue_url, MaxNumberOfMessages=min(10, batch), WaitTimeSeconds=0,
                AttributeNames=["All"], MessageAttributeNames=["All"]).get("Messages", [])
            if not got:
                empty += 1
                if empty > 20:
                    raise RunFailed(f"the inbound queue holds {done} of {self.args.pushes} pushes")
                time.sleep(0.1)
                continue
            inv = processor.invoke(sqs_event(got, es.queue_arn))
            failures = inv.response.get("batchItemFailures") or []
            if failures:
                raise RunFailed(f"processor reported batch item failures {json.dumps(failures)[:300]}\n"
                                f"{processor.proc.log_tail()}")
            self.esm_delete.delete_message_batch(QueueUrl=es.queue_url, Entries=[
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]} for k, m in enumerate(got)])
            done += len(got)
            self.batch_sizes.append(len(got))

    def sends(self, users: list[dict], now: int) -> None:
        self.aws.phase = self.platform.phase = "sends"
        sender = self.fns["sender"]
        for j in range(self.args.sends):
            u = users[j % len(users)]
            payload = {"app_id": u["app"]["app_id"], "open_id": u["open_id"], "msg_type": "text",
                       "content": f"您好，您的订单 {j:08d} 已于今天发出，请注意查收。",
                       "client_msg_id": f"cost-{j:08d}"}
            body = json.dumps(payload, ensure_ascii=False)
            event = http_api_event("POST", self.ctx.send_route, f"POST {self.ctx.send_route}", "", body, now, None,
                                   iam_authorizer(self.ctx.caller_arn))
            inv = sender.invoke(event)
            answer = inv.response.get("body") or ""
            if inv.response.get("statusCode") != 200:
                raise RunFailed(f"send {j} answered {inv.response.get('statusCode')} {answer[:300]!r} (want 200)\n"
                                f"{sender.proc.log_tail()}")
            self.send_request_units += max(1, math.ceil(len(body.encode()) / (512 * 1024)))
            self.send_access.append(access_log_bytes(self.stage_format, {
                "requestId": "J4Ui2hEroAMEbGw=", "requestTimeEpoch": "1796126400000",
                "requestTime": "01/Dec/2026:12:00:00 +0000", "routeKey": f"POST {self.ctx.send_route}",
                "path": self.ctx.send_route, "status": 200, "protocol": "HTTP/1.1",
                "identity.sourceIp": "198.51.100.20", "identity.caller": "AROAEXAMPLEAGENTROLE0:agent",
                "responseLength": len(answer.encode()), "responseLatency": math.ceil(inv.ms) + 2,
                "integrationLatency": math.ceil(inv.ms), "integrationStatus": 200}))

    def stored_count(self) -> int:
        ddb = self.st.moto.client("dynamodb")
        n = 0
        for lg, spec in self.st.res.tables.items():
            name = spec["create"]["TableName"]
            for page in ddb.get_paginator("scan").paginate(TableName=name, Select="COUNT"):
                n += page["Count"] if "messages" in name else 0
        return n

    def run(self) -> dict:
        t = time.perf_counter()
        self.setup()
        self.start_functions()
        users = self.users()
        now = int(time.time())
        t1 = time.perf_counter()
        self.pushes(users, now)
        self.timings["pushes"] = time.perf_counter() - t1
        t1 = time.perf_counter()
        self.batches()
        self.timings["batches"] = time.perf_counter() - t1
        self.aws.phase = "check"
        stored = self.stored_count()
        t1 = time.perf_counter()
        self.sends(users, now)
        self.timings["sends"] = time.perf_counter() - t1
        self.aws.phase = self.platform.phase = "teardown"
        time.sleep(0.3)  # the processes' last log lines
        for f in self.fns.values():
            f.settle_logs()
        self.timings["total"] = time.perf_counter() - t
        return self.account(stored)

    def close(self) -> None:
        for f in self.fns.values():
            f.proc.close()
        for r in (getattr(self, "aws", None), getattr(self, "platform", None)):
            if r is not None:
                r.close()
        st = getattr(self, "st", None)
        if st is not None:
            for x in (st.fake, st.moto):
                if x is not None:
                    x.close()

    # -------------------------------------------------------------- accounting
    def account(self, stored: int) -> dict:
        a = self.args
        identities = self.st.moto.proxy.identities
        calls = [classify(r, identities) for r in self.aws.records
                 if r.phase in ("init", "pushes", "batches", "sends")]
        missing = apply_write_sizes(calls, self.sizes_path)
        if missing:
            self.notes.append(f"{len(missing)} DynamoDB write(s) without item sizes (counted as 1 WRU): "
                              + "; ".join(missing[:5]))
        if stored != a.pushes:
            raise RunFailed(f"{stored} of {a.pushes} pushes are in the messages table after the processor ran")
        who_kind = {fn.logical: kind for kind, fn in self.st.functions.items()}
        who_kind[self.esm_who] = "event source mapping"
        unknown = sorted({c.who for c in calls if c.who not in who_kind})
        if unknown:
            self.notes.append(f"calls by unexpected callers during the run: {unknown}")
        errors = [c for c in calls if c.status >= 400]

        # SDK calls table
        table: dict[tuple[str, str, str], dict] = {}
        msg_of = {"ingress": "push", "processor": "push", "event source mapping": "push", "sender": "send"}
        for c in calls:
            msg = msg_of.get(who_kind.get(c.who, ""), "other")
            k = (msg, c.who, c.action)
            e = table.setdefault(k, {"calls": 0, "errors": 0, "sqs_requests": 0, "payload_bytes": 0, "wru": 0.0,
                                     "rru": 0.0, "ms": 0.0})
            e["calls"] += 1
            e["errors"] += c.status >= 400
            e["sqs_requests"] += c.sqs_requests
            e["payload_bytes"] += c.payload
            e["wru"] += c.wru
            e["rru"] += c.rru
            e["ms"] += c.ms

        # per-function invocation and latency model
        plat_calls = [(r.t0, r.t1, float(PLATFORM_LATENCY_MS)) for r in self.platform.records
                      if r.phase in ("init", "sends")]
        fn_calls: dict[str, list] = {k: [] for k in self.fns}
        for c in calls:
            kind = who_kind.get(c.who)
            if kind in fn_calls:
                fn_calls[kind].append((c.t0, c.t1, float(AWS_LATENCY_MS.get(c.action, AWS_LATENCY_DEFAULT_MS))))
        fn_calls["sender"] += [c for c in plat_calls]
        lam = {}
        for kind, f in self.fns.items():
            billed = sum(max(1, math.ceil(i.ms)) for i in f.invocations)
            modeled = sum(max(1, math.ceil(modeled_ms(i, fn_calls[kind]))) for i in f.invocations)
            platform_bytes = sum(platform_line_bytes(f, i) for i in f.invocations)
            lam[kind] = {
                "logical": f.logical, "memory_mb": f.memory, "architecture": f.arch, "tracing_active": f.tracing,
                "log_format": f.log_format, "system_log_level": f.system_log_level,
                "invocations": len(f.invocations), "billed_ms": billed, "modeled_billed_ms": modeled,
                "ms_mean": sum(i.ms for i in f.invocations) / max(1, len(f.invocations)),
                "ms_p50": sorted(i.ms for i in f.invocations)[len(f.invocations) // 2] if f.invocations else 0,
                "init_ms": f.init_ms, "init_billed_ms": max(1, math.ceil(f.init_ms)),
                "app_log_bytes": sum(i.log_bytes for i in f.invocations), "init_log_bytes": f.init_log_bytes,
                "app_log_lines": sum(i.log_lines for i in f.invocations),
                "platform_log_bytes": platform_bytes + platform_line_bytes(f, None, f.init_ms),
                "cold_starts": 1,
            }

        def gbs(kind: str, ms: int) -> float:
            return ms / 1000 * lam[kind]["memory_mb"] / MB_PER_GB

        def dur_key(kind: str) -> str:
            return "lambda_gb_s_arm64" if lam[kind]["architecture"] == "arm64" else "lambda_gb_s_x86_64"

        def agg(msg: str, who: str | None = None, service: str | None = None, op: str | None = None, key="calls"):
            return sum(e[key] for (m, w, act), e in table.items()
                       if m == msg and (who is None or w == who) and (service is None or act.startswith(service + ":"))
                       and (op is None or act == op))

        items = {"push": [], "send": []}

        def add(msg, group, label, total, unit, price_key, unit_scale=1.0, modeled_total=None):
            n = a.pushes if msg == "push" else a.sends
            up = self.price(price_key) * unit_scale
            qty = total / n
            row = {"group": group, "item": label, "quantity": qty, "unit": unit, "unit_price": up,
                   "price_key": price_key, "usd_per_million": qty * up * 1e6}
            if modeled_total is not None:
                row["modeled_quantity"] = modeled_total / n
                row["modeled_usd_per_million"] = modeled_total / n * up * 1e6
            items[msg].append(row)

        fn_of = {"ingress": "push", "processor": "push", "sender": "send"}
        for msg in ("push", "send"):
            units = self.push_request_units if msg == "push" else self.send_request_units
            access = sum(self.push_access if msg == "push" else self.send_access)
            add(msg, "API Gateway", "HTTP API requests (512 KB units)", units, "req", "http_api_requests")
            add(msg, "CloudWatch Logs", "HTTP API access log", access, "B", "logs_ingestion_gb", 1 / GB)
            for kind in [k for k, v in fn_of.items() if v == msg]:
                L = lam[kind]
                name = f"Lambda {kind}"
                add(msg, name, "requests", L["invocations"], "req", "lambda_requests")
                add(msg, name, f"duration ({L['memory_mb']} MB {L['architecture']})", gbs(kind, L["billed_ms"]),
                    "GB-s", dur_key(kind), modeled_total=gbs(kind, L["modeled_billed_ms"]))
                add(msg, name, f"init, {L['cold_starts']} cold start in the run", gbs(kind, L["init_billed_ms"]),
                    "GB-s", dur_key(kind))
                add(msg, "CloudWatch Logs", f"{kind} stdout/stderr", L["app_log_bytes"] + L["init_log_bytes"], "B",
                    "logs_ingestion_gb", 1 / GB)
                add(msg, "CloudWatch Logs", f"{kind} platform lines", L["platform_log_bytes"], "B",
                    "logs_ingestion_gb", 1 / GB)
                traces = L["invocations"] if L["tracing_active"] else 0
                add(msg, "X-Ray", f"{kind} traces ({'Active' if L['tracing_active'] else 'tracing off'})", traces,
                    "trace", "xray_traces_recorded")
            for (m, who, act), e in sorted(table.items()):
                if m != msg:
                    continue
                label = f"{who_kind.get(who, who)} {act.split(':', 1)[1]}"
                if act.startswith("sqs:"):
                    add(msg, "SQS", label, e["sqs_requests"], "req", "sqs_standard_requests")
                elif act.startswith("dynamodb:"):
                    if e["wru"]:
                        add(msg, "DynamoDB", f"{label} (WRU)", e["wru"], "WRU", "dynamodb_wru")
                    if e["rru"]:
                        add(msg, "DynamoDB", f"{label} (RRU)", e["rru"], "RRU", "dynamodb_rru")
                elif act.startswith("secretsmanager:"):
                    add(msg, "Secrets Manager", label, e["calls"], "call", "secrets_api_calls")

        totals = {}
        for msg in ("push", "send"):
            measured = sum(r["usd_per_million"] for r in items[msg])
            modeled = sum(r.get("modeled_usd_per_million", r["usd_per_million"]) for r in items[msg])
            totals[msg] = {"usd_per_million": measured, "usd_per_million_aws_latency_model": modeled}

        # what-ifs for the push figure
        what_if = {}
        p = items["push"]
        logs_push = sum(r["usd_per_million"] for r in p if r["group"] == "CloudWatch Logs")
        plat_push = sum(r["usd_per_million"] for r in p if r["item"].endswith("platform lines"))
        what_if["SystemLogLevel WARN (no platform lines)"] = -plat_push
        what_if["XRayTracing=Active (low traffic: every invocation traced)"] = \
            (lam["ingress"]["invocations"] + lam["processor"]["invocations"]) / a.pushes * \
            self.price("xray_traces_recorded") * 1e6 * (0 if lam["ingress"]["tracing_active"] else 1)
        per_batch = ["event source mapping ReceiveMessage", "event source mapping DeleteMessageBatch"]
        batch_items = sum(r["usd_per_million"] for r in p if r["item"] in per_batch
                          or (r["group"] == "Lambda processor" and r["item"] == "requests")
                          or r["item"] == "processor platform lines")
        mean_batch = a.pushes / max(1, len(self.batch_sizes))
        label = f"batches of 1 instead of {mean_batch:g} (traffic below ~1 push/s; per-batch items x{mean_batch:g})"
        what_if[label] = batch_items * (mean_batch - 1)

        fixed = self.fixed_monthly()
        users = self.users()
        return {
            "run": {"pushes": a.pushes, "sends": a.sends, "users": a.users,
                    "platform_mix": {p: sum(1 for i in range(a.pushes) if users[i % a.users]["platform"] == p)
                                     for p in self.ctx.apps},
                    "batches": len(self.batch_sizes), "batch_sizes": sorted(set(self.batch_sizes)),
                    "stored": stored, "binaries": a.bin_dir, "profile": a.profile, "template": a.template,
                    "parameters": self.st.stack.parameters, "seconds": self.timings},
            "prices": {k: self.prices[k] for k in ("region", "currency", "taken", "note")},
            "calls": [{"message": m, "caller": w, "operation": act, **e,
                       "per_message": e["calls"] / (a.pushes if m == "push" else a.sends)}
                      for (m, w, act), e in sorted(table.items())],
            "call_errors": [f"{c.who} {c.action} -> {c.status}" for c in errors],
            "lambda": lam,
            "items": items,
            "totals": totals,
            "what_if_push": what_if,
            "fixed_monthly": fixed,
            "assumptions": self.assumptions(),
            "notes": self.notes,
            "target_usd_per_million_pushes": 5.0,
        }

    def fixed_monthly(self) -> dict:
        st = self.st
        out = {}
        secrets = len(st.stack.of_type("AWS::SecretsManager::Secret"))
        out[f"Secrets Manager: {secrets} secrets"] = secrets * self.price("secret_month")
        polls = ESM_IDLE_POLLERS * 3 * 60 * 24 * 30
        out[f"SQS event source idle long polls (~{ESM_IDLE_POLLERS} pollers x 20 s: {polls:,} requests)"] = \
            polls * self.price("sqs_standard_requests")
        if self.detailed_routes:
            n = self.detailed_routes * HTTP_API_ROUTE_METRICS
            label = (f"HTTP API detailed route metrics: {self.detailed_routes} routes x {HTTP_API_ROUTE_METRICS} "
                     f"(at most; billed for the hours a route has traffic)")
            out[label] = n * self.price("cloudwatch_custom_metric_month")
        emf = set()
        for f in self.fns.values():
            with open(f.log_path, "rb") as fh:
                for line in fh:
                    if b'"_aws"' not in line:
                        continue
                    try:
                        d = json.loads(line)
                    except ValueError:
                        continue
                    for cm in d.get("_aws", {}).get("CloudWatchMetrics", []):
                        for dims in cm.get("Dimensions", []):
                            for m in cm.get("Metrics", []):
                                emf.add((cm.get("Namespace"), m.get("Name"),
                                         tuple(sorted((k, str(d.get(k))) for k in dims))))
        out[f"EMF custom metrics seen in the run: {len(emf)}"] = len(emf) * self.price("cloudwatch_custom_metric_month")
        alarms = st.stack.of_type("AWS::CloudWatch::Alarm")
        metrics = 0
        for lg in alarms:
            p = st.stack.resources[lg].get("Properties") or {}
            metrics += max(1, sum(1 for m in p.get("Metrics") or [] if "MetricStat" in m))
        out[f"CloudWatch alarms: {len(alarms)} ({metrics} alarm metrics)"] = \
            metrics * self.price("cloudwatch_alarm_metric_month")
        dashboards = len(st.stack.of_type("AWS::CloudWatch::Dashboard"))
        out[f"CloudWatch dashboards: {dashboards} (free if among the account's first three)"] = \
            dashboards * self.price("cloudwatch_dashboard_month")
        return out

    def assumptions(self) -> list[str]:
        return [
            "durations are measured against moto behind two local proxies on this machine: an upper bound "
            "(moto and the proxies are slower than DynamoDB and SQS); the binaries are the "
            f"{self.args.profile} build of this machine's architecture, not the arm64 Lambda build",
            "AWS-side latency model (second total): each call's measured time replaced by "
            + ", ".join(f"{k.split(':')[1]} {v} ms" for k, v in AWS_LATENCY_MS.items()
                        if k in ("sqs:SendMessage", "dynamodb:GetItem", "dynamodb:UpdateItem", "dynamodb:PutItem",
                                 "dynamodb:TransactWriteItems", "secretsmanager:GetSecretValue"))
            + f", a platform API call {PLATFORM_LATENCY_MS} ms (us-east-1 to WeChat/Baidu); the function's own "
              "compute time is kept as measured",
            f"Lambda platform log lines: {PLATFORM_LINES}; rendered with the run's values (none with "
            "SystemLogLevel WARN)",
            "application log lines are ingested as written (already JSON, Lambda does not re-wrap them); "
            "bytes include the newline; CloudWatch Logs GB = 10^9 bytes",
            "one cold start per function in the run (init billed, as for every provided.al2023 function); at "
            "steady traffic cold starts and the registry reads (at cold start and every REGISTRY_TTL_SECS = "
            "300 s per instance, ~8,640 a month per warm instance) are far rarer per message than in a short run",
            "DynamoDB capacity from item sizes (DynamoDB's rules, dynamo_size.py), on-demand; storage, PITR "
            "and TTL deletes (free) are not per-message request costs",
            "the event source mapping's receives and deletes are counted per batch; its idle long polling "
            "is a fixed monthly cost (below)",
            "free tiers not applied; no data transfer (responses are small; traffic to the platforms is "
            "internet egress at $0.09/GB, a few hundred bytes per send)",
        ]


# ---------------------------------------------------------------------------- output
def fmt_qty(q: float, unit: str) -> str:
    if unit == "B":
        return f"{q:,.0f} B"
    if unit == "GB-s":
        return f"{q:.6f} GB-s"
    if q >= 100:
        return f"{q:,.0f} {unit}"
    return f"{q:.4f} {unit}"


def fmt_price(p: float, unit: str) -> str:
    if unit == "B":
        return f"${p * GB:.2f}/GB"
    if unit == "GB-s":
        return f"${p:.10f}/GB-s"
    return f"${p * 1e6:.3f}/M {unit}"


def print_report(r: dict) -> None:
    run, pr = r["run"], r["prices"]
    mix = ", ".join(f"{n} {p}" for p, n in run["platform_mix"].items())
    say(f"kefu cost per message, measured: {run['pushes']} pushes ({mix}; {run['users']} users) -> "
        f"{run['batches']} processor batches (sizes {run['batch_sizes']}), {run['stored']} stored; "
        f"{run['sends']} sends")
    say(f"binaries: {run['profile']} ({run['binaries']}); template {os.path.relpath(run['template'], REPO)} "
        f"at its parameter defaults")
    say(f"prices: {pr['region']}, {pr['currency']}, taken {pr['taken']} (infra/cost/prices.json; list prices as "
        f"published; verify before budgeting)")
    say("")
    say("SDK calls (recorded at the proxy in front of moto)")
    say(f"  {'message':8s} {'caller':40s} {'operation':30s} {'calls':>6s} {'per msg':>8s} {'billed (payload)':>20s}")
    for c in r["calls"]:
        billed = ""
        if c["operation"].startswith("sqs:"):
            billed = f"{c['sqs_requests']} req"
            if c["payload_bytes"]:
                billed += f" ({c['payload_bytes'] / c['calls']:,.0f} B)"
        elif c["wru"] or c["rru"]:
            billed = (f"{c['wru']:g} WRU" if c["wru"] else "") + (f" {c['rru']:g} RRU" if c["rru"] else "")
        say(f"  {c['message']:8s} {c['caller']:40s} {c['operation']:30s} {c['calls']:6d} {c['per_message']:8.3f} "
            f"{billed:>20s}" + (f"  ({c['errors']} errors)" if c["errors"] else ""))
    say("")
    say("Lambda (durations at the fake Runtime API; billed per 1 ms)")
    say(f"  {'function':10s} {'invocations':>11s} {'mean ms':>8s} {'p50 ms':>7s} {'billed ms':>10s} "
        f"{'modeled ms':>10s} {'init ms':>8s} {'log B/inv':>9s} {'platform B/inv':>14s}")
    for kind, L in r["lambda"].items():
        n = max(1, L["invocations"])
        say(f"  {kind:10s} {L['invocations']:11d} {L['ms_mean']:8.1f} {L['ms_p50']:7.1f} {L['billed_ms']:10d} "
            f"{L['modeled_billed_ms']:10d} {L['init_ms']:8.1f} {L['app_log_bytes'] / n:9.0f} "
            f"{L['platform_log_bytes'] / n:14.0f}")
    for msg, title in (("push", "inbound pushes"), ("send", "sends")):
        say("")
        say(f"$ per million {title}")
        say(f"  {'item':62s} {'quantity per ' + msg:>20s} {'unit price':>20s} {'$/M':>9s}")
        for row in r["items"][msg]:
            if row["quantity"] == 0 and row["group"] == "X-Ray":
                pass
            label = f"{row['group']}: {row['item']}"
            say(f"  {label[:62]:62s} {fmt_qty(row['quantity'], row['unit']):>20s} "
                f"{fmt_price(row['unit_price'], row['unit']):>20s} {row['usd_per_million']:9.4f}")
        t = r["totals"][msg]
        say(f"  {'TOTAL (durations measured against moto: an upper bound)':104s} {t['usd_per_million']:9.4f}")
        say(f"  {'TOTAL with the AWS-side latency model for the durations':104s} "
            f"{t['usd_per_million_aws_latency_model']:9.4f}")
    say("")
    target = r["target_usd_per_million_pushes"]
    tp = r["totals"]["push"]
    verdict = "met" if tp["usd_per_million"] <= target else "NOT met"
    say(f"target <= ${target:.2f} per million inbound pushes all-in: ${tp['usd_per_million']:.2f} measured "
        f"(${tp['usd_per_million_aws_latency_model']:.2f} with the latency model): {verdict}")
    top = sorted(r["items"]["push"], key=lambda x: -x["usd_per_million"])[:4]
    say("largest push items: " + "; ".join(f"{x['group']}: {x['item']} ${x['usd_per_million']:.3f}" for x in top))
    say("what if (push, $/M): " + "; ".join(f"{k}: {v:+.3f}" for k, v in r["what_if_push"].items()))
    say("")
    say("fixed per month, not per message ($)")
    for k, v in r["fixed_monthly"].items():
        say(f"  {k:104s} {v:9.2f}")
    say(f"  {'total':104s} {sum(r['fixed_monthly'].values()):9.2f}")
    say("")
    say("assumptions")
    for a in r["assumptions"]:
        say(f"  - {a}")
    for n in r["notes"]:
        say(f"  note: {n}")
    if r["call_errors"]:
        say(f"  note: {len(r['call_errors'])} SDK call(s) answered an error (priced like the others): "
            + "; ".join(sorted(set(r["call_errors"]))[:6]))
    s = r["run"]["seconds"]
    say(f"run: {s['total']:.1f} s (setup {s['setup']:.1f} s, pushes {s['pushes']:.1f} s, batches {s['batches']:.1f} s, "
        f"sends {s['sends']:.1f} s)")


def default_bin_dir() -> tuple[str, str]:
    target = rehearse.target_dir()
    for profile in ("release", "debug"):
        d = os.path.join(target, profile)
        if all(os.path.exists(os.path.join(d, b)) for b in ("ingress", "processor", "sender", "desk", "kefu")):
            return d, profile
    return os.path.join(target, "release"), "release"


def main() -> int:
    ap = argparse.ArgumentParser(description="Cost per message, measured (template.yaml + built binaries + moto)")
    ap.add_argument("--pushes", type=int, default=300, help="inbound pushes (default 300)")
    ap.add_argument("--sends", type=int, default=100, help="sends through POST /messages (default 100)")
    ap.add_argument("--users", type=int, default=None, help="distinct users (default pushes/3, at least sends)")
    ap.add_argument("--batch", type=int, default=None, help="records per processor event (default: the "
                                                            "template's BatchSize, at most 10)")
    ap.add_argument("--template", default=os.path.join(REPO, "template.yaml"))
    ap.add_argument("--apps", default=os.path.join(REPO, "infra", "local", "apps.json"))
    ap.add_argument("--prices", default=os.path.join(HERE, "prices.json"))
    ap.add_argument("--profile", choices=("release", "debug"), default=None,
                    help="cargo profile of the binaries in cargo's target directory (default: release when built, "
                         "else debug)")
    ap.add_argument("--bin-dir", default=None, help="directory of the built binaries (overrides --profile)")
    ap.add_argument("--venv", default=os.environ.get("KEFU_VENV") or os.path.join(REPO, ".venv"))
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE", help="override a template "
                                                                                         "parameter")
    ap.add_argument("--json", action="store_true", help="print the result as JSON instead of the report")
    ap.add_argument("--timeout", type=float, default=None,
                    help="stop the run after this many seconds (exit 3); default 175 s at the default sizes, "
                         "growing with the square of --pushes (moto's transactions copy whole tables)")
    ap.add_argument("--keep", action="store_true", help="keep the work directory (process logs)")
    args = ap.parse_args()
    if args.bin_dir:
        args.profile = args.profile or os.path.basename(os.path.normpath(args.bin_dir))
    elif args.profile:
        args.bin_dir = os.path.join(rehearse.target_dir(), args.profile)
    else:
        args.bin_dir, args.profile = default_bin_dir()
    args.users = args.users or max(args.sends, args.pushes // 3, 1)
    args.timeout = args.timeout or 175 * max(1.0, args.pushes / 300) ** 2 + max(0, args.sends - 100)
    if args.pushes < 1 or args.sends < 1 or args.users < args.sends:
        ap.error("need --pushes >= 1, --sends >= 1 and --users >= --sends (one send per user's window)")
    for b in ("ingress", "processor", "sender", "desk", "kefu"):
        if not os.path.exists(os.path.join(args.bin_dir, b)):
            print(f"cost: {os.path.join(args.bin_dir, b)} is missing; build with "
                  f"`cargo build --release --locked -p ingress -p processor -p sender -p desk -p kefu --bins`",
                  file=sys.stderr)
            return 1
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ["AWS_DEFAULT_REGION"] = REGION

    run = CostRun(args)

    def watchdog():
        time.sleep(args.timeout)
        print(f"cost: run took longer than {args.timeout:.0f} s; stopped", file=sys.stderr, flush=True)
        os._exit(3)  # child processes get SIGTERM (parent-death signal)

    threading.Thread(target=watchdog, daemon=True).start()
    status = 0
    try:
        result = run.run()
        if args.json:
            print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        else:
            print_report(result)
    except (RunFailed, InvokeError, rehearse.TemplateError, RuntimeError) as e:
        print(f"cost: the run failed: {e}", file=sys.stderr)
        if run.setup_log:
            print("  setup output (last lines):\n    " + "\n    ".join(run.setup_log[-25:]), file=sys.stderr)
        status = 1
    except Exception as e:  # noqa: BLE001 - any other failure of the run itself
        import traceback

        traceback.print_exc()
        print(f"cost: the run failed: {type(e).__name__}: {e}", file=sys.stderr)
        status = 1
    finally:
        run.close()
        st = getattr(run, "st", None)
        if st is not None:
            if args.keep or status:
                print(f"cost: work directory kept: {st.workdir}", file=sys.stderr)
            else:
                shutil.rmtree(st.workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())

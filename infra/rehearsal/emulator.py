"""The rehearsal's own moto_server with IAM enforced, a recording proxy in front of it, and the stack's
data resources (tables, queues, secrets, execution roles) created from the template's properties.

IAM bootstrapping: moto skips authentication for its first INITIAL_NO_AUTH_ACTION_COUNT authorised
requests (it counts every request that reaches an action handler). The rehearsal spends exactly
three of them on CreateUser, PutUserPolicy and CreateAccessKey for an admin user; every later call
(setup, the emulated Lambda service, the functions) is signed and checked.

The proxy forwards byte for byte (signatures stay valid) and records, per caller (access key ->
function), each call's IAM action and resource ARNs and any AccessDenied answer. For a function's
calls it also enforces what moto does not (see iam.py): resource scoping outside SQS and the per-item
actions of DynamoDB transactions and batches, evaluated on the template's own statements; a call
they do not grant is answered AccessDeniedException, as AWS would answer it.
"""

from __future__ import annotations

import calendar
import ctypes
import http.client
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from iam import COMPOSITE, RESOURCE_ENFORCED, moto_trust
from stack import ACCOUNT_ID, PARTITION, REGION, STACK_NAME, Pending

BOOTSTRAP_CALLS = 3  # CreateUser, PutUserPolicy, CreateAccessKey
ADMIN_USER = "rehearsal-admin"
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailers",
       "transfer-encoding", "upgrade"}


class QuietServer(ThreadingHTTPServer):
    """A threading HTTP server that does not print a traceback when a client goes away (a function
    process is stopped with its keep-alive connections open)."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _die_with_parent() -> None:
    """Child processes get SIGTERM when the rehearsal dies, so nothing outlives it (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
    os.setpgid(0, 0)


def spawn(argv: list[str], env: dict, log_path: str) -> subprocess.Popen:
    log = open(log_path, "wb")
    return subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=_die_with_parent, close_fds=True)


def stop(proc: subprocess.Popen | None, grace: float = 5.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ---------------------------------------------------------------------------- recording proxy
@dataclass
class Call:
    who: str
    service: str
    action: str  # IAM style, e.g. sqs:SendMessage
    targets: list[tuple[str, str]]  # (IAM action, resource ARN) the call needs
    status: int
    denied: str | None = None  # the action named in an AccessDenied answer
    message: str = ""


def _ddb_targets(action: str, body: dict, table_arn: Callable[[str], str]) -> list[tuple[str, str]]:
    if action in COMPOSITE:
        kinds = COMPOSITE[action]
        out = []
        if action in ("dynamodb:TransactWriteItems", "dynamodb:TransactGetItems"):
            for item in body.get("TransactItems", []):
                for kind, sub in item.items():
                    if kind in kinds:
                        out.append((kinds[kind], table_arn(sub.get("TableName", ""))))
        elif action == "dynamodb:BatchWriteItem":
            for table, reqs in (body.get("RequestItems") or {}).items():
                for r in reqs:
                    for kind in r:
                        if kind in kinds:
                            out.append((kinds[kind], table_arn(table)))
        else:
            for table in body.get("RequestItems") or {}:
                out.append(("dynamodb:GetItem", table_arn(table)))
        return sorted(set(out))
    table = body.get("TableName") or body.get("TableArn") or ""
    arn = table if table.startswith("arn:") else table_arn(table)
    if body.get("IndexName"):
        arn += f"/index/{body['IndexName']}"
    return [(action, arn)]


class AwsProxy:
    """Transparent HTTP proxy to moto that records and (for composite DynamoDB calls) authorises."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.port = free_port()
        self.calls: list[Call] = []
        self.identities: dict[str, str] = {}  # access key id -> caller name
        self.principals: dict[str, str] = {}  # caller -> ARN for messages
        self.policies: dict[str, Any] = {}  # caller -> iam.RolePolicy (for per-item checks)
        self.secret_arns: dict[str, str] = {}  # secret name -> ARN
        self.faults: list[dict] = []  # {"who", "action", "times", "status", "body", "why"}
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_request(self):
                proxy._handle(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_request

        self.server = QuietServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def shutdown(self) -> None:
        self.server.shutdown()

    def take_calls(self) -> list[Call]:
        with self.lock:
            out, self.calls = self.calls, []
        return out

    def inject(self, who: str, action: str, status: int, body: dict, why: str, times: int = 1) -> None:
        """Answers the next `times` calls of `action` by `who` with `body` instead of forwarding them."""
        with self.lock:
            self.faults.append({"who": who, "action": action, "times": times, "status": status, "body": body,
                                "why": why})

    def clear_faults(self) -> list[dict]:
        with self.lock:
            left, self.faults = [f for f in self.faults if f["times"] > 0], []
        return left

    # -------------------------------------------------------------- request classification
    def _classify(self, headers, path: str, body: bytes, method: str = "POST") -> tuple[str, str, str, list[tuple[str, str]]]:
        auth = headers.get("Authorization", "")
        # A presigned URL (the desk's signed image links) carries the credential in its query.
        if not auth:
            auth = "Credential=" + urllib.parse.unquote(
                (urllib.parse.parse_qs(urllib.parse.urlparse(path).query).get("X-Amz-Credential") or [""])[0])
        m = re.search(r"Credential=([^/]+)/\d+/([^/]+)/([^/]+)/", auth)
        akid, region, service = (m.group(1), m.group(2), m.group(3)) if m else ("", REGION, "?")
        who = self.identities.get(akid, "unsigned" if not akid else f"unknown key {akid}")
        target = headers.get("X-Amz-Target", "")
        params: dict = {}
        op = ""
        if service == "s3":
            # Path-style object requests (the SDKs use path style against an emulator).
            parts = urllib.parse.unquote(urllib.parse.urlparse(path).path).lstrip("/").split("/", 1)
            op = {"PUT": "PutObject", "GET": "GetObject", "HEAD": "GetObject", "DELETE": "DeleteObject"}.get(
                method, method) if len(parts) == 2 and parts[1] else {"PUT": "CreateBucket"}.get(method, "ListBucket")
            arn = f"arn:{PARTITION}:s3:::{parts[0]}" + (f"/{parts[1]}" if len(parts) == 2 and parts[1] else "")
            return who, service, f"s3:{op}", [(f"s3:{op}", arn)]
        if target:
            op = target.split(".")[-1]
            try:
                params = json.loads(body or b"{}")
            except ValueError:
                params = {}
        else:
            q = urllib.parse.parse_qs(body.decode("utf-8", "replace")) if body else {}
            q.update(urllib.parse.parse_qs(urllib.parse.urlparse(path).query))
            op = (q.get("Action") or [""])[0]
            params = {k: v[0] for k, v in q.items()}
        action = f"{service}:{op}"
        acct = ACCOUNT_ID
        if service == "dynamodb":
            targets = _ddb_targets(action, params,
                                   lambda t: f"arn:{PARTITION}:dynamodb:{region}:{acct}:table/{t}")
        elif service == "sqs":
            url = params.get("QueueUrl", "")
            name = url.rstrip("/").split("/")[-1] if url else params.get("QueueName", "")
            targets = [(action, f"arn:{PARTITION}:sqs:{region}:{acct}:{name}")]
        elif service == "secretsmanager":
            sid = params.get("SecretId", "") or params.get("Name", "")
            targets = [(action, sid if sid.startswith("arn:") else self.secret_arns.get(sid, sid))]
        else:
            targets = [(action, "*")]
        return who, service, action, targets

    def _deny_body(self, who: str, action: str, arn: str) -> bytes:
        principal = self.principals.get(who, who)
        return json.dumps({
            "__type": "com.amazon.coral.service#AccessDeniedException",
            "Message": f"User: {principal} is not authorized to perform: {action} on resource: {arn} "
                       f"because no identity-based policy allows the {action} action",
        }).encode()

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
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
        who, service, action, targets = self._classify(h.headers, h.path, body, h.command)

        with self.lock:
            fault = next((f for f in self.faults if f["times"] > 0 and f["who"] == who and f["action"] == action),
                         None)
            if fault:
                fault["times"] -= 1
        if fault:
            self._record(Call(who, service, action, targets, fault["status"], None, f"injected: {fault['why']}"))
            self._reply(h, fault["status"], [("Content-Type", "application/x-amz-json-1.0")],
                        json.dumps(fault["body"]).encode())
            return

        # What moto cannot check (see iam.py): the per-item actions of a DynamoDB transaction or
        # batch, and resource scoping outside SQS. Evaluated on the template's own statements.
        policy = self.policies.get(who)
        if policy is not None and service not in RESOURCE_ENFORCED:
            for item_action, arn in targets:
                if arn != "*" and not policy.evaluate(item_action, arn):
                    answer = self._deny_body(who, item_action, arn)
                    how = f"item of {action}" if action in COMPOSITE else "resource-level, by the rehearsal"
                    self._record(Call(who, service, action, targets, 400, item_action,
                                      f"not authorized to perform: {item_action} on resource: {arn} ({how})"))
                    ctype = h.headers.get("Content-Type") or "application/x-amz-json-1.0"
                    self._reply(h, 400, [("Content-Type", ctype)], answer)
                    return

        # A presigned S3 GET (the desk's image links): moto cannot check query-string signatures with
        # IAM enforcement on, so the proxy checks what it can — the signer's policy (above) and the
        # link's expiry — and reads the object as the admin.
        query = urllib.parse.parse_qs(urllib.parse.urlparse(h.path).query)
        if service == "s3" and "X-Amz-Signature" in query and action == "s3:GetObject":
            self._presigned_get(h, who, service, action, targets, query)
            return

        headers = {k: v for k, v in h.headers.items() if k.lower() not in HOP}
        headers["Content-Length"] = str(len(body))
        for attempt in range(3):
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
                conn.request(h.command, h.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                status, rheaders = resp.status, [(k, v) for k, v in resp.getheaders() if k.lower() not in HOP]
                conn.close()
                break
            except (ConnectionError, http.client.HTTPException):
                if attempt == 2:
                    raise
                time.sleep(0.05)
        denied, message = None, ""
        if status >= 400:
            text = data.decode("utf-8", "replace")
            m = re.search(r"not authorized to perform: ([A-Za-z0-9-]+:[A-Za-z0-9]+)", text)
            if m:
                denied, message = m.group(1), m.group(0)
            else:
                m = re.search(r"<Code>([^<]+)</Code>|\"__type\":\s*\"([^\"]+)\"", text)
                message = (m.group(1) or m.group(2)) if m else text[:200]
        self._record(Call(who, service, action, targets, status, denied, message))
        rheaders = [(k, v) for k, v in rheaders if k.lower() != "content-length"]
        self._reply(h, status, rheaders, data)

    def _presigned_get(self, h, who: str, service: str, action: str, targets, query: dict) -> None:
        signed = calendar.timegm(time.strptime(query.get("X-Amz-Date", ["19700101T000000Z"])[0], "%Y%m%dT%H%M%SZ"))
        expired = time.time() > signed + int(query.get("X-Amz-Expires", ["0"])[0])
        bucket, key = urllib.parse.unquote(urllib.parse.urlparse(h.path).path).lstrip("/").split("/", 1)
        if expired:
            self._record(Call(who, service, action, targets, 403, None, "presigned URL expired"))
            self._reply(h, 403, [("Content-Type", "application/xml")], b"<Error><Code>AccessDenied</Code></Error>")
            return
        try:
            obj = self.admin_s3.get_object(Bucket=bucket, Key=key)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 404)
            self._record(Call(who, service, action, targets, status, None, str(e)[:200]))
            self._reply(h, status, [("Content-Type", "application/xml")], b"<Error><Code>NoSuchKey</Code></Error>")
            return
        data = obj["Body"].read()
        self._record(Call(who, service, action, targets, 200, None, ""))
        self._reply(h, 200, [("Content-Type", obj.get("ContentType") or "application/octet-stream")], data)

    def _record(self, call: Call) -> None:
        with self.lock:
            self.calls.append(call)

    @staticmethod
    def _reply(h: BaseHTTPRequestHandler, status: int, headers, data: bytes) -> None:
        h.send_response(status)
        for k, v in headers:
            if k.lower() not in ("server", "date"):
                h.send_header(k, v)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(data)


# ---------------------------------------------------------------------------- moto
class Moto:
    def __init__(self, venv: str, workdir: str):
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
        self.log = os.path.join(workdir, "moto.log")
        # Spawned from the calling (main) thread: the parent-death signal follows the spawning thread.
        self.proc = spawn([os.path.join(venv, "bin", "moto_server"), "-H", "127.0.0.1", "-p", str(self.port)],
                          env, self.log)

    def start(self) -> "Moto":
        """Waits until moto answers, starts the proxy and bootstraps the admin user."""
        deadline = time.time() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/moto-api/", timeout=1).read()
                break
            except OSError:
                if self.proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"moto_server did not start; see {self.log}")
                time.sleep(0.1)
        self.proxy = AwsProxy(self.port)
        self.admin = self._bootstrap_admin()
        self.proxy.identities[self.admin["aws_access_key_id"]] = "admin"
        self.proxy.admin_s3 = boto3.client(
            "s3", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
            config=Config(s3={"addressing_style": "path"}), **self.admin)
        return self

    def _bootstrap_admin(self) -> dict:
        iam = boto3.client("iam", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
                           aws_access_key_id="bootstrap", aws_secret_access_key="bootstrap")
        iam.create_user(UserName=ADMIN_USER)
        iam.put_user_policy(UserName=ADMIN_USER, PolicyName="admin", PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}))
        key = iam.create_access_key(UserName=ADMIN_USER)["AccessKey"]
        creds = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
        # From here on moto checks every request: an unsigned or unknown key must now be refused.
        probe = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{self.port}", region_name=REGION,
                             aws_access_key_id="AKIAREHEARSALPROBE00", aws_secret_access_key="x",
                             config=Config(retries={"max_attempts": 1}))
        try:
            probe.list_queues()
        except ClientError as e:
            if e.response["Error"]["Code"] not in ("InvalidClientTokenId", "403"):
                raise
        else:
            raise RuntimeError("moto did not enforce IAM after bootstrapping (INITIAL_NO_AUTH_ACTION_COUNT)")
        return creds

    @property
    def admin_arn(self) -> str:
        return f"arn:{PARTITION}:iam::{ACCOUNT_ID}:user/{ADMIN_USER}"

    def client(self, service: str, creds: dict | None = None):
        return boto3.client(service, endpoint_url=self.proxy.url, region_name=REGION,
                            config=Config(retries={"max_attempts": 2}, connect_timeout=5, read_timeout=60),
                            **(creds or self.admin))

    def close(self) -> None:
        if getattr(self, "proxy", None):
            self.proxy.shutdown()
        stop(self.proc)


# ---------------------------------------------------------------------------- stack resources
TABLE_KEYS = ["KeySchema", "AttributeDefinitions", "BillingMode", "ProvisionedThroughput",
              "GlobalSecondaryIndexes", "LocalSecondaryIndexes", "StreamSpecification", "TableClass",
              "DeletionProtectionEnabled"]
TABLE_NOT_EMULATED = ["PointInTimeRecoverySpecification", "SSESpecification", "ContributorInsightsSpecification",
                      "KinesisStreamSpecification", "Tags", "ResourcePolicy", "OnDemandThroughput",
                      "WarmThroughput", "ImportSourceSpecification"]
QUEUE_ATTRS = ["DelaySeconds", "MaximumMessageSize", "MessageRetentionPeriod", "ReceiveMessageWaitTimeSeconds",
               "VisibilityTimeout", "RedrivePolicy", "RedriveAllowPolicy", "FifoQueue", "ContentBasedDeduplication",
               "DeduplicationScope", "FifoThroughputLimit", "SqsManagedSseEnabled", "KmsMasterKeyId",
               "KmsDataKeyReusePeriodSeconds"]


# What the emulator creates itself (everything else gets a placeholder physical id).
CREATED_TYPES = ("AWS::DynamoDB::Table", "AWS::SQS::Queue", "AWS::SecretsManager::Secret",
                 "AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::S3::Bucket")
USER_POOL_KEYS = ["Policies", "AdminCreateUserConfig", "UsernameConfiguration", "AccountRecoverySetting",
                  "MfaConfiguration", "UsernameAttributes", "AutoVerifiedAttributes"]
USER_POOL_CLIENT_KEYS = ["GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors",
                         "EnableTokenRevocation", "AccessTokenValidity", "IdTokenValidity",
                         "RefreshTokenValidity", "TokenValidityUnits"]


@dataclass
class Resources:
    """Physical ids of the rehearsal stack, filled as the emulator creates resources."""

    stack: Any
    moto: Moto
    phys: dict[str, dict] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    tables: dict[str, dict] = field(default_factory=dict)  # logical -> create kwargs
    queues: dict[str, dict] = field(default_factory=dict)
    secrets: dict[str, dict] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)  # the execution roles the emulator creates
    pools: dict[str, str] = field(default_factory=dict)  # user pool logical -> pool id
    buckets: dict[str, str] = field(default_factory=dict)  # bucket logical -> bucket name

    def lookup(self, logical: str, attr: str | None) -> Any:
        if logical in self.phys:
            p = self.phys[logical]
        else:
            p = self._default(logical)
            if p is None:
                raise Pending(logical)
        key = attr or "Ref"
        if key not in p:
            raise KeyError(f"{logical}.{key} is not known to the rehearsal")
        return p[key]

    def _default(self, logical: str) -> dict | None:
        res = self.stack.resources[logical]
        typ = res["Type"]
        if typ in CREATED_TYPES or logical in self.roles:
            return None  # created by the emulator
        props = res.get("Properties") or {}
        a = f"{REGION}:{ACCOUNT_ID}"
        if typ == "AWS::IAM::Role":
            name = self.stack.resolve(props.get("RoleName")) or f"{STACK_NAME}-{logical}"
            return {"Ref": name, "Arn": f"arn:{PARTITION}:iam::{ACCOUNT_ID}:role/{name}"}
        if typ == "AWS::Lambda::Function":
            name = self.stack.resolve(props.get("FunctionName")) or f"{STACK_NAME}-{logical}-REHEARSAL"
            return {"Ref": name, "Arn": f"arn:{PARTITION}:lambda:{a}:function:{name}"}
        if typ == "AWS::Logs::LogGroup":
            name = self.stack.resolve(props.get("LogGroupName")) or f"{STACK_NAME}-{logical}-REHEARSAL"
            return {"Ref": name, "Arn": f"arn:{PARTITION}:logs:{a}:log-group:{name}:*"}
        if typ == "AWS::SNS::Topic":
            name = self.stack.resolve(props.get("TopicName")) or f"{STACK_NAME}-{logical}-REHEARSAL"
            arn = f"arn:{PARTITION}:sns:{a}:{name}"
            return {"Ref": arn, "TopicArn": arn, "TopicName": name}
        if typ == "AWS::ApiGatewayV2::Api":
            api = "rehearsalapi"
            return {"Ref": api, "ApiId": api, "ApiEndpoint": f"https://{api}.execute-api.{REGION}.amazonaws.com"}
        placeholder = f"{STACK_NAME}-{logical}"

        class Any_(dict):
            def __missing__(self, key):
                return f"arn:{PARTITION}:rehearsal:{a}:{logical}" if key == "Arn" else f"{placeholder}.{key}"

            def __contains__(self, key):
                return True

        return Any_(Ref=placeholder)

    # -------------------------------------------------------------- creation
    def create_all(self, roles: list[str]) -> None:
        """Creates tables, queues, secrets and the given roles, each once what it refers to exists."""
        st = self.stack
        self.roles = list(roles)
        todo = [k for k in st.of_type(*CREATED_TYPES)]
        todo += roles
        while todo:
            progressed = False
            for logical in list(todo):
                try:
                    props = st.properties(logical)
                except Pending:
                    continue
                typ = st.resources[logical]["Type"]
                if typ == "AWS::DynamoDB::Table":
                    self._table(logical, props)
                elif typ == "AWS::SQS::Queue":
                    self._queue(logical, props)
                elif typ == "AWS::SecretsManager::Secret":
                    self._secret(logical, props)
                elif typ == "AWS::Cognito::UserPool":
                    self._user_pool(logical, props)
                elif typ == "AWS::Cognito::UserPoolClient":
                    self._user_pool_client(logical, props)
                elif typ == "AWS::S3::Bucket":
                    self._bucket(logical, props)
                else:
                    self._role(logical, props)
                todo.remove(logical)
                self.created.append(logical)
                progressed = True
            if not progressed:
                raise RuntimeError(f"cannot order the creation of {todo} (circular references?)")

    def _table(self, logical: str, props: dict) -> None:
        name = props.get("TableName") or f"{STACK_NAME}-{logical}-REHEARSAL"
        kw = {"TableName": name}
        for k in TABLE_KEYS:
            if k in props:
                kw[k] = props[k]
        if "StreamSpecification" in kw:
            kw["StreamSpecification"] = {"StreamEnabled": True, **kw["StreamSpecification"]}
        for k in TABLE_NOT_EMULATED:
            if k in props:
                self.notes.append(f"{logical}.{k} not emulated")
        if "ProvisionedThroughput" in kw:
            kw["ProvisionedThroughput"] = {kk: int(v) for kk, v in kw["ProvisionedThroughput"].items()}
        if "DeletionProtectionEnabled" in kw:  # CloudFormation takes "true" as well as true
            kw["DeletionProtectionEnabled"] = str(kw["DeletionProtectionEnabled"]).lower() == "true"
        self.tables[logical] = {"create": kw, "ttl": props.get("TimeToLiveSpecification")}
        self._create_table(logical)
        arn = f"arn:{PARTITION}:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}"
        self.phys[logical] = {"Ref": name, "Arn": arn, "StreamArn": f"{arn}/stream/rehearsal"}

    def _create_table(self, logical: str) -> None:
        ddb = self.moto.client("dynamodb")
        spec = self.tables[logical]
        ddb.create_table(**spec["create"])
        ttl = spec["ttl"]
        if ttl and str(ttl.get("Enabled", "false")).lower() == "true":
            ddb.update_time_to_live(TableName=spec["create"]["TableName"], TimeToLiveSpecification={
                "AttributeName": ttl["AttributeName"], "Enabled": True})

    def _queue(self, logical: str, props: dict) -> None:
        name = props.get("QueueName") or f"{STACK_NAME}-{logical}-REHEARSAL"
        attrs = {}
        for k in QUEUE_ATTRS:
            if k in props:
                v = props[k]
                attrs[k] = json.dumps(v) if isinstance(v, dict) else str(v).lower() if isinstance(v, bool) else str(v)
        self.queues[logical] = {"QueueName": name, "Attributes": attrs}
        url = self.moto.client("sqs").create_queue(QueueName=name, Attributes=attrs)["QueueUrl"]
        arn = f"arn:{PARTITION}:sqs:{REGION}:{ACCOUNT_ID}:{name}"
        self.phys[logical] = {"Ref": url, "Arn": arn, "QueueName": name, "QueueUrl": url}

    def _secret(self, logical: str, props: dict) -> None:
        name = props.get("Name") or f"{logical}-REHEARSAL"
        value = props.get("SecretString")
        if value is None and "GenerateSecretString" in props:
            g = props["GenerateSecretString"]
            pw = secrets.token_urlsafe(int(g.get("PasswordLength", 32)))
            if g.get("SecretStringTemplate") and g.get("GenerateStringKey"):
                doc = json.loads(g["SecretStringTemplate"])
                doc[g["GenerateStringKey"]] = pw
                value = json.dumps(doc)
            else:
                value = pw
        kw = {"Name": name}
        if props.get("Description"):
            kw["Description"] = props["Description"]
        if value is not None:
            kw["SecretString"] = value
        arn = self.moto.client("secretsmanager").create_secret(**kw)["ARN"]
        self.secrets[logical] = {"name": name, "arn": arn, "initial": value}
        self.moto.proxy.secret_arns[name] = arn
        self.phys[logical] = {"Ref": arn, "Id": arn}

    def _user_pool(self, logical: str, props: dict) -> None:
        kw = {"PoolName": props.get("UserPoolName") or f"{STACK_NAME}-{logical}"}
        for k in USER_POOL_KEYS:
            if k in props:
                kw[k] = props[k]
        pool = self.moto.client("cognito-idp").create_user_pool(**kw)["UserPool"]
        self.pools[logical] = pool["Id"]
        self.phys[logical] = {"Ref": pool["Id"], "Arn": pool["Arn"], "UserPoolId": pool["Id"],
                              "ProviderURL": f"cognito-idp.{REGION}.amazonaws.com/{pool['Id']}"}

    def _user_pool_client(self, logical: str, props: dict) -> None:
        kw = {"UserPoolId": props["UserPoolId"], "ClientName": props.get("ClientName") or logical}
        for k in USER_POOL_CLIENT_KEYS:
            if k in props:
                v = props[k]
                kw[k] = int(v) if k.endswith("Validity") else (str(v).lower() == "true" if k in (
                    "GenerateSecret", "EnableTokenRevocation") else v)
        client = self.moto.client("cognito-idp").create_user_pool_client(**kw)["UserPoolClient"]
        self.phys[logical] = {"Ref": client["ClientId"], "ClientId": client["ClientId"]}

    def _bucket(self, logical: str, props: dict) -> None:
        """The bucket, with the template's encryption, public access block and lifecycle."""
        name = props.get("BucketName") or f"{STACK_NAME}-{logical.lower()}-{secrets.token_hex(4)}"
        s3 = self.moto.client("s3")
        s3.create_bucket(Bucket=name)
        rules = (props.get("BucketEncryption") or {}).get("ServerSideEncryptionConfiguration")
        if rules:
            # CloudFormation's property names are the API's but for the default rule's.
            api = {"ServerSideEncryptionByDefault": "ApplyServerSideEncryptionByDefault"}
            s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration={"Rules": [
                {api.get(k, k): (str(v).lower() == "true" if k == "BucketKeyEnabled" else v) for k, v in r.items()}
                for r in rules]})
        if props.get("PublicAccessBlockConfiguration"):
            s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration={
                k: str(v).lower() == "true" for k, v in props["PublicAccessBlockConfiguration"].items()})
        self.buckets[logical] = name
        self.phys[logical] = {"Ref": name, "Arn": f"arn:{PARTITION}:s3:::{name}", "DomainName": f"{name}.s3.amazonaws.com"}

    def _role(self, logical: str, props: dict) -> None:
        name = props.get("RoleName") or f"{STACK_NAME}-{logical}"[:64]
        iam = self.moto.client("iam")
        arn = iam.create_role(RoleName=name, Path=props.get("Path", "/"),
                              AssumeRolePolicyDocument=json.dumps(
                                  moto_trust(props.get("AssumeRolePolicyDocument") or {}, self.moto.admin_arn))
                              )["Role"]["Arn"]
        self.phys[logical] = {"Ref": name, "Arn": arn, "RoleId": f"AROA{logical.upper()[:16]}"}

    # -------------------------------------------------------------- between runs
    def reset_data(self) -> None:
        """Empty tables and queues, as in a fresh stack; secrets keep their values."""
        # Tables are emptied, not re-created (the template may enable deletion protection).
        ddb = self.moto.client("dynamodb")
        for spec in self.tables.values():
            name = spec["create"]["TableName"]
            keys = [k["AttributeName"] for k in spec["create"]["KeySchema"]]
            deletes = [{"DeleteRequest": {"Key": {k: item[k] for k in keys}}}
                       for page in ddb.get_paginator("scan").paginate(TableName=name) for item in page["Items"]]
            for i in range(0, len(deletes), 25):
                ddb.batch_write_item(RequestItems={name: deletes[i:i + 25]})
        # Queues are deleted and created again (moto allows one PurgeQueue per minute), in creation order.
        sqs = self.moto.client("sqs")
        for logical in reversed(list(self.queues)):
            sqs.delete_queue(QueueUrl=self.phys[logical]["Ref"])
        for logical, q in self.queues.items():
            sqs.create_queue(**q)

"""What the platforms send and what they receive.

- Pushes built as WeChat and Baidu build them (WXBizMsgCrypt: AES-256-CBC with IV = key[0..16],
  PKCS#7 to 32-byte blocks, frame `random16 | u32 BE length | message | receive id`; SHA-1 signatures
  over the sorted token, timestamp, nonce (and Encrypt)), wrapped in API Gateway HTTP API v2 events.
  Written independently of the Rust implementation, so a push the functions accept is a real
  cross-check.
- The fake platform: `kefu fake-platform` behind a small recording proxy, so the rehearsal sees
  every call the sender made (path, recipient, content).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import re
import secrets
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from emulator import QuietServer, HOP, free_port, spawn, stop
from stack import ACCOUNT_ID, REGION

API_ID = "rehearsalapi"


def _sha1(*parts: str) -> str:
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()


def signature(token: str, timestamp: str, nonce: str) -> str:
    """The plain `signature` (URL verification, and the query of every push)."""
    return _sha1(token, timestamp, nonce)


def seal(encoding_aes_key: str, message: str, receive_id: str) -> str:
    key = base64.b64decode(encoding_aes_key + "=")
    msg = message.encode()
    frame = secrets.token_bytes(16) + struct.pack(">I", len(msg)) + msg + receive_id.encode()
    pad = 32 - len(frame) % 32
    frame += bytes([pad]) * pad
    enc = Cipher(algorithms.AES(key), modes.CBC(key[:16])).encryptor()
    return base64.b64encode(enc.update(frame) + enc.finalize()).decode()


def open_reply(app: dict, body: str, nonce: str) -> str:
    """The plaintext of a sealed reply, opened as WeChat opens it: the request's nonce echoed, the
    4-part signature over the reply's TimeStamp, the frame's receive id; raises ValueError."""
    doc = json.loads(body)
    encrypt, ts = doc["Encrypt"], str(doc["TimeStamp"])
    if str(doc["Nonce"]) != nonce:
        raise ValueError(f"Nonce {doc['Nonce']!r} is not the request's {nonce!r}")
    if doc["MsgSignature"] != _sha1(app["token"], ts, str(doc["Nonce"]), encrypt):
        raise ValueError("MsgSignature does not match")
    key = base64.b64decode(app["encoding_aes_key"] + "=")
    dec = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    frame = dec.update(base64.b64decode(encrypt)) + dec.finalize()
    frame = frame[:-frame[-1]]
    (length,) = struct.unpack(">I", frame[16:20])
    msg, receive_id = frame[20:20 + length], frame[20 + length:].decode()
    if receive_id != (app.get("receive_id") or app["app_id"]):
        raise ValueError(f"framed for {receive_id!r}")
    return msg.decode()


def text_message(to_user: str, from_user: str, content: str, now: int, msg_id: int) -> str:
    return json.dumps({"ToUserName": to_user, "FromUserName": from_user, "CreateTime": now,
                       "MsgType": "text", "Content": content, "MsgId": msg_id}, ensure_ascii=False)


def safe_push(app: dict, message: str, now: int, nonce: str | None = None) -> tuple[str, str]:
    """(raw query string, JSON body) of a safe-mode JSON push for `app` (a registry entry)."""
    ts, nonce = str(now), nonce or str(secrets.randbelow(10**10))
    receive_id = app.get("receive_id") or app["app_id"]
    encrypt = seal(app["encoding_aes_key"], message, receive_id)
    msg_signature = _sha1(app["token"], ts, nonce, encrypt)
    if app["platform"] == "wechat":
        body = {"ToUserName": app.get("original_id") or app["app_id"], "Encrypt": encrypt}
        query = urllib.parse.urlencode({"signature": _sha1(app["token"], ts, nonce), "timestamp": ts,
                                        "nonce": nonce, "encrypt_type": "aes", "msg_signature": msg_signature})
        return query, json.dumps(body)
    # Baidu safe mode carries the signature in the body.
    body = {"ToUserName": app.get("original_id") or app["app_id"], "Encrypt": encrypt,
            "MsgSignature": msg_signature, "TimeStamp": ts, "Nonce": nonce}
    return "", json.dumps(body)


def http_api_event(method: str, path: str, route_key: str, query: str, body: str, now: int,
                   path_parameters: dict | None = None, authorizer: dict | None = None) -> dict:
    """An API Gateway HTTP API (payload format 2.0) event."""
    ctx = {
        "accountId": ACCOUNT_ID, "apiId": API_ID, "domainName": f"{API_ID}.execute-api.{REGION}.amazonaws.com",
        "domainPrefix": API_ID,
        "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.10",
                 "userAgent": "Mozilla/4.0"},
        "requestId": f"rehearsal-{secrets.token_hex(6)}", "routeKey": route_key, "stage": "$default",
        "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)), "timeEpoch": now * 1000,
    }
    if authorizer:
        ctx["authorizer"] = authorizer
    return {
        "version": "2.0", "routeKey": route_key, "rawPath": path, "rawQueryString": query,
        "headers": {"content-type": "application/json", "host": ctx["domainName"], "user-agent": "Mozilla/4.0"},
        "requestContext": ctx, "pathParameters": path_parameters, "body": body, "isBase64Encoded": False,
    }


def iam_authorizer(role_arn_session: str) -> dict:
    return {"iam": {"accessKey": "ASIAREHEARSALCALLER0", "accountId": ACCOUNT_ID, "callerId": "AROAREHEARSAL:agent",
                    "cognitoIdentity": None, "principalOrgId": None, "userArn": role_arn_session,
                    "userId": "AROAREHEARSAL:agent"}}


def sqs_event(messages: list[dict], queue_arn: str) -> dict:
    """The event Lambda's SQS event source mapping builds from ReceiveMessage output."""
    records = []
    for m in messages:
        records.append({
            "messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"],
            "attributes": m.get("Attributes", {}), "messageAttributes": {
                k: {"stringValue": v.get("StringValue"), "binaryValue": v.get("BinaryValue"),
                    "stringListValues": [], "binaryListValues": [], "dataType": v["DataType"]}
                for k, v in (m.get("MessageAttributes") or {}).items()},
            "md5OfBody": m.get("MD5OfBody", ""), "eventSource": "aws:sqs", "eventSourceARN": queue_arn,
            "awsRegion": REGION,
        })
    return {"Records": records}


# ---------------------------------------------------------------------------- fake platform
class FakePlatform:
    """`kefu fake-platform` plus a recording proxy (the fake keeps its call log in-process only)."""

    def __init__(self, kefu: str, workdir: str):
        self.log = os.path.join(workdir, "fake-platform.log")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        self.proc = spawn([kefu, "fake-platform"], env, self.log)

    def start(self) -> "FakePlatform":
        """Waits for the fake's URL and starts the recording proxy in front of it."""
        deadline = time.time() + 30
        upstream = None
        while upstream is None:
            text = open(self.log, encoding="utf-8", errors="replace").read()
            m = re.search(r"fake platform: serving .* on (http://\S+)", text)
            if m:
                upstream = m.group(1)
            elif self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"kefu fake-platform did not start: {text[-500:]}")
            else:
                time.sleep(0.05)
        u = urllib.parse.urlparse(upstream)
        self.upstream = (u.hostname, u.port)
        self.calls: list[dict] = []
        self.faults: list[dict] = []
        self.lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_any(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                injected = fake._fault(self.path)
                if injected is not None:
                    data = json.dumps(injected).encode()
                    fake._record(self.command, self.path, self.headers.get("Content-Type", ""), body, 200, data)
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
                conn = http.client.HTTPConnection(*fake.upstream, timeout=30)
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                conn.close()
                fake._record(self.command, self.path, self.headers.get("Content-Type", ""), body, resp.status, data)
                self.send_response(resp.status)
                for k, v in resp.getheaders():
                    if k.lower() not in HOP and k.lower() not in ("content-length", "date", "server"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_any

        self.server = QuietServer(("127.0.0.1", free_port()), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        return self

    def _record(self, method: str, path: str, ctype: str, body: bytes, status: int, answer: bytes) -> None:
        u = urllib.parse.urlparse(path)
        parsed: object
        try:
            parsed = json.loads(body) if body and "json" in ctype else dict(urllib.parse.parse_qsl(body.decode()))
        except (ValueError, UnicodeDecodeError):
            parsed = {"_bytes": len(body)}
        if isinstance(parsed, dict):  # never keep a credential
            parsed = {k: ("***" if "secret" in k.lower() else v) for k, v in parsed.items()}
        try:
            answer_json = json.loads(answer)
        except ValueError:
            answer_json = answer[:200].decode("utf-8", "replace")
        with self.lock:
            self.calls.append({"method": method, "path": u.path, "body": parsed, "status": status,
                               "answer": answer_json})

    def inject(self, path: str, answer: dict, times: int = 1) -> None:
        """The next `times` calls of `path` get `answer` (HTTP 200, as the platforms report errors)."""
        with self.lock:
            self.faults.append({"path": path, "answer": answer, "times": times})

    def _fault(self, path: str) -> dict | None:
        with self.lock:
            p = urllib.parse.urlparse(path).path
            f = next((f for f in self.faults if f["times"] > 0 and f["path"] == p), None)
            if f is None:
                return None
            f["times"] -= 1
            return f["answer"]

    def clear_faults(self) -> int:
        """Removes the faults; returns how many were never triggered."""
        with self.lock:
            left = sum(1 for f in self.faults if f["times"] > 0)
            self.faults = []
        return left

    def take_calls(self) -> list[dict]:
        with self.lock:
            out, self.calls = self.calls, []
        return out

    def close(self) -> None:
        if getattr(self, "server", None):
            self.server.shutdown()
        stop(self.proc)

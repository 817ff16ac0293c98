"""A fake Lambda Runtime API (one per function process) and the process that polls it.

The process is the function's built binary, started with exactly the environment given to it (see
rehearse.py for how that is assembled). The API serves one event at a time:

  GET  /2018-06-01/runtime/invocation/next           -> the next event (blocks until there is one)
  POST /2018-06-01/runtime/invocation/{id}/response  -> the function's answer
  POST /2018-06-01/runtime/invocation/{id}/error     -> an invocation error
  POST /2018-06-01/runtime/init/error                -> an init error

An init error, or the process exiting before it answers, fails the invocation with the process's
stderr tail, like a failed cold start in Lambda.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler

from emulator import QuietServer, free_port, spawn, stop

PREFIX = "/2018-06-01/runtime"


class InvokeError(Exception):
    """The function did not answer: init error, invocation error, crash or timeout."""

    def __init__(self, kind: str, detail: str):
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail


class FunctionProcess:
    def __init__(self, name: str, binary: str, env: dict[str, str], timeout_s: float, function_arn: str,
                 log_path: str):
        self.name = name
        self.binary = binary
        self.env = dict(env)
        self.timeout_s = timeout_s
        self.function_arn = function_arn
        self.log_path = log_path
        self.events: queue.Queue = queue.Queue()
        self.results: dict[str, tuple[str, bytes]] = {}
        self.init_error: bytes | None = None
        self.cv = threading.Condition()
        self.polls = 0
        self.proc = None
        self.started_at = 0.0
        self.first_poll_at: float | None = None
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _empty(self, status: int) -> None:
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                if self.path != f"{PREFIX}/invocation/next":
                    return self._empty(404)
                with api.cv:
                    api.polls += 1
                    if api.first_poll_at is None:
                        api.first_poll_at = time.perf_counter()
                    api.cv.notify_all()
                while True:
                    try:
                        request_id, deadline_ms, body = api.events.get(timeout=1)
                        break
                    except queue.Empty:
                        if api.proc is None or api.proc.poll() is not None:
                            return self._empty(500)
                self.send_response(200)
                for k, v in {
                    "Lambda-Runtime-Aws-Request-Id": request_id,
                    "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
                    "Lambda-Runtime-Invoked-Function-Arn": api.function_arn,
                    "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000;Parent=0000000000000000;"
                                               "Sampled=0",
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                }.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                parts = self.path[len(PREFIX):].strip("/").split("/")
                with api.cv:
                    if parts == ["init", "error"]:
                        api.init_error = body
                    elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
                        api.results[parts[1]] = (parts[2], body)
                    else:
                        self._empty(404)
                        return
                    api.cv.notify_all()
                self._empty(202)

        self.server = QuietServer(("127.0.0.1", free_port()), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.started_at = time.perf_counter()
        self.proc = spawn([self.binary], self.env, self.log_path)

    def log_tail(self, lines: int = 15) -> str:
        try:
            with open(self.log_path, "rb") as f:
                text = f.read().decode("utf-8", "replace")
        except OSError:
            return ""
        tail = text.rstrip("\n").splitlines()[-lines:]
        return "\n".join(line if len(line) <= 1500 else line[:1500] + " …" for line in tail)

    def invoke(self, event: dict) -> dict:
        """Delivers `event` and returns the function's JSON answer, or raises InvokeError."""
        request_id = str(uuid.uuid4())
        deadline_ms = int(time.time() * 1000 + self.timeout_s * 1000)
        self.events.put((request_id, deadline_ms, json.dumps(event).encode()))
        end = time.time() + self.timeout_s + 5  # the function's Timeout plus process start-up
        with self.cv:
            while True:
                if request_id in self.results:
                    kind, body = self.results.pop(request_id)
                    if kind == "error":
                        raise InvokeError("invocation error", body.decode("utf-8", "replace")[:500]
                                          + self._tail_suffix())
                    return json.loads(body or b"null")
                if self.init_error is not None:
                    raise InvokeError("init error", self.init_error.decode("utf-8", "replace")[:500]
                                      + self._tail_suffix())
                if self.proc.poll() is not None:
                    raise InvokeError(f"process exited with status {self.proc.returncode} before answering",
                                      self._tail_suffix())
                if time.time() > end:
                    raise InvokeError("timeout", f"no answer within {self.timeout_s:.0f} s" + self._tail_suffix())
                self.cv.wait(0.05)

    def _tail_suffix(self) -> str:
        tail = self.log_tail()
        return f"\n    --- {self.name} output (last lines) ---\n    " + tail.replace("\n", "\n    ") if tail else ""

    def close(self) -> None:
        stop(self.proc, grace=2)
        self.server.shutdown()
        self.server.server_close()

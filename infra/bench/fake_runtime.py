#!/usr/bin/env python3
"""Cold-start measurement: a tiny fake Lambda Runtime API on 127.0.0.1.

For each run: spawn the bootstrap, time process start -> first GET /next (init), serve one event,
time -> POST /response (first invoke), read VmHWM (max RSS), stop the process (its own PID only).
Usage: fake_runtime.py BOOTSTRAP EVENT_JSON RUNS
Prints min/median/max of each figure. A benchmark, not a test.
"""
import json, os, socket, subprocess, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

BOOT, EVENT, RUNS = sys.argv[1], open(sys.argv[2], "rb").read(), int(sys.argv[3])
state = {}
cv = threading.Condition()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        if not self.path.endswith("/runtime/invocation/next"):
            self.send_response(404); self.send_header("Content-Length", "0"); self.end_headers(); return
        with cv:
            if "next" in state:  # second /next of a run: park until the run is over
                cv.wait(timeout=30)
                self.send_response(500); self.send_header("Content-Length", "0"); self.end_headers(); return
            state["next"] = time.perf_counter(); cv.notify_all()
        self.send_response(200)
        headers = {
            "Lambda-Runtime-Aws-Request-Id": "req-%d" % state["run"],
            "Lambda-Runtime-Deadline-Ms": str(int(time.time() * 1000) + 30000),
            "Lambda-Runtime-Invoked-Function-Arn": "arn:aws:lambda:us-east-1:123456789012:function:f",
            "Lambda-Runtime-Trace-Id": "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1",
            "Content-Type": "application/json",
            "Content-Length": str(len(EVENT)),
        }
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers(); self.wfile.write(EVENT)

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.send_response(202); self.send_header("Content-Length", "0"); self.end_headers()
        with cv:
            state["resp"] = time.perf_counter(); state["kind"] = self.path.rsplit("/", 1)[-1]; state["body"] = body[:200]
            cv.notify_all()


with socket.socket() as s:
    s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]
srv = ThreadingHTTPServer(("127.0.0.1", port), Handler)
threading.Thread(target=srv.serve_forever, daemon=True).start()
env = dict(os.environ, AWS_LAMBDA_RUNTIME_API=f"127.0.0.1:{port}", AWS_LAMBDA_FUNCTION_NAME="f",
           AWS_LAMBDA_FUNCTION_MEMORY_SIZE="256", AWS_LAMBDA_FUNCTION_VERSION="$LATEST",
           AWS_LAMBDA_LOG_STREAM_NAME="s", AWS_LAMBDA_LOG_GROUP_NAME="g", _HANDLER="bootstrap")
inits, invokes, rss = [], [], []
for r in range(RUNS):
    with cv:
        state.clear(); state["run"] = r
    t0 = time.perf_counter()
    p = subprocess.Popen([BOOT], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with cv:
        cv.wait_for(lambda: "resp" in state, timeout=30)
    if "resp" not in state:
        print("run", r, "timed out"); p.kill(); p.wait(); continue
    hwm = next((l.split()[1] for l in open(f"/proc/{p.pid}/status") if l.startswith("VmHWM")), "0")
    p.kill(); p.wait(); time.sleep(0.2)
    inits.append((state["next"] - t0) * 1000); invokes.append((state["resp"] - state["next"]) * 1000); rss.append(int(hwm) / 1024)
    if r == 0:
        print("  first reply:", state["kind"], state["body"][:120])


def stats(xs):
    xs = sorted(xs); return f"min {xs[0]:.1f} / median {xs[len(xs)//2]:.1f} / max {xs[-1]:.1f}"


name = os.path.basename(os.path.dirname(os.path.dirname(BOOT))) if "bootstrap" in BOOT else os.path.basename(BOOT)
print(f"{os.path.basename(BOOT)}: {len(inits)} runs")
print(f"  init (exec -> first GET /next) ms: {stats(inits)}")
print(f"  first invoke (/next -> /response) ms: {stats(invokes)}")
print(f"  max RSS (VmHWM) MB: {stats(rss)}")
srv.shutdown()

"""The event chain, as the deployed stack would see it:

  URL verification (WeChat GET)     -> ingress must echo
  signed push (WeChat, then Baidu)  -> ingress must answer 200 "success"
  push to a hand-off app            -> 200 with a transfer_customer_service reply, opened here as
                                       WeChat opens it (nonce, signature, receive id), and stored
  inbound queue                     -> received with the processor role's credentials, as Lambda's
                                       event source mapping does, and handed over as an SQS event
  processor                         -> no batch item failures (its first transaction is answered with
                                       a TransactionConflict, as DynamoDB does under contention); the
                                       mapping then deletes the messages
  tables                            -> the messages are stored (checked with admin credentials)
  POST /messages (IAM-authorised)   -> with the WeChat token endpoint failing once, the sender must
                                       answer 5xx and send nothing; the retry with the same
                                       client_msg_id, and the Baidu send, must answer 200
  desk (sign-in, list, view, accept,
        add an agent)               -> the first agent (created as an operator does) signs in through
                                       the desk, finds the WeChat user's conversation waiting, opens it
                                       and accepts it, and adds a second agent
  fake platform                     -> must have received each text
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from dataclasses import dataclass

import urllib.parse
import urllib.request

from pushes import http_api_event, iam_authorizer, open_reply, safe_push, signature, sqs_event, text_message
from runtime import InvokeError


TRANSACTION_CONFLICT = {
    "__type": "com.amazonaws.dynamodb.v20120810#TransactionCanceledException",
    "Message": "Transaction cancelled, please refer cancellation reasons for specific reasons "
               "[None, TransactionConflict]",
    "CancellationReasons": [{"Code": "None"},
                            {"Code": "TransactionConflict", "Message": "Transaction is ongoing for the item"}],
}
TOKEN_PATHS = ("/cgi-bin/stable_token", "/cgi-bin/token")
SEND_PATH = "/cgi-bin/message/custom/send"


class StepFailed(Exception):
    def __init__(self, step: str, detail: str):
        super().__init__(f"{step}: {detail}")
        self.step = step
        self.detail = detail


@dataclass
class EventSource:
    queue_url: str
    queue_arn: str
    batch_size: int
    report_failures: bool
    sqs: object  # boto3 SQS client with the processor role's credentials (the mapping's session)


def _invoke(step: str, proc, event: dict) -> dict:
    try:
        return proc.invoke(event)
    except InvokeError as e:
        raise StepFailed(step, str(e)) from None


def _body(resp: dict) -> str:
    body = resp.get("body") or ""
    if resp.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8", "replace")
    return body


class Steps(list):
    """The steps passed, with the time each took (since the previous one)."""

    def __init__(self):
        super().__init__()
        self.t = time.perf_counter()
        self.times: list[float] = []
        self.details: dict[str, str] = {}

    def append(self, step: str, detail: str = "") -> None:
        now = time.perf_counter()
        self.times.append(now - self.t)
        self.t = now
        if detail:
            self.details[step] = detail
        super().append(step)


def run(ctx, procs: dict, run_id: str, passed: Steps) -> Steps:
    """Runs the chain once, appending each step passed to `passed`; raises StepFailed."""
    now = int(time.time())
    users = {}
    for platform, app in ctx.apps.items():
        users[platform] = {
            "app": app,
            "open_id": f"oRehearsal{run_id}{platform.capitalize()}",
            "text": f"rehearsal {run_id} {platform} 你好 #{secrets.token_hex(3)}",
            "reply": f"reply {run_id} {platform} 您好",
        }

    # 0. an admin has turned the wechat app's auto replies on (before its user writes)
    auto = {"greeting": f"greeting {run_id} 您好", "away": f"away {run_id} 稍后回复"}
    if "wechat" in users and ctx.desk.get("table"):
        step = "desk: operator turns the wechat app's greeting and away message on"
        try:
            ctx.desk["ddb"].put_item(TableName=ctx.desk["table"], Item={
                "pk": {"S": f"settings#wechat#{users['wechat']['app']['app_id']}"}, "sk": {"S": "auto_replies"},
                "greeting_on": {"BOOL": True}, "greeting_text": {"S": auto["greeting"]},
                "away_on": {"BOOL": True}, "away_text": {"S": auto["away"]}})
        except Exception as e:  # botocore errors of the operator's own call
            raise StepFailed(step, f"{e}") from None
        passed.append(step)

    # 1. the console's URL verification, then pushes -> ingress
    if "wechat" in users:
        step = "wechat URL verification -> ingress"
        app = users["wechat"]["app"]
        ts, nonce, echo = str(now), str(secrets.randbelow(10**9)), f"echo{secrets.randbelow(10**12)}"
        query = urllib.parse.urlencode({"signature": signature(app["token"], ts, nonce), "timestamp": ts,
                                        "nonce": nonce, "echostr": echo})
        route = ctx.routes["wechat"]
        event = http_api_event("GET", route.replace("{app}", app["app_id"]), f"GET {route}", query, "", now,
                               {"app": app["app_id"]})
        resp = _invoke(step, procs["ingress"], event)
        if resp.get("statusCode") != 200 or _body(resp) != echo:
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:200]!r} (want 200 {echo!r})")
        passed.append(step)
    for platform, u in users.items():
        step = f"{platform} push -> ingress"
        app = u["app"]
        u["msg_id"] = secrets.randbits(62)
        msg = text_message(app.get("original_id") or app["app_id"], u["open_id"], u["text"], now, u["msg_id"])
        query, body = safe_push(app, msg, now)
        route = ctx.routes[platform]
        path = route.replace("{app}", app["app_id"])
        event = http_api_event("POST", path, f"POST {route}", query, body, now, {"app": app["app_id"]})
        resp = _invoke(step, procs["ingress"], event)
        if resp.get("statusCode") != 200 or _body(resp) != "success":
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:200]!r} (want 200 'success')")
        passed.append(step)
    pushed = len(users)

    # An image from the wechat user: kept in the media bucket off the processor's path (its notice).
    if "wechat" in users:
        step = "wechat image push -> ingress"
        u = users["wechat"]
        app = u["app"]
        u["media_id"] = f"simulated-media-rehearsal-{run_id}"
        msg = json.dumps({"ToUserName": app.get("original_id") or app["app_id"], "FromUserName": u["open_id"],
                          "CreateTime": now, "MsgType": "image", "PicUrl": "http://mmbiz.qpic.cn/rehearsal.jpg",
                          "MediaId": u["media_id"], "MsgId": secrets.randbits(62)})
        query, body = safe_push(app, msg, now)
        route = ctx.routes["wechat"]
        event = http_api_event("POST", route.replace("{app}", app["app_id"]), f"POST {route}", query, body, now,
                               {"app": app["app_id"]})
        resp = _invoke(step, procs["ingress"], event)
        if resp.get("statusCode") != 200 or _body(resp) != "success":
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:200]!r} (want 200 'success')")
        pushed += 1
        passed.append(step)

    # The hand-off: queued, then answered with a transfer that WeChat can open.
    if ctx.handoff_app and "wechat" in ctx.routes:
        step = "wechat hand-off push -> ingress (transfer_customer_service, opened)"
        app = ctx.handoff_app
        u = {"app": app, "open_id": f"oRehearsal{run_id}Handoff",
             "text": f"rehearsal {run_id} hand-off 转人工 #{secrets.token_hex(3)}", "msg_id": secrets.randbits(62)}
        msg = text_message(app["original_id"], u["open_id"], u["text"], now, u["msg_id"])
        nonce = str(secrets.randbelow(10**10))
        query, body = safe_push(app, msg, now, nonce)
        route = ctx.routes["wechat"]
        event = http_api_event("POST", route.replace("{app}", app["app_id"]), f"POST {route}", query, body, now,
                               {"app": app["app_id"]})
        resp = _invoke(step, procs["ingress"], event)
        if resp.get("statusCode") != 200:
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:200]!r} (want 200)")
        try:
            transfer = json.loads(open_reply(app, _body(resp), nonce))
        except (ValueError, KeyError, TypeError) as e:
            raise StepFailed(step, f"the reply cannot be opened as WeChat would: {e} ({_body(resp)[:200]!r})") from None
        want_fields = {"ToUserName": u["open_id"], "FromUserName": app["original_id"],
                       "MsgType": "transfer_customer_service"}
        if {k: transfer.get(k) for k in want_fields} != want_fields or abs(transfer.get("CreateTime", 0) - now) > 60:
            raise StepFailed(step, f"opened {transfer!r} (want {want_fields!r} and CreateTime now)")
        passed.append(step)
        users["handoff"] = u

    # 2. event source mapping: create (Lambda validates the queue), receive, invoke, delete
    es: EventSource = ctx.event_source
    step = "event source mapping: create"
    try:
        attrs = es.sqs.get_queue_attributes(QueueUrl=es.queue_url, AttributeNames=["All"])["Attributes"]
    except Exception as e:  # botocore ClientError and connection errors alike
        raise StepFailed(step, f"GetQueueAttributes with the processor role: {e}") from None
    visibility = int(attrs.get("VisibilityTimeout", "30"))
    if visibility < ctx.processor_timeout:
        raise StepFailed(step, f"queue VisibilityTimeout {visibility} s < processor Timeout "
                               f"{ctx.processor_timeout} s (Lambda refuses the mapping)")
    passed.append(step)

    step = "event source mapping: receive"
    want = pushed
    messages: list[dict] = []
    deadline = time.time() + 5
    while len(messages) < want and time.time() < deadline:
        try:
            got = es.sqs.receive_message(QueueUrl=es.queue_url, MaxNumberOfMessages=min(10, es.batch_size),
                                         WaitTimeSeconds=1, AttributeNames=["All"],
                                         MessageAttributeNames=["All"]).get("Messages", [])
        except Exception as e:
            raise StepFailed(step, f"ReceiveMessage with the processor role: {e}") from None
        messages += got
    if len(messages) < want:
        raise StepFailed(step, f"{len(messages)} of {want} queued pushes were in the inbound queue")
    passed.append(step)

    step = "processor (one TransactionConflict injected)"
    # DynamoDB cancels a transaction that races another on the same item; moto serialises
    # transactions, so the proxy answers the processor's first one as DynamoDB would.
    ctx.aws.inject(ctx.processor_id, "dynamodb:TransactWriteItems", 400, TRANSACTION_CONFLICT,
                   "TransactionConflict on the conversation item")
    resp = _invoke(step, procs["processor"], sqs_event(messages, es.queue_arn))
    if ctx.aws.clear_faults():
        ctx.notes.append("the processor made no TransactWriteItems call: the conflict was not injected")
    failures = (resp or {}).get("batchItemFailures") or []
    if failures:
        raise StepFailed(step, f"batch item failures {json.dumps(failures)}"
                               + procs["processor"]._tail_suffix())
    passed.append(step)

    step = "event source mapping: delete"
    # Lambda deletes with DeleteMessageBatch, which IAM authorises as sqs:DeleteMessage; moto would
    # authorise it as "sqs:DeleteMessageBatch", so the messages are deleted one by one here.
    for m in messages:
        try:
            es.sqs.delete_message(QueueUrl=es.queue_url, ReceiptHandle=m["ReceiptHandle"])
        except Exception as e:
            raise StepFailed(step, f"DeleteMessage with the processor role: {e}") from None
    passed.append(step)

    # 3. stored?
    for platform, u in users.items():
        step = f"{platform} message stored"
        where = ctx.find_item(u["text"], str(u["msg_id"]))
        if not where:
            raise StepFailed(step, f"no item holding the pushed text and MsgId {u['msg_id']} in any table of "
                                   f"the stack ({u['text']!r})")
        passed.append(step, f"in {where}")


    # 5. sends -> sender -> fake platform
    def send(step: str, u: dict) -> dict:
        payload = {"app_id": u["app"]["app_id"], "open_id": u["open_id"], "msg_type": "text",
                   "content": u["reply"], "client_msg_id": f"rehearsal-{run_id}-{u['app']['platform']}"}
        event = http_api_event("POST", ctx.send_route, f"POST {ctx.send_route}", "", json.dumps(payload), now,
                               None, iam_authorizer(ctx.caller_arn))
        return _invoke(step, procs["sender"], event)

    users.pop("handoff", None)  # stored above; nothing is sent to it
    for platform, u in users.items():
        if platform == "wechat":
            # A failed token request (e.g. a wrong AppSecret) must not send, and must leave the
            # request retryable under the same client_msg_id.
            step = "wechat send while the token endpoint fails"
            for path in TOKEN_PATHS:
                ctx.fake.inject(path, {"errcode": 40125, "errmsg": "invalid appsecret (injected)"})
            resp = send(step, u)
            unused = ctx.fake.clear_faults()
            if resp.get("statusCode", 0) < 500:
                raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:300]!r} "
                                       f"(want a 5xx: no token, nothing sent)")
            if unused == len(TOKEN_PATHS):
                raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:300]!r} without asking "
                                       f"the token endpoint (want: token request refused -> 5xx)")
            passed.append(step)
        step = f"{platform} send -> sender" + (" (retry, same client_msg_id)" if platform == "wechat" else "")
        resp = send(step, u)
        if resp.get("statusCode") != 200:
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:300]!r} (want 200)")
        passed.append(step)
        # A delivery is answered even when its record cannot be written: check the record itself.
        step = f"{platform} reply recorded"
        where = ctx.find_item(u["reply"])
        if not where:
            raise StepFailed(step, f"no outbound record holding {u['reply']!r} in any table of the stack "
                                   f"(answer: {_body(resp)[:300]!r})")
        passed.append(step, f"in {where}")
    calls = ctx.fake.take_calls()
    for platform, u in users.items():
        step = f"{platform} platform received the reply"
        hits = [c for c in calls if u["open_id"] in json.dumps(c["body"], ensure_ascii=False)
                and u["reply"] in json.dumps(c["body"], ensure_ascii=False) and c["status"] == 200
                and (c["answer"] or {}).get("errcode", 0) in (0, None) if isinstance(c["answer"], dict)]
        if len(hits) > 1:
            raise StepFailed(step, f"the fake platform got {len(hits)} sends of {u['reply']!r} (want exactly 1)")
        if not hits:
            seen = [f"{c['method']} {c['path']} -> {c['status']}" for c in calls]
            raise StepFailed(step, f"the fake platform got no send of {u['reply']!r} to {u['open_id']} "
                                   f"(calls: {seen})")
        passed.append(step)

    # 6. auto replies: the processor queued a notice for the wechat user; the sender's event source
    # mapping delivers it (after the sends above, which must find no cached token)
    if "wechat" in users and ctx.desk.get("table"):
        notice_steps(ctx, procs, users["wechat"], auto, passed)

    # 7. the desk: an operator creates the first agent; the agent signs in, accepts the
    # conversation and answers it (after the sender's steps: the desk's reply shares its token cache)
    desk_steps(ctx, procs, run_id, users, now, passed)
    return passed


def notice_steps(ctx, procs: dict, u: dict, auto: dict, passed: Steps) -> None:
    """The outbound queue through the sender, as its event source mapping runs it."""
    es: EventSource = ctx.notice_source
    step = "auto replies: the sender's mapping receives the processor's notice (outbound queue)"
    messages: list[dict] = []
    deadline = time.time() + 5
    # The text's notice and the image's (auto replies, and the image to keep).
    while len(messages) < 2 and time.time() < deadline:
        try:
            es.sqs.get_queue_attributes(QueueUrl=es.queue_url, AttributeNames=["VisibilityTimeout"])
            messages += es.sqs.receive_message(QueueUrl=es.queue_url, MaxNumberOfMessages=min(10, es.batch_size),
                                               WaitTimeSeconds=1, AttributeNames=["All"]).get("Messages", [])
        except Exception as e:
            raise StepFailed(step, f"the outbound queue with the sender role: {e}") from None
    if len(messages) < 2:
        raise StepFailed(step, f"the processor queued {len(messages)} notices for the wechat user (want 2: its "
                               f"text, its image)")
    passed.append(step)

    step = "auto replies and images: the sender sends the greeting and the away message (nobody online) and keeps the image (media/get -> bucket)"
    resp = _invoke(step, procs["sender"], sqs_event(messages, es.queue_arn))
    failures = (resp or {}).get("batchItemFailures") if isinstance(resp, dict) else None
    if failures is None or failures:
        raise StepFailed(step, f"answered {resp!r} (want no batch item failures)" + procs["sender"]._tail_suffix())
    calls = ctx.fake.take_calls()
    for kind in ("greeting", "away"):
        hits = [c for c in calls if u["open_id"] in json.dumps(c["body"], ensure_ascii=False)
                and auto[kind] in json.dumps(c["body"], ensure_ascii=False)]
        if len(hits) != 1:
            raise StepFailed(step, f"the fake platform got {len(hits)} sends of the {kind} (want 1)")
        if not ctx.find_item(auto[kind], f"auto-{kind}"):
            raise StepFailed(step, f"no outbound record of the {kind} with the agent auto-{kind}")
    if not ctx.find_item(u["media_id"], "images/wechat/"):
        raise StepFailed(step, "the image message does not say where its copy is kept (stored_media)")
    for m in messages:
        try:
            es.sqs.delete_message(QueueUrl=es.queue_url, ReceiptHandle=m["ReceiptHandle"])
        except Exception as e:
            raise StepFailed(step, f"DeleteMessage with the sender role: {e}") from None
    passed.append(step)


def desk_steps(ctx, procs: dict, run_id: str, users: dict, now: int, passed: Steps) -> None:
    """The desk as an agent uses it, through the built desk binary with its role."""
    d = ctx.desk
    if "wechat" not in users or not d.get("pool"):
        return
    app = users["wechat"]["app"]
    app_key = f"wechat#{app['app_id']}"
    user, password = f"agent-{run_id}", f"Rehearsal-{secrets.token_hex(6)}A1"
    step = "desk: operator creates the first agent (user pool + desk table)"
    try:
        d["cognito"].admin_create_user(UserPoolId=d["pool"], Username=user, MessageAction="SUPPRESS")
        d["cognito"].admin_set_user_password(UserPoolId=d["pool"], Username=user, Password=password,
                                             Permanent=True)
        sub = next(a["Value"] for a in d["cognito"].admin_get_user(UserPoolId=d["pool"], Username=user)
                   ["UserAttributes"] if a["Name"] == "sub")
        d["ddb"].put_item(TableName=d["table"], Item={
            "pk": {"S": f"agent#{sub}"}, "sk": {"S": "profile"}, "name": {"S": "Rehearsal admin"},
            "apps": {"M": {app_key: {"S": "admin"}}}, "capacity": {"N": "2"}, "active": {"N": "0"},
            "auto_accept": {"BOOL": False}, "agent_status": {"S": "offline"}, "heartbeat_at": {"N": "0"}})
        d["ddb"].put_item(TableName=d["table"], Item={
            "pk": {"S": f"app#{app_key}"}, "sk": {"S": f"agent#{sub}"}, "agent": {"S": sub},
            "role": {"S": "admin"}})
    except Exception as e:  # botocore errors of the operator's own calls
        raise StepFailed(step, f"{e}") from None
    passed.append(step)

    def call(step: str, method: str, path: str, body: dict | None, token: str | None, want) -> dict:
        """Invokes the desk with an HTTP API event of its route; `want` is a status or a test of it."""
        if path == "/desk/api/session":
            route = "POST /desk/api/session"
        elif path.startswith("/desk/api/"):
            route = "ANY /desk/api/{proxy+}"
        else:
            route = "GET /desk" if path == "/desk" else "GET /desk/{asset}"
        headers = {"authorization": f"Bearer {token}"} if token else {}
        event = http_api_event(method, path, route, "", json.dumps(body) if body is not None else "", now, None)
        event["headers"].update(headers)
        resp = _invoke(step, procs["desk"], event)
        ok = want(resp.get("statusCode", 0)) if callable(want) else resp.get("statusCode") == want
        if not ok:
            raise StepFailed(step, f"answered {resp.get('statusCode')} {_body(resp)[:300]!r} (want {want})"
                                   + procs["desk"]._tail_suffix())
        if not path.startswith("/desk/api/"):
            return {"body": _body(resp), "headers": resp.get("headers") or {}}
        try:
            return json.loads(_body(resp) or "{}")
        except ValueError:
            raise StepFailed(step, f"not JSON: {_body(resp)[:200]!r}") from None

    step = "desk: sign in (user pool, unsigned)"
    signed = call(step, "POST", "/desk/api/session", {"username": user, "password": password}, None, 200)
    token = signed.get("access_token")
    if not token:
        raise StepFailed(step, f"no access token in {signed!r}")
    passed.append(step)

    step = "desk: the agent (token checked against the pool's JWKS)"
    me = call(step, "GET", "/desk/api/me", None, token, 200)
    if me.get("id") != sub:
        raise StepFailed(step, f"answered {me!r} (want the agent {sub})")
    passed.append(step)

    step = "desk: waiting list (list index)"
    open_id = users["wechat"]["open_id"]
    waiting = call(step, "GET", f"/desk/api/apps/wechat/{app['app_id']}/waiting", None, token, 200)
    if not any((c.get("key") or {}).get("open_id") == open_id for c in waiting.get("conversations", [])):
        raise StepFailed(step, f"the pushed user's conversation is not waiting: {waiting!r}")
    passed.append(step)

    conv = f"/desk/api/conversations/wechat/{app['app_id']}/{open_id}"
    step = "desk: open the conversation (messages, send readiness)"
    view = call(step, "GET", conv, None, token, 200)
    if not any(m.get("content") == users["wechat"]["text"] for m in view.get("messages", [])) \
            or view.get("refusal") is not None:
        raise StepFailed(step, f"the view lacks the pushed text or refuses sends: {view!r}")
    passed.append(step)

    step = "desk: accept (one transaction: conversation, agent count, timeline)"
    accepted = call(step, "POST", f"{conv}/accept", None, token, 200)
    if accepted.get("assignee") != sub or accepted.get("status") != "active":
        raise StepFailed(step, f"answered {accepted!r}")
    passed.append(step)

    step = "desk: the admin adds a second agent"
    added = call(step, "PUT", f"/desk/api/apps/wechat/{app['app_id']}/agents/second-{run_id}",
                 {"name": "Second agent", "role": "agent", "capacity": 3}, token, 200)
    members = call(step, "GET", f"/desk/api/apps/wechat/{app['app_id']}/agents", None, token, 200)
    if added.get("capacity") != 3 or len(members.get("agents", [])) != 2:
        raise StepFailed(step, f"answered {added!r}, members {members!r}")
    passed.append(step)

    step = "desk: the page (same origin, its own assets only)"
    page = call(step, "GET", "/desk", None, None, 200)
    script = call(step, "GET", "/desk/desk.js", None, None, 200)
    csp = {k.lower(): v for k, v in page["headers"].items()}.get("content-security-policy", "")
    if "/desk/desk.js" not in page["body"] or "default-src 'none'" not in csp or not script["body"]:
        raise StepFailed(step, f"the page {page['body'][:120]!r} (policy {csp!r}) or its script is not served")
    passed.append(step)

    # A reply through the sender's code: the platform refuses the cached token and the token
    # endpoint fails, so nothing is sent and the request stays retryable under its key (the claim
    # abandoned); the retry is sent and recorded with the agent.
    step = "desk: reply while the token is refused and the token endpoint fails"
    reply_text = f"desk reply {run_id}"
    reply = {"msg_type": "text", "content": reply_text, "client_msg_id": f"rehearsal-{run_id}"}
    ctx.fake.inject(SEND_PATH, {"errcode": 40001, "errmsg": "invalid credential (injected)"})
    for path in TOKEN_PATHS:
        ctx.fake.inject(path, {"errcode": 40125, "errmsg": "invalid appsecret (injected)"})
    call(step, "POST", f"{conv}/messages", reply, token, lambda status: status >= 500)
    unused = ctx.fake.clear_faults()
    if unused > len(TOKEN_PATHS):
        raise StepFailed(step, "the reply never reached the platform with the cached token")
    passed.append(step)

    step = "desk: reply (retry, same client_msg_id)"
    sent = call(step, "POST", f"{conv}/messages", reply, token, 200)
    if sent.get("status") != "sent" or not isinstance(sent.get("remaining"), int):
        raise StepFailed(step, f"answered {sent!r}")
    where = ctx.find_item(reply_text, sub)
    if not where:
        raise StepFailed(step, f"no outbound record of {reply_text!r} naming the agent {sub}")
    passed.append(step, f"in {where}")

    step = "desk: quick replies (admin writes, lists, deletes)"
    quick = f"/desk/api/apps/wechat/{app['app_id']}/quick-replies"
    call(step, "PUT", f"{quick}/greet", {"shortcut": "hi", "text": "您好！"}, token, 200)
    listed = call(step, "GET", quick, None, token, 200)
    if [q.get("shortcut") for q in listed.get("quick_replies", [])] != ["hi"]:
        raise StepFailed(step, f"listed {listed!r}")
    call(step, "DELETE", f"{quick}/greet", None, token, 204)
    passed.append(step)

    step = "desk: tags (conversation and tag list in one transaction) and the tag's list"
    call(step, "PUT", f"{conv}/tags", {"tags": ["vip"]}, token, 200)
    tagged = call(step, "GET", f"/desk/api/apps/wechat/{app['app_id']}/tags/vip", None, token, 200)
    if tagged.get("count") != 1:
        raise StepFailed(step, f"the tag's list is {tagged!r}")
    untagged = call(step, "PUT", f"{conv}/tags", {"tags": []}, token, 200)
    if untagged.get("tags") != []:
        raise StepFailed(step, f"answered {untagged!r}")
    passed.append(step)

    step = "desk: the kept image through a signed URL (the desk's role reads the bucket)"
    shown = call(step, "GET", conv, None, token, 200)
    image = next((m for m in shown.get("messages", []) if m.get("media_url")), None)
    if image is None:
        raise StepFailed(step, f"no message with a media_url in {shown!r}")
    try:
        with urllib.request.urlopen(image["media_url"], timeout=10) as r:
            data = r.read()
    except Exception as e:  # urllib errors of the signed GET
        raise StepFailed(step, f"GET of the signed URL: {e}") from None
    media_id = users["wechat"]["media_id"].encode()
    if not (data.startswith(b"\x89PNG") and data.endswith(media_id)):
        raise StepFailed(step, f"the signed URL served {data[:40]!r}… (want the fake's image of {media_id!r})")
    passed.append(step)

    step = "desk: statistics (the processor's, the sender's and the desk's counts of today)"
    day = call(step, "GET", f"/desk/api/apps/wechat/{app['app_id']}/stats?days=1", None, token, 200)["days"][-1]
    if day.get("messages_in", 0) < 2 or day.get("messages_out", 0) < 3 or day.get("conversations") != 1:
        raise StepFailed(step, f"today's statistics {day!r} (want ≥ 2 messages in: the text and the image; ≥ 3 "
                               f"out: the auto replies and the desk's reply; 1 conversation accepted)")
    passed.append(step)

    # The schedule's event, as the rule delivers its Input, after the conversation has been idle
    # for an hour (the operator moves its last activity back).
    step = "desk: idle sweep (the schedule's direct invocation) hands the idle conversation back"
    try:
        d["ddb"].update_item(TableName=d["conversations"], Key={"pk": {"S": f"wechat#{app['app_id']}#{open_id}"}},
                             UpdateExpression="SET active_at = :t", ExpressionAttributeValues={":t": {"N": str(now - 3600)}})
    except Exception as e:  # botocore errors of the operator's own call
        raise StepFailed(step, f"{e}") from None
    # A direct invocation is answered with the body itself (no HTTP envelope).
    swept = _invoke(step, procs["desk"], json.loads(d["sweep_inputs"][0]))
    if not isinstance(swept, dict) or swept.get("released") != 1:
        raise StepFailed(step, f"answered {swept!r} (want released 1)" + procs["desk"]._tail_suffix())
    back = call(step, "GET", conv, None, token, 200)
    if back.get("status") != "waiting" or (back.get("messages") or [{}])[-1].get("msg_type") != "idle_released":
        raise StepFailed(step, f"the conversation after the sweep: {back!r}")
    passed.append(step)

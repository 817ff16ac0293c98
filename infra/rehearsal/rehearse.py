#!/usr/bin/env python3
"""Stack rehearsal: run the stack that `sam deploy` would create, from template.yaml itself, with the
built function binaries, against a private moto that enforces IAM.

What it does
1. Loads template.yaml (cfn-lint's decoder), applies the SAM transform (samtranslator, CodeUri replaced
   by an s3:// placeholder) and resolves every intrinsic function with the parameters at their
   defaults (AWS::StackName=kefu-rehearsal, us-east-1, account 123456789012, partition aws).
2. Starts its own moto_server with IAM enforced after bootstrapping an admin user, behind a
   recording proxy; creates the stack's tables, queues and secrets from the template's own resource
   properties and fills the registry secrets from infra/local/apps.json (test-only keys).
3. Creates each function's execution role from the transformed template (trust policy, inline and
   managed policies), assumes it and gives the function process those temporary credentials.
4. Starts each function's built binary as a process with exactly the environment the template gives
   it, plus only what Lambda itself sets and the local redirections (endpoint, platform base URLs),
   behind a fake Lambda Runtime API (runtime.py).
5. Feeds the event chain of chain.py: URL verification and signed pushes -> ingress -> inbound queue
   (received with the processor role, as the event source mapping does) -> processor -> tables ->
   POST /messages -> sender -> fake platform, with the faults that reach the code's other paths
   (a DynamoDB TransactionConflict, a failing token endpoint).
6. Enforces and checks what moto cannot (iam.py, emulator.py): resource scoping outside SQS and the
   per-item actions of DynamoDB transactions, evaluated by the recording proxy on the template's own
   statements for every call a function makes; statically, that every statement names only resources
   the function's environment or event source refers to (or its own log group), the trust policy,
   Lambda's limits on the environment (reserved names, 4 KB) and that no secret value is in any
   environment; after the baseline, that every granted (action, resource) was used.
7. Mutation mode: for every action of every statement of the three roles, reruns the chain with
   that one action removed and requires the chain to fail on a denial of that action. Actions that
   Lambda's own agents use (logs:*, xray:*) are listed, not mutated.

Exit status 0 only when the baseline chain passes, every check holds and every removal is detected.

What it is not: it does not deploy anything, talk to AWS, emulate API Gateway's SigV4 check of the
send routes (the IAM authorizer context is supplied), evaluate resource-based policies or policy
conditions, or measure performance (the binaries are debug builds).

Usage: rehearse.py [--template template.yaml] [--bin-dir DIR] [--no-mutations] [--only TEXT] [--verbose]
       (`make rehearse` builds the binaries first; --bin-dir defaults to cargo's target dir + /debug)
Needs the venv of infra/local/setup.sh (moto[server], aws-sam-cli's samtranslator, cfn-lint).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import chain  # noqa: E402
import iam  # noqa: E402
from emulator import BOOTSTRAP_CALLS, Moto, Resources  # noqa: E402
from pushes import FakePlatform  # noqa: E402
from runtime import FunctionProcess  # noqa: E402
from stack import (ACCOUNT_ID, DYNAMIC_REF, PARTITION, REGION, STACK_NAME, Stack, TemplateError,  # noqa: E402
                   managed_policy_documents, parse_secret_reference)

# What Lambda sets in every function's environment (names the template cannot set).
LAMBDA_RESERVED = {
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
}
ENV_LIMIT = 4096  # bytes, all keys and values together
# Registry fields as `kefu registry push` splits a registry: the verification part and the sending part.
VERIFY_APP = ["platform", "app_id", "original_id", "receive_id", "component_app_id", "token", "previous_token",
              "encoding_aes_key", "previous_encoding_aes_key", "mode"]
SEND_APP = ["platform", "app_id", "component_app_id", "default_user_type", "app_secret", "app_key"]
VERIFY_COMPONENT = ["platform", "component_app_id", "token", "previous_token", "encoding_aes_key",
                    "previous_encoding_aes_key"]
SEND_COMPONENT = ["platform", "component_app_id", "component_app_secret"]
SECRET_FIELDS = ["token", "previous_token", "encoding_aes_key", "previous_encoding_aes_key", "app_secret",
                 "app_key", "component_app_secret"]


def say(msg: str = "") -> None:
    print(msg, flush=True)


@dataclass
class Function:
    logical: str
    kind: str  # ingress / processor / sender / desk
    binary: str
    role: str
    name: str = ""
    timeout: int = 3
    memory: int = 128
    template_env: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    added: dict = field(default_factory=dict)  # name -> why
    resolved: dict = field(default_factory=dict)  # name -> how (dynamic references)
    log_group: str = ""
    policy: iam.RolePolicy | None = None
    creds: dict = field(default_factory=dict)
    esm_creds: dict = field(default_factory=dict)


class Rehearsal:
    def __init__(self, args):
        self.args = args
        self.problems: list[str] = []
        self.workdir = tempfile.mkdtemp(prefix="kefu-rehearsal.")
        self.apps_doc = json.load(open(args.apps))
        self.secret_values = sorted({str(a[f]) for group in ("apps", "components")
                                     for a in self.apps_doc.get(group, []) for f in SECRET_FIELDS
                                     if len(str(a.get(f) or "")) >= 8}, key=len, reverse=True)
        self.moto: Moto | None = None
        self.fake: FakePlatform | None = None
        self.functions: dict[str, Function] = {}
        self.timings: dict[str, float] = {}

    def problem(self, text: str) -> None:
        self.problems.append(text)
        say(f"  PROBLEM: {text}")

    def mask(self, value: str) -> str:
        if any(s in value for s in self.secret_values):
            return f"<{len(value)} bytes, CONTAINS SECRET VALUES>"
        return value if len(value) <= 90 else value[:87] + "..."

    # ------------------------------------------------------------------ setup
    def start_services(self) -> None:
        venv = self.args.venv
        self.moto = Moto(venv, self.workdir)  # both start in parallel
        self.fake = FakePlatform(self.args.kefu, self.workdir)
        self.moto.start()
        self.fake.start()
        say(f"moto_server 127.0.0.1:{self.moto.port} (IAM enforced after {BOOTSTRAP_CALLS} bootstrap calls: CreateUser, "
            f"PutUserPolicy, CreateAccessKey of {self.moto.admin_arn}); recording proxy {self.moto.proxy.url}")
        say(f"fake platform {self.fake.url} (kefu fake-platform behind a recording proxy)")

    def load_stack(self) -> None:
        made = {}

        def default_for(name: str, p: dict) -> str | None:
            if "secretsmanager" in str(p.get("AllowedPattern", "")) or name.endswith("SecretArn"):
                arn = self.moto.client("secretsmanager").create_secret(
                    Name=f"{STACK_NAME}/{name}", SecretString=json.dumps(self.apps_doc))["ARN"]
                self.moto.proxy.secret_arns[f"{STACK_NAME}/{name}"] = arn
                made[name] = arn
                return arn
            return None

        overrides = dict(kv.split("=", 1) for kv in self.args.param)
        t = time.perf_counter()
        self.stack = Stack.load(self.args.template, overrides, default_for)
        self.timings["template"] = time.perf_counter() - t
        say(f"template {show_path(self.args.template)}: SAM transform ok "
            f"({len(self.stack.resources)} resources; {', '.join(self.stack.replaced_uris)} -> s3:// placeholders)")
        params = ", ".join(f"{k}={v!r}" for k, v in self.stack.parameters.items())
        say(f"parameters (defaults): {params}")
        for name, arn in made.items():
            say(f"  parameter {name} has no Default: the rehearsal created secret {arn} holding "
                f"{show_path(self.args.apps)} (the whole registry) and passes its ARN")
        self.res = Resources(self.stack, self.moto)
        self.stack.physical = self.res.lookup

    def discover_functions(self) -> None:
        src = self.stack.source.get("Resources", {})
        globals_fn = self.stack.source.get("Globals", {}).get("Function", {})
        for logical in self.stack.of_type("AWS::Lambda::Function"):
            sp = (src.get(logical) or {}).get("Properties") or {}
            events = sp.get("Events") or {}
            kind = None
            for ev in events.values():
                typ, p = ev.get("Type"), ev.get("Properties") or {}
                path = str(p.get("Path", ""))
                if typ == "SQS":
                    kind = "processor"
                elif typ == "HttpApi" and re.fullmatch(r"/(wechat|baidu)/\{[^}]+\}", path):
                    kind = "ingress"
                elif typ == "HttpApi" and path == "/messages":
                    kind = "sender"
                elif typ == "HttpApi" and path.startswith("/desk/api/"):
                    kind = "desk"
            role = self.stack.resources[logical]["Properties"].get("Role")
            if not (isinstance(role, dict) and "Fn::GetAtt" in role):
                raise TemplateError(f"{logical}: Role {role!r} is not a role of the stack")
            role_logical = role["Fn::GetAtt"][0] if isinstance(role["Fn::GetAtt"], list) else \
                role["Fn::GetAtt"].split(".")[0]
            code = sp.get("CodeUri", globals_fn.get("CodeUri"))
            binary = None
            if isinstance(code, str) and os.path.exists(os.path.join(REPO, code, "Cargo.toml")):
                with open(os.path.join(REPO, code, "Cargo.toml"), "rb") as f:
                    binary = tomllib.load(f)["package"]["name"]
            if kind is None or binary is None:
                say(f"  note: {logical} is not a kefu function (no ingress/SQS/send events or no Cargo package); skipped")
                continue
            self.functions[kind] = Function(logical=logical, kind=kind, binary=binary, role=role_logical)
        for kind in ("ingress", "processor", "sender", "desk"):
            if kind not in self.functions:
                raise TemplateError(f"no {kind} function found in the template")

    def create_resources(self) -> None:
        t = time.perf_counter()
        self.res.create_all([f.role for f in self.functions.values()])
        self.timings["resources"] = time.perf_counter() - t
        say("created in moto from the template's properties:")
        for logical in self.res.created:
            typ = self.stack.resources[logical]["Type"]
            if typ == "AWS::DynamoDB::Table":
                spec = self.res.tables[logical]
                keys = ", ".join(f"{k['AttributeName']} {k['KeyType']}" for k in spec["create"]["KeySchema"])
                ttl = spec["ttl"] or {}
                extra = [f"TTL {ttl['AttributeName']}"] if str(ttl.get("Enabled", "")).lower() == "true" else []
                if spec["create"].get("DeletionProtectionEnabled"):
                    extra.append("deletion protection")
                extra.append(spec["create"].get("BillingMode", "PROVISIONED"))
                say(f"  table  {spec['create']['TableName']}  ({keys}; {'; '.join(extra)})")
            elif typ == "AWS::SQS::Queue":
                q = self.res.queues[logical]
                say(f"  queue  {q['QueueName']}  {json.dumps(q['Attributes'], sort_keys=True)}")
            elif typ == "AWS::SecretsManager::Secret":
                s = self.res.secrets[logical]
                say(f"  secret {s['arn']}  (initial {self.mask(s['initial'] or '')!r})")
            elif typ == "AWS::Cognito::UserPool":
                say(f"  pool   {self.res.phys[logical]['Ref']}  (Cognito user pool)")
            elif typ == "AWS::Cognito::UserPoolClient":
                say(f"  client {self.res.phys[logical]['Ref']}  (its app client)")
            else:
                say(f"  role   {self.res.phys[logical]['Arn']}")
        for note in self.res.notes:
            say(f"  ({note})")

    def push_registry(self) -> None:
        """Fills the stack's registry secrets: the one the ingress environment refers to gets the
        verify part, the one the sender's refers to the send part (`kefu registry push` when this
        kefu has it, else the same split done here)."""
        def referred(kind: str, variable: str) -> list[str]:
            env = ((self.stack.resources[self.functions[kind].logical].get("Properties") or {})
                   .get("Environment") or {}).get("Variables") or {}
            value = {variable: env[variable]} if variable in env else {}
            return sorted(self.stack.references(value) & set(self.res.secrets))

        # The registry parts are the secrets behind each function's registry variable (other secrets,
        # like the stack's log-hash key, are shared on purpose).
        verify = referred("ingress", "VERIFY_REGISTRY_SECRET_ID")
        send = referred("sender", "SEND_REGISTRY_SECRET_ID")
        if not verify and not send:
            say("registry: no function environment refers to a secret of the stack (nothing to fill)")
            return
        shared = set(verify) & set(send)
        if shared:
            self.problem(f"ingress and sender refer to the same secret(s) {sorted(shared)}: each function must "
                         f"read only its own part of the registry")
        if len(verify) != 1 or len(send) != 1:
            raise RuntimeError(f"expected one registry secret per function, got verify {verify}, send {send}")
        v, s = self.res.secrets[verify[0]], self.res.secrets[send[0]]
        apps = show_path(self.args.apps)
        help_ = subprocess.run([self.args.kefu, "registry", "push", "--help"], capture_output=True, text=True)
        if help_.returncode == 0 and "--verify-secret" in help_.stdout:
            env = {k: val for k, val in os.environ.items() if not k.startswith("AWS_")}
            env.update(AWS_ENDPOINT_URL=self.moto.proxy.url, AWS_REGION=REGION, AWS_DEFAULT_REGION=REGION,
                       AWS_ACCESS_KEY_ID=self.moto.admin["aws_access_key_id"],
                       AWS_SECRET_ACCESS_KEY=self.moto.admin["aws_secret_access_key"])
            r = subprocess.run([self.args.kefu, "registry", "push", self.args.apps, "--verify-secret", v["arn"],
                                "--send-secret", s["arn"]], env=env, capture_output=True, text=True, timeout=60)
            if r.returncode != 0:
                raise RuntimeError(f"kefu registry push failed ({r.returncode}): {(r.stdout + r.stderr)[-800:]}")
            say(f"registry: kefu registry push {apps} --verify-secret {v['name']} --send-secret {s['name']}")
            for line in r.stdout.strip().splitlines():
                say(f"  {line}")
            return

        def part(fields_app, fields_comp):
            return {"apps": [{k: a[k] for k in fields_app if k in a} for a in self.apps_doc.get("apps", [])],
                    "components": [{k: c[k] for k in fields_comp if k in c}
                                   for c in self.apps_doc.get("components", [])]}

        sm = self.moto.client("secretsmanager")
        for which, sec in (("verify", v), ("send", s)):
            doc = part(VERIFY_APP, VERIFY_COMPONENT) if which == "verify" else part(SEND_APP, SEND_COMPONENT)
            sm.put_secret_value(SecretId=sec["arn"], SecretString=json.dumps(doc))
            fields = sorted({k for a in doc["apps"] for k in a})
            say(f"registry: {which} part of {apps} -> {sec['name']} (fields {', '.join(fields)}; "
                f"split here: this kefu has no `registry push --verify-secret`)")

    # ------------------------------------------------------------------ functions and IAM
    def resolve_dynamic(self, fn: Function, name: str, value: str) -> str:
        def repl(m):
            kind, body = m.group(1), m.group(2)
            if kind != "secretsmanager":
                raise TemplateError(f"{fn.logical}.{name}: {{{{resolve:{kind}:…}}}} is not supported")
            ref = parse_secret_reference(body)
            kw = {"SecretId": ref["secret_id"]}
            if ref["version_id"]:
                kw["VersionId"] = ref["version_id"]
            elif ref["stage"]:
                kw["VersionStage"] = ref["stage"]
            text = self.moto.client("secretsmanager").get_secret_value(**kw)["SecretString"]
            if ref["json_key"]:
                text = str(json.loads(text)[ref["json_key"]])
            fn.resolved[name] = (f"{{{{resolve:secretsmanager:…}}}}: CloudFormation puts the secret's value "
                                 f"into the variable at deploy time; read here from {ref['secret_id']}")
            return text

        return DYNAMIC_REF.sub(repl, value)

    def prepare_functions(self) -> None:
        docs = managed_policy_documents()
        say("")
        say("== functions: the environment exactly as the template gives it (intrinsics resolved)")
        for fn in self.functions.values():
            props = self.stack.properties(fn.logical)
            fn.name = props.get("FunctionName", fn.logical)
            fn.timeout = int(props.get("Timeout", 3))
            fn.memory = int(props.get("MemorySize", 128))
            fn.log_group = (props.get("LoggingConfig") or {}).get("LogGroup") or f"/aws/lambda/{fn.name}"
            raw = ((props.get("Environment") or {}).get("Variables")) or {}
            fn.template_env = {k: self.resolve_dynamic(fn, k, str(iam_str(v))) for k, v in raw.items()}
            fn.policy = iam.role_policy(self.stack, fn.role, docs)
            for n in fn.policy.notes:
                self.problem(f"{fn.logical}: {n}")
            log_cfg = props.get("LoggingConfig") or {}
            lam = {
                "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION, "AWS_LAMBDA_FUNCTION_NAME": fn.name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(fn.memory), "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand", "AWS_LAMBDA_LOG_GROUP_NAME": fn.log_group,
                "AWS_LAMBDA_LOG_STREAM_NAME": time.strftime("%Y/%m/%d/[$LATEST]") + "0123456789abcdef",
                "_HANDLER": props.get("Handler", "bootstrap"), "LAMBDA_TASK_ROOT": "/var/task",
                "LAMBDA_RUNTIME_DIR": "/var/runtime", "TZ": ":UTC", "LANG": "en_US.UTF-8",
                "PATH": "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            }
            if log_cfg.get("LogFormat"):
                lam["AWS_LAMBDA_LOG_FORMAT"] = log_cfg["LogFormat"]
            if log_cfg.get("ApplicationLogLevel"):
                lam["AWS_LAMBDA_LOG_LEVEL"] = log_cfg["ApplicationLogLevel"]
            if (props.get("TracingConfig") or {}).get("Mode") == "Active":
                lam.update(AWS_XRAY_CONTEXT_MISSING="LOG_ERROR", AWS_XRAY_DAEMON_ADDRESS="169.254.79.129:2000",
                           _AWS_XRAY_DAEMON_ADDRESS="169.254.79.129", _AWS_XRAY_DAEMON_PORT="2000")
            redirect = {"AWS_ENDPOINT_URL": (self.moto.proxy.url, "the emulator (moto behind the recording "
                                                                  "proxy) instead of the AWS endpoints")}
            if fn.kind in ("sender", "desk"):  # the desk's replies go through the sender's code
                for v in ("WECHAT_API_BASE", "BAIDU_API_BASE"):
                    redirect[v] = (self.fake.url, "the fake platform instead of the real send APIs")
            if fn.kind == "desk":
                pools = list(self.res.pools.values())
                if len(pools) != 1:
                    raise TemplateError(f"expected one Cognito user pool for the desk, found {len(pools)}")
                redirect["DESK_JWKS_URL"] = (f"http://127.0.0.1:{self.moto.port}/{pools[0]}/.well-known/jwks.json",
                                             "the emulator's JWKS of the pool instead of the issuer's")
            # Credentials come from the assumed role (assume_roles).
            fn.env = {**fn.template_env, **lam, **{k: v for k, (v, _) in redirect.items()}}
            for k, (_, why) in redirect.items():
                fn.added[k] = why
            say(f"{fn.logical} ({fn.kind}; binary {fn.binary}; role {fn.role}; Timeout {fn.timeout} s; "
                f"{fn.memory} MB)")
            for k, v in fn.template_env.items():
                say(f"  template  {k}={self.mask(v)}" + (f"  ({fn.resolved[k]})" if k in fn.resolved else ""))
            say(f"  Lambda    {' '.join(sorted(lam))} AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN "
                f"AWS_LAMBDA_RUNTIME_API")
            for k, why in fn.added.items():
                say(f"  added     {k}={fn.env[k]}  ({why})")
            self.static_env_checks(fn)

    def static_env_checks(self, fn: Function) -> None:
        bad = sorted(set(fn.template_env) & LAMBDA_RESERVED)
        if bad:
            self.problem(f"{fn.logical}: the template sets reserved variables {bad} (Lambda rejects the deploy)")
        size = sum(len(k) + len(v) for k, v in fn.template_env.items())
        if size > ENV_LIMIT:
            self.problem(f"{fn.logical}: environment is {size} bytes, over Lambda's {ENV_LIMIT}-byte limit")
        leaked = sorted(k for k, v in fn.template_env.items() if any(s in v for s in self.secret_values))
        if leaked:
            self.problem(f"{fn.logical}: secret values of the registry in environment variable(s) "
                         f"{', '.join(leaked)} (readable with lambda:GetFunctionConfiguration)")

    def allowed_arns(self, fn: Function) -> tuple[set[str], set[str]]:
        """ARNs the function may be granted: resources its environment or event source refers to,
        and its own log group. Returns (resource ARNs, log-group ARN patterns)."""
        values = set(fn.template_env.values())
        arns: set[str] = set()
        for logical, p in self.res.phys.items():
            typ = self.stack.resources[logical]["Type"]
            if typ == "AWS::IAM::Role":
                continue
            refs = {str(v) for k, v in p.items()}
            if refs & values:
                arn = p.get("Arn") or p.get("Ref")
                arns.add(arn)
                if typ == "AWS::DynamoDB::Table":
                    arns.add(f"{arn}/index/*")
                    for index in (self.res.tables.get(logical, {}).get("create") or {}).get(
                            "GlobalSecondaryIndexes") or []:
                        arns.add(f"{arn}/index/{index['IndexName']}")
        for logical in self.stack.of_type("AWS::Lambda::EventSourceMapping"):
            p = self.stack.properties(logical)
            if p.get("FunctionName") in (fn.name, self.res.lookup(fn.logical, "Arn")):
                arns.add(p["EventSourceArn"])
        lg = f"arn:{PARTITION}:logs:{REGION}:{ACCOUNT_ID}:log-group:{fn.log_group}"
        return arns, {lg, f"{lg}:*", f"{lg}:log-stream:*"}

    def static_iam_checks(self) -> None:
        say("")
        say("== IAM: each role's statements (transformed template) and the copy moto enforces")
        for fn in self.functions.values():
            p = fn.policy
            say(f"{fn.role} ({fn.logical})")
            if iam.trust_allows_lambda(p.trust):
                say("  trust     lambda.amazonaws.com may sts:AssumeRole (checked here; moto's copy adds the "
                    "rehearsal admin as a principal, since the admin plays Lambda's part)")
            else:
                self.problem(f"{fn.role}: the trust policy does not let lambda.amazonaws.com assume the role")
            allowed, log_arns = self.allowed_arns(fn)
            for s in p.statements:
                say(f"  {s.label():48s} {s.effect} {', '.join(s.actions)}")
                say(f"  {'':48s}   on {', '.join(s.resources)}")
                if s.effect != "Allow":
                    continue
                broad_logs = [a for a in s.actions if iam.service_of(a) == "logs" and "*" in s.resources]
                if broad_logs:
                    say(f"  {'':48s}   note: {', '.join(broad_logs)} on * (broader than the function's log "
                        f"group {fn.log_group}; Lambda's agent uses it, not the code: not mutated)")
                for a in s.actions:
                    svc = iam.service_of(a)
                    for r in s.resources:
                        if svc == "xray" and r == "*":
                            continue  # X-Ray has no resource-level permissions
                        if svc == "logs":
                            if r != "*" and r not in log_arns:
                                self.problem(f"{fn.role} {s.label()}: {a} on {r}, not the function's log group")
                            continue
                        if r == "*":
                            same = sorted(x for x in allowed if x.split(":")[2] == svc and "/index/" not in x)
                            self.problem(f"{fn.role} {s.label()}: {a} on Resource \"*\" (the function refers "
                                         f"to {', '.join(same) or f'no {svc} resource'})")
                        elif r not in allowed and not any(
                                r.startswith(f"{b}/") for b in allowed if b.startswith(f"arn:{PARTITION}:s3:::")):
                            # (An object ARN is allowed under a bucket the function refers to.)
                            self.problem(f"{fn.role} {s.label()}: {a} on {r}, a resource the function's "
                                         f"environment and event source do not refer to")
                        elif r.split(":")[2] != svc:
                            self.problem(f"{fn.role} {s.label()}: {a} on {r} (another service's resource)")
            docs, lines = iam.moto_documents(p)
            for line in lines:
                say(f"  moto      {line}")

    def put_moto_policy(self, fn: Function, policy: iam.RolePolicy) -> None:
        docs, _ = iam.moto_documents(policy)
        client = self.moto.client("iam")
        role = self.res.phys[fn.role]["Ref"]
        if docs:
            client.put_role_policy(RoleName=role, PolicyName="rehearsal-moto-copy", PolicyDocument=json.dumps(
                {"Version": "2012-10-17", "Statement": docs}))
        else:
            try:
                client.delete_role_policy(RoleName=role, PolicyName="rehearsal-moto-copy")
            except Exception:
                pass
        self.moto.proxy.policies[fn.logical] = policy
        self.moto.proxy.policies[f"{fn.logical} event source mapping"] = policy

    def assume_roles(self) -> None:
        sts = self.moto.client("sts")
        for fn in self.functions.values():
            self.put_moto_policy(fn, fn.policy)
            arn = self.res.phys[fn.role]["Arn"]
            for session, who in ((fn.name[:64], fn.logical), ("lambda-event-source-mapping",
                                                               f"{fn.logical} event source mapping")):
                c = sts.assume_role(RoleArn=arn, RoleSessionName=session, DurationSeconds=3600)["Credentials"]
                creds = {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"],
                         "aws_session_token": c["SessionToken"]}
                self.moto.proxy.identities[c["AccessKeyId"]] = who
                self.moto.proxy.principals[who] = f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/{self.res.phys[fn.role]['Ref']}/{session}"
                if who == fn.logical:
                    fn.creds = creds
                else:
                    fn.esm_creds = creds
            fn.env.update(AWS_ACCESS_KEY_ID=fn.creds["aws_access_key_id"],
                          AWS_SECRET_ACCESS_KEY=fn.creds["aws_secret_access_key"],
                          AWS_SESSION_TOKEN=fn.creds["aws_session_token"])
        # Enforcement self-test: an assumed role must be refused what its policy does not grant.
        probe = self.moto.client("sqs", self.functions["ingress"].creds)
        try:
            probe.list_queues()
        except Exception as e:
            if "AccessDenied" not in str(e):
                raise
        else:
            raise RuntimeError("moto let an assumed role call sqs:ListQueues, which no policy grants: "
                               "IAM is not enforced")
        self.moto.proxy.take_calls()
        say("")
        say("roles assumed (sts:AssumeRole with the admin's credentials); each process gets its role's "
            "temporary credentials, the event source mapping a second session of the processor role; "
            "self-test: an assumed role is refused sqs:ListQueues")

    def chain_context(self):
        st = self.stack
        src = st.source.get("Resources", {})
        proc = self.functions["processor"]
        esm = None
        for logical in st.of_type("AWS::Lambda::EventSourceMapping"):
            p = st.properties(logical)
            if p.get("FunctionName") in (proc.name, self.res.lookup(proc.logical, "Arn")):
                esm = p
        if esm is None:
            raise TemplateError(f"{proc.logical} has no event source mapping")
        queue = next(lg for lg, ph in self.res.phys.items() if ph.get("Arn") == esm["EventSourceArn"])
        ctx = type("Ctx", (), {})()
        ctx.apps = {}
        for platform in ("wechat", "baidu"):
            app = next((a for a in self.apps_doc["apps"] if a["platform"] == platform), None)
            if app:
                ctx.apps[platform] = app
        # The app that hands user messages to WeChat's tool, when the registry has one.
        ctx.handoff_app = next((a for a in self.apps_doc["apps"]
                                if a["platform"] == "wechat" and a.get("handoff") == "wechat_tool"), None)
        ctx.routes = {}
        for ev in ((src.get(self.functions["ingress"].logical) or {}).get("Properties") or {}).get("Events", {}).values():
            p = ev.get("Properties") or {}
            m = re.fullmatch(r"/(wechat|baidu)/\{([^}]+)\}", str(p.get("Path", "")))
            if ev.get("Type") == "HttpApi" and m and str(p.get("Method", "")).upper() == "POST":
                ctx.routes[m.group(1)] = p["Path"].replace("{" + m.group(2) + "}", "{app}")
        for platform in list(ctx.apps):
            if platform not in ctx.routes:
                self.problem(f"no POST /{platform}/{{app}} route on {self.functions['ingress'].logical}")
                del ctx.apps[platform]
        ctx.send_route = "/messages"
        # The desk: its user pool and client as created from the template, and the admin clients an
        # operator uses to create the first agent (a user in the pool, a profile in the desk table).
        desk_env = self.functions["desk"].template_env
        ctx.desk = {"pool": desk_env.get("DESK_USER_POOL_ID"), "client": desk_env.get("DESK_CLIENT_ID"),
                    "table": desk_env.get("DESK_TABLE"), "conversations": desk_env.get("CONVERSATIONS_TABLE"),
                    "cognito": self.moto.client("cognito-idp"),
                    "ddb": self.moto.client("dynamodb")}
        # The idle sweep's schedule: the rule's Input is the event the function is invoked with.
        desk_events = ((src.get(self.functions["desk"].logical) or {}).get("Properties") or {}).get("Events", {})
        ctx.desk["sweep_inputs"] = [(ev.get("Properties") or {}).get("Input") for ev in desk_events.values()
                                    if ev.get("Type") == "Schedule"]
        if len(ctx.desk["sweep_inputs"]) != 1 or not ctx.desk["sweep_inputs"][0]:
            self.problem(f"the desk function needs one Schedule event with an Input (the idle sweep); "
                         f"found {ctx.desk['sweep_inputs']}")
        if not ctx.desk["table"] or not ctx.desk["pool"] or not ctx.desk["client"]:
            self.problem(f"the desk function's table, user pool or client is missing ({ctx.desk})")
        ctx.caller_arn = f"arn:{PARTITION}:sts::{ACCOUNT_ID}:assumed-role/kefu-agent/rehearsal"
        ctx.fake = self.fake
        ctx.aws = self.moto.proxy
        ctx.processor_id = proc.logical
        ctx.notes = []
        ctx.processor_timeout = proc.timeout
        # The sender's mapping on the outbound queue (auto-reply notices).
        snd = self.functions["sender"]
        notice_esm = next((st.properties(lg) for lg in st.of_type("AWS::Lambda::EventSourceMapping")
                           if st.properties(lg).get("FunctionName") in (snd.name, self.res.lookup(snd.logical, "Arn"))),
                          None)
        if notice_esm is None:
            raise TemplateError(f"{snd.logical} has no event source mapping (the outbound queue)")
        notice_queue = next(lg for lg, ph in self.res.phys.items() if ph.get("Arn") == notice_esm["EventSourceArn"])
        ctx.notice_source = chain.EventSource(
            queue_url=self.res.phys[notice_queue]["Ref"], queue_arn=notice_esm["EventSourceArn"],
            batch_size=int(notice_esm.get("BatchSize", 10)),
            report_failures="ReportBatchItemFailures" in (notice_esm.get("FunctionResponseTypes") or []),
            sqs=self.moto.client("sqs", snd.esm_creds))
        ctx.event_source = chain.EventSource(
            queue_url=self.res.phys[queue]["Ref"], queue_arn=esm["EventSourceArn"],
            batch_size=int(esm.get("BatchSize", 10)),
            report_failures="ReportBatchItemFailures" in (esm.get("FunctionResponseTypes") or []),
            sqs=self.moto.client("sqs", proc.esm_creds))
        tables = [self.res.tables[lg]["create"]["TableName"] for lg in self.res.tables]
        ddb = self.moto.client("dynamodb")

        def find_item(*values: str):
            """The stored message: an item holding all `values` (its text and MsgId), in any table."""
            for t in tables:
                for page in ddb.get_paginator("scan").paginate(TableName=t):
                    for item in page["Items"]:
                        doc = json.dumps(item, ensure_ascii=False)
                        if all(v in doc for v in values):
                            key = " ".join(f"{k}={list(item[k].values())[0]}" for k in ("pk", "sk") if k in item)
                            return f"{t} {key}"
            return None

        ctx.find_item = find_item
        self.ctx = ctx
        pushes = ", ".join(f"{p} {a['app_id']} (POST {ctx.routes[p]})" for p, a in ctx.apps.items())
        say(f"chain: pushes for {pushes}; "
            f"event source {esm['EventSourceArn']} (BatchSize {ctx.event_source.batch_size}"
            f"{', ReportBatchItemFailures' if ctx.event_source.report_failures else ''}); send POST {ctx.send_route}")

    # ------------------------------------------------------------------ runs
    def run_once(self, run_id: str, fresh: bool) -> tuple[bool, list[str], str, str, list]:
        """One chain run with fresh processes: (passed, steps passed, failed step, detail, calls)."""
        if not fresh:
            self.res.reset_data()
        self.moto.proxy.take_calls()
        self.fake.take_calls()
        procs = {}
        for kind, fn in self.functions.items():
            binary = os.path.join(self.args.bin_dir, fn.binary)
            procs[kind] = FunctionProcess(fn.logical, binary, fn.env, fn.timeout,
                                          self.res.lookup(fn.logical, "Arn"),
                                          os.path.join(self.workdir, f"{run_id}-{kind}.log"))
        passed = chain.Steps()
        try:
            for p in procs.values():
                p.start()
            chain.run(self.ctx, procs, run_id, passed)
            return True, passed, "", "", self.moto.proxy.take_calls()
        except chain.StepFailed as e:
            return False, passed, e.step, e.detail, self.moto.proxy.take_calls()
        finally:
            for p in procs.values():
                p.close()
            self.moto.proxy.clear_faults()
            self.fake.clear_faults()

    def check_calls(self, calls) -> None:
        """Every call the functions made, against the template's statements (resource-level)."""
        used: dict[str, list] = {fn.logical: [] for fn in self.functions.values()}
        say("")
        say("== calls the functions made (recorded by the proxy; resource-level check against the template)")
        seen = {}
        for c in calls:
            fn = next((f for f in self.functions.values() if c.who in (f.logical, f"{f.logical} event source mapping")),
                      None)
            if fn is None:
                continue
            if c.denied:
                self.problem(f"{c.who}: {c.action} was denied during the baseline ({c.message})")
                continue
            for action, arn in c.targets:
                if action == "sts:GetCallerIdentity":
                    continue
                used[fn.logical].append((action, arn))
                key = (c.who, action, arn, c.action if c.action != action else "")
                seen[key] = seen.get(key, 0) + 1
                if not fn.policy.evaluate(action, arn):
                    self.problem(f"{c.who}: {action} on {arn} succeeded in moto, but the template's policy "
                                 f"does not grant it for that resource (AWS would deny it)")
        for (who, action, arn, via), n in sorted(seen.items()):
            say(f"  {who:40s} {action:30s} {arn.split(':', 5)[-1]:44s} x{n}"
                f"{'  (item of ' + via + ')' if via else ''}")
        self.transaction_lines(calls)
        for fn in self.functions.values():
            for s in fn.policy.statements:
                if s.effect != "Allow" or s.not_action or s.not_resource:
                    continue
                for a in s.actions:
                    if iam.service_of(a) in iam.NOT_EXERCISED:
                        continue
                    for r in s.resources:
                        if not any(iam.action_matches(a, ua) and iam.resource_matches(r, uarn)
                                   for ua, uarn in used[fn.logical]):
                            self.problem(f"{fn.role} {s.label()}: {a} on {r} is granted but the chain never "
                                         f"used it there")

    def transaction_lines(self, calls) -> None:
        shapes = {}
        for c in calls:
            if c.action in iam.COMPOSITE and not c.denied:
                shape = " + ".join(f"{a.split(':')[1]} on {arn.split('/')[-1]}" for a, arn in c.targets)
                shapes[(c.who, c.action, shape)] = shapes.get((c.who, c.action, shape), 0) + 1
        for (who, action, shape), n in shapes.items():
            say(f"  mapping: {who} {action} = {shape} (x{n}): moto is given {action}, each item is "
                f"authorised against the template's statements")

    def mutations(self) -> list[tuple]:
        out = []
        for fn in self.functions.values():
            for s in fn.policy.statements:
                if s.effect != "Allow" or s.not_action:
                    continue
                for a in s.actions:
                    if iam.service_of(a) in iam.NOT_EXERCISED:
                        continue
                    if self.args.only and self.args.only not in f"{fn.logical} {s.label()} {a}":
                        continue
                    out.append((fn, s, a))
        return out

    def run_mutations(self) -> int:
        muts = self.mutations()
        say("")
        say(f"== mutation runs: {len(muts)} permission removals, each must make the chain fail on its denial")
        skipped = sorted({f"{a} ({fn.logical})" for fn in self.functions.values() for s in fn.policy.statements
                          for a in s.actions if iam.service_of(a) in iam.NOT_EXERCISED})
        if skipped:
            say(f"  not mutated (used by Lambda itself, not by the code): {', '.join(skipped)}")
        rows = []
        undetected = 0
        t0 = time.perf_counter()
        for i, (fn, s, a) in enumerate(muts, 1):
            mutated = fn.policy.without(s, a)
            self.put_moto_policy(fn, mutated)
            t = time.perf_counter()
            ok, _, step, detail, calls = self.run_once(f"m{i:02d}", fresh=False)
            dt = time.perf_counter() - t
            self.put_moto_policy(fn, fn.policy)
            denial = next((c for c in calls if c.denied and iam.action_matches(a, c.denied)
                           and c.who.startswith(fn.logical)), None)
            if ok:
                verdict = "NOT DETECTED: the chain passed (unused or unenforced permission)"
                undetected += 1
            elif denial is None:
                verdict = f"failed at '{step}' but without a denial of {a}: {detail.splitlines()[0][:160]}"
                undetected += 1
            else:
                verdict = f"detected at '{step}' ({denial.who}: AccessDenied {a})"
                if self.args.verbose:
                    verdict += "\n      " + detail.replace("\n", "\n      ")
            rows.append((fn.logical, s.label(), a, verdict, dt))
            say(f"  {fn.logical:18s} {s.label():44s} -{a:30s} {verdict}  [{dt:.1f} s]")
        self.timings["mutations"] = time.perf_counter() - t0
        if undetected:
            for fn_l, label, a, verdict, _ in rows:
                if not verdict.startswith("detected"):
                    self.problem(f"{fn_l} {label}: removing {a}: {verdict}")
        return len(muts)

    # ------------------------------------------------------------------ main
    def not_enforced(self) -> list[str]:
        """What moto does not enforce, and what the rehearsal does about it."""
        present = {iam.service_of(a) for fn in self.functions.values() if fn.policy
                   for s in fn.policy.statements for a in s.actions}
        out = [f"{svc}:* ({why}; listed, not mutated)" for svc, why in iam.NOT_EXERCISED.items() if svc in present]
        scoped = sorted(present - iam.RESOURCE_ENFORCED - set(iam.NOT_EXERCISED))
        if scoped:
            out.append(f"resource scoping for {', '.join(scoped)} (moto authorises those against \"*\": enforced "
                       f"by the rehearsal's proxy on the template's statements, and checked statically)")
        out.append("per-item authorisation of DynamoDB transactions and batches (moto checks one action, "
                   "dynamodb:TransactWriteItems; the proxy checks each item as AWS does: "
                   + iam.composite_mapping() + ", on the item's table)")
        out.append("the trust policy's Service principal (checked statically)")
        if any(s.condition for fn in self.functions.values() if fn.policy for s in fn.policy.statements):
            out.append("policy Conditions (present in the template, not evaluated)")
        out.append("resource-based policies and API Gateway's SigV4 check of the send routes (not emulated)")
        return out

    def run(self) -> int:
        t_all = time.perf_counter()
        try:
            self.start_services()
            self.load_stack()
            self.discover_functions()
            self.create_resources()
            self.push_registry()
            self.prepare_functions()
            self.static_iam_checks()
            self.assume_roles()
            self.chain_context()
            say("")
            say("== baseline chain")
            t = time.perf_counter()
            ok, passed, step, detail, calls = self.run_once("base", fresh=True)
            self.timings["baseline"] = time.perf_counter() - t
            if ok:
                for p, dt in zip(passed, passed.times):
                    detail = passed.details.get(p, "")
                    say(f"  ok   {p:56s} {dt * 1000:6.0f} ms  {detail}".rstrip())
                for note in self.ctx.notes:
                    say(f"  note: {note}")
                say(f"  baseline chain passed in {self.timings['baseline']:.1f} s (processes started fresh, "
                    f"data of a fresh stack)")
                self.check_calls(calls)
            else:
                for p in passed:
                    say(f"  ok   {p}")
                for c in calls:
                    if c.denied:
                        say(f"  denied: {c.who} {c.action} ({c.message})")
                say(f"  FAILED at step '{step}':")
                say("    " + detail.replace("\n", "\n    "))
                self.problems.insert(0, f"baseline chain failed at '{step}'")
            n_mut = 0
            if ok and not self.args.no_mutations:
                n_mut = self.run_mutations()
            elif not ok:
                say("")
                say("mutation runs skipped: the baseline chain must pass first")
        except (TemplateError, RuntimeError) as e:
            self.problems.insert(0, str(e))
            say(f"rehearsal: cannot run the stack: {e}")
            ok, n_mut = False, 0
        except Exception as e:  # a bug or an emulator failure: show where, still clean up
            import traceback

            traceback.print_exc()
            self.problems.insert(0, f"rehearsal error: {type(e).__name__}: {e}")
            ok, n_mut = False, 0
        finally:
            for x in (self.fake, self.moto):
                if x is not None:
                    x.close()
        total = time.perf_counter() - t_all
        if self.functions:
            say("")
            say("not enforced by moto: " + "; ".join(self.not_enforced()))
        timing = f"total {total:.1f} s" + "".join(
            f", {k} {v:.1f} s" for k, v in self.timings.items() if k in ("baseline", "mutations"))
        if self.problems:
            say(f"rehearsal: FAILED ({len(self.problems)} problem(s); {timing}; logs kept in {self.workdir})")
            for p in self.problems:
                say(f"  - {p}")
            return 1
        shutil.rmtree(self.workdir, ignore_errors=True)
        removals = f"{n_mut} permission removals all detected" if n_mut else "mutation runs not requested"
        short = [x.split(" (")[0] for x in self.not_enforced()[:3]]
        say(f"rehearsal: chain passed; {removals}; not enforced by moto: {'; '.join(short)} "
            f"(see above); {timing}")
        return 0


def show_path(path: str) -> str:
    """A path relative to the repository when it is inside it."""
    rel = os.path.relpath(os.path.abspath(path), REPO)
    return path if rel.startswith("..") else rel


def iam_str(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    return v


def target_dir() -> str:
    try:
        out = subprocess.run([os.environ.get("CARGO", "cargo"), "metadata", "--format-version", "1", "--no-deps"],
                             cwd=REPO, capture_output=True, text=True, timeout=60)
        return json.loads(out.stdout)["target_directory"]
    except (OSError, ValueError, KeyError, subprocess.TimeoutExpired):
        return os.environ.get("CARGO_TARGET_DIR") or os.path.join(REPO, "target")


def main() -> int:
    ap = argparse.ArgumentParser(description="Stack rehearsal: template.yaml + built binaries + moto with IAM")
    ap.add_argument("--template", default=os.path.join(REPO, "template.yaml"))
    ap.add_argument("--apps", default=os.path.join(REPO, "infra", "local", "apps.json"),
                    help="registry file (test-only keys) for the registry secrets")
    ap.add_argument("--bin-dir", default=None,
                    help="where the built binaries are (default: cargo's target directory + /debug)")
    ap.add_argument("--kefu", default=None, help="the kefu binary (default: BIN_DIR/kefu)")
    ap.add_argument("--venv", default=os.environ.get("KEFU_VENV") or os.path.join(REPO, ".venv"))
    ap.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                    help="override a template parameter")
    ap.add_argument("--no-mutations", action="store_true", help="only the baseline chain and the checks")
    ap.add_argument("--verbose", action="store_true", help="print how each mutation run failed")
    ap.add_argument("--only", default="", help="run only the mutations whose 'function statement action' "
                                               "contains this text")
    args = ap.parse_args()
    # SIGTERM (make interrupted, CI timeout) cleans up like Ctrl-C; the children also get the
    # parent-death signal if this process is killed outright.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # The rehearsal talks to its own emulator only: no profile, endpoint or credential of the shell.
    for k in [k for k in os.environ if k.startswith("AWS_")]:
        del os.environ[k]
    os.environ["AWS_DEFAULT_REGION"] = REGION
    args.bin_dir = args.bin_dir or os.path.join(target_dir(), "debug")
    args.kefu = args.kefu or os.path.join(args.bin_dir, "kefu")
    if not os.access(os.path.join(args.venv, "bin", "moto_server"), os.X_OK):
        print(f"rehearsal: {args.venv}/bin/moto_server not found; run infra/local/setup.sh (or set KEFU_VENV)",
              file=sys.stderr)
        return 2
    for b in ("ingress", "processor", "sender"):
        if not os.access(os.path.join(args.bin_dir, b), os.X_OK):
            print(f"rehearsal: {os.path.join(args.bin_dir, b)} not found; build first: "
                  "cargo build --locked -p ingress -p processor -p sender -p kefu --bins", file=sys.stderr)
            return 2
    return Rehearsal(args).run()


if __name__ == "__main__":
    sys.exit(main())

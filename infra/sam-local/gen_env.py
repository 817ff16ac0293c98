#!/usr/bin/env python3
"""Generate infra/sam-local/env.json (`sam local invoke|start-api --env-vars`) from template.yaml.

One key per function of the template (its logical ID), holding exactly that function's variables
(Globals + its own), with the values a deploy would give it, resolved for the local loop of `make dev`:

* the stack name is `kefu-dev` (`make dev` creates its tables and queues with the prefix `kefu-dev-`),
  so tables are `kefu-dev-<name>`, the registry secrets `kefu-dev/registry/verify` and
  `kefu-dev/registry/send` (created in the emulator by `make dev`), KEFU_SERVICE `kefu-dev`;
* a queue is its URL, https://sqs.us-east-1.amazonaws.com/123456789012/kefu-dev-<name> (moto's
  account); the SDK sends every request to AWS_ENDPOINT_URL and moto finds the queue by the URL's last
  path segment, so the host part is never contacted;
* parameters take their defaults; LOCAL_OVERRIDES replaces a few values for local runs (below).

SAM CLI passes a container only the variables the template declares, so the local-only ones
(AWS_ENDPOINT_URL, WECHAT_API_BASE, BAIDU_API_BASE) cannot come from env.json. `--local-template` writes
a copy of a built template (.aws-sam/build/template.yaml) that also declares them; SAM then takes their
values from the shell (`. <state>/env` of `make dev` exports them):

    python infra/sam-local/gen_env.py --local-template .aws-sam/build/template.yaml .aws-sam/build/template.local.json
    sam local invoke IngressFunction -t .aws-sam/build/template.local.json \\
        --env-vars infra/sam-local/env.json --docker-network host -e events/ingress/wechat_text_safe_json.json

(`--docker-network host`: the emulator listens on 127.0.0.1 only.) Other modes:

    python infra/sam-local/gen_env.py            # rewrite infra/sam-local/env.json
    python infra/sam-local/gen_env.py --check    # exit 1 when the file is stale or its keys differ
    python infra/sam-local/gen_env.py --stdout

Exit 2 when the template cannot be read or a value cannot be resolved.
"""

import argparse
import difflib
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_OUT = ROOT / "infra/sam-local/env.json"
STACK_NAME = "kefu-dev"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
PSEUDO = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
# Local values that differ from a deploy's: the signed fixtures under events/ carry a fixed timestamp,
# so the replay guard is off locally.
LOCAL_OVERRIDES = {"REPLAY_WINDOW_SECS": "0"}
# Declared by --local-template only (never in template.yaml); SAM reads their values from the shell.
LOCAL_ONLY_VARIABLES = ["AWS_ENDPOINT_URL", "WECHAT_API_BASE", "BAIDU_API_BASE"]
# Resources whose id the service generates (a user pool's `us-east-1_…`, a client's, a bucket's
# name): no value can be derived, so env.json carries this placeholder and `make dev`'s env file has
# the real ones (DESK_USER_POOL_ID, DESK_CLIENT_ID, DESK_ISSUER, MEDIA_BUCKET); put them in a copy
# of env.json to run the desk.
GENERATED_ID = "<from make dev's env file>"
GENERATED_ID_TYPES = {"AWS::Cognito::UserPool", "AWS::Cognito::UserPoolClient", "AWS::S3::Bucket"}
# The property that names each resource type (what !Ref of it resolves to, before the queue URL rule).
NAME_PROPERTY = {
    "AWS::DynamoDB::Table": "TableName",
    "AWS::SQS::Queue": "QueueName",
    "AWS::SecretsManager::Secret": "Name",
}


class ResolveError(Exception):
    """A variable whose local value cannot be derived."""


def load_template(path: Path) -> dict:
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        sys.exit("gen_env: cfn-lint is not installed; run infra/local/setup.sh and use the venv's python")
    try:
        return json.loads(json.dumps(cfn_yaml.load(str(path))))
    except Exception as e:  # the decoder raises several types; all mean "cannot use this file"
        print(f"gen_env: cannot load {path}: {e}", file=sys.stderr)
        sys.exit(2)


class Resolver:
    def __init__(self, template: dict):
        self.params = template.get("Parameters") or {}
        self.resources = template.get("Resources") or {}

    def ref(self, name: str) -> str:
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.params:
            if "Default" not in self.params[name]:
                raise ResolveError(f"parameter {name} has no default")
            return str(self.params[name]["Default"])
        res = self.resources.get(name)
        if res is None:
            raise ResolveError(f"!Ref {name}: no such parameter or resource")
        if res.get("Type") in GENERATED_ID_TYPES:
            return GENERATED_ID
        prop = NAME_PROPERTY.get(res.get("Type"))
        if prop is None:
            raise ResolveError(f"!Ref {name}: no local value for a {res.get('Type')}")
        physical = self.value((res.get("Properties") or {}).get(prop))
        if res["Type"] == "AWS::SQS::Queue":
            return f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT_ID}/{physical}"
        return physical

    def value(self, v) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (str, int, float)):
            return str(v)
        if isinstance(v, dict) and len(v) == 1:
            (fn, arg), = v.items()
            if fn == "Ref":
                return self.ref(arg)
            if fn == "Fn::Sub" and isinstance(arg, str):
                return re.sub(r"\$\{([^}!][^}]*)\}", lambda m: self.sub_var(m.group(1)), arg)
        raise ResolveError(f"no local value for {json.dumps(v)}")

    def sub_var(self, name: str) -> str:
        if "." in name:
            raise ResolveError(f"${{{name}}}: attributes have no local value")
        return self.ref(name)


def functions(template: dict) -> list:
    return [rid for rid, r in (template.get("Resources") or {}).items() if r.get("Type") == "AWS::Serverless::Function"]


def variables(template: dict, rid: str) -> dict:
    """Globals + the function's variables, unresolved, in template order."""
    g = (((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get("Variables") or {}
    own = ((template["Resources"][rid].get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
    return {**g, **own}


def env_document(template: dict) -> dict:
    r = Resolver(template)
    doc = {}
    for rid in functions(template):
        values = {}
        for name, raw in variables(template, rid).items():
            try:
                values[name] = LOCAL_OVERRIDES.get(name, r.value(raw))
            except ResolveError as e:
                raise ResolveError(f"{rid}.{name}: {e}") from None
        doc[rid] = values
    return doc


def generate(template: dict) -> str:
    return json.dumps(env_document(template), indent=2, ensure_ascii=False) + "\n"


def check(template: dict, path: Path) -> list:
    """Problems of the committed file: keys other than the template's, or content not generated."""
    try:
        text = path.read_text()
        have = json.loads(text)
    except (OSError, ValueError) as e:
        return [f"cannot read {path}: {e}"]
    problems = []
    want_ids = functions(template)
    if not isinstance(have, dict) or sorted(have) != sorted(want_ids):
        problems.append(f"{path}: keys {sorted(have) if isinstance(have, dict) else have!r} are not the template's "
                        f"function logical IDs {sorted(want_ids)}")
    else:
        for rid in want_ids:
            want_vars, have_vars = set(variables(template, rid)), set(have[rid] or {})
            if want_vars != have_vars:
                problems.append(f"{path}: {rid} has variables {sorted(have_vars)}, the template gives "
                                f"{sorted(want_vars)} (missing {sorted(want_vars - have_vars)}, "
                                f"extra {sorted(have_vars - want_vars)})")
    want = generate(template)
    if text != want:
        diff = difflib.unified_diff(text.splitlines(), want.splitlines(), f"{path} (committed)",
                                    f"{path} (generated)", lineterm="")
        problems.append(f"{path} is not what infra/sam-local/gen_env.py generates:\n" + "\n".join(diff))
    return problems


def local_template(built: Path, out: Path) -> None:
    """`built` with LOCAL_ONLY_VARIABLES declared in Globals (empty: SAM fills them from the shell)."""
    tpl = load_template(built)
    fn = tpl.setdefault("Globals", {}).setdefault("Function", {})
    env = fn.setdefault("Environment", {}).setdefault("Variables", {})
    for name in LOCAL_ONLY_VARIABLES:
        env.setdefault(name, "")
    out.write_text(json.dumps(tpl, indent=1, ensure_ascii=False) + "\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="default: <repo>/template.yaml")
    ap.add_argument("--out", default=str(DEFAULT_OUT), help="default: <repo>/infra/sam-local/env.json")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare instead of writing; exit 1 when stale")
    mode.add_argument("--stdout", action="store_true", help="print instead of writing")
    mode.add_argument("--local-template", nargs=2, metavar=("BUILT", "OUT"),
                      help="write OUT: the built template BUILT plus the local-only variables")
    args = ap.parse_args()

    if args.local_template:
        built, out = (Path(p) for p in args.local_template)
        local_template(built, out)
        print(f"gen_env: wrote {out} (declares {', '.join(LOCAL_ONLY_VARIABLES)}; export them before sam local)",
              file=sys.stderr)
        return 0
    template = load_template(Path(args.template))
    out = Path(args.out)
    try:
        text = generate(template)
        problems = check(template, out) if args.check else []
    except ResolveError as e:
        print(f"gen_env: {e}", file=sys.stderr)
        return 2
    if args.stdout:
        sys.stdout.write(text)
        return 0
    if args.check:
        for p in problems:
            print(f"MISMATCH {p}")
        if problems:
            print(f"gen_env: {out} is stale: run python infra/sam-local/gen_env.py", file=sys.stderr)
            return 1
        print(f"gen_env: {out} has the template's {len(functions(template))} functions and their variables")
        return 0
    out.write_text(text)
    print(f"gen_env: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""The stack as CloudFormation would see it: template.yaml loaded with cfn-lint's decoder, the SAM
transform applied (samtranslator, as `sam deploy` does), then every intrinsic function resolved with
the parameters at their defaults and the pseudo parameters of a rehearsal account.

Physical ids come from a callback (`Stack.physical`), so the emulator can create resources first and
the resolver then sees the names, URLs and ARNs moto assigned, as CloudFormation's `Ref` / `GetAtt`
would return them.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable

STACK_NAME = "kefu-rehearsal"
REGION = "us-east-1"
ACCOUNT_ID = "123456789012"  # moto's default account
PARTITION = "aws"
URL_SUFFIX = "amazonaws.com"

PSEUDO = {
    "AWS::StackName": STACK_NAME,
    "AWS::Region": REGION,
    "AWS::AccountId": ACCOUNT_ID,
    "AWS::Partition": PARTITION,
    "AWS::URLSuffix": URL_SUFFIX,
    "AWS::StackId": f"arn:{PARTITION}:cloudformation:{REGION}:{ACCOUNT_ID}:stack/{STACK_NAME}/"
    "00000000-0000-0000-0000-000000000000",
    "AWS::NotificationARNs": [],
}


class TemplateError(Exception):
    """The template cannot be loaded, transformed or resolved."""


class Pending(Exception):
    """A reference to a resource that has no physical id yet (the emulator creates it later)."""

    def __init__(self, logical: str):
        super().__init__(logical)
        self.logical = logical


class _NoValue:
    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()


def managed_policy_documents() -> dict[str, dict]:
    """AWS managed policies by name (moto's copy): {"name": {"arn", "document"}}."""
    from moto.iam.aws_managed_policies import aws_managed_policies_data

    out = {}
    for name, p in json.loads(aws_managed_policies_data).items():
        arn = f"arn:{PARTITION}:iam::aws:policy{p.get('Path', '/')}{name}"
        out[name] = {"arn": arn, "document": p["Document"]}
    return out


class _PolicyLoader:
    """samtranslator's managed-policy name -> ARN map, from moto's list instead of a live IAM call."""

    def load(self) -> dict[str, str]:
        return {name: p["arn"] for name, p in managed_policy_documents().items()}


def load_template(path: str) -> dict:
    from cfnlint.decode import decode

    tpl, matches = decode(path)
    if matches or tpl is None:
        raise TemplateError(f"{path}: cannot decode: {[str(m) for m in matches or []]}")
    return tpl


def _placeholder_code_uris(tpl: dict) -> list[str]:
    """CodeUri (and other local paths SAM would upload) -> an s3:// placeholder, as `sam package` does."""
    replaced = []
    globals_fn = tpl.get("Globals", {}).get("Function", {})
    if isinstance(globals_fn.get("CodeUri"), str) and not globals_fn["CodeUri"].startswith("s3://"):
        globals_fn["CodeUri"] = "s3://kefu-rehearsal-code/globals.zip"
        replaced.append("Globals.Function.CodeUri")
    keys = {
        "AWS::Serverless::Function": "CodeUri",
        "AWS::Serverless::LayerVersion": "ContentUri",
        "AWS::Serverless::HttpApi": "DefinitionUri",
        "AWS::Serverless::Api": "DefinitionUri",
        "AWS::Serverless::StateMachine": "DefinitionUri",
    }
    for logical, res in tpl.get("Resources", {}).items():
        key = keys.get(res.get("Type"))
        props = res.get("Properties") or {}
        if key and key in props and not (isinstance(props[key], str) and props[key].startswith("s3://")):
            if isinstance(props[key], dict) and "Bucket" in props[key]:
                continue
            props[key] = f"s3://kefu-rehearsal-code/{logical}.zip"
            replaced.append(f"{logical}.{key}")
    return replaced


def sam_transform(tpl: dict, parameters: dict[str, Any]) -> dict:
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from samtranslator.translator.transform import transform

    fragment = json.loads(json.dumps(tpl, default=str))
    values = dict(parameters)
    values.update({k: v for k, v in PSEUDO.items() if k != "AWS::NotificationARNs"})
    try:
        return transform(fragment, values, _PolicyLoader())
    except Exception as e:  # samtranslator raises InvalidDocumentException with causes
        causes = getattr(e, "causes", None)
        detail = "; ".join(str(c) for c in causes) if causes else str(e)
        raise TemplateError(f"SAM transform failed: {detail}") from e


def _str(v: Any) -> Any:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    return v


@dataclass
class Stack:
    """The transformed template plus a resolver for its intrinsic functions."""

    source: dict
    template: dict
    parameters: dict[str, Any]
    replaced_uris: list[str]
    physical: Callable[[str, str | None], Any] | None = None
    conditions: dict[str, bool] = field(default_factory=dict)

    # ------------------------------------------------------------------ construction
    @classmethod
    def load(cls, path: str, overrides: dict[str, str] | None = None,
             default_for: Callable[[str, dict], str | None] | None = None) -> "Stack":
        src = load_template(path)
        work = copy.deepcopy(src)
        replaced = _placeholder_code_uris(work)
        params: dict[str, Any] = {}
        missing = []
        for name, p in (src.get("Parameters") or {}).items():
            if overrides and name in overrides:
                params[name] = overrides[name]
            elif "Default" in p:
                d = p["Default"]
                params[name] = [_str(x) for x in d] if isinstance(d, list) else _str(d)
            else:
                v = default_for(name, p) if default_for else None
                if v is None:
                    missing.append(name)
                else:
                    params[name] = v
            if name in params and str(p.get("Type", "")).startswith(("List<", "CommaDelimitedList")):
                if isinstance(params[name], str):
                    params[name] = [x.strip() for x in params[name].split(",")] if params[name] else []
        if missing:
            raise TemplateError(
                "parameters without a Default: " + ", ".join(missing) + " (pass --param NAME=VALUE)"
            )
        transformed = sam_transform(work, params)
        st = cls(source=src, template=transformed, parameters=params, replaced_uris=replaced)
        st._eval_conditions()
        return st

    @property
    def resources(self) -> dict[str, dict]:
        return self.template.get("Resources", {})

    def active(self, logical: str) -> bool:
        cond = self.resources[logical].get("Condition")
        return cond is None or self.conditions.get(cond, False)

    def of_type(self, *types: str) -> list[str]:
        return [k for k, r in self.resources.items() if r.get("Type") in types and self.active(k)]

    def _eval_conditions(self) -> None:
        raw = self.template.get("Conditions") or {}
        done: dict[str, bool] = {}

        def cond(name: str, stack: tuple = ()) -> bool:
            if name in done:
                return done[name]
            if name in stack or name not in raw:
                raise TemplateError(f"condition {name} is undefined or circular")
            done[name] = bool(self._resolve(raw[name], cond=lambda n: cond(n, stack + (name,))))
            return done[name]

        for name in raw:
            cond(name)
        self.conditions = done

    # ------------------------------------------------------------------ resolution
    def resolve(self, value: Any) -> Any:
        out = self._resolve(value, cond=lambda n: self.conditions[n])
        return None if out is NO_VALUE else out

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in PSEUDO:
            return PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.resources:
            if self.physical is None:
                raise Pending(name)
            return self.physical(name, None)
        raise TemplateError(f"Ref to unknown name {name}")

    def _getatt(self, logical: str, attr: str) -> Any:
        if logical not in self.resources:
            raise TemplateError(f"GetAtt of unknown resource {logical}")
        if self.physical is None:
            raise Pending(logical)
        return self.physical(logical, attr)

    def _sub(self, arg: Any, cond) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self._resolve(v, cond) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}

        def repl(m: re.Match) -> str:
            inner = m.group(1)
            if inner.startswith("!"):
                return "${" + inner[1:] + "}"
            if inner in variables:
                return str(_str(variables[inner]))
            if "." in inner and inner.split(".", 1)[0] in self.resources:
                logical, attr = inner.split(".", 1)
                return str(_str(self._getatt(logical, attr)))
            return str(_str(self._ref(inner)))

        return re.sub(r"\$\{([^}]+)\}", repl, text)

    def _resolve(self, v: Any, cond) -> Any:
        if isinstance(v, list):
            out = [self._resolve(x, cond) for x in v]
            return [x for x in out if x is not NO_VALUE]
        if not isinstance(v, dict):
            return v
        if len(v) == 1:
            (k, arg), = v.items()
            if k == "Ref":
                return self._ref(arg)
            if k == "Fn::GetAtt":
                logical, attr = (arg.split(".", 1) if isinstance(arg, str) else arg)
                return self._getatt(logical, self._resolve(attr, cond))
            if k == "Fn::Sub":
                return self._sub(arg, cond)
            if k == "Fn::If":
                name, yes, no = arg
                return self._resolve(yes if cond(name) else no, cond)
            if k == "Fn::Equals":
                a, b = (self._resolve(x, cond) for x in arg)
                return str(_str(a)) == str(_str(b))
            if k == "Fn::Not":
                return not self._resolve(arg[0], cond)
            if k == "Fn::And":
                return all(self._resolve(x, cond) for x in arg)
            if k == "Fn::Or":
                return any(self._resolve(x, cond) for x in arg)
            if k == "Condition":
                return cond(arg)
            if k == "Fn::Join":
                sep, items = arg[0], self._resolve(arg[1], cond)
                return sep.join(str(_str(x)) for x in items)
            if k == "Fn::Select":
                idx, items = self._resolve(arg[0], cond), self._resolve(arg[1], cond)
                return items[int(idx)]
            if k == "Fn::Split":
                sep, text = arg[0], self._resolve(arg[1], cond)
                return text.split(sep)
            if k == "Fn::FindInMap":
                m, a, b = (self._resolve(x, cond) for x in arg[:3])
                return self._resolve(self.template["Mappings"][m][a][b], cond)
            if k == "Fn::Base64":
                return base64.b64encode(str(self._resolve(arg, cond)).encode()).decode()
            if k == "Fn::GetAZs":
                return [f"{REGION}a", f"{REGION}b", f"{REGION}c"]
            if k == "Fn::ToJsonString":
                return json.dumps(self._resolve(arg, cond), separators=(",", ":"))
            if k == "Fn::Length":
                return len(self._resolve(arg, cond))
            if k == "Fn::ImportValue":
                raise TemplateError("Fn::ImportValue is not supported by the rehearsal")
        out = {}
        for key, val in v.items():
            r = self._resolve(val, cond)
            if r is not NO_VALUE:
                out[key] = r
        return out

    # ------------------------------------------------------------------ lookups
    def properties(self, logical: str) -> dict:
        return self.resolve(self.resources[logical].get("Properties") or {})

    def references(self, value: Any) -> set[str]:
        """Logical ids a (unresolved) value refers to."""
        out: set[str] = set()

        def walk(v: Any) -> None:
            if isinstance(v, dict):
                for k, a in v.items():
                    if k == "Ref" and isinstance(a, str) and a in self.resources:
                        out.add(a)
                    elif k == "Fn::GetAtt":
                        logical = a.split(".", 1)[0] if isinstance(a, str) else a[0]
                        out.add(logical)
                    elif k == "Fn::Sub":
                        text = a[0] if isinstance(a, list) else a
                        for m in re.finditer(r"\$\{([^}!][^}]*)\}", text):
                            name = m.group(1).split(".", 1)[0]
                            if name in self.resources:
                                out.add(name)
                        if isinstance(a, list):
                            walk(a[1])
                    else:
                        walk(a)
            elif isinstance(v, list):
                for x in v:
                    walk(x)

        walk(value)
        return out


DYNAMIC_REF = re.compile(r"\{\{resolve:(secretsmanager|ssm|ssm-secure):([^}]*)\}\}")


def parse_secret_reference(body: str) -> dict:
    """`{{resolve:secretsmanager:ID:SecretString:json-key:version-stage:version-id}}` fields."""
    if body.startswith("arn:"):
        parts = body.split(":")
        secret_id = ":".join(parts[:7])
        rest = parts[7:]
    else:
        parts = body.split(":")
        secret_id, rest = parts[0], parts[1:]
    rest += [""] * (4 - len(rest))
    return {"secret_id": secret_id, "string": rest[0] or "SecretString", "json_key": rest[1],
            "stage": rest[2], "version_id": rest[3]}

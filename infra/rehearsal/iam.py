"""The functions' IAM policies as the transformed template states them, and what of them moto can
enforce.

moto 5 evaluates identity policies by action for every service, but it matches the Resource element
only for SQS (it authorises against the queue's ARN); every other service is authorised against
resource "*", so a statement scoped to a table or secret ARN would never match there. The rehearsal
therefore gives moto an adapted copy of each role's policy:

- SQS statements as written (moto matches their resources);
- statements of other services with Resource "*" (moto enforces their actions only); their resource
  scoping is enforced by the recording proxy in front of moto (emulator.py), which evaluates every
  call of a function against the template's statements (`RolePolicy.evaluate`), and checked
  statically (each ARN must be a resource the function's environment or event source refers to,
  or its own log group);
- `dynamodb:TransactWriteItems` (moto's single action for a transaction) granted when the policy
  allows any per-item write; AWS authorises each item (Put -> PutItem, Update -> UpdateItem,
  Delete -> DeleteItem, ConditionCheck -> ConditionCheckItem) on the item's table, and the proxy
  does exactly that check against the template's statements (likewise for the batch operations);
- Conditions dropped (moto's condition support is limited to trust policies).
"""

from __future__ import annotations

import copy
import fnmatch
import json
from dataclasses import dataclass, field

# Services whose Resource element moto matches (everything else: resource "*").
RESOURCE_ENFORCED = {"sqs"}

# Actions the rehearsal cannot exercise: Lambda's own agents use them, not the function's code.
NOT_EXERCISED = {
    "logs": "Lambda's log agent writes the function's logs with the execution role, not the code",
    "xray": "Lambda's X-Ray integration sends the segments, not the code",
}

# Multi-item DynamoDB operations: moto authorises the operation name, AWS the per-item actions.
COMPOSITE = {
    "dynamodb:TransactWriteItems": {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem",
                                    "Delete": "dynamodb:DeleteItem",
                                    "ConditionCheck": "dynamodb:ConditionCheckItem"},
    "dynamodb:TransactGetItems": {"Get": "dynamodb:GetItem"},
    "dynamodb:BatchWriteItem": {"PutRequest": "dynamodb:PutItem", "DeleteRequest": "dynamodb:DeleteItem"},
    "dynamodb:BatchGetItem": {"Keys": "dynamodb:GetItem"},
}


def as_list(v) -> list:
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


def service_of(action: str) -> str:
    return action.split(":", 1)[0].lower()


def action_matches(pattern: str, action: str) -> bool:
    return fnmatch.fnmatchcase(action.lower(), pattern.lower())


def resource_matches(pattern: str, arn: str) -> bool:
    return pattern == "*" or fnmatch.fnmatchcase(arn, pattern)


@dataclass
class Statement:
    source: str  # "inline PolicyName" / "managed Name"
    index: int
    sid: str
    effect: str
    actions: list[str]
    resources: list[str]
    not_action: bool = False
    not_resource: bool = False
    condition: dict | None = None

    def label(self) -> str:
        return f"{self.source}#{self.sid or self.index}"

    def allows(self, action: str, arn: str) -> bool:
        hit_a = any(action_matches(p, action) for p in self.actions)
        if self.not_action:
            hit_a = not hit_a
        hit_r = any(resource_matches(p, arn) for p in self.resources)
        if self.not_resource:
            hit_r = not hit_r
        return hit_a and hit_r

    def document(self, actions=None, resources=None, keep_condition=True) -> dict:
        d = {"Effect": self.effect}
        if self.sid:
            d["Sid"] = self.sid
        d["NotAction" if self.not_action else "Action"] = list(actions if actions is not None else self.actions)
        d["NotResource" if self.not_resource else "Resource"] = list(
            resources if resources is not None else self.resources)
        if keep_condition and self.condition:
            d["Condition"] = self.condition
        return d


@dataclass
class RolePolicy:
    role: str  # logical id
    trust: dict
    statements: list[Statement]
    managed: list[str] = field(default_factory=list)  # ARNs as the template lists them
    notes: list[str] = field(default_factory=list)

    def evaluate(self, action: str, arn: str) -> bool:
        """Identity-policy evaluation: explicit Deny wins, else any Allow (conditions not evaluated)."""
        allowed = False
        for s in self.statements:
            if s.allows(action, arn):
                if s.effect == "Deny":
                    return False
                allowed = True
        return allowed

    def without(self, statement: Statement, action: str) -> "RolePolicy":
        out = copy.deepcopy(self)
        for s in out.statements:
            if s.source == statement.source and s.index == statement.index:
                s.actions = [a for a in s.actions if a != action]
        out.statements = [s for s in out.statements if s.actions or s.not_action]
        return out


def role_policy(stack, role_logical: str, managed_docs: dict[str, dict]) -> RolePolicy:
    """Every statement that applies to the role: inline Policies, ManagedPolicyArns (AWS managed
    ones from moto's copy, customer managed ones from the template) and AWS::IAM::Policy resources."""
    props = stack.properties(role_logical)
    statements: list[Statement] = []
    notes: list[str] = []

    def add(source: str, doc: dict) -> None:
        for i, st in enumerate(as_list(doc.get("Statement"))):
            statements.append(Statement(
                source=source, index=i, sid=st.get("Sid", ""), effect=st.get("Effect", "Allow"),
                actions=as_list(st.get("Action", st.get("NotAction"))),
                resources=as_list(st.get("Resource", st.get("NotResource", "*"))),
                not_action="NotAction" in st, not_resource="NotResource" in st,
                condition=st.get("Condition")))

    for p in props.get("Policies") or []:
        add(f"inline {p['PolicyName']}", p["PolicyDocument"])
    by_arn = {d["arn"]: (name, d) for name, d in managed_docs.items()}
    customer = {}
    for logical in stack.of_type("AWS::IAM::ManagedPolicy"):
        customer[stack.resolve({"Ref": logical})] = logical
    for arn in props.get("ManagedPolicyArns") or []:
        if arn in by_arn:
            name, d = by_arn[arn]
            add(f"managed {name}", d["document"])
        elif arn in customer:
            add(f"managed {customer[arn]}", stack.properties(customer[arn])["PolicyDocument"])
        else:
            notes.append(f"managed policy {arn} is unknown (neither AWS managed nor in the template)")
    role_name_ref = stack.resolve({"Ref": role_logical})
    for logical in stack.of_type("AWS::IAM::Policy"):
        p = stack.properties(logical)
        if role_name_ref in (p.get("Roles") or []):
            add(f"inline {p.get('PolicyName', logical)}", p["PolicyDocument"])
    return RolePolicy(role=role_logical, trust=props.get("AssumeRolePolicyDocument") or {},
                      statements=statements, managed=list(props.get("ManagedPolicyArns") or []),
                      notes=notes)


def moto_documents(policy: RolePolicy) -> tuple[list[dict], list[str]]:
    """The adapted copy moto gets (see the module docstring) and lines describing the adaptation."""
    out: list[dict] = []
    lines: list[str] = []
    for s in policy.statements:
        by_service: dict[str, list[str]] = {}
        for a in s.actions:
            by_service.setdefault(service_of(a), []).append(a)
        for svc, acts in by_service.items():
            if s.not_action or s.not_resource:
                out.append(s.document(keep_condition=False))
                lines.append(f"{s.label()}: NotAction/NotResource passed to moto as written")
                continue
            if svc in RESOURCE_ENFORCED or s.resources == ["*"]:
                out.append(s.document(acts, keep_condition=False))
            else:
                out.append(s.document(acts, ["*"], keep_condition=False))
                lines.append(f"{s.label()}: {', '.join(acts)} -> Resource \"*\" for moto "
                             f"(the scoping to {', '.join(s.resources)} is enforced by the proxy)")
            if s.condition:
                lines.append(f"{s.label()}: Condition dropped for moto ({json.dumps(s.condition)})")
    composites = []
    for composite, items in COMPOSITE.items():
        per_item = sorted(set(items.values()))
        granted = [a for a in per_item if any(
            st.effect == "Allow" and any(action_matches(p, a) for p in st.actions) for st in policy.statements)]
        if granted:
            composites.append(composite)
    if composites:
        out.append({"Effect": "Allow", "Action": composites, "Resource": "*"})
        lines.append(f"{', '.join(composites)} -> granted (moto's names for multi-item calls; the policy "
                     f"allows some of their per-item actions, and the proxy authorises each item as AWS does)")
    return out, lines


def composite_mapping() -> str:
    """How AWS authorises a transaction's items, e.g. "Put -> PutItem, Update -> UpdateItem, ..."."""
    return ", ".join(f"{k} -> {v.split(':')[1]}" for k, v in COMPOSITE["dynamodb:TransactWriteItems"].items())


def moto_trust(trust: dict, admin_arn: str) -> dict:
    """moto's copy of the trust policy: the rehearsal's admin plays Lambda's part in assuming the
    role, so it is added as an AWS principal next to the template's principals (moto cannot test a
    Service principal and fails on a statement without an AWS principal)."""
    t = copy.deepcopy(trust)
    for st in as_list(t.get("Statement")):
        principal = st.setdefault("Principal", {})
        if isinstance(principal, dict):
            principal["AWS"] = as_list(principal.get("AWS")) + [admin_arn]
    return t


def trust_allows_lambda(trust: dict) -> bool:
    for st in as_list(trust.get("Statement")):
        if st.get("Effect") != "Allow":
            continue
        if not any(action_matches(a, "sts:AssumeRole") for a in as_list(st.get("Action"))):
            continue
        services = as_list((st.get("Principal") or {}).get("Service"))
        if "lambda.amazonaws.com" in services:
            return True
    return False

#!/usr/bin/env python3
"""Check that template.yaml's alarms and dashboard watch exactly the metrics kefu emits.

infra/metrics.json is the catalogue of kefu's CloudWatch metrics (namespace `kefu`), written from the
Rust code (shared::metrics; a Rust test keeps the file equal to the code). A CloudWatch metric is a
(namespace, name, dimension set) triple: a widget or alarm that names a dimension set the code does not
emit stays empty forever. This check reads every alarm (plain metric or metric math) and every metric
widget of the dashboard (metric arrays and SEARCH expressions) and fails when

* a `kefu` metric is referenced with a name, or a dimension set (compared as a set), not in the catalogue;
* a `kefu` metric is referenced without `service` = the stack name (`!Ref AWS::StackName`,
  `${AWS::StackName}` in the dashboard), or a SEARCH has no `{kefu,...}` schema or no `service="..."` term
  (it would mix stacks or dimension sets);
* an enumerated dimension (the catalogue's `values`, e.g. `outcome`) is given a value not listed;
* a catalogue (metric, dimension set) pair is referenced by neither an alarm nor a dashboard widget;
* an AWS-namespace metric uses a dimension set that service does not publish (typo guard; the known sets
  are listed below).

Prints `ok ...` per catalogue pair with who watches it; on problems `MISMATCH ...` lines and exit 1
(exit 2 when a file cannot be read). Uses cfn-lint's YAML decoder (understands !Ref/!GetAtt/!Sub).

Usage: python infra/check_metrics.py [--template PATH] [--metrics PATH]
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "kefu"
SERVICE = "service"
STACK = "\u00abstack\u00bb"  # stands for the stack name (the service dimension's value)

# Dimension sets the AWS services publish, for the namespaces the template uses. HTTP API detailed
# (per-route) metrics are {ApiId, Method, Resource, Stage} (Resource = the route path).
AWS_DIMENSION_SETS = {
    "AWS/ApiGateway": [{"ApiId"}, {"ApiId", "Stage"}, {"ApiId", "Method", "Resource", "Stage"}],
    "AWS/Lambda": [set(), {"FunctionName"}, {"FunctionName", "Resource"}, {"FunctionName", "ExecutedVersion"}],
    "AWS/SQS": [{"QueueName"}],
    "AWS/DynamoDB": [{"TableName"}, {"TableName", "Operation"}, {"TableName", "GlobalSecondaryIndexName"},
                     {"Operation"}, set()],
}


def load_template(path: Path) -> dict:
    try:
        from cfnlint.decode import cfn_yaml
    except ImportError:
        sys.exit("check_metrics: cfn-lint is not installed; run infra/local/setup.sh and use the venv's python")
    try:
        return cfn_yaml.load(str(path))
    except Exception as e:  # the decoder raises several types; all mean "cannot use this file"
        print(f"check_metrics: cannot load {path}: {e}", file=sys.stderr)
        sys.exit(2)


class Ref:
    """One reference to a metric: where, namespace, name, {dimension: value or None}."""

    def __init__(self, where: str, namespace: str, name: str, dims: dict, owner: str = ""):
        self.where, self.namespace, self.name, self.dims = where, namespace, name, dims
        self.owner = owner or where  # short form for the summary: "alarm X" / "widget 'title'"

    def dimset(self) -> frozenset:
        return frozenset(self.dims)


def fmt_set(dims) -> str:
    return "[" + ", ".join(sorted(dims, key=lambda d: (d != SERVICE, d))) + "]"


def cfn_value(value):
    """A dimension value from the template: STACK for the stack name, a str, or None (not static)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value == {"Ref": "AWS::StackName"} or value == {"Fn::Sub": "${AWS::StackName}"}:
            return STACK
    return None


def alarm_refs(rid: str, props: dict) -> list:
    refs = []
    if "MetricName" in props:
        dims = {d.get("Name"): cfn_value(d.get("Value")) for d in props.get("Dimensions") or []}
        refs.append(Ref(f"alarm {rid}", props.get("Namespace"), props.get("MetricName"), dims, f"alarm {rid}"))
    for q in props.get("Metrics") or []:
        metric = (q.get("MetricStat") or {}).get("Metric")
        if metric:
            dims = {d.get("Name"): cfn_value(d.get("Value")) for d in metric.get("Dimensions") or []}
            refs.append(Ref(f"alarm {rid} ({q.get('Id')})", metric.get("Namespace"), metric.get("MetricName"), dims,
                            f"alarm {rid}"))
        expr = q.get("Expression")
        if isinstance(expr, str) and "SEARCH(" in expr:
            refs.extend(search_refs(f"alarm {rid} ({q.get('Id')})", expr, f"alarm {rid}"))
    return refs


def substitute(body, template: dict) -> str:
    """The dashboard body with ${...} replaced: the stack name by STACK, Number parameters by their
    default (they appear unquoted), everything else by a placeholder string."""
    variables = {}
    if isinstance(body, dict) and "Fn::Sub" in body:
        sub = body["Fn::Sub"]
        if isinstance(sub, list):
            sub, variables = sub[0], sub[1] if len(sub) > 1 else {}
        body = sub
    if not isinstance(body, str):
        raise ValueError("DashboardBody is neither a string nor !Sub of a string")
    params = template.get("Parameters") or {}

    def repl(m):
        name = m.group(1)
        if name.startswith("!"):
            return "${" + name[1:] + "}"
        if name == "AWS::StackName":
            return STACK
        if name in params and params[name].get("Type") == "Number":
            return str(params[name].get("Default", 0))
        if name in variables and isinstance(variables[name], str):
            return variables[name]
        return f"\u00ab{name}\u00bb"

    return re.sub(r"\$\{([^}]+)\}", repl, body)


SEARCH_RE = re.compile(r"SEARCH\(\s*'((?:[^'\\]|\\.)*)'")
TERM_RE = re.compile(r'([A-Za-z0-9_.:/-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s()"]+))')


def search_refs(where: str, expression: str, owner: str = "") -> list:
    """References made by the SEARCH() calls of one expression. Only `kefu` searches are returned in
    detail; a kefu search without a schema yields a reference with the empty dimension set."""
    refs = []
    for m in SEARCH_RE.finditer(expression):
        query = m.group(1)
        schema = re.match(r"\s*\{([^}]*)\}", query)
        if schema:
            parts = [p.strip().strip('"') for p in schema.group(1).split(",")]
            namespace, dims = parts[0], [p for p in parts[1:] if p]
            rest = query[schema.end():]
        else:
            namespace, dims, rest = None, [], query
        terms = [(t.group(1), t.group(2) if t.group(2) is not None else t.group(3)) for t in TERM_RE.finditer(rest)]
        names = [v for k, v in terms if k == "MetricName"]
        values = {k: v for k, v in terms if k != "MetricName"}
        if namespace is None:
            if any(k == "Namespace" and v == NAMESPACE for k, v in terms) or NAMESPACE in rest.split():
                namespace = NAMESPACE
            else:
                continue  # not a kefu search (and not checked)
        if namespace != NAMESPACE:
            continue
        if not schema:
            refs.append(Ref(f"{where} SEARCH without a {{kefu,...}} schema", NAMESPACE, names[0] if names else None, {},
                            owner))
            continue
        for name in names or [None]:
            refs.append(Ref(f"{where} SEARCH", NAMESPACE, name, {d: values.get(d) for d in dims}, owner))
    return refs


def dashboard_refs(rid: str, props: dict, template: dict, problems: list) -> list:
    refs = []
    try:
        body = json.loads(substitute(props.get("DashboardBody"), template))
    except (ValueError, TypeError) as e:
        problems.append(f"dashboard {rid}: DashboardBody is not valid JSON after substitution: {e}")
        return refs
    for i, widget in enumerate(body.get("widgets", [])):
        wp = widget.get("properties") or {}
        title = wp.get("title") or f"widget {i}"
        where = f"dashboard {rid} '{title}'"
        owner = f"widget '{title}'"
        for row in wp.get("metrics") or []:
            if not isinstance(row, list) or not row:
                problems.append(f"{where}: metric row {row!r} is not a non-empty array")
                continue
            if isinstance(row[0], dict):
                expr = row[0].get("expression", "")
                refs.extend(search_refs(where, expr, owner))
                continue
            fields = [x for x in row if not isinstance(x, dict)]
            if any(x in (".", "...") for x in fields):
                problems.append(f"{where}: metric row {fields!r} uses the '.'/'...' shorthand; write rows out in full")
                continue
            if len(fields) < 2 or len(fields) % 2:
                problems.append(f"{where}: metric row {fields!r} is not [namespace, name, dim, value, ...]")
                continue
            dims = {fields[j]: fields[j + 1] for j in range(2, len(fields), 2)}
            refs.append(Ref(where, fields[0], fields[1], dims, owner))
    return refs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(ROOT / "template.yaml"), help="default: <repo>/template.yaml")
    ap.add_argument("--metrics", default=str(ROOT / "infra/metrics.json"), help="default: <repo>/infra/metrics.json")
    args = ap.parse_args()

    try:
        with open(args.metrics) as f:
            catalog_doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"check_metrics: cannot read {args.metrics}: {e}", file=sys.stderr)
        return 2
    if catalog_doc.get("namespace") != NAMESPACE:
        print(f"check_metrics: {args.metrics}: namespace is {catalog_doc.get('namespace')!r}, expected {NAMESPACE!r}",
              file=sys.stderr)
        return 2
    catalog = {}
    for m in catalog_doc.get("metrics", []):
        catalog[m["name"]] = {
            "sets": [frozenset(s) for s in m["dimension_sets"]],
            "values": {k: set(v) for k, v in (m.get("values") or {}).items()},
        }

    template = load_template(Path(args.template))
    problems: list[str] = []
    refs: list[Ref] = []
    for rid, res in (template.get("Resources") or {}).items():
        props = res.get("Properties") or {}
        if res.get("Type") == "AWS::CloudWatch::Alarm":
            refs.extend(alarm_refs(rid, props))
        elif res.get("Type") == "AWS::CloudWatch::Dashboard":
            refs.extend(dashboard_refs(rid, props, template, problems))

    watched: dict = {}
    for r in refs:
        if r.namespace != NAMESPACE:
            known = AWS_DIMENSION_SETS.get(r.namespace)
            if known is not None and set(r.dims) not in known:
                problems.append(f"{r.where}: {r.namespace} {r.name} {fmt_set(r.dims)}: {r.namespace} publishes no "
                                f"such dimension set (known: {', '.join(fmt_set(s) for s in known)})")
            continue
        if r.name is None:
            problems.append(f"{r.where}: kefu metric without a MetricName")
            continue
        entry = catalog.get(r.name)
        if entry is None:
            problems.append(f"{r.where}: kefu/{r.name} is not in {Path(args.metrics).name} (the code emits no such metric)")
            continue
        if r.dimset() not in entry["sets"]:
            problems.append(f"{r.where}: kefu/{r.name} {fmt_set(r.dims)} is not a dimension set the code emits "
                            f"(emitted: {', '.join(fmt_set(s) for s in entry['sets'])}); it would stay empty")
            continue
        if r.dims.get(SERVICE) != STACK:
            problems.append(f"{r.where}: kefu/{r.name}: dimension service must be the stack name "
                            f"(!Ref AWS::StackName / ${{AWS::StackName}}), got {r.dims.get(SERVICE)!r}")
        for dim, value in r.dims.items():
            allowed = entry["values"].get(dim)
            if allowed is not None and value is not None and value not in allowed:
                problems.append(f"{r.where}: kefu/{r.name} {dim}={value!r} is not one of {sorted(allowed)}")
        watched.setdefault((r.name, r.dimset()), []).append(r.owner)

    for name, entry in catalog.items():
        for dimset in entry["sets"]:
            who = watched.get((name, dimset))
            if who:
                owners = list(dict.fromkeys(who))  # unique, in template order
                print(f"ok   kefu/{name:<16} {fmt_set(dimset):<26} {'; '.join(owners)}")
            else:
                problems.append(f"catalogue kefu/{name} {fmt_set(dimset)}: emitted but watched by no alarm and no "
                                f"dashboard widget")

    if problems:
        for p in problems:
            print(f"MISMATCH {p}")
        print(f"check_metrics: FAILED: {args.template} and {args.metrics} disagree ({len(problems)} problem(s))",
              file=sys.stderr)
        return 1
    print(f"check_metrics: {args.template} watches exactly the metrics of {args.metrics}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Check that template.yaml gives each function exactly the environment its code reads.

infra/functions.json lists, per function logical id, the variables that function's
`Config::from_env` reads (generated from the Rust crates' `config::VARIABLES`; a test in
tests/integration/variables.rs keeps it equal to the code). This compares it with each
AWS::Serverless::Function's variables in template.yaml (Globals.Function.Environment plus the
function's own), and fails on a variable the code needs that the template does not give (a
deploy that cannot start) or one the template gives that the code never reads (dead config).
Also fails when the template puts a `{{resolve:secretsmanager:...}}` value into any variable.

Usage: python infra/check_env.py [--template PATH] [--functions PATH]   (exit 1 on a mismatch)
"""

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def variables(props: dict) -> dict:
    return ((props or {}).get("Environment") or {}).get("Variables") or {}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--template", default=str(ROOT / "template.yaml"))
    ap.add_argument("--functions", default=str(ROOT / "infra" / "functions.json"))
    args = ap.parse_args()
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(args.template)
    wanted = json.load(open(args.functions))
    globals_vars = variables((template.get("Globals") or {}).get("Function"))
    problems = []
    functions = {
        k: v for k, v in template["Resources"].items() if v.get("Type") == "AWS::Serverless::Function"
    }
    for name in sorted(set(functions) | set(wanted)):
        if name not in functions:
            problems.append(f"{name}: in infra/functions.json but not a function in the template")
            continue
        if name not in wanted:
            problems.append(f"{name}: a template function missing from infra/functions.json")
            continue
        given = {**globals_vars, **variables(functions[name].get("Properties"))}
        for var, value in given.items():
            if "resolve:secretsmanager" in json.dumps(value, default=str):
                problems.append(f"{name}.{var}: a secret value resolved into the environment")
        have, want = set(given) - {"RUST_LOG"}, set(wanted[name])
        for var in sorted(want - have):
            problems.append(f"{name}: the code reads {var}, the template does not set it")
        for var in sorted(have - want):
            problems.append(f"{name}: the template sets {var}, the code never reads it")
        if not problems:
            print(f"check_env: {name}: {len(want)} variables match")
    for p in problems:
        print(f"MISMATCH {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

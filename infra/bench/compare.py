#!/usr/bin/env python3
"""Runs kefu's inbound benchmark and an independent reference program back to back, and prints
the ratio kefu / reference per case (json, xml) for each round and their median.

Both time the inbound pure path on the same fixture (shared/tests/data/bench_fixture.json) in thread
CPU time, so a busy machine slows both alike; running them alternately, round after round, keeps the
ratio honest where the absolute figures drift. kefu's path does more than the reference's (it also
reads the query string and builds the queue envelope ingress sends), so a ratio near 1 means kefu's
shared steps are faster than the reference's.

The reference is a Cargo project whose binary takes `bench FIXTURE SECS RUNS =CASE_full_typed` and
prints one JSON line with `median_cpu_us` (REFERENCE: its directory).

Usage: compare.py --reference DIR [--rounds 3] [--limit 1.25]; exit 1 when a median ratio is above
the limit.
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = ROOT / "shared/tests/data/bench_fixture.json"
CASES = {"json": "json_safe_text", "xml": "xml_safe_text"}


def cargo() -> str:
    return os.environ.get("CARGO", "cargo")


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))


def build_kefu() -> str:
    """Builds the bench binary and returns its path."""
    out = subprocess.run(
        [cargo(), "bench", "-p", "shared", "--bench", "inbound", "--no-run", "--locked",
         "--message-format=json"],
        cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "inbound" \
                and msg.get("executable"):
            return msg["executable"]
    sys.exit("compare: cargo did not report the inbound bench executable")


def build_reference(ref: Path) -> str:
    """Builds the reference (release, its own lock file) and returns its binary."""
    manifest = ref / "Cargo.toml"
    if not manifest.is_file():
        sys.exit(f"compare: no Cargo.toml in REFERENCE={ref}")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target_dir() / "bench-reference"))
    out = subprocess.run(
        [cargo(), "build", "--release", "--manifest-path", str(manifest), "--message-format=json"],
        check=True, capture_output=True, text=True, env=env).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg.get("executable"):
            return msg["executable"]
    sys.exit("compare: cargo did not report the reference executable")


def run_kefu(binary: str) -> dict:
    """One run of kefu's bench: {case: µs per message}."""
    out = subprocess.run([binary, "--bench"], cwd=ROOT / "shared", check=True,
                         capture_output=True, text=True).stdout
    found = {}
    for fmt, case in CASES.items():
        m = re.search(rf"^inbound {case} ([0-9.]+) us/msg$", out, re.M)
        if not m:
            sys.exit(f"compare: kefu's bench printed no figure for {case}:\n{out}")
        found[fmt] = float(m.group(1))
    return found


def run_reference(binary: str, fmt: str) -> float:
    """One run of the reference for one case: median thread-CPU µs per message."""
    out = subprocess.run([binary, "bench", str(FIXTURE), "2", "5", f"={fmt}_full_typed"],
                         check=True, capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("{"):
            return float(json.loads(line)["median_cpu_us"])
    sys.exit(f"compare: the reference printed no JSON line for {fmt}:\n{out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference", type=Path, required=True,
                    help="directory of the reference Cargo project")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--limit", type=float, default=1.25)
    args = ap.parse_args()
    kefu_bin = build_kefu()
    ref_bin = build_reference(args.reference.resolve())
    ratios = {fmt: [] for fmt in CASES}
    print(f"{'round':>5}  {'case':<4}  {'kefu µs':>8}  {'reference µs':>12}  {'ratio':>6}")
    for r in range(1, args.rounds + 1):
        kefu = run_kefu(kefu_bin)
        for fmt in CASES:
            ref = run_reference(ref_bin, fmt)
            ratio = kefu[fmt] / ref
            ratios[fmt].append(ratio)
            print(f"{r:>5}  {fmt:<4}  {kefu[fmt]:>8.3f}  {ref:>12.3f}  {ratio:>6.2f}", flush=True)
    failed = False
    for fmt, values in ratios.items():
        median = statistics.median(values)
        verdict = "ok" if median <= args.limit else f"ABOVE {args.limit}"
        failed |= median > args.limit
        print(f"bench-compare {fmt} median ratio {median:.2f} "
              f"(rounds: {', '.join(f'{v:.2f}' for v in values)}) {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

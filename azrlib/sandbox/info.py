"""`azr sandbox-info`: which isolation layers this machine gives model-written programs."""

from __future__ import annotations

import argparse
import json

from azrlib.sandbox.executor import Executor
from azrlib.sandbox.isolation import SandboxUnavailable, detect_isolation


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run_cli(args: argparse.Namespace) -> int:
    caps = detect_isolation()
    report = {"available": caps}
    try:
        with Executor(workers=2) as ex:
            report["executor"] = ex.isolation
            check = ex.run("def f(a):\n    return a * 2", "21")
            report["self_check"] = check.value == "42"
    except SandboxUnavailable as e:
        report["error"] = str(e)
    if args.json:
        print(json.dumps(report, indent=1))
    else:
        if "error" in report:
            print(f"sandbox unavailable: {report['error']}")
        else:
            iso = report["executor"]
            print("sandbox isolation:")
            for key in ("bubblewrap", "namespaces", "seccomp", "landlock_abi", "non_root_uid", "sandbox_uid",
                        "network", "rlimits", "double_run", "workers", "weak"):
                print(f"  {key:14s} {iso[key]}")
            print(f"  self check     {'ok' if report['self_check'] else 'FAILED'}")
    return 0 if report.get("self_check") else 1

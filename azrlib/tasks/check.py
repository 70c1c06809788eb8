"""`azr check-tasks`: re-validate AZR-format task files (or CRUXEval) in the sandbox.

Seed rows `snippet, input, output[, imports]` are checked as deduction/abduction proposals (the
`imports` lines are prepended when the snippet lacks them, as AZR runs them); induction rows
`snippet, inputs, outputs, message` have every input run. A row is *valid* when it passes
validation and *reproduced* when the sandbox's value equals the recorded output (`==` on values).
With `--cruxeval`, every row's gold output is verified as a deduction answer and its gold input as
an abduction answer. Answers are data: a gold input that is not literal argument text (12 CRUXEval
rows: `''.join(['A'] * 20)`, a lambda, ...) cannot be an abduction answer; those rows are counted
apart (`abduction_gold_not_literal`), not verified.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import sys
from pathlib import Path

from azrlib.sandbox import Executor
from azrlib.sandbox.canon import NotALiteral, call_args_text
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig, validate_induction, validate_triplets
from azrlib.tasks.values import parse_literal, values_equal, values_of
from azrlib.tasks.verify import verify_answers


RECORDED_PREAMBLE = "from collections import Counter, OrderedDict, defaultdict"


def jsonl_rows(path: str | Path) -> list[dict]:
    """The rows of an AZR-format JSONL file; FileNotFoundError or ValueError naming the path (and line)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    rows = []
    with path.open(encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{n}: not JSON ({e})") from None
    return rows


def read_jsonl(path: str | Path) -> list[dict]:
    try:
        return jsonl_rows(path)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"azr check-tasks: {e}") from None


def program_of(row: dict) -> str:
    snippet = row["snippet"]
    imports = [i for i in row.get("imports") or [] if i.strip() and i.strip() not in snippet]
    return "\n".join(imports + [snippet])


def check_seed_rows(ex: Executor, rows: list[dict], cfg: ValidationConfig) -> dict:
    counts: collections.Counter = collections.Counter()
    triplets = [r for r in rows if "input" in r]
    induction = [r for r in rows if "inputs" in r]
    unknown = len(rows) - len(triplets) - len(induction)
    if unknown:
        counts["unknown_row_format"] += unknown
    reproduced = 0
    examples: dict[str, str] = {}
    if triplets:
        results = validate_triplets(ex, [("deduction", program_of(r), r["input"]) for r in triplets], cfg)
        # Recorded outputs are AZR's reprs: `Counter({...})` needs its import to evaluate.
        recorded = values_of(ex, [r["output"] for r in triplets], preamble=RECORDED_PREAMBLE)
        for row, v, (ok, value, _err) in zip(triplets, results, recorded):
            if not v.ok:
                counts[v.reason] += 1
                examples.setdefault(v.reason, f"{row['snippet'][:60]!r}: {v.detail[:100]}")
                continue
            if not ok:
                reason = "recorded_unreadable"  # AZR stored '' or a repr that is no expression
            elif values_equal(parse_literal(v.task.output), value):
                reproduced += 1
                continue
            else:
                reason = "output_differs"
            counts[reason] += 1
            examples.setdefault(reason, f"recorded {row['output'][:60]!r}, got {v.task.output[:60]}")
    if induction:
        icfg = dataclasses.replace(cfg, min_induction_inputs=1, require_message=False)
        results = validate_induction(ex, [(program_of(r), r["inputs"], r.get("message", "")) for r in induction], icfg)
        for row, v in zip(induction, results):
            if not v.ok or len(v.task.inputs) != len(set(row["inputs"])):
                reason = v.reason if not v.ok else "some_inputs_invalid"
                counts[reason] += 1
                examples.setdefault(reason, f"{row['snippet'][:60]!r}: {v.detail[:100]}")
                continue
            recorded = dict(zip(row["inputs"], values_of(ex, row["outputs"], preamble=RECORDED_PREAMBLE)))
            pairs = list(zip(v.task.inputs, v.task.outputs))
            if not all(recorded[x][0] for x, _ in pairs):
                counts["recorded_unreadable"] += 1  # e.g. AZR's 400-character truncation
            elif all(values_equal(parse_literal(y), recorded[x][1]) for x, y in pairs):
                reproduced += 1
            else:
                counts["output_differs"] += 1
    valid = len(rows) - sum(c for k, c in counts.items() if k not in ("output_differs", "recorded_unreadable"))
    return {"total": len(rows), "valid": valid, "reproduced": reproduced, "rejected": dict(counts),
            "examples": examples}


def check_cruxeval(ex: Executor, rows: list[dict]) -> dict:
    tasks = [Task("deduction", r["code"], (r["input"],), (r["output"],)) for r in rows]
    ded = verify_answers(ex, tasks, [r["output"] for r in rows])
    abd_tasks = [dataclasses.replace(t, task_type="abduction") for t in tasks]
    abd = verify_answers(ex, abd_tasks, [r["input"] for r in rows])
    not_literal = [r["id"] for r in rows if not _literal_args(r["input"])]
    failures = [r["id"] for r, a, b in zip(rows, ded, abd)
                if not (a.correct and b.correct) and r["id"] not in not_literal]
    return {"total": len(rows), "deduction_verified": sum(v.correct for v in ded),
            "abduction_verified": sum(v.correct for v in abd),
            "abduction_gold_not_literal": len(not_literal), "not_literal_ids": not_literal[:50],
            "failed_ids": failures[:50]}


def _literal_args(text: str) -> bool:
    try:
        call_args_text(text)
        return True
    except NotALiteral:
        return False


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("file", nargs="?", help="AZR seed JSONL (snippet, input, output) or induction seeds")
    p.add_argument("--cruxeval", metavar="FILE", help="CRUXEval JSONL (code, input, output, id)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds per program (AZR: 10)")
    p.add_argument("--allow-helpers", action="store_true", help="accept programs with several functions")
    p.add_argument("--max-output-chars", type=int, default=400, help="longest accepted output repr (AZR: 400)")


def run_cli(args: argparse.Namespace) -> int:
    if not args.file and not args.cruxeval:
        raise SystemExit("azr check-tasks: give a task file and/or --cruxeval FILE")
    cfg = ValidationConfig(timeout_s=args.timeout, allow_helpers=args.allow_helpers,
                           max_output_chars=args.max_output_chars)
    report: dict = {}
    with Executor(timeout_s=args.timeout) as ex:
        if args.file:
            report.update(check_seed_rows(ex, read_jsonl(args.file), cfg))
        if args.cruxeval:
            report["cruxeval"] = check_cruxeval(ex, read_jsonl(args.cruxeval))
        report["isolation"] = {k: ex.isolation[k] for k in ("bubblewrap", "seccomp", "landlock_abi", "non_root_uid")}
    if args.json:
        print(json.dumps(report))
        return 0
    if args.file:
        t = report["total"]
        print(f"{args.file}: {t} rows, {report['valid']} valid ({100 * report['valid'] / max(t, 1):.1f}%), "
              f"{report['reproduced']} with the recorded output reproduced ({100 * report['reproduced'] / max(t, 1):.1f}%)")
        for reason, n in sorted(report["rejected"].items(), key=lambda kv: -kv[1]):
            print(f"  {reason:22s} {n:5d}   e.g. {report['examples'].get(reason, '')}")
    if args.cruxeval:
        c = report["cruxeval"]
        print(f"{args.cruxeval}: {c['total']} rows, gold outputs verified as deduction answers: "
              f"{c['deduction_verified']}, gold inputs verified as abduction answers: {c['abduction_verified']} "
              f"(+{c['abduction_gold_not_literal']} gold inputs that are not literals, so no answer)")
        if c["not_literal_ids"]:
            print(f"  gold input not a literal: {', '.join(c['not_literal_ids'])}")
        if c["failed_ids"]:
            print(f"  failed: {', '.join(c['failed_ids'])}")
    return 0

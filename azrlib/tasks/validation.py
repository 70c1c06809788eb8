"""Validation of proposed tasks: static checks, then execution in the sandbox.

A proposal becomes a task only if every step passes; each rejection carries a reason code
(`REJECT_REASONS`). Follows AZR (its `_check_valid_program` path) with these named departures:
- banned imports are checked on the AST: any `import x.y` / `from x.y import` whose top-level
  module is in `banned_modules` (AZR's list; its dotted entries such as `os.environ` never matched
  anything, so they are left out);
- determinism is judged by running the program in two different interpreters (`Executor`), not by
  calling it twice in one process;
- an output longer than `max_output_chars` is rejected (`output_overflow="reject"`, default);
  `"truncate"` keeps AZR's behaviour of storing the first 400 characters, which makes the gold
  answer unreachable;
- `allow_helpers` (default False, as AZR) accepts programs with several functions;
- inputs must be literal argument text (`'ab', 3, k=[1]`), read without evaluating anything
  (AZR `eval`s `f(<input>)`, so an input may be any expression, even one that bypasses `f`);
- an output becomes a gold only if it is matchable: it parses back to a value whose canonical repr
  is itself, with no NaN (AZR keeps NaN golds, which no answer can equal).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from azrlib.sandbox.canon import NotALiteral, call_args_text
from azrlib.tasks.types import Task
from azrlib.tasks.values import matchable

AZR_BANNED_MODULES = ("logging", "random", "multiprocessing", "pebble", "subprocess", "threading",
                      "datetime", "time", "hashlib", "hmac", "bcrypt", "calendar")

REJECT_REASONS = {
    "syntax_error": "the program does not parse",
    "no_function": "no top-level function f",
    "multiple_functions": "more than one function (allow_helpers off)",
    "banned_import": "imports a banned module",
    "input_call": "calls input(",
    "bad_input": "the input is not literal argument text",
    "unmatchable_output": "the output does not parse back to itself or holds a NaN",
    "error": "raised an exception",
    "timeout": "did not finish within the timeout",
    "crashed": "killed the runner (signal, os._exit, ...)",
    "nondeterministic": "two interpreters returned different values",
    "output_too_large": "output repr longer than max_output_chars",
    "unsupported_output": "returned a value that is not made of builtin literal types",
    "no_valid_inputs": "induction: fewer valid inputs than required",
    "no_message": "induction: empty message",
}


@dataclass(frozen=True)
class ValidationConfig:
    """How proposals are checked (a field of the trainer config; the defaults are AZR's)."""

    banned_modules: tuple[str, ...] = AZR_BANNED_MODULES
    allow_helpers: bool = False
    max_output_chars: int = 400
    output_overflow: str = "reject"  # "reject" | "truncate" (AZR)
    timeout_s: float = 10.0
    min_induction_inputs: int = 10  # induction proposals must have this many valid inputs
    require_message: bool = True  # induction proposals need a non-empty message

    def __post_init__(self):
        if self.output_overflow not in ("reject", "truncate"):
            raise ValueError(f"output_overflow must be 'reject' or 'truncate', got {self.output_overflow!r}")


@dataclass(frozen=True)
class Validation:
    ok: bool
    reason: str  # "ok" or a key of REJECT_REASONS
    task: Task | None = None
    detail: str = ""


def static_check(program: str, cfg: ValidationConfig) -> tuple[str, str]:
    """("ok", "") or (reason, detail) from the program text alone."""
    try:
        tree = ast.parse(program)
    except (SyntaxError, ValueError, RecursionError, MemoryError) as e:
        return "syntax_error", str(e)[:200]
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    if not any(isinstance(n, ast.FunctionDef) and n.name == "f" for n in tree.body):
        return "no_function", ""
    if len(functions) > 1 and not cfg.allow_helpers:
        return "multiple_functions", f"{len(functions)} functions"
    banned = set(cfg.banned_modules)
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in banned:
                return "banned_import", name
    if "input(" in program:  # AZR's text check: also catches `input (` spelled without a space
        return "input_call", ""
    return "ok", ""


def _exec_reason(result) -> str:
    if result.status == "rejected":
        if (result.error or "").startswith("nondeterministic"):
            return "nondeterministic"
        if "too large" in (result.error or "") or "too deeply" in (result.error or ""):
            return "output_too_large"
        return "unsupported_output"
    return result.status  # error | timeout | crashed


def _input_ok(inputs: str) -> bool:
    try:
        call_args_text(inputs)
        return True
    except NotALiteral:
        return False


def validate_triplets(executor, proposals: list[tuple[str, str, str]], cfg: ValidationConfig,
                      step: int = -1) -> list[Validation]:
    """proposals: (task_type, program, input). Runs all survivors of the static checks in one
    sandbox batch; valid ones come back as Tasks with the canonical output."""
    results: list[Validation | None] = [None] * len(proposals)
    runnable = []
    for k, (task_type, program, inputs) in enumerate(proposals):
        reason, detail = static_check(program, cfg)
        if reason == "ok" and not _input_ok(inputs):
            reason, detail = "bad_input", ""
        if reason != "ok":
            results[k] = Validation(False, reason, None, detail)
        else:
            runnable.append(k)
    limit = max(cfg.max_output_chars, 100_000) if cfg.output_overflow == "truncate" else None
    runs = executor.run_many([(proposals[k][1], proposals[k][2]) for k in runnable], timeout_s=cfg.timeout_s)
    for k, r in zip(runnable, runs):
        task_type, program, inputs = proposals[k]
        if r.status != "ok":
            results[k] = Validation(False, _exec_reason(r), None, r.error or "")
            continue
        output = r.value
        why = matchable(output)
        if why:
            results[k] = Validation(False, "unmatchable_output", None, why)
            continue
        if len(output) > cfg.max_output_chars:
            if limit is None:
                results[k] = Validation(False, "output_too_large", None, f"{len(output)} characters")
                continue
            output = output[: cfg.max_output_chars]
        results[k] = Validation(True, "ok", Task(task_type, program, (inputs,), (output,), step=step))
    return results  # type: ignore[return-value]


def validate_induction(executor, proposals: list[tuple[str, list[str], str]], cfg: ValidationConfig,
                       step: int = -1) -> list[Validation]:
    """proposals: (program, inputs, message) where the program comes from a validated task. Keeps
    the inputs that run deterministically with a small output; needs `min_induction_inputs`."""
    results: list[Validation | None] = [None] * len(proposals)
    flat, owners = [], []
    for k, (program, inputs, message) in enumerate(proposals):
        reason, detail = static_check(program, cfg)
        if reason != "ok":
            results[k] = Validation(False, reason, None, detail)
            continue
        if cfg.require_message and not (message or "").strip():
            results[k] = Validation(False, "no_message")
            continue
        for x in inputs:
            if _input_ok(x):
                flat.append((program, x))
                owners.append(k)
    runs = executor.run_many(flat, timeout_s=cfg.timeout_s)
    kept: dict[int, list[tuple[str, str]]] = {}
    failures: dict[int, str] = {}
    for k, (program, x), r in zip(owners, flat, runs):
        if r.status == "ok" and matchable(r.value):
            failures.setdefault(k, "unmatchable_output")
        elif r.status == "ok" and len(r.value) <= cfg.max_output_chars:
            pairs = kept.setdefault(k, [])
            if x not in (p[0] for p in pairs):  # a repeated input teaches nothing
                pairs.append((x, r.value))
        else:
            failures.setdefault(k, _exec_reason(r) if r.status != "ok" else "output_too_large")
    for k, (program, inputs, message) in enumerate(proposals):
        if results[k] is not None:
            continue
        pairs = kept.get(k, [])
        if len(pairs) < cfg.min_induction_inputs:
            detail = f"{len(pairs)} valid distinct inputs" + (f"; first failure: {failures[k]}" if k in failures else "")
            results[k] = Validation(False, "no_valid_inputs", None, detail)
            continue
        results[k] = Validation(True, "ok", Task("induction", program, tuple(p[0] for p in pairs),
                                                 tuple(p[1] for p in pairs), message=(message or "").strip(), step=step))
    return results  # type: ignore[return-value]

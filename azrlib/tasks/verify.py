"""Verification of solver answers against a task's gold values (AZR semantics, answers as data).

- deduction: the answered output, read as a literal, `==` the gold output. An answer that is an
  expression (`dict(a=1)`) is wrong: nothing a solver writes for this task type is evaluated
  (AZR `eval`s it);
- abduction: the answer must be literal argument text; `f(*answer)` runs in the sandbox and its
  value `==` the gold output. The answer is sent as canonical values, never compiled;
- induction: the answered program's `f` on every hidden input `==` the gold outputs (binary).

Golds are re-checked when used (`recheck_gold`, default on): the task's own program runs again on
its gold inputs, in the same sandbox batch as the answers (same author, so no extra process for
abduction). A gold that no longer reproduces (a coarse clock, a pid, a NaN) makes every answer to
that task wrong with `gold_ok=False`, and is logged; the caller drops the task from its buffer
(`TaskBuffer.remove`). A gold input that is not a literal (hand-written task files, 12 CRUXEval
rows) cannot be re-run under the literal-only rule and is not re-checked.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from azrlib.sandbox.canon import NotALiteral, call_args_text
from azrlib.tasks.templates import split_induction_pairs
from azrlib.tasks.types import Task
from azrlib.tasks.values import literals_of, matchable, parse_literal, values_equal

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    correct: bool
    detail: str = ""
    gold_ok: bool = True  # False: the task's gold no longer reproduces; drop the task


def _gold_pairs(task: Task, n_shown: int) -> list[tuple[str, str]]:
    """The (input, output) golds that answers are compared with."""
    if task.task_type == "induction":
        return list(split_induction_pairs(task, n_shown)[1])
    return [(task.input, task.output)]


def _literal_input(text: str) -> bool:
    try:
        call_args_text(text)
        return True
    except NotALiteral:
        return False


def verify_answers(executor, tasks: list[Task], answers: list[str | None], n_shown: int = 5,
                   timeout_s: float | None = None, recheck_gold: bool = True) -> list[Verdict]:
    """One Verdict per (task, answer); `None` answers (unparseable) are wrong."""
    verdicts: list[Verdict | None] = [None] * len(tasks)
    deduction, abduction, induction = [], [], []
    for k, (task, answer) in enumerate(zip(tasks, answers)):
        if answer is None or (task.task_type != "abduction" and not str(answer).strip()):
            # an empty abduction answer is the input of a function without arguments
            verdicts[k] = Verdict(False, "no answer")
        elif task.task_type == "deduction":
            deduction.append(k)
        elif task.task_type == "abduction":
            abduction.append(k)
        else:
            induction.append(k)

    # One sandbox call: the abduction answers, the induction answers on the hidden inputs, and the
    # re-run of every distinct task's gold (grouped by program, so a task's gold re-run shares the
    # process of the answers to it).
    flat: list[tuple[str, str]] = []
    owners: list[tuple[str, object, str]] = []  # ("abd", k, gold) | ("ind", k, gold) | ("gold", task, gold)
    for k in abduction:
        flat.append((tasks[k].program, str(answers[k])))
        owners.append(("abd", k, tasks[k].output))
    for k in induction:
        for x, y in _gold_pairs(tasks[k], n_shown):
            flat.append((str(answers[k]), x))
            owners.append(("ind", k, y))
    gold_failure: dict[Task, str] = {}
    if recheck_gold:
        for task in dict.fromkeys(tasks[k] for k in deduction + abduction + induction):
            for x, y in _gold_pairs(task, n_shown):
                reason = matchable(y, canonical=False)
                if reason:
                    gold_failure.setdefault(task, f"gold output {reason}")
                elif _literal_input(x):
                    flat.append((task.program, x))
                    owners.append(("gold", task, y))
    runs = executor.run_many(flat, timeout_s=timeout_s) if flat else []

    answer_runs: dict[int, list[tuple[object, str]]] = {}
    for (kind, key, gold), r in zip(owners, runs):
        if kind == "gold":
            if not _compare_run(gold, r).correct and key not in gold_failure:
                gold_failure[key] = f"gold no longer reproduces ({r.status}: {(r.value or r.error or '')[:80]})"
        else:
            answer_runs.setdefault(key, []).append((r, gold))
    for task, why in gold_failure.items():
        log.warning("dropping a %s task whose %s: %.80r", task.task_type, why, task.program)

    if deduction:
        got = literals_of([str(answers[k]) for k in deduction])
        for k, (ok, value, err) in zip(deduction, got):
            verdicts[k] = _compare(tasks[k].output, ok, value, err)
    for k in abduction + induction:
        verdict = Verdict(True)
        for r, gold in answer_runs.get(k, []):
            v = _compare_run(gold, r)
            if not v.correct:
                verdict = v
                break
        verdicts[k] = verdict
    for k, task in enumerate(tasks):
        if task in gold_failure:
            verdicts[k] = Verdict(False, gold_failure[task], gold_ok=False)
    return verdicts  # type: ignore[return-value]


def _compare(gold_text: str, ok: bool, value, err) -> Verdict:
    try:
        gold = parse_literal(gold_text)
    except NotALiteral as e:
        return Verdict(False, f"gold value unavailable: {e}")
    if not ok:
        return Verdict(False, err or "answer has no value")
    return Verdict(True) if values_equal(gold, value) else Verdict(False, "different value")


def _compare_run(gold_text: str, result) -> Verdict:
    if result.status != "ok":
        return Verdict(False, f"{result.status}: {result.error}")
    try:
        return _compare(gold_text, True, parse_literal(result.value), None)
    except NotALiteral:
        return Verdict(False, "canonical value does not parse")

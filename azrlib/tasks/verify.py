"""Verification of solver answers against a task's gold values (AZR semantics).

- deduction: the answered output, as a value, `==` the gold output (literal parsing; an answer that
  is an expression, e.g. `dict(a=1)`, is evaluated in the sandbox);
- abduction: `f(answer)` runs in the sandbox and its value `==` the gold output;
- induction: the answered program's `f` on every hidden input `==` the gold outputs (binary).
All sandbox work for a batch of answers goes through one `run_many` call per kind.
"""

from __future__ import annotations

from dataclasses import dataclass

from azrlib.tasks.templates import split_induction_pairs
from azrlib.tasks.types import Task
from azrlib.tasks.values import NotALiteral, parse_literal, values_equal, values_of


@dataclass(frozen=True)
class Verdict:
    correct: bool
    detail: str = ""


def _gold(text: str):
    try:
        return True, parse_literal(text)
    except NotALiteral:
        return False, None


def verify_answers(executor, tasks: list[Task], answers: list[str | None], n_shown: int = 5,
                   timeout_s: float | None = None) -> list[Verdict]:
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

    # Gold outputs that are not canonical literals (hand-written task files) are evaluated too.
    gold_set = {tasks[k].output for k in deduction + abduction}
    for k in induction:
        gold_set.update(y for _, y in split_induction_pairs(tasks[k], n_shown)[1])
    gold_texts = sorted(gold_set)
    gold_values = dict(zip(gold_texts, values_of(executor, gold_texts, timeout_s)))

    if deduction:
        got = values_of(executor, [str(answers[k]) for k in deduction], timeout_s)
        for k, (ok, value, err) in zip(deduction, got):
            verdicts[k] = _compare(gold_values[tasks[k].output], ok, value, err)
    if abduction:
        runs = executor.run_many([(tasks[k].program, str(answers[k])) for k in abduction], timeout_s=timeout_s)
        for k, r in zip(abduction, runs):
            verdicts[k] = _compare_run(gold_values[tasks[k].output], r)
    if induction:
        flat, owners = [], []
        for k in induction:
            for x, y in split_induction_pairs(tasks[k], n_shown)[1]:
                flat.append((str(answers[k]), x))
                owners.append((k, y))
        runs = executor.run_many(flat, timeout_s=timeout_s)
        per_task: dict[int, Verdict] = {}
        for (k, y), r in zip(owners, runs):
            v = _compare_run(gold_values[y], r)
            if not v.correct and k not in per_task:
                per_task[k] = v
        for k in induction:
            verdicts[k] = per_task.get(k, Verdict(True))
    return verdicts  # type: ignore[return-value]


def _compare(gold, ok: bool, value, err) -> Verdict:
    gold_ok, gold_value, gold_err = gold
    if not gold_ok:
        return Verdict(False, f"gold value unavailable: {gold_err}")
    if not ok:
        return Verdict(False, err or "answer has no value")
    return Verdict(True) if values_equal(gold_value, value) else Verdict(False, "different value")


def _compare_run(gold, result) -> Verdict:
    if result.status != "ok":
        return Verdict(False, f"{result.status}: {result.error}")
    ok, value = _gold(result.value)
    return _compare(gold, ok, value, None if ok else "canonical value does not parse")

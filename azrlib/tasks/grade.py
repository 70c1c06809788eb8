"""Grading solver completions: parse the answer, apply the format rule, verify in the sandbox.

One rule everywhere a solver response is scored (the trainer's solve and learnability phases, its
validation, the difficulty study of RQ2, the tiny-world usefulness check): a completion's answer
counts only when the completion passes AZR's format test (`<think>...</think><answer>...</answer>`,
the prompt ending in `<think>`) *and* its answer block parses; otherwise it is graded wrong without
running anything. The reward of a graded response is Eq. 6 of the AZR paper (`solver_total_reward`).
"""

from __future__ import annotations

from dataclasses import dataclass

from azrlib.rewards import solver_total_reward
from azrlib.tasks.parsing import format_ok, parse_solver_answer
from azrlib.tasks.types import Task
from azrlib.tasks.verify import verify_answers


@dataclass(frozen=True)
class Graded:
    """One solver completion of one task, graded."""

    format_ok: bool  # AZR's <think>/<answer> format test
    answer: str | None  # the parsed answer; None when the format test or the parse failed
    correct: bool
    gold_ok: bool = True  # False: the task's gold output no longer reproduces (drop the task)

    @property
    def reward(self) -> float:
        """Eq. 6: 1 correct, -0.5 well formatted but wrong, -1 format error."""
        return solver_total_reward(self.format_ok, self.correct)


def gated_answer(task_type: str, text: str) -> tuple[bool, str | None]:
    """(format ok, answer or None): the one format rule."""
    fmt = format_ok(text, prompt_ends_with_think=True)
    parsed = parse_solver_answer(task_type, text)
    return fmt, (parsed.answer if parsed.ok and fmt else None)


def grade(executor, tasks: list[Task], texts: list[str], n_shown: int = 5) -> list[Graded]:
    """Grade `texts[i]` as an answer to `tasks[i]` (one sandbox batch for all of them)."""
    if len(tasks) != len(texts):
        raise ValueError(f"{len(tasks)} tasks but {len(texts)} completions")
    gated = [gated_answer(task.task_type, text) for task, text in zip(tasks, texts)]
    verdicts = verify_answers(executor, list(tasks), [a for _, a in gated], n_shown=n_shown)
    return [Graded(fmt, a, v.correct, v.gold_ok) for (fmt, a), v in zip(gated, verdicts)]


def grade_samples(executor, tasks: list[Task], samples: list[list], n_shown: int = 5) -> list[list[Graded]]:
    """Grade every completion (anything with a `.text`) of `samples[i]` against `tasks[i]`; the
    result has the shape of `samples` (a task without samples gets an empty list)."""
    if len(tasks) != len(samples):
        raise ValueError(f"{len(tasks)} tasks but {len(samples)} sample lists")
    flat_tasks = [task for task, comps in zip(tasks, samples) for _ in comps]
    flat = grade(executor, flat_tasks, [c.text for comps in samples for c in comps], n_shown=n_shown)
    out, k = [], 0
    for comps in samples:
        out.append(flat[k:k + len(comps)])
        k += len(comps)
    return out

"""The one grading path (`tasks.grade`): the format gate, the parse, sandbox verification and the
Eq. 6 reward, checked case by case against answers written by hand."""

from __future__ import annotations

import types

import pytest

from azrlib.sandbox import Executor
from azrlib.tasks.grade import grade, grade_samples
from azrlib.tasks.templates import render_solver_answer
from azrlib.tasks.types import Task

TASK = Task("deduction", "def f(a):\n    return a * 3", ("4",), ("12",))
ABDUCTION = Task("abduction", "def f(a):\n    return a * 3", ("4",), ("12",))
RIGHT = render_solver_answer(TASK, "think")  # ... </think>\n<answer>\n```output\n12\n```\n</answer>
WRONG = render_solver_answer(Task("deduction", TASK.program, ("4",), ("13",)), "think")


@pytest.fixture(scope="module")
def ex():
    with Executor(timeout_s=2.0) as e:
        yield e


def test_each_case_of_the_format_rule(ex):
    no_think_close = RIGHT.replace("</think>", "")  # the right answer, badly formatted
    no_block = "think</think>\n<answer>\n</answer>"  # well formatted, nothing to parse
    g = grade(ex, [TASK] * 4, [RIGHT, WRONG, no_think_close, no_block])
    assert [(x.format_ok, x.answer, x.correct, x.reward) for x in g] == [
        (True, "12", True, 1.0),
        (True, "13", False, -0.5),
        (False, None, False, -1.0),  # a right answer in a broken format earns nothing
        (True, None, False, -0.5),
    ]


def test_abduction_answers_are_executed(ex):
    right = render_solver_answer(ABDUCTION, "t")  # ```input 4: f(4) == 12
    other = render_solver_answer(Task("abduction", ABDUCTION.program, ("5",), ("15",)), "t")
    assert [x.correct for x in grade(ex, [ABDUCTION, ABDUCTION], [right, other])] == [True, False]


def test_grade_samples_keeps_the_shape_of_its_input(ex):
    c = types.SimpleNamespace
    out = grade_samples(ex, [TASK, TASK, ABDUCTION], [[c(text=RIGHT), c(text=WRONG)], [], [c(text=RIGHT)]])
    assert [[x.correct for x in row] for row in out] == [[True, False], [], [False]]
    with pytest.raises(ValueError, match="2 tasks but 1"):
        grade(ex, [TASK, TASK], [RIGHT])

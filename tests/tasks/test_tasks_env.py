"""Validation, verification, literal values and check-tasks: real sandbox runs, one property each."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from azrlib.cli import main as azr_main
from azrlib.sandbox import Executor
from azrlib.tasks.types import Task
from azrlib.tasks.validation import ValidationConfig, static_check, validate_induction, validate_triplets
from azrlib.tasks.values import NotALiteral, parse_literal, values_equal, values_of
from azrlib.tasks.verify import verify_answers

from benchdata import DATA, rows  # the full public copies, or the slice in tests/data
CFG = ValidationConfig(timeout_s=2.0)


@pytest.fixture(scope="module")
def ex():
    with Executor(timeout_s=2.0) as executor:
        yield executor


# --------------------------------------------------------------------------- literal values

@pytest.mark.parametrize("text,value", [
    ("1", 1), ("-2.5", -2.5), ("'a'", "a"), ("b'x'", b"x"), ("(1,)", (1,)), ("[1, (2, 3)]", [1, (2, 3)]),
    ("{'a': [1]}", {"a": [1]}), ("{1, 2}", {1, 2}), ("set()", set()), ("frozenset({1})", frozenset({1})),
    ("float('inf')", math.inf), ("-inf", -math.inf), ("complex(1.0, 2.0)", 1 + 2j), ("1+2j", 1 + 2j),
    ("None", None), ("True", True),
])
def test_parse_literal_accepts_literals(text, value):
    assert parse_literal(text) == value and type(parse_literal(text)) is type(value)


@pytest.mark.parametrize("text", ["dict(a=1)", "[0] * 3", "__import__('os')", "x", "1 +", "f()", "{**a}", "..."])
def test_parse_literal_rejects_non_literals(text):
    with pytest.raises(NotALiteral):
        parse_literal(text)


def test_parse_literal_limits_depth_and_size():
    with pytest.raises(NotALiteral):
        parse_literal("[" * 300 + "]" * 300)
    with pytest.raises(NotALiteral):
        parse_literal("'" + "a" * 200_000 + "'")


@given(st.text(max_size=200))
@settings(max_examples=300, deadline=None)
def test_parse_literal_never_raises_anything_else(text):
    try:
        parse_literal(text)
    except NotALiteral:
        pass


def test_python_equality_semantics():
    assert values_equal(parse_literal("1"), parse_literal("1.0")) and values_equal(parse_literal("True"), 1)
    assert values_equal(parse_literal("{'a': 1, 'b': 2}"), parse_literal("{'b': 2, 'a': 1}"))
    assert not values_equal(parse_literal("(1, 2)"), parse_literal("[1, 2]"))
    assert not values_equal(parse_literal("float('nan')"), parse_literal("float('nan')"))


def test_values_of_evaluates_expressions_in_sandbox(ex):
    out = values_of(ex, ["dict(a=1)", "[0] * 3", "1); import os; (", "[1, 2]"])
    assert out[0] == (True, {"a": 1}, None)
    assert out[1] == (True, [0, 0, 0], None)
    assert out[2][0] is False
    assert out[3] == (True, [1, 2], None)


# --------------------------------------------------------------------------- validation

@pytest.mark.parametrize("program,reason", [
    ("def f(a):\n  return a +", "syntax_error"),
    ("def g(a):\n    return a", "no_function"),
    ("def f(a):\n    def h(b):\n        return b\n    return h(a)", "multiple_functions"),
    ("import random\ndef f(a):\n    return a", "banned_import"),
    ("from time import sleep\ndef f(a):\n    return a", "banned_import"),
    ("import os.path\nimport hashlib.x\ndef f(a):\n    return a", "banned_import"),
    ("def f(a):\n    return input('x')", "input_call"),
])
def test_static_rejections(program, reason):
    assert static_check(program, CFG)[0] == reason


def test_helpers_option_accepts_several_functions():
    program = "def h(b):\n    return b * 2\ndef f(a):\n    return h(a)"
    assert static_check(program, CFG)[0] == "multiple_functions"
    assert static_check(program, ValidationConfig(allow_helpers=True))[0] == "ok"


def test_banned_list_is_configurable():
    program = "import math\ndef f(a):\n    return math.sqrt(a)"
    assert static_check(program, CFG)[0] == "ok"
    assert static_check(program, ValidationConfig(banned_modules=("math",)))[0] == "banned_import"


def test_validate_triplets_runs_programs(ex):
    proposals = [
        ("deduction", "def f(a, b):\n    return a[::-1] * b", "'ab', 2"),
        ("abduction", "def f(a):\n    return 1 / a", "0"),
        ("deduction", "def f(a):\n    while True:\n        pass", "1"),
        ("deduction", "def f(a):\n    return [id(x) for x in a]", "[1, 2]"),
        ("deduction", "def f(a):\n    return 'x' * a", "1000"),
        ("deduction", "def f(a):\n    return a", "1,,"),
        ("deduction", "def f(a):\n    return object()", "1"),
    ]
    got = validate_triplets(ex, proposals, ValidationConfig(timeout_s=1.0), step=3)
    assert got[0].ok and got[0].task.output == "'baba'" and got[0].task.step == 3
    assert [v.reason for v in got[1:]] == ["error", "timeout", "nondeterministic", "output_too_large",
                                           "bad_input", "unsupported_output"]


def test_truncate_option_keeps_azr_behaviour(ex):
    cfg = ValidationConfig(output_overflow="truncate", max_output_chars=10)
    v = validate_triplets(ex, [("deduction", "def f(a):\n    return 'x' * a", "100")], cfg)[0]
    assert v.ok and len(v.task.output) == 10


def test_validate_induction_needs_enough_valid_inputs(ex):
    program = "def f(a):\n    return 10 // a"
    good = [str(k) for k in range(1, 11)]
    ok, short, no_msg = validate_induction(ex, [
        (program, good, "divide ten"),
        (program, good[:9] + ["0"], "divide ten"),
        (program, good, "  "),
    ], CFG)
    assert ok.ok and len(ok.task.inputs) == 10 and ok.task.outputs[0] == "10"
    assert (short.ok, short.reason) == (False, "no_valid_inputs")
    assert (no_msg.ok, no_msg.reason) == (False, "no_message")


# --------------------------------------------------------------------------- verification

def test_verify_deduction(ex):
    task = Task("deduction", "def f(a):\n    return {'k': a, 'n': 1.0}", ("2",), ("{'k': 2, 'n': 1.0}",))
    answers = ["{'n': 1, 'k': 2}", "dict(k=2, n=True)", "{'k': 3, 'n': 1}", "[('k', 2)]", "", None, "garbage("]
    got = [v.correct for v in verify_answers(ex, [task] * len(answers), answers)]
    # answers are data: `dict(k=2, n=True)` is an expression, not a literal, so it is wrong
    assert got == [True, False, False, False, False, False, False]


def test_verify_abduction_runs_the_answer(ex):
    task = Task("abduction", "def f(s, n):\n    return s[:n]", ("'hello', 2",), ("'he'",))
    answers = ["'hey', 2", "'he', 5", "'hello', 3", "'he'", "__import__('os').system('true')"]
    got = [v.correct for v in verify_answers(ex, [task] * len(answers), answers)]
    assert got == [True, True, False, False, False]


def test_verify_induction_uses_hidden_pairs(ex):
    inputs = tuple(str(k) for k in range(10))
    task = Task("induction", "def f(x):\n    return x * 3", inputs, tuple(str(3 * k) for k in range(10)), message="m")
    right = "def f(x):\n    return 3 * x"
    only_shown = "def f(x):\n    return x * 3 if x < 5 else 0"  # matches the 5 shown pairs only
    got = [v.correct for v in verify_answers(ex, [task] * 3, [right, only_shown, "def f(x):\n    return x"])]
    assert got == [True, False, False]


# --------------------------------------------------------------------------- check-tasks CLI

def test_check_tasks_cli_counts(tmp_path, capsys):
    rows = [
        {"snippet": "def f(a):\n    return a * 2", "input": "3", "output": "6"},
        {"snippet": "def f(a):\n    return math.floor(a)", "input": "2.5", "output": "2", "imports": ["import math"]},
        {"snippet": "def f(a):\n    return a + 1", "input": "3", "output": "5"},
        {"snippet": "import random\ndef f(a):\n    return a", "input": "3", "output": "3"},
        {"snippet": "def f(a):\n    return a", "inputs": ["1", "'x'"], "outputs": ["1", "'x'"], "message": "identity"},
    ]
    path = tmp_path / "seeds.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert azr_main(["check-tasks", str(path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == 5 and report["valid"] == 4 and report["reproduced"] == 3
    assert report["rejected"] == {"output_differs": 1, "banned_import": 1}


def test_check_tasks_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="no such file"):
        azr_main(["check-tasks", str(tmp_path / "nope.jsonl")])


def test_azr_seed_file_mostly_reproduces(capsys):
    assert azr_main(["check-tasks", str(DATA / "azr_seeds" / "3b_coder_seed_io.jsonl"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["total"] == rows(256, 40)
    # rows whose input is an expression (`f(5)`, `5 + 6 + 3 + 2`...): answers are data, so they
    # are bad inputs here (AZR evaluates them)
    bad = rows(5, 1)
    assert report["rejected"].get("bad_input", 0) == bad
    assert report["reproduced"] / (report["total"] - bad) >= 0.95
    assert report["valid"] + sum(v for k, v in report["rejected"].items()
                                 if k not in ("output_differs", "recorded_unreadable")) == report["total"]


def test_all_cruxeval_rows_verify_both_ways(capsys):
    assert azr_main(["check-tasks", "--cruxeval", str(DATA / "benchmarks" / "cruxeval.jsonl"), "--json"]) == 0
    c = json.loads(capsys.readouterr().out)["cruxeval"]
    n = rows(800, 20)
    # gold inputs that are expressions (a lambda, `''.join(['A'] * 20)`, ...) have no literal answer
    not_literal = rows(12, 0)
    assert c["total"] == n and c["deduction_verified"] == n
    assert c["abduction_gold_not_literal"] == not_literal and c["abduction_verified"] == n - not_literal
    assert not c["failed_ids"]

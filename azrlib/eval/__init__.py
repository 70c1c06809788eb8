"""Benchmark evaluation: load a benchmark, prompt a model, check every sample, write per-sample rows.

    from azrlib.eval import load_benchmark, CheckerSuite
    problems = load_benchmark("mbpp+", data="../shared/data/benchmarks/MbppPlus.jsonl")
    with Executor(timeout_s=10) as ex:
        verdicts = CheckerSuite(ex).check(problems, answers)   # one Verdict per (problem, answer)

Modules: `benchmarks` (the `Problem` record and one loader per benchmark, local file or download),
`prompts` (the `azr`, `qwen-boxed` and `plain` prompt styles and answer extraction), `checkers`
(evalplus-style differential testing, HumanEval `check`, CRUXEval, math equivalence, tiny world),
`results` (the per-sample JSONL rows and resuming a half-written file) and `cli` (`azr eval`).
"""

from azrlib.eval.benchmarks import BENCHMARKS, Problem, DataUnavailable, load_benchmark
from azrlib.eval.checkers import CheckerSuite, Verdict
from azrlib.eval.prompts import PROMPT_STYLES, Extraction, build_prompt, extract, stop_strings

__all__ = [
    "BENCHMARKS",
    "CheckerSuite",
    "DataUnavailable",
    "Extraction",
    "PROMPT_STYLES",
    "Problem",
    "Verdict",
    "build_prompt",
    "extract",
    "load_benchmark",
    "stop_strings",
]

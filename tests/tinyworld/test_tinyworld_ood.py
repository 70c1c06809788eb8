"""The out-of-distribution tiny-world split: its programs' compositions never appear in the
pretraining programs (helper variables inlined), it has 100+ valid tasks per type, and the
in-distribution benchmark file is unchanged."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from azrlib.tasks.types import TASK_TYPES
from azrlib.tinyworld import ood
from azrlib.tinyworld.benchmark import load_benchmark
from azrlib.tinyworld.holdout import normalize_program
from azrlib.tinyworld.programs import generate_programs

ROOT = Path(__file__).resolve().parents[2]
OOD_FILE = ROOT / "data" / "tinyworld" / "benchmark_ood.jsonl"


@pytest.fixture(scope="module")
def split():
    return load_benchmark(OOD_FILE)


@pytest.fixture(scope="module")
def stream():
    return generate_programs(ood.REFERENCE_PROGRAMS, ood.REFERENCE_SEED)  # the pretraining candidates


def test_in_distribution_benchmark_is_unchanged():
    digest = hashlib.md5((ROOT / "data" / "tinyworld" / "benchmark.jsonl").read_bytes()).hexdigest()
    assert digest == "a02b8c215cb10c2bab84252e4b4d125b"


def test_split_has_100_plus_tasks_per_type_of_three_nested_operations(split):
    for task_type in TASK_TYPES:
        tasks = split[task_type]
        assert len(tasks) >= 100, task_type
        assert all(t.meta["family"] == ood.OOD_FAMILY and t.meta["level"] == ood.OOD_LEVEL for t in tasks)
    programs = [t.program for tasks in split.values() for t in tasks]
    assert len({normalize_program(p) for p in programs}) == len(programs)  # one task per program


@pytest.mark.slow  # reads the 6,000-program reference stream and every composition in it
def test_no_composition_of_the_split_appears_in_any_pretraining_program(split, stream):
    """Every pretraining document's program (and the proposer references, which are corpus
    programs) comes from this candidate stream; the committed base used its first 6,000."""
    reference: set[str] = set()
    for spec in stream:
        reference |= ood.composed_shapes(spec.program)
    tasks = [t for group in split.values() for t in group]
    assert ood.check_disjoint(tasks, reference) == []
    texts = {spec.key for spec in stream}
    assert not any(normalize_program(t.program) in texts for t in tasks)
    # the zero triplet that seeds self-play composes nothing
    assert ood.composed_shapes("def f(a):\n    return a") == {"n0"}


def test_composed_shapes_see_through_helper_variables():
    chain = "def f(xs):\n    x = sorted(xs)\n    y = x[1:]\n    return len(y) + 3"
    nested = "def f(nums):\n    return len(sorted(nums)[1:]) + 7"
    assert ood.returned_shape(nested) in ood.composed_shapes(chain)
    looped = "def f(xs):\n    t = 0\n    for v in xs:\n        t += v\n    return t * 2"
    assert "n0 * 0" in ood.composed_shapes(looped)  # a reassigned accumulator is not inlined
    assert ood.returned_shape(nested) not in ood.composed_shapes(looped)


def test_recorded_outputs_equal_a_fresh_sandbox_run(split):
    from azrlib.sandbox import Executor
    from azrlib.tasks.validation import ValidationConfig, validate_triplets
    from azrlib.tasks.values import parse_literal, values_equal
    triplets = [(t.task_type, t.program, t.input, t.output) for t in split["deduction"] + split["abduction"]]
    triplets += [("deduction", t.program, x, y) for t in split["induction"][:20] for x, y in zip(t.inputs, t.outputs)]
    with Executor(timeout_s=2.0) as ex:
        verdicts = validate_triplets(ex, [("deduction", p, x) for _, p, x, _ in triplets], ValidationConfig(timeout_s=2.0))
    assert all(v.ok and values_equal(parse_literal(v.task.output), parse_literal(y))
               for v, (_, _, _, y) in zip(verdicts, triplets))


def test_generation_is_deterministic():
    a = ood.generate_ood_program(ood.OOD_SEED, 17, "list")
    assert a == ood.generate_ood_program(ood.OOD_SEED, 17, "list")
    assert a.program.count("(") + a.program.count("[") >= 3

"""The out-of-distribution tiny-world split: each program composes two operations whose pair (the
returned expression's shape, helper variables inlined) appears in no pretraining program, it has
100+ valid tasks per type in both families, and the in-distribution benchmark file is unchanged."""

from __future__ import annotations

import ast
import hashlib
import itertools
import json
from collections import Counter
from pathlib import Path

import pytest

from azrlib.tasks.types import TASK_TYPES
from azrlib.tinyworld import ood
from azrlib.tinyworld.benchmark import load_benchmark
from azrlib.tinyworld.holdout import normalize_program
from azrlib.tinyworld.ops import OPS, RETURN_KINDS
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


def test_split_has_100_plus_tasks_per_type_balanced_over_families_and_return_kinds(split):
    for task_type in TASK_TYPES:
        tasks = split[task_type]
        assert len(tasks) >= 100, task_type
        assert all(t.meta["level"] == ood.OOD_LEVEL for t in tasks)
        cells = Counter((t.meta["family"], t.meta["returns"]) for t in tasks)
        assert set(cells) == {(f, k) for f in ood.OOD_FAMILIES for k in RETURN_KINDS}
        assert max(cells.values()) - min(cells.values()) <= 1, cells
    programs = [t.program for tasks in split.values() for t in tasks]
    shapes = [ood.returned_shape(p) for p in programs]
    assert len(set(shapes)) == len(programs)  # one task per held-out composition


def test_the_pipelines_evenly_spaced_subset_is_balanced_too():
    """The tiny pipeline evaluates 30 tasks per type (`eval_subset`, evenly spaced): the file's
    order gives each (family, return kind) cell 5 of them, and each family half of any subset."""
    from azrlib.pipeline.steps import eval_subset
    rows = [json.loads(line) for line in OOD_FILE.read_text().splitlines()]
    for per_type, cell_count in ((30, 5), (90, 15)):
        chosen = eval_subset(rows, per_type)
        for task_type in TASK_TYPES:
            cells = Counter((r["meta"]["family"], r["meta"]["returns"]) for r in chosen if r["task_type"] == task_type)
            assert set(cells.values()) == {cell_count}, (per_type, task_type, cells)
    for task_type in TASK_TYPES:
        families = Counter(r["meta"]["family"] for r in eval_subset(rows, 100) if r["task_type"] == task_type)
        assert set(families.values()) == {50}, families


def test_every_program_composes_two_operations(split):
    """No returned expression is a single operation (with any pattern of repeated arguments);
    the helper family is two statements, the nested family one `return`."""
    single = set()
    for op in OPS:
        for names in itertools.product("xyz", repeat=len(op.ins)):
            code = op.code.format(*names, c=7, c2=3, ch="o", ch2="t")
            single.add(ood.returned_shape(f"def f(x, y, z):\n    return {code}"))
    for task in (t for group in split.values() for t in group):
        assert ood.returned_shape(task.program) not in single, task.program
        body = ast.parse(task.program).body[0].body
        assert len(body) == {"pair_nested": 1, "pair_helper": 2}[task.meta["family"]], task.program
        assert isinstance(body[-1], ast.Return)


@pytest.mark.slow  # reads the 12,000-program reference stream and every composition in it
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
    # a helper-family program is judged by its composition: seen nested, it is not out of distribution
    helper = "def f(s):\n    y = s[::-1]\n    return y.upper()"
    assert ood.returned_shape(helper) == ood.returned_shape("def f(t):\n    return t[::-1].upper()") == "n0[::-0].upper()"  # constants blanked
    from azrlib.tasks.types import Task
    task = Task("deduction", helper, ("'ab'",), ("'BA'",))
    assert ood.check_disjoint([task], ood.composed_shapes("def f(word):\n    return word[::-1].upper()")) == [helper]
    assert ood.check_disjoint([task], ood.composed_shapes("def f(word):\n    return word.upper()[::-1]")) == []


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
    for family in ood.OOD_FAMILIES:
        a = ood.generate_ood_program(ood.OOD_SEED, 17, "list", family)
        assert a == ood.generate_ood_program(ood.OOD_SEED, 17, "list", family)
        assert a.family == family
    with pytest.raises(ValueError, match="unknown OOD family"):
        ood.generate_ood_program(ood.OOD_SEED, 17, "list", "nested3")


@pytest.mark.slow  # rebuilds the split: the reference stream, generation and the sandbox (~30 s)
def test_rebuild_gives_the_committed_file_byte_for_byte(tmp_path):
    assert ood.main(["--out", str(tmp_path / "ood.jsonl")]) == 0
    assert (tmp_path / "ood.jsonl").read_bytes() == OOD_FILE.read_bytes()

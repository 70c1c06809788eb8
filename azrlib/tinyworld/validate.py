"""The pretraining corpus's tasks: `build_corpus` runs every (program, input) in the sandbox
through the project's own validator (`validate_triplets` with a 1 s timeout and a 60-character
output cap), drops constant functions and duplicates (by normalized text), and keeps verified
deduction/abduction triplets and 10-pair induction tasks; deduction tasks get an execution trace
(`trace.py`). Induction tasks are built from the same validated runs as the triplets (same checks
as `validate_induction`: static check, ok run, small output, distinct inputs), so programs run only
once per input."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tasks.validation import ValidationConfig, validate_triplets
from azrlib.tinyworld.holdout import is_benchmark_side
from azrlib.tinyworld.programs import (
    LEVELS, N_INDUCTION_CANDIDATES, N_TRIPLET_INPUTS, RUN_TIMEOUT_S, ProgramSpec, generate_programs,
)
from azrlib.tinyworld.trace import compute_traces

MAX_OUTPUT_CHARS = 60  # longer outputs make answers the tiny model cannot write in its context
N_INDUCTION_PAIRS = 10  # pairs kept per induction task (5 shown, 5 hidden)
MIN_INDUCTION_DISTINCT_OUTPUTS = 3  # fewer leaves the hidden function underdetermined
# deduction (and abduction) tasks per program and level in the corpus: level 1 has few distinct
# programs, so each gives all its inputs
TASKS_PER_PROGRAM = {1: 4, 2: 2, 3: 2, 4: 2}
VALIDATION = ValidationConfig(timeout_s=RUN_TIMEOUT_S, max_output_chars=MAX_OUTPUT_CHARS)


@dataclass
class Corpus:
    """Validated tasks per type (deduction/abduction triplets, induction with 10 pairs), each with
    `meta` = {level, family, key, ...}; deduction tasks carry their trace text in meta["trace"]."""

    tasks: dict[str, list[Task]]
    specs: list[ProgramSpec]  # the kept programs
    pairs: dict[str, tuple[tuple[str, str], ...]]  # normalized text -> every verified (input, output)
    stats: dict

    def keys(self) -> set[str]:
        return {s.key for s in self.specs}


def _run_and_keep(executor, specs: Sequence[ProgramSpec], n_inputs: Callable[[ProgramSpec], int]
                  ) -> tuple[dict[int, list[tuple[str, str]]], dict[str, int]]:
    """Validated (input, output) pairs per spec position, with a count of rejection reasons."""
    proposals, owners = [], []
    for pos, spec in enumerate(specs):
        for x in spec.inputs[:n_inputs(spec)]:
            proposals.append(("deduction", spec.program, x))
            owners.append(pos)
    reasons: dict[str, int] = {}
    pairs: dict[int, list[tuple[str, str]]] = {}
    for pos, result in zip(owners, validate_triplets(executor, proposals, VALIDATION)):
        reasons[result.reason] = reasons.get(result.reason, 0) + 1
        if result.ok:
            pairs.setdefault(pos, []).append((result.task.input, result.task.output))
    return pairs, reasons


def _make_tasks(spec: ProgramSpec, pairs: list[tuple[str, str]], per_type: int | None, with_induction: bool
                ) -> dict[str, list[Task]]:
    """Tasks of one program: `per_type` (None: `TASKS_PER_PROGRAM[level]`) deduction and
    abduction triplets, and an induction task when asked for and enough pairs ran."""
    per_type = TASKS_PER_PROGRAM[spec.level] if per_type is None else per_type
    meta = {"level": spec.level, "family": spec.family, "key": spec.key, "index": spec.index,
            "arg_kinds": list(spec.arg_kinds)}
    triplet_pairs = [p for p in pairs if p[0] in spec.inputs[:N_TRIPLET_INPUTS]]
    tasks: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    # deduction from the first pairs, abduction from the last, so both see different inputs
    for x, y in triplet_pairs[:per_type]:
        tasks["deduction"].append(Task("deduction", spec.program, (x,), (y,), message=spec.message, meta=dict(meta)))
    for x, y in triplet_pairs[::-1][:per_type]:
        tasks["abduction"].append(Task("abduction", spec.program, (x,), (y,), message=spec.message, meta=dict(meta)))
    if with_induction and len(pairs) >= N_INDUCTION_PAIRS:
        chosen = pairs[:N_INDUCTION_PAIRS]
        if len({y for _, y in chosen}) >= MIN_INDUCTION_DISTINCT_OUTPUTS:
            tasks["induction"].append(Task("induction", spec.program, tuple(x for x, _ in chosen),
                                           tuple(y for _, y in chosen), message=spec.message, meta=dict(meta)))
    return tasks


def _validated_tasks(executor, specs: Sequence[ProgramSpec], per_type: int | dict | None, induction_share: float,
                     seed: int) -> tuple[list[tuple[ProgramSpec, list[tuple[str, str]], dict[str, list[Task]]]], dict]:
    """Run specs (already deduplicated), drop failing/constant programs, build their tasks.
    `per_type`: tasks per program and type (an int, a {level: int} dict, None: TASKS_PER_PROGRAM);
    triplets come from the first N_TRIPLET_INPUTS inputs."""
    def wants_induction(spec: ProgramSpec) -> bool:
        return random.Random(f"tinyworld-ind:{seed}:{spec.index}").random() < induction_share

    pairs_by_pos, reasons = _run_and_keep(
        executor, specs, lambda s: N_INDUCTION_CANDIDATES if wants_induction(s) else N_TRIPLET_INPUTS)
    kept, constant = [], 0
    for pos, spec in enumerate(specs):
        pairs = pairs_by_pos.get(pos, [])
        triplet_outputs = {y for x, y in pairs if x in spec.inputs[:N_TRIPLET_INPUTS]}
        if not triplet_outputs:
            continue
        if len(triplet_outputs) < 2 and len(pairs) >= 2:
            constant += 1  # a constant function: nothing to deduce, any input answers abduction
            continue
        level_per_type = per_type.get(spec.level) if isinstance(per_type, dict) else per_type
        kept.append((spec, pairs, _make_tasks(spec, pairs, level_per_type, wants_induction(spec))))
    return kept, {"run_reasons": reasons, "constant_outputs": constant}


def _dedupe(specs: Iterable[ProgramSpec], exclude: set[str], side: str) -> tuple[list[ProgramSpec], dict]:
    """Unique programs (by normalized text) on one side of the holdout split."""
    seen: set[str] = set(exclude)
    out, duplicates, other_side = [], 0, 0
    for spec in specs:
        key = spec.key
        if key in seen:
            duplicates += 1
            continue
        if is_benchmark_side(spec.holdout_key, spec.level) != (side == "benchmark"):
            other_side += 1
            continue
        seen.add(key)
        out.append(spec)
    return out, {"duplicates": duplicates, "other_side": other_side}


def build_corpus(executor, n_programs: int, seed: int = 0, levels: Sequence[int] = LEVELS,
                 weights: Sequence[float] | None = None, tasks_per_program: int | dict | None = None,
                 induction_share: float = 0.35, exclude: Iterable[str] = (), with_traces: bool = True) -> Corpus:
    """Generate `n_programs` candidates, keep the training-side, unique, validated ones, and build
    their tasks (up to `tasks_per_program` deduction and abduction triplets each, an int or a
    {level: int} dict, by default `TASKS_PER_PROGRAM[level]`, from the first N_TRIPLET_INPUTS
    sampled inputs; an induction task for about `induction_share` of them).
    `exclude`: normalized program texts to leave out. `n_programs` counts generated candidates."""
    started = time.perf_counter()
    generated = generate_programs(n_programs, seed, levels, weights)
    generation_s = time.perf_counter() - started
    specs, dedupe_stats = _dedupe(generated, set(exclude), side="train")
    kept, run_stats = _validated_tasks(executor, specs, tasks_per_program, induction_share, seed)
    tasks: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    for _, _, per_type in kept:
        for task_type, items in per_type.items():
            tasks[task_type].extend(items)
    trace_failures = 0
    if with_traces and tasks["deduction"]:
        traces = compute_traces(executor, tasks["deduction"])
        with_trace = []
        for task, trace in zip(tasks["deduction"], traces):
            if trace is None:
                trace_failures += 1
                continue
            task.meta["trace"] = trace
            with_trace.append(task)
        tasks["deduction"] = with_trace
    stats = {
        "seed": seed, "generated": n_programs, "unique_train_side": len(specs), "kept_programs": len(kept),
        "kept_fraction": len(kept) / max(1, n_programs), **dedupe_stats, **run_stats,
        "trace_failures": trace_failures, "seconds": time.perf_counter() - started,
        "generation_seconds": generation_s,
        "generated_per_level": _count(s.level for s in generated),
        "kept_per_level": _count(s.level for s, _, _ in kept),
        "tasks": {t: len(v) for t, v in tasks.items()},
    }
    return Corpus(tasks, [s for s, _, _ in kept], {s.key: tuple(p) for s, p, _ in kept}, stats)


def _count(values: Iterable) -> dict:
    out: dict = {}
    for v in values:
        out[v] = out.get(v, 0) + 1
    return dict(sorted(out.items()))

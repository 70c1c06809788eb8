"""The held-out tiny-world benchmark and the RLVR/SFT task source: tasks from one side of the
holdout split (`holdout.py`), balanced over levels, with fixed seeds (`TASK_SOURCE`)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tinyworld.holdout import HOLDOUT_FRACTION
from azrlib.tinyworld.programs import LEVELS, generate_programs
from azrlib.tinyworld.validate import Corpus, _dedupe, _validated_tasks

# levels whose benchmark programs may serve all three task types (with different inputs)
SHARED_PROGRAM_LEVELS = (1,)


@dataclass(frozen=True)
class TaskSource:
    """The fixed tiny-world task source: seeds for the pretraining corpus, the benchmark and the
    RLVR/SFT task stream, and the levels they cover. Seeds only pick programs; disjointness
    comes from the holdout split (`is_benchmark_side`) and the normalized-text exclusion."""

    name: str = "tinyworld-v1"
    levels: tuple[int, ...] = LEVELS
    corpus_seed: int = 0
    benchmark_seed: int = 1234
    rlvr_seed: int = 777
    benchmark_per_type: int = 300
    holdout_fraction: tuple[tuple[int, float], ...] = tuple(HOLDOUT_FRACTION.items())


TASK_SOURCE = TaskSource()


def _balanced_tasks(executor, seed: int, per_type: int, side: str, levels: Sequence[int], exclude: set[str],
                    task_types: Sequence[str] = TASK_TYPES, max_rounds: int = 40) -> dict[str, list[Task]]:
    """Tasks on one side of the holdout split, `per_type` per type, spread evenly over `levels`.
    A program gives one task, to the type whose quota at its level is least filled, except at
    `SHARED_PROGRAM_LEVELS`, where it serves every open type (deduction and abduction then use
    different inputs). Generates in rounds until the quotas are met."""
    quota = {(t, lvl): per_type // len(levels) + (1 if i < per_type % len(levels) else 0)
             for t in task_types for i, lvl in enumerate(levels)}
    got: dict[str, list[Task]] = {t: [] for t in task_types}
    seen = set(exclude)
    start, batch = 0, max(400, per_type * len(task_types) * (4 if side == "benchmark" else 1))
    for _ in range(max_rounds):
        if all(v <= 0 for v in quota.values()):
            break
        open_levels = [lvl for lvl in levels if any(quota[(t, lvl)] > 0 for t in task_types)]
        # only open levels are generated; the stream stays deterministic because the quotas are
        generated = generate_programs(batch, seed, open_levels, start=start)
        start += batch
        wanted = generated
        specs, _ = _dedupe(wanted, seen, side)
        seen.update(s.key for s in specs)
        kept, _ = _validated_tasks(executor, specs, 1, 1.0 if "induction" in task_types else 0.0, seed)
        for spec, _pairs, per_type_tasks in kept:
            open_types = sorted((t for t in task_types if quota[(t, spec.level)] > 0 and per_type_tasks[t]),
                                key=lambda t: -quota[(t, spec.level)])
            for task_type in open_types[:None if spec.level in SHARED_PROGRAM_LEVELS else 1]:
                task = per_type_tasks[task_type][0]
                task.meta["source"] = f"{TASK_SOURCE.name}:{side}:{seed}"
                got[task_type].append(task)
                quota[(task_type, spec.level)] -= 1
    if any(v > 0 for v in quota.values()):
        raise RuntimeError(f"could not fill the quotas: {quota}")
    for t in task_types:
        got[t].sort(key=lambda task: (task.meta["level"], task.meta["index"]))
    return got


def build_benchmark(executor, seed: int = TASK_SOURCE.benchmark_seed, per_type: int = TASK_SOURCE.benchmark_per_type,
                    exclude: Corpus | Iterable[str] = (), levels: Sequence[int] = LEVELS) -> dict[str, list[Task]]:
    """Held-out tiny-world benchmark: `per_type` tasks per type, evenly over `levels`, from the
    benchmark side of the holdout split only, and never a program whose normalized text is in
    `exclude` (a Corpus or normalized texts). Triplets for deduction/abduction; induction tasks
    have 10 pairs (5 shown, 5 hidden) and a message. meta has level, family, key."""
    excluded = exclude.keys() if isinstance(exclude, Corpus) else set(exclude)
    return _balanced_tasks(executor, seed, per_type, "benchmark", levels, excluded)


def rlvr_tasks(executor, n: int, seed: int = TASK_SOURCE.rlvr_seed, task_types: Sequence[str] = TASK_TYPES,
               levels: Sequence[int] = LEVELS) -> list[Task]:
    """`n` verified solver tasks (spread over `task_types` and `levels`) from the training side of
    the holdout split, so never a benchmark program: the task source for RLVR/SFT baselines."""
    per_type = -(-n // len(task_types))
    by_type = _balanced_tasks(executor, seed, per_type, "train", levels, set(), task_types)
    mixed = [task for group in zip(*(by_type[t] for t in task_types)) for task in group]
    random.Random(f"tinyworld-rlvr:{seed}").shuffle(mixed)
    return mixed[:n]


def save_benchmark(path: str | Path, benchmark: dict[str, list[Task]]) -> None:
    """JSONL, one `Task.to_json()` row per task (meta has level, family, key)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for task_type in TASK_TYPES:
            for task in benchmark.get(task_type, []):
                fh.write(json.dumps(task.to_json(), sort_keys=True) + "\n")


def load_benchmark(path: str | Path) -> dict[str, list[Task]]:
    out: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    with Path(path).open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                task = Task.from_json(json.loads(line))
                out[task.task_type].append(task)
    return out

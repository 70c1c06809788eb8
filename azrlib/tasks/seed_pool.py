"""AZR's seed files as a fixed, verified task pool: the RLVR and SFT baselines' tasks for the GPU
presets (the tiny preset generates its pool from the tiny world instead).

AZR's public seed files (`3b_coder_seed_io.jsonl`: snippet, input, output; and
`3b_coder_code_f_seed_io.jsonl`: snippet, inputs, outputs, message) are re-validated in the sandbox
exactly as proposals are (`validation.py`); what fails (a banned import, an input that is not a
literal, a gold that does not reproduce) is left out and counted. Each valid triplet gives one
deduction and one abduction task; each valid induction row gives one induction task when at least
`n_shown + 1` of its inputs survive (AZR's induction seed itself has six inputs: five shown, one
hidden). The pool is balanced over the three types and shuffled with a fixed seed.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from pathlib import Path

from azrlib.tasks.check import jsonl_rows, program_of
from azrlib.tasks.types import TASK_TYPES, Task
from azrlib.tasks.validation import ValidationConfig, validate_induction, validate_triplets

TRIPLET_FILE = "azr_seeds/3b_coder_seed_io.jsonl"
INDUCTION_FILE = "azr_seeds/3b_coder_code_f_seed_io.jsonl"


def seed_pool(executor, data_dir: str | Path, n: int = 0, n_shown: int = 5, seed: int = 0,
              cfg: ValidationConfig | None = None) -> tuple[list[Task], dict]:
    """(tasks, report): up to `n` verified tasks (0: all), balanced over the types, from the seed
    files under `data_dir`; the report counts rows read, tasks kept and rejections by reason."""
    data_dir = Path(data_dir)
    cfg = cfg or ValidationConfig()
    files = {name: data_dir / name for name in (TRIPLET_FILE, INDUCTION_FILE)}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"AZR seed file(s) not found: {', '.join(missing)} (set AZR_DATA_DIR; docs/data.md)")
    triplets = [r for r in jsonl_rows(files[TRIPLET_FILE]) if "input" in r and "snippet" in r]
    induction = [r for r in jsonl_rows(files[INDUCTION_FILE]) if "inputs" in r and "snippet" in r]
    rejected: collections.Counter = collections.Counter()
    by_type: dict[str, list[Task]] = {t: [] for t in TASK_TYPES}
    for v in validate_triplets(executor, [("deduction", program_of(r), r["input"]) for r in triplets], cfg):
        if not v.ok:
            rejected[f"triplet/{v.reason}"] += 1
            continue
        for t in ("deduction", "abduction"):
            by_type[t].append(dataclasses.replace(v.task, task_type=t, meta={"source": "azr_seed"}))
    icfg = dataclasses.replace(cfg, min_induction_inputs=n_shown + 1)
    for v in validate_induction(executor, [(program_of(r), list(r["inputs"]), r.get("message", "")) for r in induction],
                                icfg):
        if v.ok:
            by_type["induction"].append(dataclasses.replace(v.task, meta={"source": "azr_seed"}))
        else:
            rejected[f"induction/{v.reason}"] += 1
    rng = random.Random(f"azr-seed-pool:{seed}")
    for tasks in by_type.values():
        rng.shuffle(tasks)
    per_type = -(-n // len(TASK_TYPES)) if n else max(len(v) for v in by_type.values())
    mixed = [t for group in zip(*(by_type[t][:per_type] for t in TASK_TYPES)) for t in group]
    mixed += [t for tt in TASK_TYPES for t in by_type[tt][len(mixed) // len(TASK_TYPES):per_type]]
    tasks = mixed[:n] if n else mixed
    report = {"triplet_rows": len(triplets), "induction_rows": len(induction),
              "kept": dict(collections.Counter(t.task_type for t in tasks)), "rejected": dict(rejected)}
    return tasks, report

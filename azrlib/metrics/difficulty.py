"""RQ2: how hard are the questions the proposer writes as training goes on?

From a run's `tasks.jsonl`: take valid deduction questions balanced across training iterations
(the seed paper: 800 questions, binned every 25 iterations), answer each with `m` samples (paper:
8) from each model (self-play final vs base), and record per question the solve rate and the
response lengths. Results are cached as JSONL (one row per question and model), so notebooks
re-plot without re-sampling; a cache row is reused only when its question, model and sampling
settings match.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from azrlib.tasks.grade import grade_samples
from azrlib.tasks.templates import solve_prompt
from azrlib.tasks.types import Task


@dataclass(frozen=True)
class Question:
    qid: str  # stable id: hash of program + input
    step: int
    bin: int  # (step - 1) // bin_size
    task: Task


def load_task_rows(path: str | Path) -> list[dict]:
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"tasks file not found: {p} (a run directory's tasks.jsonl)")
    rows = []
    for line in p.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a partial last line of a killed run
    return rows


def sample_questions(rows: list[dict], n: int = 800, bin_size: int = 25, seed: int = 0,
                     task_type: str = "deduction") -> list[Question]:
    """Valid questions of one type, the same number from every bin of `bin_size` steps (fewer if
    a bin has fewer), without replacement; duplicates (same program and input) counted once."""
    by_bin: dict[int, dict[str, Question]] = defaultdict(dict)
    for r in rows:
        if r.get("task_type") != task_type or not r.get("valid") or not r.get("outputs"):
            continue
        step = int(r["step"])
        task = Task(task_type, r["program"], tuple(r["inputs"]), tuple(r["outputs"]), r.get("message", ""), step)
        qid = hashlib.sha1((task.program + "\x00" + "\x00".join(task.inputs)).encode()).hexdigest()[:16]
        b = max(step - 1, 0) // bin_size
        by_bin[b].setdefault(qid, Question(qid, step, b, task))
    if not by_bin:
        return []
    rng = random.Random(seed)
    per_bin = max(1, n // len(by_bin))
    chosen: list[Question] = []
    for b in sorted(by_bin):
        pool = sorted(by_bin[b].values(), key=lambda q: q.qid)
        chosen += rng.sample(pool, min(per_bin, len(pool)))
    return chosen


@dataclass(frozen=True)
class SamplingSettings:
    m: int = 8
    temperature: float = 1.0
    top_p: float = 1.0
    max_new_tokens: int = 512
    prompt_style: str = "azr"
    seed: int = 0


def evaluate_questions(questions: list[Question], models: dict[str, object], executor, cache_path: str | Path,
                       settings: SamplingSettings = SamplingSettings(), make_sampler=None) -> list[dict]:
    """Rows {qid, step, bin, model, solve_rate, lengths, correct, settings} for every question and
    model, reading what the cache already holds and sampling the rest. `models` maps a name to a
    ready Sampler or to a model path that `make_sampler(path)` turns into one (called only when
    that model has questions left to sample, so a fully cached study loads no model). This module
    builds no sampler itself: the caller chooses the engine."""
    cache_path = Path(cache_path)
    key = json.dumps(asdict(settings), sort_keys=True)
    cached: dict[tuple[str, str], dict] = {}
    if cache_path.is_file():
        for line in cache_path.read_text().splitlines():
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            if row.get("settings") == key:
                cached[(row["model"], row["qid"])] = row
    rows: list[dict] = []
    for name, model in models.items():
        todo = [q for q in questions if (name, q.qid) not in cached]
        if todo:
            if hasattr(model, "generate"):
                sampler = model
            elif make_sampler is not None:
                sampler = make_sampler(model)
            else:
                raise ValueError(f"model {name!r} is a path ({model!r}): pass make_sampler to build its sampler")
            prompts = [solve_prompt(q.task, style=settings.prompt_style) for q in todo]
            samples = sampler.generate(prompts, n=settings.m, temperature=settings.temperature, top_p=settings.top_p,
                                       max_new_tokens=settings.max_new_tokens, stop=["</answer>"], seed=settings.seed)
            graded = grade_samples(executor, [q.task for q in todo], samples)
            new_rows = []
            for q, comps, gs in zip(todo, samples, graded):
                correct = [g.correct for g in gs]
                new_rows.append({"qid": q.qid, "step": q.step, "bin": q.bin, "model": name,
                                 "solve_rate": sum(correct) / len(correct), "correct": correct,
                                 "lengths": [len(c.token_ids) for c in comps], "settings": key})
            cache_path.parent.mkdir(parents=True, exist_ok=True)
            with open(cache_path, "a") as f:
                for row in new_rows:
                    f.write(json.dumps(row) + "\n")
            for row in new_rows:
                cached[(name, row["qid"])] = row
        rows += [cached[(name, q.qid)] for q in questions]
    return rows


def summarize_by_bin(rows: list[dict]) -> list[dict]:
    """Per (model, bin): number of questions, mean solve rate and mean response length, each with
    a normal-approximation 95% CI over questions."""
    groups: dict[tuple[str, int], list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["bin"])].append(r)
    out = []
    for (model, b), rs in sorted(groups.items()):
        rates = [r["solve_rate"] for r in rs]
        lengths = [sum(r["lengths"]) / len(r["lengths"]) for r in rs]
        out.append({"model": model, "bin": b, "n": len(rs),
                    "first_step": min(r["step"] for r in rs), "last_step": max(r["step"] for r in rs),
                    **_mean_ci("solve_rate", rates), **_mean_ci("response_length", lengths)})
    return out


def _mean_ci(name: str, xs: list[float]) -> dict:
    n = len(xs)
    mean = sum(xs) / n
    sd = math.sqrt(sum((x - mean) ** 2 for x in xs) / (n - 1)) if n > 1 else 0.0
    half = 1.96 * sd / math.sqrt(n) if n > 1 else 0.0
    return {name: mean, f"{name}_ci_low": mean - half, f"{name}_ci_high": mean + half}

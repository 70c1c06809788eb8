"""Is a base model a useful self-play start? The tiny base's usefulness numbers, measured.

On the held-out tiny-world benchmark at temperature 1 with `n` samples per task, per task type:
mean solve rate, the fraction of tasks whose solve rate is strictly between 0 and 1 (where the
learnability reward is non-zero), and for proposer prompts (references from the benchmark's own
tasks of that type) the fraction of proposals that pass validation and are not a copy of one of
their references. `azr tiny-usefulness MODEL_DIR` prints the table and a JSON line.
"""

from __future__ import annotations

import argparse
import json
import random
import time

from azrlib.tasks.grade import grade_samples
from azrlib.tasks.parsing import parse_proposal
from azrlib.tasks.templates import propose_prompt, solve_prompt
from azrlib.tasks.types import TASK_TYPES
from azrlib.tasks.validation import ValidationConfig, validate_induction, validate_triplets

STOP = ["</answer>"]
TARGETS = {"solve_rate": (0.15, 0.6), "mixed_fraction": 0.35, "valid_proposals": 0.30}


def usefulness(sampler, executor, bench: dict, n: int = 8, n_propose: int = 64, max_tasks: int = 0,
               max_new_tokens: int = 320, seed: int = 0, style: str = "compact", n_references: int = 2,
               allow_extra_inputs: bool = False) -> dict:
    rng = random.Random(seed)
    report: dict = {}
    for t in TASK_TYPES:
        tasks = bench.get(t, [])
        if max_tasks and len(tasks) > max_tasks:  # evenly spaced: the benchmark is ordered by level
            tasks = [tasks[int(k * len(tasks) / max_tasks)] for k in range(max_tasks)]
        if not tasks:
            continue
        samples = sampler.generate([solve_prompt(x, style=style) for x in tasks], n=n, temperature=1.0, top_p=1.0,
                                   max_new_tokens=max_new_tokens, stop=STOP, seed=seed)
        graded = grade_samples(executor, tasks, samples)
        flat = [g for gs in graded for g in gs]
        lengths = [len(c.token_ids) for comps in samples for c in comps]
        rates = [sum(g.correct for g in gs) / n for gs in graded]
        report[f"{t}/solve_rate"] = sum(rates) / len(rates)
        report[f"{t}/mixed_fraction"] = sum(0 < r < 1 for r in rates) / len(rates)
        report[f"{t}/format_rate"] = sum(g.answer is not None for g in flat) / len(flat)
        report[f"{t}/response_length"] = sum(lengths) / len(lengths)
        by_level: dict = {}
        for task, r in zip(tasks, rates):
            by_level.setdefault(task.meta.get("level", 0), []).append(r)
        for level, rs in sorted(by_level.items()):
            report[f"{t}/solve_rate/level{level}"] = sum(rs) / len(rs)

        # proposals: references drawn from this type's benchmark tasks
        pool = bench.get("deduction", []) + bench.get("abduction", [])
        prompts, refs_used = [], []
        for _ in range(n_propose):
            refs = rng.sample(tasks, min(n_references, len(tasks)))
            program = rng.choice(pool) if t == "induction" and pool else None
            prompts.append(propose_prompt(t, refs, style=style, program_for_induction=program))
            refs_used.append(refs)
        comps = [c[0] for c in sampler.generate(prompts, n=1, temperature=1.0, top_p=1.0, max_new_tokens=max_new_tokens,
                                                stop=STOP, seed=seed + 1)]
        parsed = [parse_proposal(t, c.text, allow_extra_inputs=allow_extra_inputs) for c in comps]
        cfg = ValidationConfig(timeout_s=2.0)
        valid_new = 0
        ok_idx = [k for k, p in enumerate(parsed) if p.ok]
        if t == "induction":
            vals = validate_induction(executor, [(_induction_program(prompts[k], pool), list(parsed[k].inputs),
                                                  parsed[k].message) for k in ok_idx], cfg)
            valid_new = sum(v.ok for v in vals)
        else:
            vals = validate_triplets(executor, [(t, parsed[k].program, parsed[k].input) for k in ok_idx], cfg)
            for k, v in zip(ok_idx, vals):
                copied = any(v.ok and v.task.program.strip() == r.program.strip() and v.task.input == r.input
                             for r in refs_used[k])
                valid_new += v.ok and not copied
        report[f"{t}/valid_proposals"] = valid_new / n_propose
    return report


def _induction_program(prompt: str, pool) -> str:
    for task in pool:  # the program shown in the prompt
        if task.program in prompt:
            return task.program
    return ""


def meets_targets(report: dict) -> dict:
    lo, hi = TARGETS["solve_rate"]
    out = {}
    for t in ("deduction", "abduction"):
        if f"{t}/solve_rate" in report:
            out[f"{t}/solve_rate in [{lo}, {hi}]"] = lo <= report[f"{t}/solve_rate"] <= hi
            out[f"{t}/mixed_fraction >= {TARGETS['mixed_fraction']}"] = report[f"{t}/mixed_fraction"] >= TARGETS["mixed_fraction"]
    if "induction/solve_rate" in report:
        out["induction/solve_rate > 0"] = report["induction/solve_rate"] > 0
    for t in TASK_TYPES:
        if f"{t}/valid_proposals" in report:
            out[f"{t}/valid_proposals >= {TARGETS['valid_proposals']}"] = report[f"{t}/valid_proposals"] >= TARGETS["valid_proposals"]
    return out


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="model directory")
    p.add_argument("--benchmark", default="data/tinyworld/benchmark.jsonl")
    p.add_argument("--n", type=int, default=8, help="samples per task")
    p.add_argument("--n-propose", type=int, default=64, help="proposer samples per type")
    p.add_argument("--max-tasks", type=int, default=0, help="at most this many tasks per type (0: all)")
    p.add_argument("--max-new-tokens", type=int, default=320,
                   help="response cap (an induction proposal of 10 inputs takes ~225 tokens, p95 ~325)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--allow-extra-inputs", action="store_true",
                   help="induction proposals: 10 or more inputs, the last 10 kept (AZR's shipped parser; default: exactly 10)")


def run_cli(args: argparse.Namespace) -> int:
    from azrlib.rollout.hf import HFSampler
    from azrlib.sandbox import Executor
    from azrlib.tinyworld.corpus import load_benchmark

    bench = load_benchmark(args.benchmark)
    sampler = HFSampler(args.model, num_threads=args.threads)
    t0 = time.perf_counter()
    with Executor() as ex:
        report = usefulness(sampler, ex, bench, n=args.n, n_propose=args.n_propose, max_tasks=args.max_tasks,
                            max_new_tokens=args.max_new_tokens, seed=args.seed,
                            allow_extra_inputs=args.allow_extra_inputs)
    checks = meets_targets(report)
    for k, v in report.items():
        print(f"{k:40s} {v:.3f}")
    for k, ok in checks.items():
        print(f"{'PASS' if ok else 'MISS'}  {k}")
    print(json.dumps({"report": report, "targets": checks, "seconds": round(time.perf_counter() - t0, 1)}))
    return 0

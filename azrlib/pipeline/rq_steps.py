"""The protocol's measurements that read evaluations or checkpoints, as `azr` subcommands:

    azr leash-tasks --tasks R/data/tinyworld_eval.jsonl --base R/eval/base/tinyworld.jsonl \\
        --tuned R/eval/selfplay_s0/tinyworld.jsonl ... --k 32 --out R/leash/tasks.jsonl
            invisible leash (paper Appendix C): the tasks some tuned model solves within its first k
            samples and the base never solves in any of its samples
    azr leash-eval BASE --tasks R/leash/tasks.jsonl --n 256 --out R/leash/base.jsonl [eval options]
            the base sampled n times on that subset only (`azr eval`; an empty subset writes an
            empty file)
    azr rq3-entropy --run-dir R/train/selfplay_s0 --steps 0,4,8 --tasks R/data/tinyworld_eval.jsonl \\
        --per-type 20 --n 4 --out R/rq3/selfplay_s0.jsonl
            RQ3: entropy of every kept checkpoint on a fixed prompt set (solver and proposer prompts
            built from the same held-out tasks for every checkpoint), both estimators
    azr sparsity-curve BASE --run-dir R/train/rlvr_s0 --steps 4,8 --out R/sparsity_curve/rlvr_s0.json
            RQ4: sparsity of every kept checkpoint against the base, bf16 / fp32 / |d| <= 1e-5,
            with the run's optimizer steps and trained sequences/tokens (its budget)

Every output is written to a temporary name and renamed, so a killed step leaves no half file.
Departures: the paper measures entropy on training rollouts and sparsity of the final model only;
both are this artifact's controls (docs/experiments/protocol.md).
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from azrlib.tasks.types import TASK_TYPES


def _write_lines(out: Path, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, out)


def _read_jsonl(path: str | Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def _steps(text: str) -> list[int]:
    try:
        steps = sorted({int(s) for s in text.split(",") if s.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"--steps wants comma-separated integers, got {text!r}") from None
    if not steps:
        raise argparse.ArgumentTypeError("--steps is empty")
    return steps


def checkpoint_dir(run_dir: Path, step: int) -> Path:
    path = Path(run_dir) / "checkpoints" / f"step_{step:06d}"
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a saved checkpoint (no config.json); kept steps come from "
                                "checkpoint_every (pipeline setting checkpoint_fraction)")
    return path


# --------------------------------------------------------------------------------- leash

def problem_id(task: dict) -> str:
    """The id `azr eval --benchmark tinyworld` gives a task row (azrlib.eval.benchmarks)."""
    return f"{task['task_type']}/{(task.get('meta') or {}).get('id')}"


def leash_tasks(tasks: list[dict], base_rows: list[dict], tuned_rows: list[list[dict]], k: int) -> list[dict]:
    """Tasks that at least one tuned model solves within its first k samples (sample_idx < k) and the
    base never solves in any of its samples, in the task file's order. Each tuned model must have
    at least k samples of every problem it answered."""
    from azrlib.metrics.pass_at_k import counts_from_rows
    from azrlib.metrics.rq import leash_subset

    base = counts_from_rows(base_rows, "base")
    chosen: set[str] = set()
    for i, rows in enumerate(tuned_rows):
        first_k = [r for r in rows if int(r["sample_idx"]) < k]
        chosen |= set(leash_subset(counts_from_rows(first_k, f"tuned {i}"), base, k))
    return [t for t in tasks if problem_id(t) in chosen]


def configure_leash_tasks(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="the evaluation subset (tiny-world task JSONL)")
    p.add_argument("--base", required=True, help="the base's `azr eval` rows on those tasks")
    p.add_argument("--tuned", action="append", required=True, help="a tuned model's `azr eval` rows (repeat)")
    p.add_argument("--k", type=int, required=True, help="solved within the first k samples")
    p.add_argument("--out", required=True)


def run_leash_tasks(args: argparse.Namespace) -> int:
    chosen = leash_tasks(_read_jsonl(args.tasks), _read_jsonl(args.base), [_read_jsonl(t) for t in args.tuned], args.k)
    _write_lines(Path(args.out), chosen)
    print(f"invisible leash: {len(chosen)} task(s) solved by a tuned model within {args.k} samples and never by "
          f"the base -> {args.out}")
    return 0


def configure_leash_eval(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="the base model")
    p.add_argument("--tasks", required=True, help="`azr leash-tasks` output")
    p.add_argument("--n", type=int, required=True, help="samples per problem")
    p.add_argument("--min-n", type=int, default=256, help="refuse n below this (paper Appendix C: 256)")
    p.add_argument("--out", required=True)
    p.add_argument("--temperature", default="0.6")
    p.add_argument("--top-p", default="0.95")
    p.add_argument("--max-new-tokens", default="512")
    p.add_argument("--prompt-style", default="plain")
    p.add_argument("--engine", default="hf")
    p.add_argument("--batch-size", default="16")
    p.add_argument("--seed", default="1")
    p.add_argument("--device", default=None)
    p.add_argument("--num-threads", default=None)


def run_leash_eval(args: argparse.Namespace) -> int:
    from azrlib.eval import cli as eval_cli

    if args.n < args.min_n:
        print(f"azr leash-eval: n = {args.n} is below --min-n {args.min_n} (paper Appendix C: 256)")
        return 2
    out = Path(args.out)
    if not _read_jsonl(args.tasks):
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("")
        print("invisible leash: empty subset, nothing to sample")
        return 0
    extra = [x for flag, v in (("--device", args.device), ("--num-threads", args.num_threads)) if v for x in (flag, v)]
    eval_parser = argparse.ArgumentParser(prog="azr eval")
    eval_cli.configure_parser(eval_parser)
    eval_args = eval_parser.parse_args([
        args.model, "--benchmark", "tinyworld", "--data", args.tasks, "--n", str(args.n), "--out", str(out),
        "--temperature", args.temperature, "--top-p", args.top_p, "--max-new-tokens", args.max_new_tokens,
        "--prompt-style", args.prompt_style, "--engine", args.engine, "--batch-size", args.batch_size,
        "--seed", args.seed, "--quiet", *extra])
    return int(eval_cli.run_cli(eval_args) or 0)


# --------------------------------------------------------------------------------- rq3-entropy

def fixed_prompts(tasks: list[dict], per_type: int, style: str, n_references: int = 2) -> list[dict]:
    """The fixed RQ3 prompt set: for each task type, the first `per_type` tasks as solver prompts and
    as many proposer prompts, each showing `n_references` of the type's tasks (induction: a
    deduction task's program), chosen by position only, so every checkpoint sees the same text."""
    from azrlib.tasks.templates import propose_prompt, solve_prompt
    from azrlib.tasks.types import Task

    by_type = {t: [Task.from_json(r) for r in tasks if r["task_type"] == t] for t in TASK_TYPES}
    out = []
    for t in TASK_TYPES:
        group = by_type[t][:per_type]
        programs = by_type["deduction"] or group
        for i, task in enumerate(group):
            out.append({"role": "solve", "task_type": t, "index": i, "prompt": solve_prompt(task, style=style)})
        for i in range(len(group)):
            refs = [by_type[t][(i + j) % len(by_type[t])] for j in range(1, n_references + 1)]
            program = programs[i % len(programs)] if t == "induction" else None
            out.append({"role": "propose", "task_type": t, "index": i,
                        "prompt": propose_prompt(t, refs, style=style, program_for_induction=program)})
    return out


def configure_rq3_entropy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run-dir", required=True, help="a training run directory (train/<run>)")
    p.add_argument("--steps", type=_steps, required=True, help="checkpoint steps, comma-separated")
    p.add_argument("--tasks", required=True, help="held-out task JSONL the prompts are built from")
    p.add_argument("--per-type", type=int, required=True, help="prompts per task type and role")
    p.add_argument("--n", type=int, default=4, help="responses per prompt")
    p.add_argument("--temperature", type=float, default=1.0, help="sampling and scoring temperature (top-p 1)")
    p.add_argument("--max-new-tokens", type=int, default=128)
    p.add_argument("--prompt-style", default="compact")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--out", required=True)


def run_rq3_entropy(args: argparse.Namespace) -> int:
    from azrlib.metrics.rq_checkpoints import checkpoint_entropy
    from azrlib.report.results import parse_run_name

    run_dir = Path(args.run_dir)
    kind, seed = parse_run_name(run_dir.name) or (run_dir.name, None)
    prompts = fixed_prompts(_read_jsonl(args.tasks), args.per_type, args.prompt_style)
    rows = []
    for step in args.steps:
        ckpt = checkpoint_dir(run_dir, step)
        res = checkpoint_entropy(ckpt, [p["prompt"] for p in prompts], n=args.n, temperature=args.temperature,
                                 max_new_tokens=args.max_new_tokens, seed=args.seed, num_threads=args.threads)
        for i, p in enumerate(prompts):
            rows.append({"run": run_dir.name, "kind": kind, "seed": seed, "step": step, "role": p["role"],
                         "task_type": p["task_type"], "prompt_index": p["index"], "n": args.n,
                         "entropy_full": float(res["full"][i]), "entropy_sampled": float(res["sampled"][i]),
                         "length": float(res["length"][i])})
        print(f"{run_dir.name} step {step}: {len(prompts)} prompts x {args.n} responses")
    _write_lines(Path(args.out), rows)
    return 0


# --------------------------------------------------------------------------------- sparsity-curve

def run_budget(run_dir: Path, final_step: int) -> dict:
    """Training budget of a run from its config.yaml and metrics.jsonl (steps 1..final): optimizer
    steps (RL: ceil(sequences / mini_batch_size) per step, as `trainer.update.ppo_epoch` splits
    them; SFT: one per step), trained sequences, and trained response tokens: exact where every step
    logged `n_trained_response_tokens` (`tokens_exact`), else approximate (sequences x the step's
    mean logged response length, runs from before that key; None where neither is logged)."""
    import math

    import yaml

    cfg = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    rows = {}
    for r in _read_jsonl(run_dir / "metrics.jsonl"):
        rows[int(r["step"])] = r
    steps = [rows[s] for s in sorted(rows) if 1 <= s <= final_step]
    mini = int(cfg.get("mini_batch_size", 1)) or 1
    optimizer_steps, sequences, approx, have_approx = 0, 0, 0.0, False
    for r in steps:
        n = int(r.get("n_sequences", 0))
        sequences += int(r.get("n_trained_sequences", n))
        optimizer_steps += 1 if cfg.get("mode") == "sft" else max(1, math.ceil(n / mini))
        lengths = [float(v) for k, v in r.items() if k.startswith("response_length/") and v is not None]
        if lengths:
            have_approx = True
            approx += int(r.get("n_trained_sequences", n)) * sum(lengths) / len(lengths)
    exact = bool(steps) and all("n_trained_response_tokens" in r for r in steps)
    tokens = (sum(int(r["n_trained_response_tokens"]) for r in steps) if exact
              else round(approx) if have_approx else None)
    return {"mode": cfg.get("mode", "selfplay"), "training_steps": len(steps), "optimizer_steps": optimizer_steps,
            "trained_sequences": sequences, "response_tokens": tokens, "tokens_exact": exact,
            "trained_tokens": sum(int(r["n_trained_tokens"]) for r in steps) if exact else None}


def configure_sparsity_curve(p: argparse.ArgumentParser) -> None:
    p.add_argument("base", help="the base model directory")
    p.add_argument("--run-dir", required=True)
    p.add_argument("--steps", type=_steps, required=True, help="checkpoint steps, comma-separated")
    p.add_argument("--atol", type=float, default=1e-5)
    p.add_argument("--workers", type=int, default=None)
    p.add_argument("--out", required=True)


def run_sparsity_curve(args: argparse.Namespace) -> int:
    from azrlib.metrics.rq_checkpoints import sparsity_curve
    from azrlib.models import resolve_model

    run_dir = Path(args.run_dir)
    base = resolve_model(args.base)
    steps = [s for s in args.steps if s > 0]
    rows = sparsity_curve(base, {s: checkpoint_dir(run_dir, s) for s in steps}, atol=args.atol, workers=args.workers)
    record = {"run": run_dir.name, "base": str(args.base), "rows": rows, "budget": run_budget(run_dir, max(steps))}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, out)
    print(f"{run_dir.name}: sparsity at steps {steps}; budget {record['budget']}")
    return 0

"""The workflow's own steps as `azr` subcommands (each also runs by hand):

    azr check-base MODEL --out R/data/base.json          the base model resolves and has weights
    azr eval-tasks --per-type N --out R/data/tinyworld_eval.jsonl
                                                         tiny world: N tasks per type over the levels
    azr rlvr-tasks N --out R/data/rlvr_tasks.jsonl       verified tiny-world tasks for RLVR/SFT
    azr rq2 --tasks RUN/tasks.jsonl --model base=DIR --model NAME=DIR --out R/rq2/questions.jsonl
                                                         RQ2: questions from training, solve rates
    azr prepare-run --config C key=value ...             before `azr train --resume`: keep the run
                                                         directory (out_dir/run_name) only if it holds
                                                         a checkpoint of this same config, else remove it

Every output is written to a temporary name and renamed, so a killed step leaves no half file.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

from azrlib.tasks.types import TASK_TYPES


def _write_lines(out: Path, rows: list[dict]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
    os.replace(tmp, out)


# --------------------------------------------------------------------------------- check-base

def check_base(model: str) -> dict:
    """The base model's local directory and weight files; FileNotFoundError says how to get it."""
    from azrlib.models import ModelNotFoundError, resolve_model

    try:
        path = Path(resolve_model(model))
    except ModelNotFoundError as e:
        raise FileNotFoundError(f"{e} (tiny/quick: `azr pretrain-tiny` rebuilds data/tiny_base; GPU presets: "
                                "pre-download into $AZR_MODELS_DIR or set model: in configs/pipeline/<preset>.yaml)") from None
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"base model {path} has no config.json")
    weights = sorted(p.name for p in path.glob("*.safetensors"))
    if not weights:
        raise FileNotFoundError(f"base model {path} has no *.safetensors weights")
    return {"model": model, "path": str(path.resolve()), "weights": weights}


def configure_check_base(p: argparse.ArgumentParser) -> None:
    p.add_argument("model", help="local HF directory or hub id (resolved without downloading)")
    p.add_argument("--out", required=True, help="JSON record of the resolved base")


def run_check_base(args: argparse.Namespace) -> int:
    try:
        record = check_base(args.model)
    except FileNotFoundError as e:
        print(f"azr check-base: {e}", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=1) + "\n")
    print(f"base model {record['path']}: {', '.join(record['weights'])}")
    return 0


# --------------------------------------------------------------------------------- eval-tasks

def eval_subset(rows: list[dict], per_type: int) -> list[dict]:
    """`per_type` tasks of each type, evenly spaced (the benchmark is sorted by level); problem ids
    `<task_type>/<row in the benchmark>`; per_type 0 keeps all."""
    by_type: dict[str, list[tuple[int, dict]]] = {}
    for i, row in enumerate(rows):
        by_type.setdefault(row["task_type"], []).append((i, row))
    chosen = []
    for t in TASK_TYPES:
        group = by_type.get(t, [])
        if per_type and per_type < len(group):
            group = [group[(j * len(group)) // per_type] for j in range(per_type)]
        for i, row in group:
            chosen.append(dict(row, meta=dict(row.get("meta") or {}, id=f"{t}/{i}")))
    return chosen


def configure_eval_tasks(p: argparse.ArgumentParser) -> None:
    from azrlib.pipeline.settings import TINYWORLD_BENCHMARK

    p.add_argument("--benchmark", default=str(TINYWORLD_BENCHMARK), help="tiny-world benchmark JSONL")
    p.add_argument("--per-type", type=int, required=True, help="tasks per task type (0: all)")
    p.add_argument("--out", required=True)


def run_eval_tasks(args: argparse.Namespace) -> int:
    src = Path(args.benchmark)
    rows = [json.loads(line) for line in src.read_text().splitlines() if line.strip()]
    chosen = eval_subset(rows, args.per_type)
    _write_lines(Path(args.out), chosen)
    print(f"{len(chosen)} tasks ({args.per_type or 'all'} per type) from {src} -> {args.out}")
    return 0


# --------------------------------------------------------------------------------- rlvr-tasks

def configure_rlvr_tasks(p: argparse.ArgumentParser) -> None:
    p.add_argument("n", type=int, help="tasks to generate (azr_seeds: at most this many, 0 = all)")
    p.add_argument("--out", required=True)
    p.add_argument("--source", choices=("tinyworld", "azr_seeds"), default="tinyworld",
                   help="tinyworld: generated from the tiny world's training side; azr_seeds: AZR's seed files "
                        "under --data, re-validated (GPU presets)")
    p.add_argument("--data", default=os.environ.get("AZR_DATA_DIR", ""),
                   help="azr_seeds: the data directory holding azr_seeds/ (default $AZR_DATA_DIR)")


def run_rlvr_tasks(args: argparse.Namespace) -> int:
    from azrlib.sandbox import Executor

    if args.source == "azr_seeds":
        from azrlib.tasks.seed_pool import seed_pool

        if not args.data:
            raise SystemExit("azr rlvr-tasks --source azr_seeds: give --data or set AZR_DATA_DIR (docs/data.md)")
        with Executor() as ex:
            try:
                tasks, report = seed_pool(ex, args.data, args.n)
            except (FileNotFoundError, ValueError) as e:
                raise SystemExit(f"azr rlvr-tasks: {e}") from None
        print(json.dumps(report))
    else:
        from azrlib.tinyworld.corpus import rlvr_tasks

        with Executor(timeout_s=2.0) as ex:
            tasks = rlvr_tasks(ex, args.n)
    _write_lines(Path(args.out), [t.to_json() for t in tasks])
    print(f"{len(tasks)} verified {args.source} tasks -> {args.out}")
    return 0


# --------------------------------------------------------------------------------- rq2

def configure_rq2(p: argparse.ArgumentParser) -> None:
    p.add_argument("--tasks", required=True, help="the self-play run's tasks.jsonl")
    p.add_argument("--model", action="append", required=True, metavar="NAME=DIR", help="a model to sample (repeat)")
    p.add_argument("--out", required=True, help="questions.jsonl (rows of metrics.difficulty.evaluate_questions)")
    p.add_argument("--questions", type=int, default=800)
    p.add_argument("--bin-size", type=int, default=25)
    p.add_argument("--m", type=int, default=8, help="samples per question and model")
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--max-new-tokens", type=int, default=512)
    p.add_argument("--prompt-style", default="azr")
    p.add_argument("--engine", choices=("hf", "vllm"), default="hf")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="hf engine: torch CPU threads")
    p.add_argument("--device", default="cpu", help="hf engine: torch device")


def run_rq2(args: argparse.Namespace) -> int:
    from azrlib.metrics.difficulty import SamplingSettings, evaluate_questions, load_task_rows, sample_questions
    from azrlib.sandbox import Executor

    from azrlib.models import resolve_model_or_exit

    # local directories; hub ids from $AZR_MODELS_DIR or the HF cache, never downloaded
    models = {name: resolve_model_or_exit(path, "azr rq2") for name, path in (m.split("=", 1) for m in args.model)}
    questions = sample_questions(load_task_rows(args.tasks), n=args.questions, bin_size=args.bin_size, seed=args.seed)
    print(f"{len(questions)} deduction questions from {args.tasks} "
          f"({len({q.bin for q in questions})} bins of {args.bin_size} steps)")
    settings = SamplingSettings(m=args.m, temperature=args.temperature, top_p=args.top_p,
                                max_new_tokens=args.max_new_tokens, prompt_style=args.prompt_style, seed=args.seed)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if args.engine == "vllm":
        from azrlib.rollout.vllm_sampler import VLLMSampler

        def make_sampler(path):  # two engines (base, self-play) live in this process: 0.4 of the GPU each
            return VLLMSampler(str(path), dtype="auto", seed=args.seed, gpu_memory_utilization=0.4)
    else:
        from azrlib.rollout.hf import HFSampler

        def make_sampler(path):
            return HFSampler(str(path), device=args.device, num_threads=args.threads)
    if not questions:
        out.touch()
        print("no valid deduction questions in the run: an empty questions.jsonl")
        return 0
    with Executor(timeout_s=2.0) as ex:
        result = evaluate_questions(questions, models, ex, out, settings, make_sampler=make_sampler)
    for model in models:
        mine = [r for r in result if r["model"] == model]
        rate = sum(r["solve_rate"] for r in mine) / max(1, len(mine))
        print(f"{model}: {len(mine)} questions, mean solve rate {rate:.3f}")
    return 0


# --------------------------------------------------------------------------------- prepare-run

def stale_reason(run_dir: Path, config: dict) -> str | None:
    """Why `run_dir` cannot be resumed with `config` (None: it can, or there is nothing there)."""
    import yaml

    if not run_dir.exists():
        return None
    if not (run_dir / "checkpoints" / "latest").is_file():
        return "no checkpoint yet"
    try:
        saved = yaml.safe_load((run_dir / "config.yaml").read_text()) or {}
    except (OSError, yaml.YAMLError):
        return "no readable config.yaml"
    saved.pop("torch_threads", None)
    changed = sorted(k for k in set(saved) | set(config) if saved.get(k) != config.get(k))
    return f"its config differs in {', '.join(changed)}" if changed else None


def configure_prepare_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", required=True, help="training preset or YAML path")
    p.add_argument("overrides", nargs="*", help="the run's key=value overrides")


def run_prepare_run(args: argparse.Namespace) -> int:
    from azrlib.config import config_to_dict, load_config
    from azrlib.trainer.config import TrainConfig

    cfg = load_config(TrainConfig, args.config, args.overrides)
    config = config_to_dict(cfg)
    config.pop("torch_threads", None)
    run_dir = Path(cfg.out_dir) / cfg.run_name
    reason = stale_reason(run_dir, config)
    if reason:
        shutil.rmtree(run_dir)
        print(f"{run_dir}: {reason}: removed, the run starts from the base")
    elif run_dir.exists():
        print(f"{run_dir}: resuming from its last checkpoint")
    return 0

"""The paper's plan for one preset: pipeline settings (configs/pipeline/<preset>.yaml) and the runs.

A preset is one name in one tree: `configs/<preset>.yaml` holds the training settings (TrainConfig)
and `configs/pipeline/<preset>.yaml` what the workflow (workflow/Snakefile) runs around them:
seeds, evaluation and RQ2 sizes, threads. Both list only their deviations from the dataclass
defaults; `azr pipeline-settings --preset P` prints the resolved values.

The training runs (names as in docs/results_layout.md):

    selfplay_s<k>   AZR self-play (proposer_reward azr), one per seed
    band_s<k>       proposer reward 1-2|p-0.5| (RQ5), one per seed
    frozen_s<k>     frozen proposer (RQ3), one per seed
    rlvr_s<k>       `azr train-rlvr` on verified tasks (RQ1, RQ3, RQ4), one per seed
    azr_code_s<k>   AZR's code variant of the proposer reward, first seed
    sft_s<k>        `azr train-sft` on the same tasks (RQ4), first seed

The protocol (docs/experiments/protocol.md) sizes every measurement through these settings, so a
preset's budget, not the code, sets n, problem counts and seeds. Every run keeps a checkpoint every
`checkpoint_fraction` of training (RQ3 entropy and RQ4 sparsity against step), and with
`one_update_per_step` every arm takes exactly one optimizer step per training step (budgets
matched for RQ4: self-play's propose + solve rollouts, RLVR's solves and SFT's batch each form one
mini-batch).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import dataclass
from pathlib import Path

from azrlib.config import CONFIG_DIR, ConfigError, config_to_dict, describe, load_config, option

PIPELINE_DIR = CONFIG_DIR / "pipeline"
TINYWORLD_BENCHMARK = CONFIG_DIR.parent / "data" / "tinyworld" / "benchmark.jsonl"
TINYWORLD_OOD = CONFIG_DIR.parent / "data" / "tinyworld" / "benchmark_ood.jsonl"
# benchmark name in the pipeline -> the tiny-world file its evaluation subset is drawn from
TINYWORLD_SPLITS = {"tinyworld": TINYWORLD_BENCHMARK, "tinyworld_ood": TINYWORLD_OOD}


@dataclass(frozen=True)
class PipelineSettings:
    """What the workflow runs for a preset (training sizes live in configs/<preset>.yaml)."""

    config: str = option("", "training config: a preset name or YAML path (empty: configs/<preset>.yaml)")
    model: str = option("", "base model: a local HF directory or a hub id (empty: the training config's `model`)")
    seeds: tuple[int, ...] = option((0, 1, 2), "seeds of the multi-seed runs; the first seeds the others")
    multi_seed_runs: tuple[str, ...] = option(("selfplay", "band", "frozen", "rlvr"), "run kinds trained once per seed")
    single_seed_runs: tuple[str, ...] = option(("azr_code", "sft"), "run kinds trained with the first seed only")
    checkpoint_fraction: float = option(0.1, "keep a checkpoint every this fraction of training (RQ3, RQ4 curves)")
    one_update_per_step: bool = option(True, "every arm takes one optimizer step per training step (mini_batch_size "
                                             "covers the whole step): equal optimizer-step budgets for RQ4")
    train_overrides: tuple[str, ...] = option((), "extra key=value overrides for every training run")
    train_gpus: int = option(0, "GPUs per training run; > 0 launches the trainer with torchrun on that many")
    threads: int = option(1, "torch threads per step (CPU: 1 thread per step and one step per core is fastest "
                             "for the tiny model; GPU presets: CPU threads of a job)")
    rlvr_tasks: int = option(300, "RLVR/SFT baselines: verified tasks built by the rlvr_tasks step (0: use rlvr_tasks_file)")
    rlvr_source: str = option("tinyworld", "where the rlvr_tasks step builds them: tinyworld (generated from the tiny "
                              "world's training side) | azr_seeds (AZR's seed files in $AZR_DATA_DIR/azr_seeds, "
                              "re-validated; at most rlvr_tasks)")
    rlvr_tasks_file: str = option("", "RLVR/SFT task JSONL when rlvr_tasks is 0 (empty: no rlvr and sft runs)")
    benchmarks: tuple[str, ...] = option(("tinyworld", "tinyworld_ood"),
                                         "benchmarks evaluated (`azr eval --benchmark`; tinyworld_ood: the tiny world's "
                                         "out-of-distribution split)")
    eval_kinds: tuple[str, ...] = option(("selfplay", "rlvr", "band"), "run kinds whose every seed's final checkpoint "
                                         "is evaluated beside the base (RQ1, RQ5)")
    eval_kinds_every_benchmark: tuple[str, ...] = option(("selfplay", "rlvr"), "of eval_kinds, those evaluated on every "
                                                         "benchmark; the others (band: RQ5) on the first only")
    eval_data: str = option("", "`azr eval --data` directory for non-tiny-world benchmarks (empty: $AZR_DATA_DIR)")
    eval_per_type: int = option(100, "tiny world: evaluation tasks per task type and split, over the levels (0: all)")
    eval_limit: int = option(0, "other benchmarks: only the first N problems (0: all)")
    eval_n: int = option(32, "samples per problem (pass@k up to k = eval_n; the protocol: >= 32)")
    eval_temperature: float = option(0.6, "sampling temperature (pass@k convention of Yue et al.: 0.6)")
    eval_top_p: float = option(0.95, "nucleus mass (Yue et al.: 0.95)")
    eval_max_new_tokens: int = option(128, "generated tokens per sample")
    eval_prompt_style: str = option("plain", "azr | qwen-boxed | plain (plain on the tiny world = its training format)")
    eval_engine: str = option("hf", "hf | vllm")
    eval_batch_size: int = option(16, "prompts per generation call")
    eval_device: str = option("cpu", "hf engine: torch device")
    leash_k: int = option(32, "invisible leash: the tuned model solves a problem within its first leash_k samples")
    leash_n: int = option(256, "invisible leash: base samples per problem of the subset (paper Appendix C: 256)")
    leash_min_n: int = option(256, "invisible leash: the smallest leash_n allowed (a smoke-test preset may lower it, "
                                   "and its notebook says so)")
    rq2_questions: int = option(150, "RQ2: deduction questions sampled from each self-play seed's tasks.jsonl")
    rq2_bin_size: int = option(5, "RQ2: training steps per bin (questions are balanced over bins)")
    rq2_m: int = option(8, "RQ2: samples per question and model")
    rq2_temperature: float = option(1.0, "RQ2: sampling temperature (the training temperature)")
    rq2_top_p: float = option(1.0, "RQ2: nucleus mass")
    rq2_max_new_tokens: int = option(128, "RQ2: generated tokens per sample")
    rq2_prompt_style: str = option("compact", "RQ2: solver prompt style (the run's prompt_style)")
    rq2_engine: str = option("hf", "RQ2 sampler: hf | vllm")
    rq2_bins: int = option(8, "RQ2: training-fraction bins of the trend")
    rq3_kinds: tuple[str, ...] = option(("selfplay", "frozen", "rlvr", "band"), "RQ3 (and RQ5's entropy test: band): run "
                                        "kinds (every seed) whose checkpoints are measured on the fixed prompt set")
    rq3_per_type: int = option(20, "RQ3: fixed prompts per task type and role (held-out tasks of the in-distribution split)")
    rq3_n: int = option(4, "RQ3: responses sampled per prompt and checkpoint")
    rq3_max_new_tokens: int = option(128, "RQ3: generated tokens per response")
    rq4_kinds: tuple[str, ...] = option(("selfplay", "rlvr", "sft"), "RQ4: run kinds (every seed trained) whose "
                                        "checkpoints are compared with the base (sparsity against step)")
    notebooks: bool = option(True, "execute every notebooks/*.ipynb with papermill at the end")
    notebook_timeout_s: int = option(1800, "papermill: longest a notebook cell may run, seconds")


def presets() -> list[str]:
    return sorted(p.stem for p in PIPELINE_DIR.glob("*.yaml"))


def load_settings(preset: str, overrides: list[str] | dict | None = None) -> PipelineSettings:
    """configs/pipeline/<preset>.yaml plus `key=value` overrides; ConfigError names a bad key."""
    path = PIPELINE_DIR / f"{preset}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown preset {preset!r}: no {path} (presets: {', '.join(presets())})")
    settings = load_config(PipelineSettings, path, overrides)
    if not settings.seeds:
        raise ConfigError(f"{path}: seeds needs at least one seed")
    if settings.rlvr_source not in ("tinyworld", "azr_seeds"):
        raise ConfigError(f"{path}: rlvr_source must be tinyworld or azr_seeds, got {settings.rlvr_source!r}")
    return settings


def training_config(preset: str, settings: PipelineSettings) -> str:
    return settings.config or preset


@dataclass(frozen=True)
class RunSpec:
    name: str
    command: str  # train | train-rlvr | train-sft
    seed: int
    overrides: tuple[str, ...]


RUN_KINDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "selfplay": ("train", ("proposer_reward=azr",)),
    "band": ("train", ("proposer_reward=band",)),
    "azr_code": ("train", ("proposer_reward=azr_code",)),
    "frozen": ("train", ("proposer_reward=azr", "freeze_proposer=true")),
    "rlvr": ("train-rlvr", ()),
    "sft": ("train-sft", ()),
}


def run_plan(settings: PipelineSettings) -> list[RunSpec]:
    """Multi-seed kinds once per seed, the others with the first seed; rlvr/sft only with tasks."""
    for kind in settings.multi_seed_runs + settings.single_seed_runs:
        if kind not in RUN_KINDS:
            raise ConfigError(f"unknown run kind {kind!r}; known: {', '.join(RUN_KINDS)}")
    has_tasks = settings.rlvr_tasks > 0 or bool(settings.rlvr_tasks_file)
    runs = []
    for kind in settings.multi_seed_runs:
        command, over = RUN_KINDS[kind]
        if command != "train" and not has_tasks:
            continue
        for k in settings.seeds:
            runs.append(RunSpec(f"{kind}_s{k}", command, k, over))
    for kind in settings.single_seed_runs:
        command, over = RUN_KINDS[kind]
        if kind in settings.multi_seed_runs or (command != "train" and not has_tasks):
            continue
        runs.append(RunSpec(f"{kind}_s{settings.seeds[0]}", command, settings.seeds[0], over))
    return runs


# mini_batch_size that holds any step's sequences: one optimizer step per training step
ONE_UPDATE_MINI_BATCH = 1_000_000


def checkpoint_every(settings: PipelineSettings, steps: int) -> int:
    """Steps between kept checkpoints: `checkpoint_fraction` of training, at least 1."""
    if not 0 < settings.checkpoint_fraction <= 1:
        raise ConfigError(f"checkpoint_fraction must lie in (0, 1], got {settings.checkpoint_fraction}")
    return max(1, round(steps * settings.checkpoint_fraction))


def checkpoint_steps(settings: PipelineSettings, steps: int) -> list[int]:
    """The steps whose checkpoints every run keeps (0 and the last always, as the trainer saves them)."""
    every = checkpoint_every(settings, steps)
    return sorted({0, steps, *range(every, steps, every)})


def run_overrides(spec: RunSpec, settings: PipelineSettings, results: Path, model: str,
                  rlvr_file: str | None, steps: int | None = None) -> list[str]:
    """The `key=value` overrides of one training run (thread count excluded: it changes no result).
    With `steps` (the preset's training length), the checkpoint interval follows checkpoint_fraction."""
    out = [f"out_dir={results / 'train'}", f"run_name={spec.name}", f"seed={spec.seed}", f"model={model}",
           *spec.overrides]
    if steps is not None:
        out.append(f"checkpoint_every={checkpoint_every(settings, steps)}")
    if settings.one_update_per_step:
        out.append(f"mini_batch_size={ONE_UPDATE_MINI_BATCH}")
    out += list(settings.train_overrides)
    if spec.command != "train":
        out.append(f"rlvr_tasks={rlvr_file}")
    return out


def resolved_train_config(preset: str, settings: PipelineSettings, overrides: list[str]) -> dict:
    """The run's resolved TrainConfig as a dict, without torch_threads (fails early naming a bad key)."""
    from azrlib.trainer.config import TrainConfig

    cfg = config_to_dict(load_config(TrainConfig, training_config(preset, settings), overrides))
    cfg.pop("torch_threads", None)
    return cfg


def configure_parser(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", default=None, help=f"print this preset's resolved settings (presets: {', '.join(presets())})")
    p.add_argument("overrides", nargs="*", help="key=value overrides")


def run_cli(args: argparse.Namespace) -> int:
    """`azr pipeline-settings`: the settings' help, or a preset's resolved values and runs."""
    if not args.preset:
        print(describe(PipelineSettings))
        return 0
    try:
        s = load_settings(args.preset, args.overrides)
    except ConfigError as e:
        print(f"azr pipeline-settings: {e}")
        return 2
    print(json.dumps({"settings": config_to_dict(s), "runs": [r.name for r in run_plan(s)]}, indent=1))
    return 0
